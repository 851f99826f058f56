//! `spar train`: self-play training of the policy network in both roles from sandbox rewards.
//!
//! Each step, the policy (as injector) proposes a group of bugs in one training project; the
//! engine turns each into an artifact and validates it. The valid ones, plus bugs from earlier
//! steps, get G solver attempts each with the policy as solver. The protocol's rewards give
//! group-relative advantages (over a bug's G attempts, and over a step's proposals), and a
//! clipped policy-gradient loss with an entropy bonus trains the one network with AdamW.
//!
//! Sandbox work and gradient steps overlap: a trainer thread trains on step t's episodes
//! while the scheduler plays step t+1 with the weights from before step t. The lag is fixed
//! at one step (not "whatever finished first"), so a seed gives the same run every time; the
//! clipped ratio corrects for it. A resumed run plays its first step with the checkpoint's
//! weights (one step fresher than the uninterrupted run would have), and is deterministic
//! from there.

use crate::corpus::OpenProject;
use crate::episode::record::mean;
use crate::episode::rewards::{injector_reward, solve_rate};
use crate::episode::{episode_seed, EpisodeSpec};
use crate::episode::{EnvSettings, Task};
use crate::guest::Python;
use crate::inject::{coverage, write_artifact, InjectError, Injector};
use crate::policy::features::{injector_choice, Choice};
use crate::policy::model::{self, AdamW, Decision, LossSettings, LossStats, PolicyNet};
use crate::policy::{device, sample, solver_factory, DecisionSink, DeviceChoice};
use crate::protocol::Validator;
use crate::rollout::{runtime, Scheduler};
use crate::selfplay::SelfPlayError;
use crate::snapshot::{FileChange, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Errors that stop training (failing episodes are data, not errors).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Nothing to train on.
    #[error("no training projects (projects with split = train)")]
    NoProjects,
    /// The device cannot be used.
    #[error(transparent)]
    Device(#[from] crate::policy::DeviceError),
    /// A tensor operation failed.
    #[error("in the policy network")]
    Tensor(#[from] candle_core::Error),
    /// A baseline run failed as a harness error.
    #[error(transparent)]
    Validation(#[from] crate::protocol::validate::ValidationError),
    /// Preparing a project for injection failed.
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// The scheduler failed.
    #[error(transparent)]
    SelfPlay(#[from] crate::selfplay::SelfPlayError),
    /// Reading or writing the run directory failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--resume`'s directory has no readable settings of an earlier run.
    #[error("reading {path}")]
    NoConfig {
        /// The settings file it should hold.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A run's settings, its checkpoint state or its metrics could not be parsed.
    #[error("parsing {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        #[source]
        source: serde_json::Error,
    },
    /// The run stopped before its first checkpoint, so there is nothing to resume from.
    #[error("cannot resume {dir}: it has no checkpoint (the run stopped before its first one); delete the directory and start again")]
    NoCheckpoint {
        /// The run directory.
        dir: PathBuf,
        /// Why the checkpoint state could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A new run was pointed at a directory that already holds one.
    #[error("{dir} already holds a run")]
    RunExists {
        /// The run directory.
        dir: PathBuf,
    },
    /// No checkpoint where one was asked for.
    #[error("no checkpoint at {path}: give a run directory of a training run (with {CHECKPOINT}/{MODEL})")]
    NoPolicy {
        /// The path given.
        path: PathBuf,
    },
    /// A checkpoint of a network layout this spar cannot load (written by an older spar).
    #[error("{} holds a network of another layout (no {}): it was written by an older version of spar; train a new run", file.display(), missing.join(", "))]
    Layout {
        /// The weights file.
        file: PathBuf,
        /// Tensors this network needs that the file lacks.
        missing: Vec<String>,
    },
    /// A resumed run's bug pool names a project that is not among the run's projects.
    #[error(
        "the checkpoint's bugs come from project {project}, which is not among the run's projects"
    )]
    PoolProject {
        /// The project the pool names.
        project: String,
    },
    /// The trainer thread stopped.
    #[error("the trainer thread stopped: {0}")]
    Trainer(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Settings of a training run; saved as `config.json` in the run directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Training projects (split = train), by name.
    pub projects: Vec<String>,
    /// Steps to reach (a resumed run continues up to this many).
    pub steps: usize,
    /// Seed of the initial weights, the candidate samples and every episode.
    pub seed: u64,
    /// Where gradient steps run.
    pub device: DeviceChoice,
    /// Solver attempts per bug (G).
    pub attempts: usize,
    /// Bugs the injector proposes per step (its group).
    pub proposals: usize,
    /// The injector proposes every this many steps; in between, the solver trains on the
    /// bugs found so far (their runs are memoized, so those steps cost few sandbox runs).
    #[serde(default = "one")]
    pub inject_every: usize,
    /// Bugs the solver trains on per step: the step's valid proposals, topped up from
    /// earlier steps' bugs.
    pub bugs_per_step: usize,
    /// Candidates a solver attempt may try.
    pub max_tries: usize,
    /// Procedural bugs per training project that start the solver's bug pool, made with
    /// [`SEED_BUGS_SEED`] (the same for every training seed) before the injector's first
    /// proposal; the injector's valid proposals join them.
    #[serde(default)]
    pub seed_bugs: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// Entropy bonus.
    pub entropy: f64,
    /// Ratio clip.
    pub clip: f64,
    /// Gradient steps per batch of episodes.
    pub epochs: usize,
    /// The injector reward's alpha.
    pub alpha: f64,
    /// Sandbox runs at once.
    pub workers: usize,
    /// Save a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
}

/// The seed of the procedural bugs that start every run's pool: fixed, so that runs with
/// different seeds train on the same bugs and differ only in what the policy did.
pub const SEED_BUGS_SEED: u64 = 7;

/// Where a run keeps its starting bugs.
const SEED_BUGS: &str = "seed-bugs";

fn one() -> usize {
    1
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            projects: Vec::new(),
            steps: 20,
            seed: 0,
            device: DeviceChoice::Cpu,
            attempts: crate::episode::rewards::DEFAULT_ATTEMPTS,
            proposals: 2,
            inject_every: 1,
            bugs_per_step: 4,
            max_tries: 3,
            seed_bugs: 8,
            lr: 1e-2,
            entropy: 0.01,
            clip: 0.2,
            epochs: 4,
            alpha: crate::episode::rewards::DEFAULT_ALPHA,
            workers: crate::par::cores(),
            checkpoint_every: 5,
        }
    }
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepMetrics {
    /// 1-based step.
    pub step: usize,
    /// Seconds since the run (or the resume) started.
    pub wall_s: f64,
    /// Solver episodes played.
    pub episodes: usize,
    /// Their mean reward.
    pub solver_reward: f64,
    /// Fraction solved.
    pub solve_rate: f64,
    /// Mean injector reward (steps where the injector proposed).
    pub injector_reward: Option<f64>,
    /// Fraction of proposals that became valid artifacts.
    pub valid_rate: Option<f64>,
    /// Proposals made.
    pub proposals: usize,
    /// Bugs the solver trained on.
    pub bugs: usize,
    /// Bugs known so far (the pool).
    pub pool: usize,
    /// Mean entropy of solver decisions.
    pub entropy_solver: Option<f64>,
    /// Mean entropy of injector decisions.
    pub entropy_injector: Option<f64>,
    /// The loss (last epoch).
    pub loss: f64,
    /// Sandbox side: episodes per second of rollout wall time.
    pub episodes_per_s: f64,
    /// Trainer side: gradient steps per second of training time.
    pub grad_steps_per_s: f64,
    /// Rollout wall time, s.
    pub rollout_s: f64,
    /// Training time of this step's batch, s.
    pub train_s: f64,
    /// Guest runs executed (memo hits excluded).
    pub sandbox_runs: usize,
    /// Episodes that ended in a harness error.
    pub failed_episodes: usize,
}

/// What a finished or interrupted run reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Steps completed in total.
    pub steps: usize,
    /// Per-step metrics of this invocation.
    pub metrics: Vec<StepMetrics>,
    /// The checkpoint directory.
    pub checkpoint: PathBuf,
    /// Wall time, s.
    pub wall_s: f64,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
}

/// The checkpoint's bookkeeping besides the tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CheckpointState {
    /// Batches trained on.
    step: usize,
    /// Artifact directories of the bug pool, relative to the run directory, with projects.
    pool: Vec<(String, PathBuf)>,
}

/// File names inside a run directory.
pub const CONFIG: &str = "config.json";
/// The metrics log.
pub const METRICS: &str = "metrics.jsonl";
/// The checkpoint directory.
pub const CHECKPOINT: &str = "checkpoint";
/// The weights inside a checkpoint.
pub const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.json";

/// The settings of the run in `dir` (its `config.json`), to resume it.
pub fn load_config(dir: &Path) -> Result<TrainSettings, TrainError> {
    let path = dir.join(CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|source| TrainError::NoConfig {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| TrainError::Parse { path, source })
}

/// Loads the weights of a checkpoint (a run directory, its `checkpoint/`, or a
/// `model.safetensors`) onto the CPU; also returns the run's settings when found.
pub fn load_policy(path: &Path) -> Result<(PolicyNet, Option<TrainSettings>), TrainError> {
    let file = if path.is_file() {
        path.to_owned()
    } else if path.join(MODEL).is_file() {
        path.join(MODEL)
    } else {
        path.join(CHECKPOINT).join(MODEL)
    };
    if !file.is_file() {
        return Err(TrainError::NoPolicy {
            path: path.to_owned(),
        });
    }
    let run_dir = file.parent().and_then(Path::parent);
    let settings = run_dir
        .map(|d| d.join(CONFIG))
        .and_then(|c| std::fs::read_to_string(c).ok())
        .and_then(|t| serde_json::from_str::<TrainSettings>(&t).ok());
    let (varmap, _) = model::fresh(0, &candle_core::Device::Cpu)?;
    load_weights(&varmap, &file)?;
    Ok((model::frozen(&varmap)?, settings))
}

/// Loads `file` into `varmap`. A checkpoint of another network layout (written by an older
/// spar) is refused with what to do, rather than with the tensor library's message.
fn load_weights(varmap: &candle_nn::VarMap, file: &Path) -> Result<(), TrainError> {
    let saved = candle_core::safetensors::load(file, &candle_core::Device::Cpu)?;
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut missing: Vec<&str> = data
        .keys()
        .filter(|n| !saved.contains_key(*n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(TrainError::Layout {
            file: file.to_owned(),
            missing: missing.into_iter().map(str::to_owned).collect(),
        });
    }
    for (name, var) in data.iter() {
        var.set(&saved[name].to_device(var.device())?)?;
    }
    Ok(())
}

enum ToTrainer {
    Batch {
        metrics: Box<StepMetrics>,
        decisions: Vec<Decision>,
        advantages: Vec<f32>,
    },
    Checkpoint {
        dir: PathBuf,
        state: CheckpointState,
    },
}

struct Trained {
    net: Arc<PolicyNet>,
    metrics: StepMetrics,
}

/// What the trainer thread owns: the weights, the optimizer, the metrics log.
struct Trainer<'a, F> {
    varmap: candle_nn::VarMap,
    net: PolicyNet,
    opt: AdamW,
    settings: &'a TrainSettings,
    dev: candle_core::Device,
    log: std::fs::File,
    log_path: &'a Path,
    started: Instant,
    on_step: F,
}

/// The trainer thread: trains on each batch as it arrives, completes the step's metrics with
/// the loss and writes them at once (while the next step's episodes play), and saves
/// checkpoints when asked.
fn trainer<F: FnMut(&StepMetrics)>(
    mut t: Trainer<F>,
    inbox: mpsc::Receiver<ToTrainer>,
    outbox: mpsc::Sender<Result<Trained, String>>,
) {
    let loss_settings = LossSettings {
        entropy: t.settings.entropy,
        clip: t.settings.clip,
    };
    for message in inbox {
        let result: Result<Option<Trained>, String> = (|| match message {
            ToTrainer::Batch {
                metrics,
                decisions,
                advantages,
            } => {
                let started = Instant::now();
                let refs: Vec<&Decision> = decisions.iter().collect();
                let mut stats = LossStats::default();
                let epochs = t.settings.epochs.max(1);
                if !refs.is_empty() {
                    for _ in 0..epochs {
                        let (loss, s) =
                            model::loss(&t.net, &refs, &advantages, loss_settings, &t.dev)
                                .map_err(|e| e.to_string())?;
                        t.opt.backward_step(&loss).map_err(|e| e.to_string())?;
                        stats = s;
                    }
                }
                let mut m = *metrics;
                m.loss = stats.loss;
                m.entropy_solver = stats.entropy_solver;
                m.entropy_injector = stats.entropy_injector;
                m.train_s = started.elapsed().as_secs_f64();
                m.grad_steps_per_s = if refs.is_empty() {
                    0.0
                } else {
                    epochs as f64 / m.train_s.max(1e-9)
                };
                m.wall_s = t.started.elapsed().as_secs_f64();
                let line = serde_json::to_string(&m).expect("metrics serialize");
                writeln!(t.log, "{line}")
                    .map_err(|e| format!("writing {}: {e}", t.log_path.display()))?;
                (t.on_step)(&m);
                Ok(Some(Trained {
                    net: Arc::new(model::frozen(&t.varmap).map_err(|e| e.to_string())?),
                    metrics: m,
                }))
            }
            ToTrainer::Checkpoint { dir, state } => {
                save_checkpoint(&dir, &t.varmap, &t.opt, &state).map_err(|e| e.to_string())?;
                Ok(None)
            }
        })();
        match result {
            Ok(Some(t)) => {
                if outbox.send(Ok(t)).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                let _ = outbox.send(Err(e));
                return;
            }
        }
    }
}

fn save_checkpoint(
    dir: &Path,
    varmap: &candle_nn::VarMap,
    opt: &AdamW,
    state: &CheckpointState,
) -> Result<(), TrainError> {
    // Written beside, then swapped in: a crash mid-save leaves the previous checkpoint whole.
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    varmap.save(tmp.join(MODEL))?;
    opt.save(&tmp.join(OPTIMIZER))?;
    let json = serde_json::to_string_pretty(state).expect("state serializes");
    std::fs::write(tmp.join(STATE), json).map_err(io_err(&tmp))?;
    let old = dir.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io_err(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io_err(dir))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Group-relative advantages: each reward minus its group's mean, over the group's standard
/// deviation; 0 for a group whose rewards are all equal (it says nothing about which choice
/// was better).
pub fn group_advantages(rewards: &[f64]) -> Vec<f64> {
    if rewards.is_empty() {
        return Vec::new();
    }
    let n = rewards.len() as f64;
    let mean = rewards.iter().sum::<f64>() / n;
    let var = rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    if std < 1e-9 {
        return vec![0.0; rewards.len()];
    }
    rewards.iter().map(|r| (r - mean) / std).collect()
}

/// Fuel one solver `run` may use in `projects`: twice their costliest full suite. A
/// repair candidate that makes a loop spin forever then ends in seconds instead of at the 90 s
/// wall-clock limit, identically on every machine (so its result memoizes).
pub fn run_fuel_cap(
    python: &Python,
    validator: &Validator,
    projects: &[OpenProject],
) -> Result<u64, crate::protocol::validate::ValidationError> {
    let mut most = 0;
    for project in projects {
        let test_files: Vec<String> = project
            .repo
            .files()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| crate::protocol::is_test_path(p))
            .collect();
        let oracle = crate::protocol::validate::Oracle {
            command: &project.test_command,
            parser: None,
            test_files: &test_files,
            run: &project.run,
        };
        most = most.max(validator.run(python, &project.repo, &oracle)?.fuel);
    }
    Ok(most.saturating_mul(2))
}

/// A training project, ready for injection.
struct Prepared<'a> {
    project: &'a OpenProject,
    injector: Injector<'a>,
    covered: BTreeMap<String, BTreeSet<u32>>,
}

/// One proposal of the injector: its decision and what became of it.
struct Proposal {
    decision: Decision,
    task: Option<Arc<Task>>,
}

fn with_file(repo: &Snapshot, path: &str, text: String) -> Snapshot {
    repo.with_changes(&[FileChange::Written {
        path: path.to_owned(),
        contents: Arc::from(text.into_bytes()),
    }])
    .unwrap_or_else(|_| repo.clone())
}

/// Trains; `out` is the run directory (created, or resumed when `resume`). `on_step` sees
/// every step's metrics as they are written.
#[allow(clippy::too_many_arguments)]
pub fn train(
    python: Arc<Python>,
    validator: Arc<Validator>,
    projects: &[OpenProject],
    settings: &TrainSettings,
    out: &Path,
    resume: bool,
    mut env: EnvSettings,
    on_step: impl FnMut(&StepMetrics) + Send,
) -> Result<TrainSummary, TrainError> {
    if projects.is_empty() {
        return Err(TrainError::NoProjects);
    }
    let started = Instant::now();
    let dev = device(settings.device)?;
    let checkpoint_dir = out.join(CHECKPOINT);
    let (varmap, net) = model::fresh(settings.seed, &dev)?;
    let mut opt = AdamW::new(&varmap, settings.lr, 0.01)?;
    let mut pool: Vec<(String, PathBuf)> = Vec::new();
    let mut first_step = 0;
    if resume {
        let state_path = checkpoint_dir.join(STATE);
        let text =
            std::fs::read_to_string(&state_path).map_err(|source| TrainError::NoCheckpoint {
                dir: out.to_owned(),
                source,
            })?;
        let state: CheckpointState =
            serde_json::from_str(&text).map_err(|source| TrainError::Parse {
                path: state_path.clone(),
                source,
            })?;
        load_weights(&varmap, &checkpoint_dir.join(MODEL))?;
        opt.load(&checkpoint_dir.join(OPTIMIZER))?;
        pool = state.pool;
        first_step = state.step;
        // Steps logged after the checkpoint are played again: drop their lines.
        let metrics_path = out.join(METRICS);
        if let Ok(text) = std::fs::read_to_string(&metrics_path) {
            let kept: String = text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<StepMetrics>(l).is_ok_and(|m| m.step <= first_step)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            crate::fsutil::write_atomic(&metrics_path, kept.as_bytes())
                .map_err(io_err(&metrics_path))?;
        }
    } else {
        let used = std::fs::metadata(out.join(METRICS)).is_ok_and(|m| m.len() > 0)
            || checkpoint_dir.exists();
        if used {
            return Err(TrainError::RunExists {
                dir: out.to_owned(),
            });
        }
        std::fs::create_dir_all(out).map_err(io_err(out))?;
        let json = serde_json::to_string_pretty(settings).expect("settings serialize");
        std::fs::write(out.join(CONFIG), json).map_err(io_err(out))?;
    }
    let metrics_path = out.join(METRICS);
    let metrics_log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(io_err(&metrics_path))?;

    // Projects: a baseline run and coverage each (memoized runs; a few seconds per project).
    let mut prepared = Vec::new();
    for project in projects {
        prepared.push(Prepared {
            project,
            injector: Injector::new(&python, &validator, project)?,
            covered: coverage(&python, project)?,
        });
    }
    env.run_fuel = Some(run_fuel_cap(&python, &validator, projects)?);
    if !resume && settings.seed_bugs > 0 {
        for project in projects {
            let dirs = crate::inject::procedural_bug_set(
                &python,
                &validator,
                project,
                settings.seed_bugs,
                SEED_BUGS_SEED,
                &out.join(SEED_BUGS),
            )?;
            for dir in dirs {
                let rel = dir.strip_prefix(out).unwrap_or(&dir).to_owned();
                pool.push((project.name.clone(), rel));
            }
        }
    }
    let by_name: HashMap<&str, &OpenProject> =
        projects.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut tasks: Vec<Arc<Task>> = Vec::new();
    for (project, dir) in &pool {
        let project = by_name
            .get(project.as_str())
            .ok_or_else(|| TrainError::PoolProject {
                project: project.clone(),
            })?;
        tasks.push(Arc::new(
            Task::load(&out.join(dir), project).map_err(SelfPlayError::from)?,
        ));
    }

    let runtime = runtime(settings.workers).map_err(SelfPlayError::Runtime)?;
    let scheduler = Scheduler::new(python.clone(), validator.clone(), settings.workers);
    let cancel = scheduler.cancel_flag();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.store(true, Ordering::Relaxed);
        }
    });

    let (to_trainer, inbox) = mpsc::channel();
    let (outbox, from_trainer) = mpsc::channel();
    let rollout_net = Arc::new(model::frozen(&varmap)?);
    let trainer_state = Trainer {
        varmap,
        net,
        opt,
        settings,
        dev: dev.clone(),
        log: metrics_log,
        log_path: &metrics_path,
        started,
        on_step,
    };
    let mut summary = TrainSummary {
        checkpoint: checkpoint_dir.clone(),
        ..TrainSummary::default()
    };
    let mut nets: BTreeMap<usize, Arc<PolicyNet>> = BTreeMap::new();
    nets.insert(first_step, rollout_net);
    // Takes the trainer's next result (waiting for it when `wait`); false when none was ready.
    let receive = |nets: &mut BTreeMap<usize, Arc<PolicyNet>>,
                   summary: &mut TrainSummary,
                   wait: bool|
     -> Result<bool, TrainError> {
        let next: Result<Trained, String> = if wait {
            from_trainer
                .recv()
                .map_err(|_| TrainError::Trainer("it ended without a reply".into()))?
        } else {
            match from_trainer.try_recv() {
                Ok(next) => next,
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(TrainError::Trainer("it ended without a reply".into()))
                }
            }
        };
        let trained = next.map_err(TrainError::Trainer)?;
        nets.insert(trained.metrics.step, trained.net);
        summary.metrics.push(trained.metrics);
        Ok(true)
    };

    std::thread::scope(|scope| -> Result<TrainSummary, TrainError> {
        let trainer_thread = scope.spawn(move || trainer(trainer_state, inbox, outbox));
        let mut sent = first_step;
        for step in first_step..settings.steps {
            // Step `step` plays with the weights trained on the batches of steps
            // 0..step-2; step-1's batch trains meanwhile.
            let version = step.saturating_sub(1).max(first_step);
            while !nets.contains_key(&version) {
                receive(&mut nets, &mut summary, true)?;
            }
            let net = nets[&version].clone();
            nets.retain(|v, _| *v >= version);
            let rollout_started = Instant::now();
            let runs_before = validator.runs_executed() + validator.tool_runs_executed();
            let mut rng = crate::agents::Rng(episode_seed(settings.seed, step, "inject", 0));

            // The injector's group: proposals in one project, round robin, every
            // `inject_every` steps (and whenever there is no bug yet).
            let inject_every = settings.inject_every.max(1);
            let prep = &prepared[(step / inject_every) % prepared.len()];
            let choice: Choice = injector_choice(&prep.project.repo, &prep.covered, &mut rng);
            let proposing = step % inject_every == 0 || tasks.is_empty();
            let everything = vec![true; choice.candidates.len()];
            let picks: Vec<(usize, f32)> = (0..if proposing { settings.proposals } else { 0 })
                .filter_map(|_| sample(&net, &choice, &everything, &mut rng, false))
                .collect();
            let built = crate::par::map(&picks, settings.workers, |(index, _)| {
                let candidate = &choice.candidates[*index];
                let text = prep
                    .project
                    .repo
                    .file(&candidate.path)
                    .and_then(|c| String::from_utf8(c.to_vec()).ok())
                    .unwrap_or_default();
                let state = with_file(
                    &prep.project.repo,
                    &candidate.path,
                    candidate.edit.apply(&text),
                );
                prep.injector
                    .artifact_from_state(&state, "policy", settings.seed)
            });
            let mut proposals = Vec::new();
            let mut new_tasks: Vec<Arc<Task>> = Vec::new();
            for ((index, logp), outcome) in picks.iter().zip(built) {
                let task = match outcome? {
                    Ok((artifact, validation)) => {
                        let id = artifact.id();
                        let rel = PathBuf::from("artifacts").join(&id);
                        let dir = out.join(&rel);
                        if !dir.exists() {
                            write_artifact(&artifact, &validation, &dir)?;
                        }
                        let existing = tasks.iter().chain(&new_tasks).find(|t| t.id == id).cloned();
                        let task = match existing {
                            Some(t) => t,
                            None => {
                                let t = Arc::new(
                                    Task::load(&dir, prep.project).map_err(SelfPlayError::from)?,
                                );
                                pool.push((prep.project.name.clone(), rel));
                                new_tasks.push(t.clone());
                                t
                            }
                        };
                        Some(task)
                    }
                    Err(_) => None,
                };
                proposals.push(Proposal {
                    decision: Decision {
                        choice: choice.clone(),
                        allowed: vec![true; choice.candidates.len()],
                        chosen: *index,
                        logp: *logp,
                    },
                    task,
                });
            }
            // The solver's bugs: this step's valid proposals first, then a sample of the pool.
            let mut step_tasks: Vec<Arc<Task>> = Vec::new();
            for t in proposals.iter().filter_map(|p| p.task.clone()) {
                if !step_tasks.iter().any(|s| s.id == t.id) {
                    step_tasks.push(t);
                }
            }
            let mut older: Vec<Arc<Task>> = tasks
                .iter()
                .filter(|t| !step_tasks.iter().any(|s| s.id == t.id))
                .cloned()
                .collect();
            while step_tasks.len() < settings.bugs_per_step && !older.is_empty() {
                step_tasks.push(older.swap_remove(rng.below(older.len())));
            }
            tasks.extend(new_tasks);

            let specs: Vec<EpisodeSpec> = step_tasks
                .iter()
                .flat_map(|task| {
                    (0..settings.attempts).map(move |attempt| EpisodeSpec {
                        task: task.clone(),
                        attempt,
                        seed: episode_seed(settings.seed, step, &task.id, attempt),
                        round: step + 1,
                    })
                })
                .collect();
            let sink: DecisionSink = Arc::new(Mutex::new(Vec::new()));
            let factory = solver_factory(net.clone(), settings.max_tries, Some(sink.clone()));
            let records = runtime.block_on(scheduler.run_episodes(
                specs,
                ("policy".into(), factory),
                env.clone(),
                settings.attempts * settings.bugs_per_step.max(1),
                None,
            ));
            let mut by_episode: HashMap<String, Vec<Decision>> = sink
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..)
                .collect();

            // Rewards and advantages.
            let mut decisions = Vec::new();
            let mut advantages = Vec::new();
            let mut solved_by_task: HashMap<&str, Vec<bool>> = HashMap::new();
            let graded: Vec<_> = records.iter().filter(|r| r.error.is_none()).collect();
            for task in &step_tasks {
                let group: Vec<_> = graded.iter().filter(|r| r.task == task.id).collect();
                let rewards: Vec<f64> = group.iter().map(|r| r.reward).collect();
                for (record, adv) in group.iter().zip(group_advantages(&rewards)) {
                    solved_by_task
                        .entry(task.id.as_str())
                        .or_default()
                        .push(record.solved);
                    for d in by_episode.remove(&record.episode).unwrap_or_default() {
                        decisions.push(d);
                        advantages.push(adv as f32);
                    }
                }
            }
            // A valid proposal none of whose attempts was graded (all cancelled or failed as
            // harness errors) has no solve rate: it is left out of its group, not given -alpha.
            let proposals: Vec<Proposal> = proposals
                .into_iter()
                .filter(|p| {
                    p.task
                        .as_ref()
                        .is_none_or(|t| solved_by_task.contains_key(t.id.as_str()))
                })
                .collect();
            let injector_rewards: Vec<f64> = proposals
                .iter()
                .map(|p| match &p.task {
                    None => injector_reward(false, 0.0, settings.alpha),
                    Some(t) => injector_reward(
                        true,
                        solve_rate(&solved_by_task[t.id.as_str()]),
                        settings.alpha,
                    ),
                })
                .collect();
            for (p, adv) in proposals.iter().zip(group_advantages(&injector_rewards)) {
                decisions.push(p.decision.clone());
                advantages.push(adv as f32);
            }
            let rollout_s = rollout_started.elapsed().as_secs_f64();
            let metrics = StepMetrics {
                step: step + 1,
                episodes: records.len(),
                solver_reward: mean(graded.iter().map(|r| r.reward)),
                solve_rate: solve_rate(&graded.iter().map(|r| r.solved).collect::<Vec<_>>()),
                injector_reward: (!proposals.is_empty())
                    .then(|| mean(injector_rewards.iter().copied())),
                valid_rate: (!proposals.is_empty()).then(|| {
                    proposals.iter().filter(|p| p.task.is_some()).count() as f64
                        / proposals.len() as f64
                }),
                proposals: proposals.len(),
                bugs: step_tasks.len(),
                pool: tasks.len(),
                episodes_per_s: records.len() as f64 / rollout_s.max(1e-9),
                rollout_s,
                sandbox_runs: validator.runs_executed() + validator.tool_runs_executed()
                    - runs_before,
                failed_episodes: records.len() - graded.len(),
                ..StepMetrics::default()
            };
            // A step cut short by Ctrl-C is not trained on: its cancelled episodes would
            // read as failures. The checkpoint keeps the steps before it.
            let interrupted = scheduler.cancel_flag().load(Ordering::Relaxed);
            if !interrupted {
                to_trainer
                    .send(ToTrainer::Batch {
                        metrics: Box::new(metrics),
                        decisions,
                        advantages,
                    })
                    .map_err(|_| TrainError::Trainer("it is gone".into()))?;
                sent = step + 1;
            }
            while receive(&mut nets, &mut summary, false)? {}
            let last = sent == settings.steps || interrupted;
            if last || sent % settings.checkpoint_every.max(1) == 0 {
                to_trainer
                    .send(ToTrainer::Checkpoint {
                        dir: checkpoint_dir.clone(),
                        state: CheckpointState {
                            step: sent,
                            pool: pool.clone(),
                        },
                    })
                    .map_err(|_| TrainError::Trainer("it is gone".into()))?;
            }
            if interrupted {
                summary.interrupted = true;
                break;
            }
        }
        while !nets.contains_key(&sent) {
            receive(&mut nets, &mut summary, true)?;
        }
        drop(to_trainer);
        trainer_thread
            .join()
            .map_err(|_| TrainError::Trainer("it panicked".into()))?;
        summary.steps = sent;
        summary.wall_s = started.elapsed().as_secs_f64();
        Ok(summary)
    })
}

/// The progress bar of a training run over `steps` steps (`spar train` and `spar demo`).
pub fn progress_bar(steps: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("train {bar:30} {pos}/{len} steps {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// A short table of a run's steps (every step up to 12, else 12 evenly spaced ones).
pub fn summary_table(summary: &TrainSummary) -> String {
    let mut out = format!(
        "{:>5} {:>8} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8}\n",
        "step", "solve", "solver_r", "valid", "inject_r", "H(solv)", "eps/s", "grad/s"
    );
    let n = summary.metrics.len();
    let stride = n.div_ceil(12).max(1);
    for (i, m) in summary.metrics.iter().enumerate() {
        if i % stride != 0 && i + 1 != n {
            continue;
        }
        // Steps without proposals have no injector numbers: a dash, not NaN.
        let or_dash = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_owned(), f);
        out.push_str(&format!(
            "{:>5} {:>7.1}% {:>9.2} {:>8} {:>9} {:>8} {:>8.1} {:>8.1}\n",
            m.step,
            100.0 * m.solve_rate,
            m.solver_reward,
            or_dash(m.valid_rate, &|v| format!("{:.1}%", 100.0 * v)),
            or_dash(m.injector_reward, &|v| format!("{v:.2}")),
            or_dash(m.entropy_solver, &|v| format!("{v:.2}")),
            m.episodes_per_s,
            m.grad_steps_per_s
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_of_an_older_layout_is_refused_with_what_to_do() {
        let dir = std::env::temp_dir().join(format!("spar-old-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (varmap, _) = model::fresh(0, &candle_core::Device::Cpu).unwrap();
        let tensors: HashMap<String, candle_core::Tensor> = {
            let data = varmap.data().lock().unwrap();
            data.iter()
                .filter(|(name, _)| !name.starts_with("evidence"))
                .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
                .collect()
        };
        let old = dir.join(MODEL);
        candle_core::safetensors::save(&tensors, &old).unwrap();
        let Err(err @ TrainError::Layout { .. }) = load_policy(&old) else {
            panic!("an older layout must be refused");
        };
        let message = err.to_string();
        assert!(message.contains("evidence.weight"), "{message}");
        assert!(message.contains("train a new run"), "{message}");
        varmap.save(&old).unwrap();
        assert!(load_policy(&old).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_summary_shows_dashes_for_steps_without_proposals() {
        let summary = TrainSummary {
            metrics: vec![
                StepMetrics {
                    step: 1,
                    valid_rate: Some(0.5),
                    injector_reward: Some(-0.4),
                    ..StepMetrics::default()
                },
                StepMetrics {
                    step: 2,
                    ..StepMetrics::default()
                },
            ],
            ..TrainSummary::default()
        };
        let table = summary_table(&summary);
        assert!(table.contains("50.0%"), "{table}");
        assert!(!table.contains("NaN"), "{table}");
        assert_eq!(table.lines().count(), 3);
    }

    #[test]
    fn advantages_are_relative_to_the_group() {
        assert_eq!(group_advantages(&[1.0, 1.0, 1.0]), vec![0.0; 3]);
        let a = group_advantages(&[1.0, -1.0, -1.0, -1.0]);
        assert!(a[0] > 0.0 && a[1] < 0.0);
        assert!(a.iter().sum::<f64>().abs() < 1e-9);
        assert!((a[0] - 3f64.sqrt()).abs() < 1e-9);
        assert!(group_advantages(&[]).is_empty());
    }
}
