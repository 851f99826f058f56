//! `spar bench`: the numbers the sandbox is judged by, each measured against a baseline taken
//! in the same run: per-run overhead with a trivial guest, runs per second on one core vs all
//! cores, and one test suite sandboxed vs under the host's native `python3`.

use crate::guest::{GuestError, Python, PythonRun, RuntimeSettings};
use crate::sandbox::{Determinism, Limits, RunRequest, Sandbox, SandboxError, SandboxSettings};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::testrun::{Runner, TestCommand, TestStatus};
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
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
    /// Median.
    pub median_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i].as_secs_f64() * 1e6
        };
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
    /// Median wall time in the sandbox, ms.
    pub sandbox_median_ms: f64,
    /// Median wall time natively, ms.
    pub native_median_ms: f64,
    /// `sandbox / native`.
    pub ratio: f64,
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
    /// Test suite, sandboxed vs native.
    pub suite: SuiteTimes,
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

    let trivial_sandbox = Sandbox::from_bytes(
        TRIVIAL_GUEST.as_bytes(),
        &SandboxSettings::new(runtime.cache_dir.clone()),
    )?;
    let trivial_run = || {
        let request = RunRequest {
            argv: vec!["trivial".into()],
            env: Vec::new(),
            mounts: Vec::new(),
            stdin: Vec::new(),
            limits: Limits::default(),
            determinism: Determinism::default(),
        };
        let started = Instant::now();
        let result = trivial_sandbox.run(request)?;
        if result.exit_code != Some(0) {
            return Err(BenchError::GuestFailed(
                "the trivial guest".into(),
                result.outcome.as_str().into(),
            ));
        }
        Ok(started.elapsed())
    };
    for _ in 0..50 {
        trivial_run()?;
    }
    let samples = (0..settings.trivial_runs)
        .map(|_| trivial_run())
        .collect::<Result<Vec<_>, _>>()?;
    let trivial = Latency::of(samples);
    let trivial_throughput = throughput(cores, settings.trivial_runs, &trivial_run)?;

    let python = Python::new(runtime)?;
    let empty = Snapshot::empty();
    let pass = ["-c".to_owned(), "pass".to_owned()];
    let python_run = || {
        let started = Instant::now();
        let result = python.run(&empty, &pass, &PythonRun::default())?;
        if result.exit_code != Some(0) {
            return Err(BenchError::GuestFailed(
                "python -c pass".into(),
                result.outcome.as_str().into(),
            ));
        }
        Ok(started.elapsed())
    };
    python_run()?;
    let python_runs = 30;
    let samples = (0..python_runs)
        .map(|_| python_run())
        .collect::<Result<Vec<_>, _>>()?;
    let python_startup = Latency::of(samples);
    let mut python_throughput = throughput(cores, python_runs, &python_run)?;
    if let Some(exe) = &settings.spar_exe {
        python_throughput.all_processes_per_sec =
            Some(process_throughput(exe, runtime, cores, python_runs)?);
    }

    let mut suite = suite_times(&python, settings)?;
    if python.image().is_some() {
        // The same suite with every run starting the interpreter from scratch.
        let plain = Python::new(&RuntimeSettings {
            snapshots: false,
            ..runtime.clone()
        })?;
        let (samples, _) = sandboxed_samples(&plain, settings)?;
        suite.plain_start_median_ms = Some(median_ms(samples));
    }
    Ok(BenchReport {
        cores,
        trivial,
        trivial_throughput,
        python_startup,
        python_throughput,
        suite,
    })
}

/// Runs `runs` jobs on one thread, then `runs` jobs spread over every core.
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

/// Runs `runs` `python -c pass` runs in each of `cores` worker processes at once.
fn process_throughput(
    exe: &std::path::Path,
    runtime: &RuntimeSettings,
    cores: usize,
    runs: usize,
) -> Result<f64, BenchError> {
    let worker_error =
        |detail: String| BenchError::GuestFailed("a bench worker process".into(), detail);
    let started = Instant::now();
    let children = (0..cores)
        .map(|_| {
            Command::new(exe)
                .arg("--cache-dir")
                .arg(&runtime.cache_dir)
                .args(["--quiet", "bench-worker", "--runs", &runs.to_string()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| worker_error(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        let status = child.wait().map_err(|e| worker_error(e.to_string()))?;
        if !status.success() {
            return Err(worker_error(format!("exit status {status}")));
        }
    }
    Ok((runs * cores) as f64 / started.elapsed().as_secs_f64())
}

/// The body of a worker process for [`process_throughput`]: `runs` sequential `python -c pass`.
pub fn worker(runtime: &RuntimeSettings, runs: usize) -> Result<(), BenchError> {
    let python = Python::new(runtime)?;
    let pass = ["-c".to_owned(), "pass".to_owned()];
    for _ in 0..runs {
        let result = python.run(&Snapshot::empty(), &pass, &PythonRun::default())?;
        if result.exit_code != Some(0) {
            return Err(BenchError::GuestFailed(
                "python -c pass".into(),
                result.outcome.as_str().into(),
            ));
        }
    }
    Ok(())
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

/// The suite's sandboxed wall times (after one warm-up run) and its number of tests.
fn sandboxed_samples(
    python: &Python,
    settings: &BenchSettings,
) -> Result<(Vec<Duration>, usize), BenchError> {
    let (repo, _) = Snapshot::from_dir(&settings.suite)?;
    let command = TestCommand::for_repo(&repo, Some(Runner::Pytest), &[]);
    let name = settings.suite.display().to_string();
    let sandboxed = || {
        let started = Instant::now();
        let report = crate::testrun::run_tests(python, &repo, &command, &PythonRun::default())?;
        if !report.all_passed() {
            return Err(BenchError::GuestFailed(
                name.clone(),
                format!("{} failed, {} errors", report.failed, report.errors),
            ));
        }
        Ok((started.elapsed(), report.tests.len()))
    };
    let (_, tests) = sandboxed()?;
    let samples = (0..settings.suite_runs)
        .map(|_| sandboxed().map(|(d, _)| d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((samples, tests))
}

fn suite_times(python: &Python, settings: &BenchSettings) -> Result<SuiteTimes, BenchError> {
    let (repo, _) = Snapshot::from_dir(&settings.suite)?;
    let command = TestCommand::for_repo(&repo, Some(Runner::Pytest), &[]);
    let name = settings.suite.display().to_string();
    let (sandbox_samples, tests) = sandboxed_samples(python, settings)?;

    // The native baseline runs the same pytest (the wheels spar unpacked) over the same
    // files; its bytecode goes to a private prefix so neither the repo nor the cache change.
    let scratch = std::env::temp_dir().join(format!("spar-bench-{}", std::process::id()));
    let native_error = |detail: String| BenchError::Native {
        python: settings.host_python.clone(),
        detail,
    };
    let native = || {
        let run = crate::testrun::run_tests_native(
            &settings.host_python,
            &settings.suite,
            &command,
            &[python.site_dir().to_owned()],
            &scratch,
        )
        .map_err(|e| native_error(e.to_string()))?;
        let failing = run
            .tests
            .values()
            .filter(|s| matches!(s, TestStatus::Failed | TestStatus::Error))
            .count();
        if run.tests.is_empty() || failing > 0 {
            return Err(native_error(format!(
                "{} tests, {failing} failing",
                run.tests.len()
            )));
        }
        Ok(run.duration)
    };
    native()?;
    let native_samples = (0..settings.suite_runs)
        .map(|_| native())
        .collect::<Result<Vec<_>, _>>();
    let native_version = Command::new(&settings.host_python)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&scratch);
    let native_samples = native_samples?;

    let sandbox_median_ms = median_ms(sandbox_samples);
    let native_median_ms = median_ms(native_samples);
    Ok(SuiteTimes {
        suite: name,
        tests,
        sandbox_median_ms,
        native_median_ms,
        ratio: sandbox_median_ms / native_median_ms,
        native_python: native_version,
        guest_python: python.interpreter_version().to_owned(),
        plain_start_median_ms: None,
    })
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
        let s = &self.suite;
        writeln!(
            f,
            "\ntest suite {} ({} tests), median of runs:\n  sandboxed (CPython {} wasm) {:>8.1} ms\n  native ({}) {:>8.1} ms\n  ratio sandboxed/native        {:>8.2}x",
            s.suite, s.tests, s.guest_python, s.sandbox_median_ms, s.native_python, s.native_median_ms, s.ratio
        )?;
        if let Some(plain) = s.plain_start_median_ms {
            writeln!(
                f,
                "\n  sandboxed, every run from scratch {plain:>8.1} ms (the image saves {:.0}%)",
                100.0 * (1.0 - s.sandbox_median_ms / plain)
            )?;
        }
        Ok(())
    }
}
