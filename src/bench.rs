//! `spar bench`: the numbers the sandbox is judged by, each measured against a baseline taken
//! in the same run: per-run overhead with a trivial guest, runs per second on one core vs all
//! cores, and one test suite sandboxed vs under the host's native `python3`.

use crate::guest::{GuestError, Python, PythonRun, RuntimeSettings};
use crate::native::NativeEnv;
use crate::sandbox::{
    Determinism, Limits, RunRequest, RunResult, Sandbox, SandboxError, SandboxSettings,
};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::testrun::{Runner, TestCommand, TestReport, TestStatus};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A WASI command that exits at once: what a run costs when the guest does nothing.
const TRIVIAL_GUEST: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 0))))"#;

/// Failures that stop the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The guest runtime failed.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// The suite could not be read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A sandboxed run did not complete, so timing it would mislead.
    #[error("{0} did not complete in the sandbox ({1}); fix it before benchmarking")]
    GuestFailed(String, String),
    /// The native baseline could not run.
    #[error("the native baseline `{python} -m pytest` failed: {detail}")]
    Native {
        /// The host Python.
        python: String,
        /// What went wrong.
        detail: String,
    },
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchSettings {
    /// Sequential runs of the trivial guest.
    pub trivial_runs: usize,
    /// Runs of the suite, sandboxed and native each (after one warm-up each).
    pub suite_runs: usize,
    /// The repository whose suite is timed.
    pub suite: PathBuf,
    /// The host Python for the native baseline.
    pub host_python: String,
    /// The `spar` executable, to measure worker processes against threads; `None` skips it.
    pub spar_exe: Option<PathBuf>,
}

/// Median and 99th percentile of a latency sample, in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Number of samples.
    pub runs: usize,
    /// Median latency, microseconds (the middle sample; no interpolation).
    pub median_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
}

impl Latency {
    fn of(samples: Vec<Duration>) -> Latency {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let at = |q: f64| crate::rollout::percentile(&us, q);
        Latency {
            runs: samples.len(),
            median_us: at(0.5),
            p99_us: at(0.99),
        }
    }
}

/// Runs per second on one thread and on every core.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Threads used for the parallel measurement.
    pub threads: usize,
    /// Runs per second with one thread.
    pub one_thread_per_sec: f64,
    /// Runs per second with `threads` threads.
    pub all_threads_per_sec: f64,
    /// `all_threads_per_sec / one_thread_per_sec`.
    pub scaling: f64,
    /// Runs per second with one worker process per core (each with its own engine), when
    /// measured: the alternative to threads sharing one engine.
    pub all_processes_per_sec: Option<f64>,
}

/// The suite comparison.
#[derive(Clone, Debug, Serialize)]
pub struct SuiteTimes {
    /// The suite's directory.
    pub suite: String,
    /// Tests in the suite.
    pub tests: usize,
    /// Median wall time of one run in the sandbox, in this process, ms.
    pub sandbox_median_ms: f64,
    /// Those runs' start-up before the guest's code: for a run that reused an instance, writing
    /// back every page the suite's run before it wrote.
    pub startup: Latency,
    /// How many of those runs reused an instance.
    pub warm_runs: usize,
    /// The median 4 KiB pages those that reused one wrote back first; `None` if none did.
    pub written_back_pages: Option<usize>,
    /// Median wall time natively (a virtual environment's interpreter, whole process), ms.
    pub native_median_ms: f64,
    /// `sandbox / native`.
    pub ratio: f64,
    /// Median wall time of `spar test SUITE` as a whole process, ms, when measured.
    pub process_median_ms: Option<f64>,
    /// `process / native`: both sides whole processes.
    pub process_ratio: Option<f64>,
    /// The native interpreter's version.
    pub native_python: String,
    /// The guest interpreter's version.
    pub guest_python: String,
    /// For a guest whose runs resume from an image: the same suite's median with every run
    /// starting the interpreter from scratch, ms.
    pub plain_start_median_ms: Option<f64>,
}

/// Everything `spar bench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Cores available.
    pub cores: usize,
    /// Per-run overhead with the trivial guest.
    pub trivial: Latency,
    /// Trivial-guest throughput.
    pub trivial_throughput: Throughput,
    /// `python -c pass` latency.
    pub python_startup: Latency,
    /// `python -c pass` throughput.
    pub python_throughput: Throughput,
    /// Where a guest run's time goes before the test suite's own work.
    pub parts: RunParts,
    /// Test suite, sandboxed vs native.
    pub suite: SuiteTimes,
}

/// The fixed costs of a guest run.
#[derive(Clone, Debug, Serialize)]
pub struct RunParts {
    /// Time before the guest's own code runs (`python -c pass`): the store, the instance and,
    /// for a guest with an image, writing the image into its memory.
    pub startup: Latency,
    /// How many of those runs reused the instance of an earlier run (its written pages
    /// written back) instead of a new instance with the whole image copied in.
    pub warm_runs: usize,
    /// The median 4 KiB pages those runs wrote back first; `None` if none reused an instance.
    pub written_back_pages: Option<usize>,
    /// The same start-up with a new instance for every run, for a guest with an image.
    pub fresh_instance_startup: Option<Latency>,
    /// What `import pytest` adds to a run's wall time over `python -c pass`, median ms.
    pub import_pytest_ms: f64,
    /// The same with the interpreter started from scratch, for a guest with an image.
    pub plain_import_pytest_ms: Option<f64>,
}

/// Runs all measurements, on a thread as deep as spar's workers, so that runs execute on it as
/// they do in self-play and serve.
pub fn run(runtime: &RuntimeSettings, settings: &BenchSettings) -> Result<BenchReport, BenchError> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(crate::sandbox::RUN_THREAD_STACK)
            .spawn_scoped(scope, || measure(runtime, settings))
            .expect("spawning the benchmark thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn measure(runtime: &RuntimeSettings, settings: &BenchSettings) -> Result<BenchReport, BenchError> {
    let cores = crate::par::cores();
    let (trivial, trivial_throughput) = trivial_guest(runtime, settings, cores)?;
    let python = Python::new(runtime)?;
    let (python_startup, python_throughput) = python_pass(&python, runtime, settings, cores)?;
    let mut suite = suite_times(&python, runtime, settings)?;
    // The same guest with one setting changed, to compare, where it has an image at all.
    let variant = |change: fn(&mut RuntimeSettings)| -> Result<Option<Python>, BenchError> {
        if python.image().is_none() {
            return Ok(None);
        }
        let mut settings = runtime.clone();
        change(&mut settings);
        Ok(Some(Python::new(&settings)?))
    };
    // The same runs with the interpreter started from scratch every time.
    let plain = variant(|s| s.snapshots = false)?;
    if let Some(plain) = &plain {
        let samples = sandboxed_samples(plain, settings)?;
        suite.plain_start_median_ms = Some(median_ms(samples.wall));
    }
    // The same runs with a new instance every time instead of a reused one.
    let fresh = variant(|s| s.reuse_instances = false)?;
    let parts = run_parts(&python, plain.as_ref(), fresh.as_ref())?;
    Ok(BenchReport {
        cores,
        trivial,
        trivial_throughput,
        python_startup,
        python_throughput,
        parts,
        suite,
    })
}

/// The sandbox's own cost: a trivial guest's latency (after 50 warm-up runs) and throughput.
fn trivial_guest(
    runtime: &RuntimeSettings,
    settings: &BenchSettings,
    cores: usize,
) -> Result<(Latency, Throughput), BenchError> {
    let sandbox = Sandbox::from_bytes(
        TRIVIAL_GUEST.as_bytes(),
        &SandboxSettings::new(runtime.cache_dir.clone()),
    )?;
    let run = || {
        let request = RunRequest {
            argv: vec!["trivial".into()],
            env: Vec::new(),
            mounts: Vec::new(),
            stdin: Vec::new(),
            limits: Limits::default(),
            determinism: Determinism::default(),
        };
        let started = Instant::now();
        let result = sandbox.run(request)?;
        if result.exit_code != Some(0) {
            let outcome = result.outcome.as_str().into();
            return Err(BenchError::GuestFailed("the trivial guest".into(), outcome));
        }
        Ok(started.elapsed())
    };
    for _ in 0..50 {
        run()?;
    }
    let samples = (0..settings.trivial_runs)
        .map(|_| run())
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        Latency::of(samples),
        throughput(cores, settings.trivial_runs, &run)?,
    ))
}

/// `python -c pass`: latency over 30 runs, and throughput in threads and (with the spar
/// executable) in processes.
fn python_pass(
    python: &Python,
    runtime: &RuntimeSettings,
    settings: &BenchSettings,
    cores: usize,
) -> Result<(Latency, Throughput), BenchError> {
    let pass = ["-c".to_owned(), "pass".to_owned()];
    let run = || {
        let started = Instant::now();
        guest_run(python, &pass, "python -c pass")?;
        Ok(started.elapsed())
    };
    run()?;
    let runs = 30;
    let samples = (0..runs).map(|_| run()).collect::<Result<Vec<_>, _>>()?;
    // Longer than the latency sample: a few dozen runs on a shared machine swing by 50%.
    let runs_per_thread = 100;
    let mut all = throughput(cores, runs_per_thread, &run)?;
    if let Some(exe) = &settings.spar_exe {
        all.all_processes_per_sec = Some(process_throughput(exe, runtime, cores, runs_per_thread)?);
    }
    Ok((Latency::of(samples), all))
}

/// What a guest run spends before its own code, and what `import pytest` adds to a run's
/// wall time over `-c pass`, medians of 30 runs. (The guest's own clock cannot time it: it is
/// deterministic, a function of the run's seed and its calls, not of the host's time.)
fn run_parts(
    python: &Python,
    plain: Option<&Python>,
    fresh: Option<&Python>,
) -> Result<RunParts, BenchError> {
    let runs = 30;
    let samples = |python: &Python, code: &str| -> Result<Vec<RunResult>, BenchError> {
        let args = ["-c".to_owned(), code.to_owned()];
        (0..runs).map(|_| guest_run(python, &args, code)).collect()
    };
    let median_ms = |results: &[RunResult]| {
        median(
            results
                .iter()
                .map(|r| r.duration.as_secs_f64() * 1e3)
                .collect(),
        )
    };
    let import_ms = |python: &Python, pass: &[RunResult]| -> Result<f64, BenchError> {
        let import = samples(python, "import pytest")?;
        Ok((median_ms(&import) - median_ms(pass)).max(0.0))
    };
    let pass = samples(python, "pass")?;
    let plain_import_pytest_ms = match plain {
        Some(plain) => Some(import_ms(plain, &samples(plain, "pass")?)?),
        None => None,
    };
    let startup = |runs: &[RunResult]| Latency::of(runs.iter().map(|r| r.startup).collect());
    let fresh_instance_startup = match fresh {
        Some(fresh) => Some(startup(&samples(fresh, "pass")?)),
        None => None,
    };
    Ok(RunParts {
        startup: startup(&pass),
        warm_runs: pass.iter().filter(|r| r.warm).count(),
        written_back_pages: median_written_back_pages(&pass),
        fresh_instance_startup,
        import_pytest_ms: import_ms(python, &pass)?,
        plain_import_pytest_ms,
    })
}

/// The unit the bench reports [`RunResult::written_back`] (bytes) in: the kernel notes writes
/// per page, and the development machine's pages are 4 KiB.
const PAGE: usize = 4096;

/// ", WHAT: median N pages" for a report line, or nothing when no run reused an instance.
fn written_back(pages: Option<usize>, what: &str) -> String {
    pages.map_or_else(String::new, |n| format!(", {what}: median {n} pages"))
}

/// The median 4 KiB pages written back before those of `runs` that reused an instance.
fn median_written_back_pages(runs: &[RunResult]) -> Option<usize> {
    let warm = runs.iter().filter(|r| r.warm);
    middle(warm.map(|r| r.written_back / PAGE).collect())
}

/// The median of `samples` (the upper one of an even count); `None` for none.
fn middle<T: Ord + Copy>(mut samples: Vec<T>) -> Option<T> {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied()
}

/// One run over an empty repository that must exit 0.
fn guest_run(
    python: &Python,
    args: &[String],
    what: &str,
) -> Result<crate::sandbox::RunResult, BenchError> {
    let result = python.run(&Snapshot::empty(), args, &PythonRun::default())?;
    if result.exit_code != Some(0) {
        return Err(BenchError::GuestFailed(
            what.into(),
            result.outcome.as_str().into(),
        ));
    }
    Ok(result)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Runs `runs` jobs on one thread, then `runs` jobs on each core at once, after two untimed
/// jobs per core: a run in a pool slot no run has used costs several times a warm one (the
/// slot's memory is faulted in). Timed cold over 30 runs a thread, `-c pass` on 2 threads
/// measured 1.1x to 1.6x of one thread from one bench to the next; warm over 100, 1.9-2.0x.
fn throughput(
    cores: usize,
    runs: usize,
    job: &(dyn Fn() -> Result<Duration, BenchError> + Sync),
) -> Result<Throughput, BenchError> {
    let started = Instant::now();
    for _ in 0..runs {
        job()?;
    }
    let one = runs as f64 / started.elapsed().as_secs_f64();
    let warm: Vec<usize> = (0..cores * 2).collect();
    crate::par::map(&warm, cores, |_| job())
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let jobs: Vec<usize> = (0..runs * cores).collect();
    crate::par::map(&jobs, cores, |_| job())
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let all = jobs.len() as f64 / started.elapsed().as_secs_f64();
    Ok(Throughput {
        threads: cores,
        one_thread_per_sec: one,
        all_threads_per_sec: all,
        scaling: all / one,
        all_processes_per_sec: None,
    })
}

/// Runs `runs` `python -c pass` runs in each of `cores` worker processes at once, timed from
/// when every worker has loaded the guest and made its warm-up runs (as [`throughput`] warms
/// its threads) to when the last one is done: process start-up is the same for any number of
/// runs, and at a millisecond a run it would be most of what was timed.
fn process_throughput(
    exe: &Path,
    runtime: &RuntimeSettings,
    cores: usize,
    runs: usize,
) -> Result<f64, BenchError> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let worker_error =
        |detail: String| BenchError::GuestFailed("a bench worker process".into(), detail);
    let mut children = (0..cores)
        .map(|_| {
            spar_command(exe, runtime)
                .args(["bench-worker", "--runs", &runs.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| worker_error(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for child in &mut children {
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("piped");
        BufReader::new(stdout)
            .read_line(&mut ready)
            .map_err(|e| worker_error(e.to_string()))?;
        if ready.trim() != WORKER_READY {
            return Err(worker_error(
                "it stopped before its warm-up runs ended".into(),
            ));
        }
    }
    let started = Instant::now();
    for child in &mut children {
        // Closing its stdin is the signal to start.
        drop(child.stdin.take());
    }
    for mut child in children {
        let status = child.wait().map_err(|e| worker_error(e.to_string()))?;
        if !status.success() {
            return Err(worker_error(format!("exit status {status}")));
        }
    }
    Ok((runs * cores) as f64 / started.elapsed().as_secs_f64())
}

/// What a bench worker prints once warm, before it waits for the signal to start.
const WORKER_READY: &str = "ready";

/// `spar` with the same cache, guest runtime and image setting as this process, quiet.
fn spar_command(exe: &Path, runtime: &RuntimeSettings) -> Command {
    let mut command = Command::new(exe);
    command.arg("--cache-dir").arg(&runtime.cache_dir).args([
        "--quiet",
        "--runtime",
        runtime.interpreter.name(),
    ]);
    if !runtime.snapshots {
        command.arg("--no-snapshot");
    }
    command
}

/// The body of a worker process for [`process_throughput`]: two warm-up runs, then
/// [`WORKER_READY`] on stdout, then, once stdin closes, `runs` sequential `python -c pass`.
pub fn worker(runtime: &RuntimeSettings, runs: usize) -> Result<(), BenchError> {
    use std::io::{Read, Write};
    let python = Python::new(runtime)?;
    let pass = ["-c".to_owned(), "pass".to_owned()];
    let run = || guest_run(&python, &pass, "python -c pass").map(drop);
    run()?;
    run()?;
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{WORKER_READY}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // The parent went away: there is no one to measure for.
        return Ok(());
    }
    // Closed, or unreadable: either way, the signal to start.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    for _ in 0..runs {
        run()?;
    }
    Ok(())
}

fn median_ms(samples: Vec<Duration>) -> f64 {
    middle(samples).expect("at least one sample").as_secs_f64() * 1e3
}

/// The suite's sandboxed runs in this process, after one warm-up run.
struct SuiteSamples {
    /// Each run's wall time.
    wall: Vec<Duration>,
    /// Each run's start-up before the guest's code.
    startup: Vec<Duration>,
    /// For each run that reused the instance of the run before, the 4 KiB pages written back
    /// first.
    written_back_pages: Vec<usize>,
    /// Tests in the suite.
    tests: usize,
}

fn sandboxed_samples(
    python: &Python,
    settings: &BenchSettings,
) -> Result<SuiteSamples, BenchError> {
    let (repo, _) = Snapshot::from_dir(&settings.suite)?;
    let command = TestCommand::for_repo(&repo, Some(Runner::Pytest), &[]);
    let name = settings.suite.display().to_string();
    let sandboxed = || {
        let started = Instant::now();
        let suite = crate::testrun::run_suite(python, &repo, &command, &PythonRun::default())?;
        let result = &suite.result;
        let (startup, warm, written_back) = (result.startup, result.warm, result.written_back);
        let report = TestReport::from_suite(suite);
        if !report.all_passed() {
            return Err(BenchError::GuestFailed(
                name.clone(),
                format!("{} failed, {} errors", report.failed, report.errors),
            ));
        }
        let run = (started.elapsed(), startup, warm, written_back);
        Ok((run, report.tests.len()))
    };
    let (_, tests) = sandboxed()?;
    let mut samples = SuiteSamples {
        wall: Vec::new(),
        startup: Vec::new(),
        written_back_pages: Vec::new(),
        tests,
    };
    for _ in 0..settings.suite_runs {
        let ((wall, startup, warm, written_back), _) = sandboxed()?;
        samples.wall.push(wall);
        samples.startup.push(startup);
        if warm {
            samples.written_back_pages.push(written_back / PAGE);
        }
    }
    Ok(samples)
}

fn suite_times(
    python: &Python,
    runtime: &RuntimeSettings,
    settings: &BenchSettings,
) -> Result<SuiteTimes, BenchError> {
    let (repo, _) = Snapshot::from_dir(&settings.suite)?;
    let samples = sandboxed_samples(python, settings)?;
    let native_error = |detail: String| BenchError::Native {
        python: settings.host_python.clone(),
        detail,
    };
    let env = NativeEnv::prepare(
        &settings.host_python,
        python.cache_dir(),
        &python.site_wheels()?,
    )
    .map_err(|e| native_error(e.to_string()))?;
    let scratch = std::env::temp_dir().join(format!("spar-bench-{}", std::process::id()));
    let native = native_samples(&env, &repo, &scratch, settings);
    let _ = std::fs::remove_dir_all(&scratch);
    let native_samples = native.map_err(native_error)?;
    let native_version = Command::new(env.python())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let process_median_ms = match &settings.spar_exe {
        Some(exe) => Some(median_ms(process_samples(exe, runtime, settings)?)),
        None => None,
    };
    let sandbox_median_ms = median_ms(samples.wall);
    let native_median_ms = median_ms(native_samples);
    Ok(SuiteTimes {
        suite: settings.suite.display().to_string(),
        tests: samples.tests,
        sandbox_median_ms,
        startup: Latency::of(samples.startup),
        warm_runs: samples.written_back_pages.len(),
        written_back_pages: middle(samples.written_back_pages),
        native_median_ms,
        ratio: sandbox_median_ms / native_median_ms,
        process_median_ms,
        process_ratio: process_median_ms.map(|p| p / native_median_ms),
        native_python: native_version,
        guest_python: python.interpreter_version().to_owned(),
        plain_start_median_ms: None,
    })
}

/// The suite natively, as a user runs it: the virtual environment's interpreter on a copy of
/// the suite, whole processes, after one warm-up run that caches the bytecode.
fn native_samples(
    env: &NativeEnv,
    repo: &Snapshot,
    scratch: &Path,
    settings: &BenchSettings,
) -> Result<Vec<Duration>, String> {
    let copy = scratch.join("repo");
    crate::corpus::store::write_tree(&copy, repo).map_err(|e| e.to_string())?;
    let command = TestCommand::for_repo(repo, Some(Runner::Pytest), &[]);
    let native = || {
        let run = crate::testrun::run_tests_native(env.python(), &copy, &command, &[], scratch)
            .map_err(|e| e.to_string())?;
        let failing = run
            .tests
            .values()
            .filter(|s| matches!(s, TestStatus::Failed | TestStatus::Error))
            .count();
        if run.tests.is_empty() || failing > 0 {
            return Err(format!("{} tests, {failing} failing", run.tests.len()));
        }
        Ok(run.duration)
    };
    native()?;
    (0..settings.suite_runs).map(|_| native()).collect()
}

/// `spar test SUITE` as whole processes (loading the compiled guest and its image included),
/// after one warm-up run.
fn process_samples(
    exe: &Path,
    runtime: &RuntimeSettings,
    settings: &BenchSettings,
) -> Result<Vec<Duration>, BenchError> {
    let run = || {
        let started = Instant::now();
        let output = spar_command(exe, runtime)
            .arg("test")
            .arg(&settings.suite)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| BenchError::GuestFailed("`spar test`".into(), e.to_string()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(BenchError::GuestFailed(
                format!("`spar test {}`", settings.suite.display()),
                stderr.lines().last().unwrap_or_default().to_owned(),
            ));
        }
        Ok(started.elapsed())
    };
    run()?;
    (0..settings.suite_runs).map(|_| run()).collect()
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "spar bench ({} cores)\n", self.cores)?;
        let latency = |f: &mut fmt::Formatter<'_>, what: &str, l: &Latency| {
            writeln!(
                f,
                "{what:<34} median {:>9.1} us   p99 {:>9.1} us   ({} runs)",
                l.median_us, l.p99_us, l.runs
            )
        };
        let rate = |f: &mut fmt::Formatter<'_>, what: &str, t: &Throughput| {
            writeln!(
                f,
                "{what:<34} {:>9.1} runs/s on 1 thread, {:>9.1} runs/s on {} threads ({:.2}x)",
                t.one_thread_per_sec, t.all_threads_per_sec, t.threads, t.scaling
            )?;
            if let Some(p) = t.all_processes_per_sec {
                writeln!(
                    f,
                    "{:<34} {:>9.1} runs/s on {} worker processes ({:.2}x one thread)",
                    "",
                    p,
                    t.threads,
                    p / t.one_thread_per_sec
                )?;
            }
            Ok(())
        };
        latency(f, "trivial guest, per run", &self.trivial)?;
        rate(f, "trivial guest, throughput", &self.trivial_throughput)?;
        latency(f, "python -c pass, per run", &self.python_startup)?;
        rate(f, "python -c pass, throughput", &self.python_throughput)?;
        let p = &self.parts;
        latency(f, "start-up before the guest's code", &p.startup)?;
        writeln!(
            f,
            "{:<34} {} of those runs reused an instance{}",
            "",
            p.warm_runs,
            written_back(
                p.written_back_pages,
                "the pages the last run wrote written back"
            )
        )?;
        if let Some(fresh) = &p.fresh_instance_startup {
            latency(f, "  the same, a new instance each", fresh)?;
        }
        write!(
            f,
            "{:<34} median {:>9.1} ms",
            "import pytest inside a run", p.import_pytest_ms
        )?;
        match p.plain_import_pytest_ms {
            Some(plain) => writeln!(f, "   (every run from scratch: {plain:.1} ms)")?,
            None => writeln!(f)?,
        }
        let s = &self.suite;
        writeln!(
            f,
            "\ntest suite {} ({} tests), median of runs:\n  native ({}, a virtual environment, whole process) {:>8.1} ms",
            s.suite, s.tests, s.native_python, s.native_median_ms
        )?;
        if let (Some(ms), Some(ratio)) = (s.process_median_ms, s.process_ratio) {
            writeln!(
                f,
                "  sandboxed (CPython {} wasm), `spar test` whole process {ms:>8.1} ms   {ratio:.2}x native",
                s.guest_python
            )?;
        }
        writeln!(
            f,
            "  sandboxed, one run inside a live process {:>8.1} ms   {:.2}x native",
            s.sandbox_median_ms, s.ratio
        )?;
        writeln!(
            f,
            "    its start-up before the guest's code   median {:>6.2} ms  ({} of {} runs reused the instance of the run before{})",
            s.startup.median_us / 1e3,
            s.warm_runs,
            s.startup.runs,
            written_back(s.written_back_pages, "writing back")
        )?;
        if let Some(plain) = s.plain_start_median_ms {
            writeln!(
                f,
                "  sandboxed, every run from scratch {plain:>8.1} ms (the image saves {:.0}%)",
                100.0 * (1.0 - s.sandbox_median_ms / plain)
            )?;
        }
        Ok(())
    }
}
