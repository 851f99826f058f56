//! `spar eval`: solve@1 and solve@8 of solvers on a fixed held-out bug set.
//!
//! The bugs are made by the procedural injector with a fixed seed in the projects whose split
//! is `heldout` (never trained on), and cached on disk by project content, seed and count, so
//! every evaluation of every checkpoint sees the same bugs. Every solver gets the same episode
//! seeds. solve@1 is the mean over bugs of the fraction of the G attempts that solved it (the
//! unbiased estimate of a single attempt's success); solve@G is the fraction of bugs that at
//! least one of the G attempts solved.

use crate::agents::{AgentFactory, AgentKind};
use crate::corpus::{OpenProject, Split};
use crate::episode::EpisodeSpec;
use crate::episode::{EnvSettings, Task};
use crate::guest::Python;
use crate::inject::{procedural_bug_sets, InjectError};
use crate::policy::{model, solver_factory};
use crate::protocol::Validator;
use crate::rollout::{runtime, Scheduler};
use crate::selfplay::SelfPlayError;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Errors that stop an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// No held-out project was given.
    #[error(
        "no held-out projects: evaluation needs projects with split = \"heldout\" (the built-in \
         datefmt and inikit are)"
    )]
    NoHeldout,
    /// A training project was given as held out.
    #[error("{0} has split = train; evaluating on projects the policy trained on says nothing")]
    NotHeldout(String),
    /// Injection failed.
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// The scheduler or an artifact failed.
    #[error(transparent)]
    SelfPlay(#[from] SelfPlayError),
    /// A baseline run failed as a harness error.
    #[error(transparent)]
    Validation(#[from] crate::protocol::validate::ValidationError),
    /// An unknown baseline was asked for.
    #[error("unknown baseline {0:?}: use untrained, random or heuristic")]
    UnknownBaseline(String),
    /// The policy network failed.
    #[error("in the policy network")]
    Tensor(#[from] candle_core::Error),
    /// Too few bugs could be made.
    #[error("only {made} held-out bugs could be made in {project} (wanted {wanted})")]
    TooFewBugs {
        /// The held-out project the bugs were injected into.
        project: String,
        /// Valid bugs the procedural injector made there.
        made: usize,
        /// Bugs asked for per project ([`BugSet::per_project`]).
        wanted: usize,
    },
}

/// Which held-out bugs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BugSet {
    /// Bugs per held-out project.
    pub per_project: usize,
    /// The injection seed.
    pub seed: u64,
}

impl Default for BugSet {
    fn default() -> Self {
        BugSet {
            per_project: 8,
            seed: 2026,
        }
    }
}

/// The held-out bugs of `projects` (all must be held out), made once and cached under
/// `cache/heldout-bugs/`.
pub fn heldout_tasks(
    python: &Python,
    validator: &Validator,
    projects: &[OpenProject],
    bugs: &BugSet,
    cache: &Path,
) -> Result<Vec<Arc<Task>>, EvalError> {
    if projects.is_empty() {
        return Err(EvalError::NoHeldout);
    }
    if let Some(project) = projects.iter().find(|p| p.split != Split::Heldout) {
        return Err(EvalError::NotHeldout(project.name.clone()));
    }
    let made = procedural_bug_sets(
        python,
        validator,
        projects,
        bugs.per_project,
        bugs.seed,
        &cache.join("heldout-bugs"),
    )?;
    let mut tasks = Vec::new();
    for (project, dirs) in projects.iter().zip(made) {
        if dirs.len() < bugs.per_project {
            return Err(EvalError::TooFewBugs {
                project: project.name.clone(),
                made: dirs.len(),
                wanted: bugs.per_project,
            });
        }
        for d in dirs {
            tasks.push(Arc::new(
                Task::load(&d, project).map_err(SelfPlayError::from)?,
            ));
        }
    }
    Ok(tasks)
}

/// One solver's results on the bug set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalRow {
    /// The solver's label (`policy (trained)`, `policy (untrained)`, `random`, ...).
    pub agent: String,
    /// Mean fraction of attempts that solved a bug.
    pub solve_at_1: f64,
    /// Fraction of bugs some attempt solved.
    pub solve_at_k: f64,
    /// Attempts per bug (the k of solve@k).
    pub attempts: usize,
    /// Number of bugs attempted (the length of `solved`).
    pub bugs: usize,
    /// Attempts that solved, per bug, in bug order.
    pub solved: Vec<usize>,
    /// Sandbox runs executed for this solver (memo hits excluded).
    pub sandbox_runs: usize,
    /// Episodes that ended in a harness error.
    pub failed_episodes: usize,
    /// Wall time, s.
    pub wall_s: f64,
}

/// Plays `attempts` episodes of `agent` on every task and scores them.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    python: Arc<Python>,
    validator: Arc<Validator>,
    tasks: &[Arc<Task>],
    agent: (String, AgentFactory),
    attempts: usize,
    seed: u64,
    workers: usize,
    env: &EnvSettings,
) -> Result<EvalRow, EvalError> {
    let started = Instant::now();
    let runtime = runtime(workers).map_err(SelfPlayError::Runtime)?;
    let scheduler = Scheduler::new(python, validator, workers);
    let specs = EpisodeSpec::attempts(tasks, attempts, seed, 0);
    let name = agent.0.clone();
    let records = runtime.block_on(scheduler.run_episodes(
        specs,
        agent,
        env.clone(),
        attempts * tasks.len().max(1),
        None,
    ));
    let solved: Vec<usize> = tasks
        .iter()
        .map(|t| {
            records
                .iter()
                .filter(|r| r.task == t.id && r.solved)
                .count()
        })
        .collect();
    let bugs = tasks.len().max(1) as f64;
    Ok(EvalRow {
        agent: name,
        solve_at_1: solved
            .iter()
            .map(|s| *s as f64 / attempts.max(1) as f64)
            .sum::<f64>()
            / bugs,
        solve_at_k: solved.iter().filter(|s| **s > 0).count() as f64 / bugs,
        attempts,
        bugs: tasks.len(),
        solved,
        sandbox_runs: records.iter().map(|r| r.sandbox_runs as usize).sum(),
        failed_episodes: records.iter().filter(|r| r.error.is_some()).count(),
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// What to evaluate besides a trained policy.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// The bug set.
    pub bugs: BugSet,
    /// Attempts per bug.
    pub attempts: usize,
    /// Candidates one policy attempt may try.
    pub max_tries: usize,
    /// Episode seed.
    pub seed: u64,
    /// Sandbox runs at once.
    pub workers: usize,
    /// The seed whose initial weights are the untrained policy (the trained run's).
    pub untrained_seed: u64,
    /// Baselines: `untrained`, `random`, `heuristic`.
    pub baselines: Vec<String>,
}

/// A trained policy to evaluate, and what its `untrained` baseline is.
pub enum Trained {
    /// A ranker network; untrained: the run's initial weights.
    Ranker(crate::policy::PolicyNet),
    /// A language model's trained agents and its base model's (`spar train --policy lm`).
    Lm {
        /// Agents of the trained model.
        trained: AgentFactory,
        /// Agents of the checkpoint it started from.
        base: AgentFactory,
    },
}

/// Evaluates `trained` (when given) and the baselines on the held-out bugs of `projects`.
pub fn evaluate_all(
    python: Arc<Python>,
    validator: Arc<Validator>,
    projects: &[OpenProject],
    trained: Option<Trained>,
    settings: &Evaluation,
    cache: &Path,
) -> Result<Vec<EvalRow>, EvalError> {
    let mut agents: Vec<(String, AgentFactory)> = Vec::new();
    let mut base = None;
    match trained {
        Some(Trained::Ranker(net)) => agents.push((
            "policy (trained)".into(),
            solver_factory(Arc::new(net), settings.max_tries, None),
        )),
        Some(Trained::Lm { trained, base: b }) => {
            agents.push(("lm (trained)".into(), trained));
            base = Some(b);
        }
        None => {}
    }
    for name in &settings.baselines {
        let factory = match (name.as_str(), base.take()) {
            ("untrained", Some(lm)) => {
                agents.push(("lm (base)".into(), lm));
                continue;
            }
            ("untrained", None) => {
                let (varmap, _) = model::fresh(settings.untrained_seed, &candle_core::Device::Cpu)?;
                solver_factory(Arc::new(model::frozen(&varmap)?), settings.max_tries, None)
            }
            ("random", _) => AgentKind::Random.factory(),
            ("heuristic", _) => AgentKind::Heuristic.factory(),
            (other, _) => return Err(EvalError::UnknownBaseline(other.to_owned())),
        };
        let label = if name == "untrained" {
            "policy (untrained)".to_owned()
        } else {
            name.clone()
        };
        agents.push((label, factory));
    }
    let tasks = heldout_tasks(&python, &validator, projects, &settings.bugs, cache)?;
    let env = EnvSettings {
        run_fuel: Some(crate::train::run_fuel_cap(&python, &validator, projects)?),
        ..EnvSettings::default()
    };
    agents
        .into_iter()
        .map(|agent| {
            evaluate(
                python.clone(),
                validator.clone(),
                &tasks,
                agent,
                settings.attempts,
                settings.seed,
                settings.workers,
                &env,
            )
        })
        .collect()
}

/// A table of rows, as `spar eval` prints it.
pub fn table(rows: &[EvalRow]) -> String {
    let mut out = String::new();
    let k = rows.first().map_or(8, |r| r.attempts);
    out.push_str(&format!(
        "{:<24} {:>8} {:>8} {:>6} {:>8} {:>8}\n",
        "solver",
        "solve@1",
        format!("solve@{k}"),
        "bugs",
        "runs",
        "time"
    ));
    for r in rows {
        out.push_str(&format!(
            "{:<24} {:>7.1}% {:>7.1}% {:>6} {:>8} {:>7.1}s\n",
            r.agent,
            100.0 * r.solve_at_1,
            100.0 * r.solve_at_k,
            r.bugs,
            r.sandbox_runs,
            r.wall_s
        ));
    }
    out
}
