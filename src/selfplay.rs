//! The self-play loop and its scheduler: inject -> validate -> G solver attempts -> rewards ->
//! higher-order bugs, round after round, with thousands of episodes in flight.
//!
//! Episodes are tokio tasks. An episode between steps is small (its state is a snapshot
//! overlay over the task's shared trees), so thousands can wait at once; steps that touch the
//! sandbox (`run`, `submit`) go to tokio's blocking pool behind a semaphore sized to the
//! cores, which is the backpressure. Threads rather than worker processes: `spar bench`
//! measured threads in one process at 1.78x one thread on 2 cores, processes at 1.64x, and
//! threads share one engine, one compiled module and the grading memo. A panicking or failing
//! episode is recorded with the reason and the others go on; cancellation ends the episodes
//! in flight as truncated, so none is lost. Seeds derive from the run seed, round, task and
//! attempt, and records are written in a fixed order, so the same seed gives the same
//! episodes and rewards.

use crate::agents::{AgentFactory, AgentKind, View};
use crate::corpus::OpenProject;
use crate::episode::rewards::{injector_reward, solve_rate};
use crate::episode::{Action, EnvSettings, Observation, SolverEnv, Task};
use crate::guest::Python;
use crate::inject::{InjectError, InjectSettings, Injector, Strategy, VALIDATION};
use crate::protocol::validate::error_chain;
use crate::protocol::{BugArtifact, ValidationReport, Validator};
use crate::snapshot::Snapshot;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;

/// Errors that stop the loop (a failing episode is a record, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SelfPlayError {
    /// Injection failed.
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// An artifact could not be read back.
    #[error(transparent)]
    Artifact(#[from] crate::protocol::ArtifactError),
    /// The episode log could not be written.
    #[error("writing {path}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("starting the scheduler")]
    Runtime(#[source] std::io::Error),
    /// Nothing to play on.
    #[error("no training projects given (built-in or imported, split = train)")]
    NoProjects,
}

/// Settings of a self-play run.
#[derive(Clone, Debug)]
pub struct SelfPlaySettings {
    /// Rounds to play.
    pub rounds: usize,
    /// The injector's strategy (the built-in pipeline).
    pub strategy: Strategy,
    /// An agent that plays the injector role through the tools instead of the strategy.
    pub injector_agent: Option<AgentKind>,
    /// The solver.
    pub solver: AgentKind,
    /// Solver attempts per bug (G).
    pub attempts: usize,
    /// Valid artifacts injected per project per round.
    pub artifacts_per_round: usize,
    /// Episodes in flight at most.
    pub concurrency: usize,
    /// Sandbox runs at once (the worker pool).
    pub workers: usize,
    /// Seed of everything.
    pub seed: u64,
    /// The injector reward's alpha.
    pub alpha: f64,
    /// Solver budgets.
    pub env: EnvSettings,
    /// Higher-order bugs made per round at most.
    pub max_higher_order: usize,
    /// Run directory: `episodes.jsonl`, `rounds.jsonl`, `artifacts/`.
    pub out: PathBuf,
    /// Show a progress bar.
    pub progress: bool,
}

/// One solver episode to play.
#[derive(Clone, Debug)]
pub struct EpisodeSpec {
    /// The bug.
    pub task: Arc<Task>,
    /// Which attempt (0..G).
    pub attempt: usize,
    /// The episode seed.
    pub seed: u64,
    /// The round.
    pub round: usize,
}

/// Everything about one finished episode, as written to `episodes.jsonl`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// `TASK#ATTEMPT`.
    pub episode: String,
    /// The round.
    pub round: usize,
    /// Always `solver` for now; injector episodes are the artifacts themselves.
    pub role: String,
    /// The task id.
    pub task: String,
    /// The corpus project.
    pub project: String,
    /// The bug's order.
    pub order: u32,
    /// The agent.
    pub agent: String,
    /// The attempt.
    pub attempt: usize,
    /// The episode seed.
    pub seed: u64,
    /// Actions in order.
    pub actions: Vec<Action>,
    /// Observations in order; the first is the specification.
    pub observations: Vec<Observation>,
    /// The reward of each step.
    pub rewards: Vec<f64>,
    /// The episode's return.
    pub reward: f64,
    /// The grade said solved.
    pub solved: bool,
    /// Ended by `submit`.
    pub terminated: bool,
    /// Ended by a budget or cancellation.
    pub truncated: bool,
    /// Sandbox runs (tool runs and grading).
    pub sandbox_runs: u32,
    /// Their fuel.
    pub fuel: u64,
    /// Their wall time, ms.
    pub sandbox_ms: f64,
    /// The episode's wall time, ms.
    pub wall_ms: f64,
    /// Why it failed as a harness error or crashed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the agent used, when it reports it (an LLM's tokens and requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<serde_json::Value>,
    /// The final repository state, for higher-order bugs (not serialized).
    #[serde(skip)]
    pub final_state: Option<Snapshot>,
}

/// Runs episodes: a bounded pool for sandbox work, a cap on episodes in flight, counters.
pub struct Scheduler {
    python: Arc<Python>,
    validator: Arc<Validator>,
    pool: Arc<Semaphore>,
    cancel: Arc<AtomicBool>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    latencies_ms: Mutex<Vec<f64>>,
}

/// Scheduler counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SchedulerStats {
    /// Most episodes in flight at once.
    pub peak_in_flight: usize,
    /// Wall times of sandbox steps that ran (memo hits excluded), ms.
    pub latencies_ms: Vec<f64>,
}

impl Scheduler {
    /// A scheduler over `workers` concurrent sandbox runs.
    pub fn new(python: Arc<Python>, validator: Arc<Validator>, workers: usize) -> Arc<Self> {
        Arc::new(Scheduler {
            python,
            validator,
            pool: Arc::new(Semaphore::new(workers.max(1))),
            cancel: Arc::new(AtomicBool::new(false)),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            latencies_ms: Mutex::new(Vec::new()),
        })
    }

    /// Setting this flag ends every episode in flight at its next step (as truncated).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// The validator whose memo grading shares.
    pub fn validator(&self) -> &Arc<Validator> {
        &self.validator
    }

    /// Counters so far (and resets the latencies).
    pub fn take_stats(&self) -> SchedulerStats {
        SchedulerStats {
            peak_in_flight: self.peak_in_flight.swap(0, Ordering::Relaxed),
            latencies_ms: std::mem::take(
                &mut *self.latencies_ms.lock().unwrap_or_else(|e| e.into_inner()),
            ),
        }
    }

    /// Plays every episode, at most `concurrency` at once; records come back in `specs` order.
    pub async fn run_episodes(
        self: &Arc<Self>,
        specs: Vec<EpisodeSpec>,
        agent: (String, AgentFactory),
        env: EnvSettings,
        concurrency: usize,
        progress: Option<indicatif::ProgressBar>,
    ) -> Vec<EpisodeRecord> {
        let admit = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut handles = Vec::with_capacity(specs.len());
        for spec in &specs {
            let scheduler = self.clone();
            let spec_for_task = spec.clone();
            let agent = agent.clone();
            let env = env.clone();
            let admit = admit.clone();
            let progress = progress.clone();
            handles.push(tokio::spawn(async move {
                let _admitted = admit
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed");
                let now = scheduler.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                scheduler.peak_in_flight.fetch_max(now, Ordering::Relaxed);
                let record = scheduler.play(spec_for_task, agent, env).await;
                scheduler.in_flight.fetch_sub(1, Ordering::Relaxed);
                if let Some(p) = progress {
                    p.inc(1);
                }
                record
            }));
        }
        let mut records = Vec::with_capacity(handles.len());
        for (spec, handle) in specs.iter().zip(handles) {
            records.push(match handle.await {
                Ok(record) => record,
                Err(e) => failed_record(spec, &agent.0, format!("the episode crashed: {e}")),
            });
        }
        records
    }

    async fn play(
        self: &Arc<Self>,
        spec: EpisodeSpec,
        (name, factory): (String, AgentFactory),
        settings: EnvSettings,
    ) -> EpisodeRecord {
        let started = Instant::now();
        let mut record = failed_record(&spec, &name, String::new());
        record.error = None;
        let mut agent = match factory(&spec.task, spec.seed, spec.attempt) {
            Ok(a) => a,
            Err(e) => return failed_record(&spec, &name, e.to_string()),
        };
        let mut env = SolverEnv::new(self.python.clone(), self.validator.clone(), settings);
        let mut observation = env.reset(spec.task.clone(), spec.seed);
        record.observations.push(observation.clone());
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                record.truncated = true;
                record.reward = -1.0;
                record.error = Some("cancelled".into());
                break;
            }
            let action = {
                let view = View {
                    specification: &spec.task.specification,
                    state: env.state(),
                    test_command: &spec.task.command,
                    turn: record.actions.len() as u32,
                };
                if agent.blocks() {
                    tokio::task::block_in_place(|| agent.act(&observation, &view))
                } else {
                    agent.act(&observation, &view)
                }
            };
            if let Some(failure) = agent.failure() {
                record.error = Some(failure);
                break;
            }
            let sandboxed = matches!(action, Action::Run { .. } | Action::Submit);
            let (returned_env, result) = if sandboxed {
                let permit = self
                    .pool
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("pool is never closed");
                let act = action.clone();
                let joined = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let result = env.step(&act);
                    (env, result)
                })
                .await;
                match joined {
                    Ok(pair) => pair,
                    Err(e) => {
                        record.error = Some(format!("the episode crashed in a sandbox step: {e}"));
                        record.actions.push(action);
                        record.wall_ms = started.elapsed().as_secs_f64() * 1e3;
                        return record;
                    }
                }
            } else {
                let result = env.step(&action);
                (env, result)
            };
            env = returned_env;
            record.actions.push(action);
            let step = match result {
                Ok(step) => step,
                Err(e) => {
                    record.error = Some(error_chain(&e));
                    break;
                }
            };
            record.sandbox_runs += step.info.sandbox_runs;
            record.fuel += step.info.fuel;
            record.sandbox_ms += step.info.sandbox_ms;
            if step.info.sandbox_runs > 0 {
                self.latencies_ms
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(step.info.sandbox_ms);
            }
            record.rewards.push(step.reward);
            record.observations.push(step.observation.clone());
            if step.terminated || step.truncated {
                record.terminated = step.terminated;
                record.truncated = step.truncated;
                record.reward = step.reward;
                record.solved = step.info.grade.as_ref().is_some_and(|g| g.solved);
                break;
            }
            observation = step.observation;
        }
        record.final_state = Some(env.state().clone());
        record.wall_ms = started.elapsed().as_secs_f64() * 1e3;
        record.usage = agent.usage();
        record
    }
}

fn failed_record(spec: &EpisodeSpec, agent: &str, reason: String) -> EpisodeRecord {
    let mut record = EpisodeRecord::blank(
        format!("{}#{}", spec.task.id, spec.attempt),
        spec.round,
        "solver",
        &spec.task.project,
        agent.to_owned(),
        spec.attempt,
        spec.seed,
    );
    record.task = spec.task.id.clone();
    record.order = spec.task.order;
    record.error = Some(reason);
    record
}

impl EpisodeRecord {
    /// A record with nothing played yet.
    fn blank(
        episode: String,
        round: usize,
        role: &str,
        project: &str,
        agent: String,
        attempt: usize,
        seed: u64,
    ) -> Self {
        EpisodeRecord {
            episode,
            round,
            role: role.to_owned(),
            task: String::new(),
            project: project.to_owned(),
            order: 1,
            agent,
            attempt,
            seed,
            actions: Vec::new(),
            observations: Vec::new(),
            rewards: Vec::new(),
            reward: 0.0,
            solved: false,
            terminated: false,
            truncated: false,
            sandbox_runs: 0,
            fuel: 0,
            sandbox_ms: 0.0,
            wall_ms: 0.0,
            error: None,
            usage: None,
            final_state: None,
        }
    }
}

/// The `run` tool calls in `records`: each is one sandbox test run.
fn tool_runs(records: &[EpisodeRecord]) -> usize {
    records
        .iter()
        .flat_map(|r| &r.actions)
        .filter(|a| matches!(a, Action::Run { .. }))
        .count()
}

/// A seed for one episode, from the run seed and its coordinates (FNV-1a over them).
pub fn episode_seed(seed: u64, round: usize, task: &str, attempt: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in round
        .to_le_bytes()
        .iter()
        .chain(task.as_bytes())
        .chain(&attempt.to_le_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One round's numbers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RoundStats {
    /// The round (1-based).
    pub round: usize,
    /// Candidate artifacts that reached validation.
    pub proposed: usize,
    /// Valid artifacts.
    pub valid: usize,
    /// Tasks played (first- and higher-order).
    pub tasks: usize,
    /// Of those, higher-order.
    pub higher_order_tasks: usize,
    /// Episodes played.
    pub episodes: usize,
    /// Episodes that failed as harness errors.
    pub failed_episodes: usize,
    /// Solve rate over all graded attempts.
    pub solve_rate: f64,
    /// Mean injector reward over proposed artifacts (-1 for invalid ones).
    pub injector_reward: f64,
    /// Mean solver reward.
    pub solver_reward: f64,
    /// Higher-order bugs made for the next round.
    pub higher_order_made: usize,
    /// Test runs executed in the sandbox (memo hits excluded).
    pub test_runs: usize,
    /// Sandbox time of solver steps, s.
    pub sandbox_s: f64,
    /// Round wall time, s.
    pub wall_s: f64,
}

/// Plays one injector episode: the agent explores `project` with the tools and submits a
/// change; the record's reward is -1 for an invalid artifact and is filled in later otherwise.
#[allow(clippy::too_many_arguments)]
fn play_injector(
    python: &Arc<Python>,
    validator: &Arc<Validator>,
    project: &Arc<OpenProject>,
    kind: &AgentKind,
    seed: u64,
    index: usize,
    round: usize,
    settings: &EnvSettings,
) -> (EpisodeRecord, Option<crate::episode::Injected>) {
    let started = Instant::now();
    let mut record = EpisodeRecord::blank(
        format!("{}@inject#{index}", project.name),
        round,
        "injector",
        &project.name,
        kind.to_string(),
        index,
        seed,
    );
    let mut env = crate::episode::InjectorEnv::new(
        python.clone(),
        validator.clone(),
        settings.clone(),
        &kind.to_string(),
    );
    let mut observation = env.reset(project.clone(), seed);
    record.observations.push(observation.clone());
    // Agents that need a task get a stand-in: the project as both original and start.
    let stand_in = Task {
        id: record.episode.clone(),
        project: project.name.clone(),
        order: 1,
        original: project.repo.clone(),
        buggy: project.repo.clone(),
        run: project.run.clone(),
        command: project.test_command.clone(),
        parser: None,
        test_files: Vec::new(),
        fail_to_pass: Vec::new(),
        pass_to_pass: Vec::new(),
        specification: observation.text.clone(),
        bug_patch: crate::diff::Patch::default(),
    };
    let mut agent = match kind.make(&stand_in, seed, index) {
        Ok(a) => a,
        Err(e) => {
            record.error = Some(e.to_string());
            return (record, None);
        }
    };
    let mut injected = None;
    loop {
        let action = {
            let view = View {
                specification: &stand_in.specification,
                state: env.state(),
                test_command: &project.test_command,
                turn: record.actions.len() as u32,
            };
            agent.act(&observation, &view)
        };
        if let Some(failure) = agent.failure() {
            record.error = Some(failure);
            break;
        }
        let result = env.step(&action);
        record.actions.push(action);
        let (step, done) = match result {
            Ok(pair) => pair,
            Err(e) => {
                record.error = Some(error_chain(&e));
                break;
            }
        };
        record.sandbox_runs += step.info.sandbox_runs;
        record.sandbox_ms += step.info.sandbox_ms;
        record.rewards.push(step.reward);
        record.observations.push(step.observation.clone());
        if step.terminated || step.truncated {
            record.terminated = step.terminated;
            record.truncated = step.truncated;
            record.reward = step.reward;
            if let Some(inj) = done {
                record.task = inj.artifact.id();
                injected = Some(inj);
            }
            break;
        }
        observation = step.observation;
    }
    record.wall_ms = started.elapsed().as_secs_f64() * 1e3;
    record.usage = agent.usage();
    (record, injected)
}

/// The task of an artifact that `spar inject` wrote (with its `validation.json`).
pub(crate) fn load_task(
    dir: &std::path::Path,
    project: &OpenProject,
) -> Result<Task, SelfPlayError> {
    let artifact = BugArtifact::load(dir)?;
    let path = dir.join(VALIDATION);
    let validation: ValidationReport = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| SelfPlayError::Log {
            path: path.clone(),
            source: std::io::Error::other("missing or unreadable validation report"),
        })?;
    Task::from_artifact(
        &artifact,
        &validation,
        project.repo.clone(),
        project.run.clone(),
    )
    .map_err(|e| SelfPlayError::Log {
        path: dir.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// The scheduler's runtime: one worker thread per core for episodes, `workers` (plus slack)
/// blocking threads for sandbox steps.
pub(crate) fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, SelfPlayError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(crate::par::cores().max(2))
        .max_blocking_threads(workers.max(1) + 2)
        .thread_stack_size(crate::sandbox::RUN_THREAD_STACK)
        .enable_all()
        .build()
        .map_err(SelfPlayError::Runtime)
}

/// Runs the whole loop; writes `episodes.jsonl` and `rounds.jsonl` into the run directory.
pub fn run(
    python: Arc<Python>,
    validator: Arc<Validator>,
    projects: &[OpenProject],
    settings: &SelfPlaySettings,
    mut on_round: impl FnMut(&RoundStats),
) -> Result<Vec<RoundStats>, SelfPlayError> {
    if projects.is_empty() {
        return Err(SelfPlayError::NoProjects);
    }
    let runtime = runtime(settings.workers)?;
    let scheduler = Scheduler::new(python.clone(), validator.clone(), settings.workers);
    // Ctrl-C ends the episodes in flight as truncated; they are still written, none is lost.
    let cancel = scheduler.cancel_flag();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    let log_err = |path: &PathBuf| {
        let path = path.clone();
        move |source| SelfPlayError::Log { path, source }
    };
    std::fs::create_dir_all(&settings.out).map_err(log_err(&settings.out))?;
    let episodes_path = settings.out.join("episodes.jsonl");
    let rounds_path = settings.out.join("rounds.jsonl");
    let mut episodes_log =
        std::fs::File::create(&episodes_path).map_err(log_err(&episodes_path))?;
    let mut rounds_log = std::fs::File::create(&rounds_path).map_err(log_err(&rounds_path))?;
    let mut pending_higher: Vec<Arc<Task>> = Vec::new();
    let mut all = Vec::new();
    for round in 0..settings.rounds {
        let started = Instant::now();
        let runs_before = validator.runs_executed();
        let mut stats = RoundStats {
            round: round + 1,
            ..RoundStats::default()
        };
        // Inject and validate.
        let mut tasks: Vec<(Arc<Task>, bool)> = Vec::new();
        let mut injector_rewards: Vec<(String, bool)> = Vec::new();
        let mut injector_records = Vec::new();
        for project in projects {
            let round_dir = settings
                .out
                .join("artifacts")
                .join(format!("round-{}", round + 1));
            if let Some(agent) = &settings.injector_agent {
                // An agent plays the injector role through the tools, one episode per artifact.
                // The episodes run side by side: an LLM injector's requests overlap.
                let project_arc = Arc::new(project.clone());
                let indices: Vec<usize> = (0..settings.artifacts_per_round).collect();
                let played = crate::par::map(&indices, indices.len(), |&i| {
                    let seed = episode_seed(settings.seed, round, &project.name, i);
                    play_injector(
                        &python,
                        &validator,
                        &project_arc,
                        agent,
                        seed,
                        i,
                        round + 1,
                        &settings.env,
                    )
                });
                for (record, injected) in played {
                    stats.proposed += 1;
                    match injected {
                        Some(inj) => {
                            let dir = round_dir.join(inj.artifact.id());
                            crate::inject::write_artifact(&inj.artifact, &inj.validation, &dir)?;
                            let task = load_task(&dir, project)?;
                            stats.valid += 1;
                            injector_rewards.push((task.id.clone(), true));
                            tasks.push((Arc::new(task), true));
                        }
                        None => injector_rewards.push((String::new(), false)),
                    }
                    injector_records.push(record);
                }
                continue;
            }
            let injector = Injector::new(&python, &validator, project)?;
            let report = injector.inject(&InjectSettings {
                strategy: settings.strategy,
                count: settings.artifacts_per_round,
                seed: settings.seed.wrapping_add(round as u64),
                max_candidates: 40 * settings.artifacts_per_round.max(1),
                out: round_dir,
            })?;
            for y in report.yields.values() {
                stats.proposed += y.validated;
                stats.valid += y.valid;
                for _ in 0..y.invalid {
                    injector_rewards.push((String::new(), false));
                }
            }
            for written in &report.artifacts {
                let task = load_task(&written.dir, project)?;
                injector_rewards.push((task.id.clone(), true));
                tasks.push((Arc::new(task), true));
            }
        }
        stats.higher_order_tasks = pending_higher.len();
        tasks.extend(pending_higher.drain(..).map(|t| (t, false)));
        stats.tasks = tasks.len();
        // Solve.
        let specs: Vec<EpisodeSpec> = tasks
            .iter()
            .flat_map(|(task, _)| {
                (0..settings.attempts).map(move |attempt| EpisodeSpec {
                    task: task.clone(),
                    attempt,
                    seed: episode_seed(settings.seed, round, &task.id, attempt),
                    round: round + 1,
                })
            })
            .collect();
        let bar = settings.progress.then(|| {
            let bar = indicatif::ProgressBar::new(specs.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "round {}/{} {{bar:30}} {{pos}}/{{len}} episodes {{elapsed}}",
                    round + 1,
                    settings.rounds
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let records = runtime.block_on(scheduler.run_episodes(
            specs,
            (settings.solver.to_string(), settings.solver.factory()),
            settings.env.clone(),
            settings.concurrency,
            bar.clone(),
        ));
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        // Rewards.
        let graded: Vec<&EpisodeRecord> = records.iter().filter(|r| r.error.is_none()).collect();
        stats.episodes = records.len();
        stats.failed_episodes = records.len() - graded.len();
        stats.solve_rate = solve_rate(&graded.iter().map(|r| r.solved).collect::<Vec<_>>());
        stats.solver_reward = mean(graded.iter().map(|r| r.reward));
        let mut inj = Vec::new();
        for (task_id, valid) in &injector_rewards {
            if !valid {
                inj.push(injector_reward(false, 0.0, settings.alpha));
                continue;
            }
            let solved: Vec<bool> = graded
                .iter()
                .filter(|r| &r.task == task_id)
                .map(|r| r.solved)
                .collect();
            inj.push(injector_reward(true, solve_rate(&solved), settings.alpha));
        }
        stats.injector_reward = mean(inj.iter().copied());
        // Injector episodes get their reward once the solvers have played.
        let mut valid_rewards = injector_rewards
            .iter()
            .zip(&inj)
            .filter(|((_, valid), _)| *valid)
            .map(|(_, r)| *r);
        for record in &mut injector_records {
            if record.error.is_none() && record.reward == 0.0 && record.terminated {
                record.reward = valid_rewards.next().unwrap_or(0.0);
                if let Some(last) = record.rewards.last_mut() {
                    *last = record.reward;
                }
            }
        }
        // Higher-order bugs from failed first-order attempts.
        for (task, first_order) in &tasks {
            if !first_order {
                continue;
            }
            for r in graded.iter().filter(|r| r.task == task.id && !r.solved) {
                if pending_higher.len() >= settings.max_higher_order {
                    break;
                }
                if let Some(state) = &r.final_state {
                    if let Some(higher) = task.higher_order(state, r.attempt) {
                        pending_higher.push(Arc::new(higher));
                    }
                }
            }
        }
        stats.higher_order_made = pending_higher.len();
        stats.test_runs = validator.runs_executed() - runs_before + tool_runs(&records);
        stats.sandbox_s = records.iter().map(|r| r.sandbox_ms).sum::<f64>() / 1e3;
        stats.wall_s = started.elapsed().as_secs_f64();
        for r in injector_records.iter().chain(&records) {
            serde_json::to_writer(&mut episodes_log, r).map_err(|e| SelfPlayError::Log {
                path: episodes_path.clone(),
                source: e.into(),
            })?;
            writeln!(episodes_log).map_err(log_err(&episodes_path))?;
        }
        serde_json::to_writer(&mut rounds_log, &stats).map_err(|e| SelfPlayError::Log {
            path: rounds_path.clone(),
            source: e.into(),
        })?;
        writeln!(rounds_log).map_err(log_err(&rounds_path))?;
        on_round(&stats);
        all.push(stats);
        if scheduler.cancel_flag().load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(all)
}

pub(crate) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// The table header for [`RoundStats`] rows.
pub const TABLE_HEADER: &str = "ROUND  PROPOSED  VALID  TASKS(HO)  EPISODES  SOLVE   INJ-R   SOL-R  HO-MADE  TEST-RUNS  SANDBOX-s  WALL-s";

impl std::fmt::Display for RoundStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>5}  {:>8}  {:>5}  {:>9}  {:>8}  {:>4.0}%  {:>6.3}  {:>6.3}  {:>7}  {:>9}  {:>9.1}  {:>6.1}",
            self.round,
            self.proposed,
            self.valid,
            format!("{}({})", self.tasks, self.higher_order_tasks),
            self.episodes,
            self.solve_rate * 100.0,
            self.injector_reward,
            self.solver_reward,
            self.higher_order_made,
            self.test_runs,
            self.sandbox_s,
            self.wall_s
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episode_seeds_depend_on_every_coordinate() {
        let a = episode_seed(1, 0, "t", 0);
        assert_eq!(a, episode_seed(1, 0, "t", 0));
        assert_ne!(a, episode_seed(2, 0, "t", 0));
        assert_ne!(a, episode_seed(1, 1, "t", 0));
        assert_ne!(a, episode_seed(1, 0, "u", 0));
        assert_ne!(a, episode_seed(1, 0, "t", 1));
    }
}

/// What `spar bench selfplay` measures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelfPlayBench {
    /// The project.
    pub project: String,
    /// The solver.
    pub solver: String,
    /// Valid artifacts injected.
    pub artifacts: usize,
    /// Injection and validation wall time, s.
    pub inject_s: f64,
    /// Valid artifacts per core-minute of injection.
    pub artifacts_per_core_minute: f64,
    /// Episodes played.
    pub episodes: usize,
    /// Episodes that reached a grade of +1.
    pub solved: usize,
    /// Episodes that failed as harness errors.
    pub failed: usize,
    /// Episode phase wall time, s.
    pub episodes_s: f64,
    /// Episodes per second.
    pub episodes_per_s: f64,
    /// Sandbox test runs executed during the episodes (memo hits excluded).
    pub test_runs: usize,
    /// Test runs per second.
    pub test_runs_per_s: f64,
    /// Median wall time of sandbox steps that ran (memo hits excluded), ms; 0 when none ran.
    pub p50_test_run_ms: f64,
    /// 99th percentile, ms.
    pub p99_test_run_ms: f64,
    /// Most episodes in flight at once.
    pub peak_in_flight: usize,
    /// Peak resident memory of the process, MiB (VmHWM).
    pub peak_rss_mib: f64,
}

/// Injects `artifacts` bugs into `project`, then plays `episodes` solver episodes spread over
/// them with up to `concurrency` in flight, and measures it all.
#[allow(clippy::too_many_arguments)]
pub fn bench(
    python: Arc<Python>,
    validator: Arc<Validator>,
    project: &OpenProject,
    artifacts: usize,
    episodes: usize,
    concurrency: usize,
    workers: usize,
    solver: AgentKind,
    out: PathBuf,
) -> Result<SelfPlayBench, SelfPlayError> {
    let started = Instant::now();
    let injector = Injector::new(&python, &validator, project)?;
    let report = injector.inject(&InjectSettings {
        strategy: Strategy::Procedural,
        count: artifacts.max(1),
        seed: 0,
        max_candidates: 40 * artifacts.max(1),
        out: out.join("artifacts"),
    })?;
    let inject_s = started.elapsed().as_secs_f64();
    let mut tasks = Vec::new();
    for written in &report.artifacts {
        let task = load_task(&written.dir, project)?;
        tasks.push(Arc::new(task));
    }
    if tasks.is_empty() {
        return Err(SelfPlayError::NoProjects);
    }
    let specs: Vec<EpisodeSpec> = (0..episodes)
        .map(|i| {
            let task = tasks[i % tasks.len()].clone();
            EpisodeSpec {
                seed: episode_seed(0, 0, &task.id, i),
                task,
                attempt: i,
                round: 1,
            }
        })
        .collect();
    let runtime = runtime(workers)?;
    let scheduler = Scheduler::new(python, validator.clone(), workers);
    let runs_before = validator.runs_executed();
    let played = Instant::now();
    let records = runtime.block_on(scheduler.run_episodes(
        specs,
        (solver.to_string(), solver.factory()),
        EnvSettings::default(),
        concurrency,
        None,
    ));
    let episodes_s = played.elapsed().as_secs_f64();
    let stats = scheduler.take_stats();
    let test_runs = validator.runs_executed() - runs_before + tool_runs(&records);
    let mut lat = stats.latencies_ms;
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize]
        }
    };
    Ok(SelfPlayBench {
        project: project.name.clone(),
        solver: solver.to_string(),
        artifacts: tasks.len(),
        inject_s,
        artifacts_per_core_minute: tasks.len() as f64
            / (inject_s * crate::par::cores() as f64 / 60.0),
        episodes: records.len(),
        solved: records.iter().filter(|r| r.solved).count(),
        failed: records.iter().filter(|r| r.error.is_some()).count(),
        episodes_s,
        episodes_per_s: records.len() as f64 / episodes_s.max(1e-9),
        test_runs,
        test_runs_per_s: test_runs as f64 / episodes_s.max(1e-9),
        p50_test_run_ms: pct(0.5),
        p99_test_run_ms: pct(0.99),
        peak_in_flight: stats.peak_in_flight,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Peak resident set size of this process (Linux `VmHWM`), MiB; 0 where unknown.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

impl std::fmt::Display for SelfPlayBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "self-play bench on {} with the {} solver",
            self.project, self.solver
        )?;
        writeln!(
            f,
            "  injection:  {} valid artifacts in {:.1} s = {:.2} per core-minute",
            self.artifacts, self.inject_s, self.artifacts_per_core_minute
        )?;
        writeln!(
            f,
            "  episodes:   {} in {:.2} s = {:.0} per s; {} solved, {} failed; peak {} in flight",
            self.episodes,
            self.episodes_s,
            self.episodes_per_s,
            self.solved,
            self.failed,
            self.peak_in_flight
        )?;
        writeln!(
            f,
            "  test runs:  {} executed = {:.2} per s; latency p50 {:.0} ms, p99 {:.0} ms",
            self.test_runs, self.test_runs_per_s, self.p50_test_run_ms, self.p99_test_run_ms
        )?;
        writeln!(f, "  memory:     peak RSS {:.0} MiB", self.peak_rss_mib)
    }
}
