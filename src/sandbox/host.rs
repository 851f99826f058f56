//! What the host gives a guest besides files: clocks, randomness, sleeping, stdin and capped
//! stdout/stderr. Everything is chosen per run, so a deterministic run sees the same time and
//! random bytes every time.

use cap_rand::SeedableRng;
use std::any::Any;
use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use wasi_common::clocks::{WasiClocks, WasiMonotonicClock, WasiSystemClock};
use wasi_common::file::FileType;
use wasi_common::sched::{Poll, WasiSched};
use wasi_common::{Error, ErrorExt, WasiFile};

/// Where a run's time and randomness come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Determinism {
    /// A virtual clock that starts at a fixed instant and advances a fixed step per reading
    /// (and by exactly the requested time on sleep), plus a random stream seeded with `seed`.
    /// The same run gives the same output.
    Seeded {
        /// Seed of the guest's random stream (and so of Python's hash randomisation).
        seed: u64,
    },
    /// The host's wall clock and fresh entropy, for runs that must see real time.
    Host,
}

impl Default for Determinism {
    fn default() -> Self {
        Determinism::Seeded { seed: 0 }
    }
}

/// The instant a seeded run's clock starts at: 2024-01-01T00:00:00Z.
const VIRTUAL_EPOCH: Duration = Duration::from_secs(1_704_067_200);
/// How far the virtual clock moves per reading, so that "wait until time passes" loops end.
const VIRTUAL_TICK: Duration = Duration::from_micros(10);

/// The run's time source, shared by the clocks, the scheduler and the file system's mtimes.
pub(crate) struct Clock {
    virtual_elapsed_ns: Option<AtomicU64>,
    host_start: std::time::Instant,
}

impl Clock {
    pub(crate) fn new(determinism: Determinism) -> Arc<Clock> {
        Arc::new(Clock {
            virtual_elapsed_ns: match determinism {
                Determinism::Seeded { .. } => Some(AtomicU64::new(0)),
                Determinism::Host => None,
            },
            host_start: std::time::Instant::now(),
        })
    }

    /// Time since the run started, advancing the virtual clock by one tick.
    fn elapsed(&self) -> Duration {
        match &self.virtual_elapsed_ns {
            Some(ns) => Duration::from_nanos(
                ns.fetch_add(VIRTUAL_TICK.as_nanos() as u64, Ordering::Relaxed),
            ),
            None => self.host_start.elapsed(),
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        match &self.virtual_elapsed_ns {
            Some(_) => SystemTime::UNIX_EPOCH + VIRTUAL_EPOCH + self.elapsed(),
            None => SystemTime::now(),
        }
    }

    /// Lets `d` pass: instantly on the virtual clock; on the host clock, by really sleeping,
    /// bounded by `max` so a sleeping guest still meets its wall-clock timeout.
    fn sleep(&self, d: Duration, max: Duration) {
        match &self.virtual_elapsed_ns {
            Some(ns) => {
                ns.fetch_add(
                    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
            }
            None => std::thread::sleep(d.min(max)),
        }
    }
}

struct SystemClock(Arc<Clock>);
impl WasiSystemClock for SystemClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }
    fn now(&self, _precision: Duration) -> cap_std::time::SystemTime {
        cap_std::time::SystemTime::from_std(self.0.now())
    }
}

struct MonotonicClock(Arc<Clock>);
impl WasiMonotonicClock for MonotonicClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }
    fn now(&self, _precision: Duration) -> cap_std::time::Instant {
        // The guest sees this relative to the first reading, so only differences matter.
        cap_std::time::Instant::from_std(self.0.host_start + self.0.elapsed())
    }
}

pub(crate) fn clocks(clock: &Arc<Clock>) -> WasiClocks {
    WasiClocks::new()
        .with_system(SystemClock(clock.clone()))
        .with_monotonic(MonotonicClock(clock.clone()))
}

pub(crate) fn random(determinism: Determinism) -> Box<dyn cap_rand::RngCore + Send + Sync> {
    match determinism {
        Determinism::Seeded { seed } => Box::new(cap_rand::rngs::StdRng::seed_from_u64(seed)),
        Determinism::Host => Box::new(
            cap_rand::rngs::StdRng::from_rng(cap_rand::thread_rng(cap_rand::ambient_authority()))
                .expect("the host's thread RNG does not fail"),
        ),
    }
}

/// Sleeping and polling: the guest has no sockets and all its files are in memory, so every
/// file is always ready and only clock subscriptions need handling.
pub(crate) struct Sched {
    pub(crate) clock: Arc<Clock>,
    pub(crate) max_sleep: Duration,
}

#[async_trait::async_trait]
impl WasiSched for Sched {
    async fn poll_oneoff<'a>(&self, poll: &mut Poll<'a>) -> Result<(), Error> {
        if poll.is_empty() {
            return Ok(());
        }
        let mut any_ready = false;
        for sub in poll.rw_subscriptions() {
            use wasi_common::sched::subscription::{RwEventFlags, Subscription};
            match sub {
                Subscription::Read(r) | Subscription::Write(r) => {
                    let ready = r.file.num_ready_bytes().unwrap_or(0);
                    r.complete(ready, RwEventFlags::empty());
                    any_ready = true;
                }
                Subscription::MonotonicClock(_) => {}
            }
        }
        if !any_ready {
            if let Some(clock) = poll.earliest_clock_deadline() {
                // The subscription completes itself once the clock has passed its deadline.
                if let Some(wait) = clock.duration_until() {
                    self.clock.sleep(wait, self.max_sleep);
                }
            }
        }
        Ok(())
    }

    async fn sched_yield(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn sleep(&self, duration: Duration) -> Result<(), Error> {
        self.clock.sleep(duration, self.max_sleep);
        Ok(())
    }
}

/// Raised as a trap when a run's combined stdout and stderr exceed their cap.
#[derive(Debug, thiserror::Error)]
#[error("the run exceeded its output limit")]
pub struct OutputLimitExceeded;

/// Captured stdout and stderr with one shared byte budget.
pub(crate) struct Output {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    remaining: u64,
    cap: u64,
}

impl Output {
    pub(crate) fn new(cap: u64) -> Arc<Mutex<Output>> {
        Arc::new(Mutex::new(Output {
            stdout: Vec::new(),
            stderr: Vec::new(),
            remaining: cap,
            cap,
        }))
    }
}

/// The marker appended to a stream cut at the output limit.
pub(crate) fn truncation_marker(cap: u64) -> String {
    format!("\n[spar: output truncated: stdout and stderr together exceeded {cap} bytes]\n")
}

/// stdout or stderr of a run.
pub(crate) struct OutputPipe {
    pub(crate) output: Arc<Mutex<Output>>,
    pub(crate) is_stderr: bool,
}

#[async_trait::async_trait]
impl WasiFile for OutputPipe {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn get_filetype(&self) -> Result<FileType, Error> {
        Ok(FileType::Pipe)
    }

    async fn write_vectored<'a>(&self, bufs: &[IoSlice<'a>]) -> Result<u64, Error> {
        let mut out = self.output.lock().unwrap_or_else(|e| e.into_inner());
        let Output {
            stdout,
            stderr,
            remaining,
            cap,
        } = &mut *out;
        let stream = if self.is_stderr { stderr } else { stdout };
        let mut written = 0u64;
        for buf in bufs {
            let take = (buf.len() as u64).min(*remaining) as usize;
            stream.extend_from_slice(&buf[..take]);
            *remaining -= take as u64;
            written += take as u64;
            if take < buf.len() {
                stream.extend_from_slice(truncation_marker(*cap).as_bytes());
                return Err(Error::trap(OutputLimitExceeded.into()));
            }
        }
        Ok(written)
    }

    async fn writable(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// A guest's stdin: fixed bytes given by the caller.
pub(crate) struct InputPipe {
    data: Vec<u8>,
    pos: Mutex<usize>,
}

impl InputPipe {
    pub(crate) fn new(data: Vec<u8>) -> Self {
        InputPipe {
            data,
            pos: Mutex::new(0),
        }
    }
}

#[async_trait::async_trait]
impl WasiFile for InputPipe {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn get_filetype(&self) -> Result<FileType, Error> {
        Ok(FileType::Pipe)
    }

    async fn read_vectored<'a>(&self, bufs: &mut [std::io::IoSliceMut<'a>]) -> Result<u64, Error> {
        let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = 0;
        for buf in bufs {
            let n = buf.len().min(self.data.len() - *pos);
            buf[..n].copy_from_slice(&self.data[*pos..*pos + n]);
            *pos += n;
            total += n;
        }
        Ok(total as u64)
    }

    fn num_ready_bytes(&self) -> Result<u64, Error> {
        let pos = *self.pos.lock().unwrap_or_else(|e| e.into_inner());
        Ok((self.data.len() - pos) as u64)
    }

    async fn readable(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn seek(&self, _pos: std::io::SeekFrom) -> Result<u64, Error> {
        Err(Error::seek_pipe())
    }
}
