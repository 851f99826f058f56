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

pub mod lm;
mod run_dir;
mod step;
mod trainer;

pub use run_dir::{load_config, load_policy, CHECKPOINT, CONFIG, METRICS, MODEL};

use crate::corpus::OpenProject;
pub use crate::episode::rewards::group_advantages;
use crate::episode::{EnvSettings, Task};
use crate::guest::Python;
use crate::inject::{coverage, InjectError, Injector};
use crate::policy::model::{self, AdamW};
use crate::policy::{device, DeviceChoice};
use crate::protocol::Validator;
use crate::rollout::{runtime, Scheduler};
use crate::selfplay::SelfPlayError;
use run_dir::{CheckpointState, RunDir};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use step::{Pool, Prepared, StepContext};
use trainer::{Trainer, TrainerState};

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
        /// The run directory, or the file or checkpoint directory in it, that failed.
        path: PathBuf,
        /// The I/O error.
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
        /// The run's `config.json`, or its checkpoint's `state.json`.
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
    /// The language model could not be loaded or saved.
    #[error(transparent)]
    Lm(#[from] crate::lm::LmError),
    /// The trainer thread stopped without an answer (it panicked).
    #[error("the trainer thread stopped")]
    TrainerGone,
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
    /// The policy trained: the candidate ranker, or a language model.
    #[serde(default)]
    pub policy: PolicyChoice,
}

/// Which policy a run trains.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PolicyChoice {
    /// The network that ranks the candidate edits the engine lists (the laptop policy).
    #[default]
    Ranker,
    /// A language model acting through the tools, trained with GRPO.
    Lm(lm::LmTrainSettings),
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
            policy: PolicyChoice::Ranker,
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
    /// The language model's tokens, time split and update (`--policy lm` runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm: Option<lm::LmStepMetrics>,
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

/// Fuel one solver `run` may use in `projects`: twice their costliest full suite. A
/// repair candidate that makes a loop spin forever then ends in seconds instead of at the 90 s
/// wall-clock limit, identically on every machine (so its result memoizes). The suites run
/// at once, one a core.
pub fn run_fuel_cap(
    python: &Python,
    validator: &Validator,
    projects: &[OpenProject],
) -> Result<u64, crate::protocol::validate::ValidationError> {
    let fuel = crate::par::map(projects, crate::par::cores(), |project| {
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
        Ok(validator.run(python, &project.repo, &oracle)?.fuel)
    });
    let most = fuel
        .into_iter()
        .try_fold(0, |most, f| f.map(|f| most.max(f)))?;
    Ok(most.saturating_mul(2))
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
    if let PolicyChoice::Lm(lm) = &settings.policy {
        let (python, validator) = (python.clone(), validator.clone());
        return lm::train_lm(
            python, validator, projects, settings, lm, out, resume, env, on_step,
        );
    }
    let started = Instant::now();
    let dev = device(settings.device)?;
    let (varmap, net) = model::fresh(settings.seed, &dev)?;
    let mut opt = AdamW::new(&varmap, settings.lr, 0.01)?;
    let (run, resumed) = match resume {
        true => RunDir::resume(out, &varmap, &mut opt)?,
        false => (RunDir::create(out, settings)?, CheckpointState::default()),
    };
    let log = run.metrics_log()?;
    let prepared = prepare(&python, &validator, projects)?;
    let resumed_pool = resume.then(|| resumed.pool.clone());
    let (mut pool, runtime, scheduler) = start(
        &python,
        &validator,
        projects,
        settings,
        &run,
        resumed_pool,
        &mut env,
    )?;
    let ctx = StepContext {
        settings,
        prepared: &prepared,
        run: &run,
        validator: &validator,
        scheduler: &scheduler,
        runtime: &runtime,
        env: &env,
    };
    let first = Arc::new(model::frozen(&varmap)?);
    let state = TrainerState {
        varmap,
        net,
        opt,
        settings,
        dev,
        run: &run,
        log,
        started,
        on_step,
    };
    std::thread::scope(|scope| {
        let trainer = Trainer::spawn(scope, state, resumed.step, first);
        let (sent, interrupted, metrics) = steps(&ctx, trainer, resumed.step, &mut pool)?;
        Ok(TrainSummary {
            steps: sent,
            metrics,
            checkpoint: run.checkpoint(),
            wall_s: started.elapsed().as_secs_f64(),
            interrupted,
        })
    })
}

/// The steps from `first` on, until the run's length or Ctrl-C: each plays with the weights
/// trained on the batches of steps `0..step-2` while step-1's batch trains (a fixed lag of
/// one, so a seed gives the same run every time). Returns the batches sent, whether Ctrl-C
/// stopped the run, and the metrics.
fn steps(
    ctx: &StepContext,
    mut trainer: Trainer,
    first: usize,
    pool: &mut Pool,
) -> Result<(usize, bool, Vec<StepMetrics>), TrainError> {
    let settings = ctx.settings;
    let mut sent = first;
    let mut interrupted = false;
    for step in first..settings.steps {
        let net = trainer.net_for(step.saturating_sub(1).max(first))?;
        let batch = step::play(ctx, step, &net, pool)?;
        // A step cut short by Ctrl-C is not trained on: its cancelled episodes would read as
        // failures. The checkpoint keeps the steps before it.
        interrupted = ctx.scheduler.cancel_flag().load(Ordering::Relaxed);
        if !interrupted {
            trainer.send(batch)?;
            sent = step + 1;
        }
        trainer.poll()?;
        let last = sent == settings.steps || interrupted;
        if last || sent.is_multiple_of(settings.checkpoint_every.max(1)) {
            let pool = pool.dirs.clone();
            trainer.checkpoint(CheckpointState { step: sent, pool })?;
        }
        if interrupted {
            break;
        }
    }
    Ok((sent, interrupted, trainer.finish(sent)?))
}

/// What every run needs before its first step: the fuel cap of a solver `run` in `env`, the
/// bug pool (the checkpoint's when resuming, else a new run's seed bugs), and the scheduler on
/// its runtime, cancelled by Ctrl-C.
fn start(
    python: &Arc<Python>,
    validator: &Arc<Validator>,
    projects: &[OpenProject],
    settings: &TrainSettings,
    run: &RunDir,
    resumed_pool: Option<Vec<(String, PathBuf)>>,
    env: &mut EnvSettings,
) -> Result<(Pool, tokio::runtime::Runtime, Arc<Scheduler>), TrainError> {
    env.run_fuel = Some(run_fuel_cap(python, validator, projects)?);
    let dirs = match resumed_pool {
        Some(dirs) => dirs,
        None => seed_bugs(python, validator, projects, settings, run)?,
    };
    let pool = load_pool(run, projects, dirs)?;
    let runtime = runtime(settings.workers).map_err(SelfPlayError::Runtime)?;
    let scheduler = Scheduler::new(python.clone(), validator.clone(), settings.workers);
    scheduler.cancel_on_ctrl_c(&runtime);
    Ok((pool, runtime, scheduler))
}

/// Each project's injector (a baseline run) and coverage: memoized runs, a few seconds each,
/// one project a core.
fn prepare<'a>(
    python: &'a Python,
    validator: &'a Validator,
    projects: &'a [OpenProject],
) -> Result<Vec<Prepared<'a>>, TrainError> {
    crate::par::map(projects, crate::par::cores(), |project| {
        Ok(Prepared {
            project,
            injector: Injector::new(python, validator, project)?,
            covered: coverage(python, project)?,
        })
    })
    .into_iter()
    .collect()
}

/// The procedural bugs that start a new run's pool (the same for every training seed).
fn seed_bugs(
    python: &Python,
    validator: &Validator,
    projects: &[OpenProject],
    settings: &TrainSettings,
    run: &RunDir,
) -> Result<Vec<(String, PathBuf)>, TrainError> {
    if settings.seed_bugs == 0 {
        return Ok(Vec::new());
    }
    let made = crate::inject::procedural_bug_sets(
        python,
        validator,
        projects,
        settings.seed_bugs,
        SEED_BUGS_SEED,
        &run.path().join(SEED_BUGS),
    )?;
    let mut dirs = Vec::new();
    for (project, made) in projects.iter().zip(made) {
        for dir in made {
            let rel = dir.strip_prefix(run.path()).unwrap_or(&dir).to_owned();
            dirs.push((project.name.clone(), rel));
        }
    }
    Ok(dirs)
}

/// The pool's tasks, loaded from their artifact directories.
fn load_pool(
    run: &RunDir,
    projects: &[OpenProject],
    dirs: Vec<(String, PathBuf)>,
) -> Result<Pool, TrainError> {
    let by_name: HashMap<&str, &OpenProject> =
        projects.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut tasks: Vec<Arc<Task>> = Vec::new();
    for (project, dir) in &dirs {
        let project = by_name
            .get(project.as_str())
            .ok_or_else(|| TrainError::PoolProject {
                project: project.clone(),
            })?;
        let task = Task::load(&run.path().join(dir), project).map_err(SelfPlayError::from)?;
        tasks.push(Arc::new(task));
    }
    Ok(Pool { tasks, dirs })
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
}
