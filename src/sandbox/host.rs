//! What the host gives a guest besides files: clocks, randomness, sleeping, stdin and capped
//! stdout/stderr. Everything is chosen per run, so a deterministic run sees the same time and
//! random bytes every time.

use rand::{RngCore, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

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
    host_after: Duration,
}

impl Clock {
    /// A run's clock, reading `after` at the start: zero for a fresh run, and for a run resumed
    /// from an image the reading at capture, so that time never goes backwards for the guest.
    pub(crate) fn new(determinism: Determinism, after: Duration) -> Arc<Clock> {
        let after_ns = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
        Arc::new(Clock {
            virtual_elapsed_ns: match determinism {
                Determinism::Seeded { .. } => Some(AtomicU64::new(after_ns)),
                Determinism::Host => None,
            },
            host_start: std::time::Instant::now(),
            host_after: after,
        })
    }

    /// Time since the run started, advancing the virtual clock by one tick.
    pub(crate) fn elapsed(&self) -> Duration {
        match &self.virtual_elapsed_ns {
            Some(ns) => Duration::from_nanos(
                ns.fetch_add(VIRTUAL_TICK.as_nanos() as u64, Ordering::Relaxed),
            ),
            None => self.host_after + self.host_start.elapsed(),
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
    pub(crate) fn sleep(&self, d: Duration, max: Duration) {
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

/// The guest's random bytes: ChaCha12 from the run's seed, or from the OS's entropy.
pub(crate) fn random(determinism: Determinism) -> Box<dyn RngCore + Send + Sync> {
    match determinism {
        Determinism::Seeded { seed } => Box::new(rand_chacha::ChaCha12Rng::seed_from_u64(seed)),
        Determinism::Host => Box::new(rand_chacha::ChaCha12Rng::from_os_rng()),
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

impl Output {
    /// Appends `bufs` to stdout or stderr within the shared budget. Past it, the stream gets
    /// the truncation marker and the run ends with [`OutputLimitExceeded`].
    pub(crate) fn write(
        &mut self,
        is_stderr: bool,
        bufs: &[&[u8]],
    ) -> Result<u64, OutputLimitExceeded> {
        let Output {
            stdout,
            stderr,
            remaining,
            cap,
        } = self;
        let stream = if is_stderr { stderr } else { stdout };
        let mut written = 0u64;
        for buf in bufs {
            let take = (buf.len() as u64).min(*remaining) as usize;
            stream.extend_from_slice(&buf[..take]);
            *remaining -= take as u64;
            written += take as u64;
            if take < buf.len() {
                stream.extend_from_slice(truncation_marker(*cap).as_bytes());
                return Err(OutputLimitExceeded);
            }
        }
        Ok(written)
    }
}

/// A guest's stdin: fixed bytes given by the caller.
pub(crate) struct Input {
    data: Vec<u8>,
    pos: usize,
}

impl Input {
    pub(crate) fn new(data: Vec<u8>) -> Self {
        Input { data, pos: 0 }
    }

    /// Reads into `buf`; 0 at the end.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        n
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> u64 {
        (self.data.len() - self.pos) as u64
    }
}
