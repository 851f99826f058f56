//! Playing many episodes at once: the [`Scheduler`] and its one driver, [`Scheduler::drive`],
//! which plays an episode of either role to its end (agent acts, environment steps, record
//! grows). Self-play, training and evaluation all play their episodes through it.
//!
//! Episodes are tokio tasks. An episode between steps is small (its state is a snapshot
//! overlay over the task's shared trees), so thousands can wait at once; steps that touch the
//! sandbox (`run`, `submit`) go to tokio's blocking pool behind a semaphore sized to the
//! cores, which is the backpressure. Threads rather than worker processes: `spar bench`
//! measured threads in one process at 1.78x one thread on 2 cores, processes at 1.64x, and
//! threads share one engine, one compiled module and the grading memo. A panicking or failing
//! episode is recorded with the reason and the others go on; cancellation ends the episodes
//! in flight as truncated, so none is lost.

use crate::agents::AgentFactory;
use crate::corpus::OpenProject;
use crate::episode::{
    Action, Agent, Assignment, Env, EnvSettings, EpisodeError, EpisodeRecord, EpisodeSpec,
    Injected, InjectorEnv, SolverEnv, Step,
};
use crate::guest::Python;
use crate::protocol::validate::error_chain;
use crate::protocol::Validator;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;

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

/// One injector episode to play: the `index`th in `project` this round.
#[derive(Clone, Debug)]
pub struct InjectorSpec {
    /// The project to inject a bug into.
    pub project: Arc<OpenProject>,
    /// Which episode of the round in this project.
    pub index: usize,
    /// The episode seed.
    pub seed: u64,
    /// The self-play round (1-based), recorded in the episode's record.
    pub round: usize,
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

    /// Ctrl-C ends the episodes in flight as truncated (they are still recorded: none is
    /// lost) and the caller's loop stops at its next check of [`Scheduler::cancel_flag`].
    pub fn cancel_on_ctrl_c(&self, runtime: &tokio::runtime::Runtime) {
        let cancel = self.cancel.clone();
        runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.store(true, Ordering::Relaxed);
            }
        });
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

    /// Plays every solver episode, at most `concurrency` at once; records come back in
    /// `specs` order.
    pub async fn run_episodes(
        self: &Arc<Self>,
        specs: Vec<EpisodeSpec>,
        agent: (String, AgentFactory),
        env: EnvSettings,
        concurrency: usize,
        progress: Option<indicatif::ProgressBar>,
    ) -> Vec<EpisodeRecord> {
        let admit = Arc::new(Semaphore::new(concurrency.max(1)));
        let play = |spec: &EpisodeSpec| {
            let (scheduler, spec, agent) = (self.clone(), spec.clone(), agent.clone());
            let (env, admit, progress) = (env.clone(), admit.clone(), progress.clone());
            async move {
                let _admitted = admit.acquire_owned().await.expect("never closed");
                let record = scheduler.counted(scheduler.solve(spec, agent, env)).await;
                if let Some(p) = progress {
                    p.inc(1);
                }
                record
            }
        };
        let crashed = |spec: &EpisodeSpec, why: tokio::task::JoinError| {
            EpisodeRecord::solver(spec, &agent.0).failed(format!("the episode crashed: {why}"))
        };
        in_order(&specs, play, crashed).await
    }

    /// Plays every injector episode with agents of `kind`, all at once (an LLM injector's
    /// requests overlap); records and valid artifacts come back in `specs` order.
    pub async fn run_injector_episodes(
        self: &Arc<Self>,
        specs: Vec<InjectorSpec>,
        agent: (String, AgentFactory),
        env: EnvSettings,
    ) -> Vec<(EpisodeRecord, Option<Injected>)> {
        let play = |spec: &InjectorSpec| {
            let (scheduler, spec) = (self.clone(), spec.clone());
            let (agent, env) = (agent.clone(), env.clone());
            async move { scheduler.counted(scheduler.inject(spec, agent, env)).await }
        };
        let crashed = |spec: &InjectorSpec, why: tokio::task::JoinError| {
            let project = &spec.project.name;
            let record =
                EpisodeRecord::injector(project, spec.index, spec.round, &agent.0, spec.seed);
            (record.failed(format!("the episode crashed: {why}")), None)
        };
        in_order(&specs, play, crashed).await
    }

    /// Counts an episode in flight while it plays.
    async fn counted<T>(&self, episode: impl std::future::Future<Output = T>) -> T {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        let result = episode.await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        result
    }

    async fn solve(
        self: &Arc<Self>,
        spec: EpisodeSpec,
        (name, factory): (String, AgentFactory),
        settings: EnvSettings,
    ) -> EpisodeRecord {
        let record = EpisodeRecord::solver(&spec, &name);
        let mut agent = match factory(Assignment::Solve(&spec.task), spec.seed, spec.attempt) {
            Ok(agent) => agent,
            Err(e) => return record.failed(error_chain(&e)),
        };
        let env = SolverEnv::new(self.python.clone(), self.validator.clone(), settings);
        let (mut record, env) = self
            .drive(env, spec.task.clone(), spec.seed, agent.as_mut(), record)
            .await;
        record.final_state = env.map(|env| env.state().clone());
        record
    }

    async fn inject(
        self: &Arc<Self>,
        spec: InjectorSpec,
        (name, factory): (String, AgentFactory),
        settings: EnvSettings,
    ) -> (EpisodeRecord, Option<Injected>) {
        let record =
            EpisodeRecord::injector(&spec.project.name, spec.index, spec.round, &name, spec.seed);
        let assignment = Assignment::Inject(&spec.project);
        let mut agent = match factory(assignment, spec.seed, spec.index) {
            Ok(agent) => agent,
            Err(e) => return (record.failed(error_chain(&e)), None),
        };
        let env = InjectorEnv::new(self.python.clone(), self.validator.clone(), settings, &name);
        let (mut record, env) = self
            .drive(env, spec.project.clone(), spec.seed, agent.as_mut(), record)
            .await;
        let injected = env.and_then(|mut env| env.take_injected());
        if let Some(injected) = &injected {
            record.task = injected.artifact.id();
        }
        (record, injected)
    }

    /// Plays one episode in `env` from `start` to its end: the agent acts on each
    /// observation, the environment steps (sandbox steps behind the pool, off the async
    /// workers), the record grows one step at a time. A harness failure, an agent's failure or
    /// cancellation ends the episode with the reason in the record. The environment comes
    /// back for what the episode left (its final state, an injected artifact), unless a step
    /// crashed it.
    pub async fn drive<E: Env + 'static>(
        &self,
        mut env: E,
        start: E::Start,
        seed: u64,
        agent: &mut dyn Agent,
        mut record: EpisodeRecord,
    ) -> (EpisodeRecord, Option<E>) {
        let started = Instant::now();
        let mut observation = env.reset(start, seed);
        record.begin(&observation);
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                record.cancel();
                break;
            }
            let action = if agent.blocks() {
                tokio::task::block_in_place(|| agent.act(&observation, &env.view()))
            } else {
                agent.act(&observation, &env.view())
            };
            if let Some(failure) = agent.failure() {
                record.error = Some(failure);
                break;
            }
            let result = match self.step(env, action.clone()).await {
                Ok((returned, result)) => {
                    env = returned;
                    result
                }
                Err(crashed) => {
                    record.actions.push(action);
                    let why = format!("the episode crashed in a sandbox step: {crashed}");
                    record.error = Some(why);
                    record.wall_ms = started.elapsed().as_secs_f64() * 1e3;
                    return (record, None);
                }
            };
            let step = match result {
                Ok(step) => step,
                Err(e) => {
                    record.actions.push(action);
                    record.error = Some(error_chain(&e));
                    break;
                }
            };
            self.note_latency(&step);
            if record.push(action, &step) {
                break;
            }
            observation = step.observation;
        }
        record.wall_ms = started.elapsed().as_secs_f64() * 1e3;
        record.usage = agent.usage();
        (record, Some(env))
    }

    /// One step: cheap tools on the async worker; steps that may run the sandbox
    /// ([`Action::may_run_sandbox`]) on the blocking pool behind a sandbox permit. An error when the step panicked (the environment is lost).
    async fn step<E: Env + 'static>(
        &self,
        mut env: E,
        action: Action,
    ) -> Result<(E, Result<Step, EpisodeError>), tokio::task::JoinError> {
        if !action.may_run_sandbox() {
            let result = env.step(&action);
            return Ok((env, result));
        }
        let permit = self
            .pool
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let result = env.step(&action);
            (env, result)
        })
        .await
    }

    fn note_latency(&self, step: &Step) {
        if step.info.sandbox_runs > 0 {
            self.latencies_ms
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(step.info.sandbox_ms);
        }
    }
}

/// Spawns `play(spec)` for every spec as its own task; the results come back in `specs` order,
/// `crashed(spec, why)` standing in for an episode whose task panicked.
async fn in_order<S, T, F>(
    specs: &[S],
    play: impl Fn(&S) -> F,
    crashed: impl Fn(&S, tokio::task::JoinError) -> T,
) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = specs.iter().map(|spec| tokio::spawn(play(spec))).collect();
    let mut results = Vec::with_capacity(handles.len());
    for (spec, handle) in specs.iter().zip(handles) {
        results.push(handle.await.unwrap_or_else(|why| crashed(spec, why)));
    }
    results
}

/// The scheduler's runtime: one worker thread per core for episodes, `workers` (plus slack)
/// blocking threads for sandbox steps.
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(crate::par::cores().max(2))
        .max_blocking_threads(workers.max(1) + 2)
        .thread_stack_size(crate::sandbox::RUN_THREAD_STACK)
        .enable_all()
        .build()
}

/// The `q` quantile (0 to 1) of `sorted` values, the nearest rank; 0 for none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => sorted[((n - 1) as f64 * q).round() as usize],
    }
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
