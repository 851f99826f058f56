//! The self-play loop: inject -> validate -> G solver attempts -> rewards ->
//! higher-order bugs, round after round, with thousands of episodes in flight.
//!
//! Episodes play through [`crate::rollout::Scheduler`]. Seeds derive from the run seed, round, task and
//! attempt, and records are written in a fixed order, so the same seed gives the same
//! episodes and rewards.

use crate::agents::AgentKind;
use crate::corpus::OpenProject;
use crate::episode::record::mean;
use crate::episode::rewards::{injector_reward, solve_rate};
use crate::episode::{
    episode_seed, Action, EnvSettings, EpisodeError, EpisodeRecord, EpisodeSpec, Task,
};
use crate::guest::Python;
use crate::inject::{InjectError, InjectSettings, Injector, Strategy};
use crate::protocol::Validator;
use crate::rollout::{peak_rss_mib, percentile, runtime, InjectorSpec, Scheduler};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Errors that stop the loop (a failing episode is a record, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SelfPlayError {
    /// Injection failed.
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// An artifact could not be read back.
    #[error(transparent)]
    Artifact(#[from] crate::protocol::ArtifactError),
    /// A written artifact could not be turned back into a task.
    #[error(transparent)]
    Task(#[from] EpisodeError),
    /// The episode log could not be written.
    #[error("writing {path}")]
    Log {
        /// The run directory, or its `episodes.jsonl` or `rounds.jsonl`, that failed.
        path: PathBuf,
        /// The I/O error (a JSON encoding error is passed on as one).
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
    /// The agent that makes the `attempts` solver attempts at each bug.
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

/// The `run` tool calls in `records`: each is one sandbox test run.
fn tool_runs(records: &[EpisodeRecord]) -> usize {
    records
        .iter()
        .flat_map(|r| &r.actions)
        .filter(|a| matches!(a, Action::Run { .. }))
        .count()
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
    let runtime = runtime(settings.workers).map_err(SelfPlayError::Runtime)?;
    let scheduler = Scheduler::new(python.clone(), validator.clone(), settings.workers);
    scheduler.cancel_on_ctrl_c(&runtime);
    let ctx = Round {
        python: &python,
        validator: &validator,
        projects,
        settings,
        runtime: &runtime,
        scheduler: &scheduler,
    };
    let mut logs = Logs::create(&settings.out)?;
    let mut pending_higher: Vec<Arc<Task>> = Vec::new();
    let mut all = Vec::new();
    for round in 0..settings.rounds {
        let stats = ctx.play(round, &mut pending_higher, &mut logs)?;
        on_round(&stats);
        all.push(stats);
        if scheduler.cancel_flag().load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(all)
}

/// What every round shares.
struct Round<'a> {
    python: &'a Arc<Python>,
    validator: &'a Arc<Validator>,
    projects: &'a [OpenProject],
    settings: &'a SelfPlaySettings,
    runtime: &'a tokio::runtime::Runtime,
    scheduler: &'a Arc<Scheduler>,
}

/// What a round's injection produced.
#[derive(Default)]
struct Injection {
    /// The valid artifacts' tasks, each with whether it is first-order.
    tasks: Vec<(Arc<Task>, bool)>,
    /// Per proposal: its task id and whether it was valid.
    proposals: Vec<(String, bool)>,
    /// The injector agents' episodes (none for a built-in strategy).
    records: Vec<EpisodeRecord>,
    /// Candidates that reached validation.
    validated: usize,
}

impl Round<'_> {
    /// Round `round` (0-based): inject, solve the new bugs and last round's higher-order ones,
    /// reward both roles, and make higher-order bugs for the next round.
    fn play(
        &self,
        round: usize,
        pending_higher: &mut Vec<Arc<Task>>,
        logs: &mut Logs,
    ) -> Result<RoundStats, SelfPlayError> {
        let started = Instant::now();
        let runs_before = self.validator.runs_executed();
        let mut injection = Injection::default();
        for project in self.projects {
            self.inject(round, project, &mut injection)?;
        }
        let mut stats = RoundStats {
            round: round + 1,
            proposed: injection.validated,
            valid: injection
                .proposals
                .iter()
                .filter(|(_, valid)| *valid)
                .count(),
            higher_order_tasks: pending_higher.len(),
            ..RoundStats::default()
        };
        let mut tasks = std::mem::take(&mut injection.tasks);
        tasks.extend(pending_higher.drain(..).map(|t| (t, false)));
        stats.tasks = tasks.len();
        let records = self.solve(round, &tasks);
        let graded: Vec<&EpisodeRecord> = records.iter().filter(|r| r.error.is_none()).collect();
        stats.episodes = records.len();
        stats.failed_episodes = records.len() - graded.len();
        stats.solve_rate = solve_rate(&graded.iter().map(|r| r.solved).collect::<Vec<_>>());
        stats.solver_reward = mean(graded.iter().map(|r| r.reward));
        stats.injector_reward = self.reward_injectors(&mut injection, &graded);
        *pending_higher = self.higher_order(&tasks, &graded);
        stats.higher_order_made = pending_higher.len();
        stats.test_runs = self.validator.runs_executed() - runs_before + tool_runs(&records);
        stats.sandbox_s = records.iter().map(|r| r.sandbox_ms).sum::<f64>() / 1e3;
        stats.wall_s = started.elapsed().as_secs_f64();
        logs.write(injection.records.iter().chain(&records), &stats)?;
        Ok(stats)
    }

    /// This round's artifacts in `project`: by an injector agent through the tools (one
    /// episode per artifact), or by the built-in strategy.
    fn inject(
        &self,
        round: usize,
        project: &OpenProject,
        into: &mut Injection,
    ) -> Result<(), SelfPlayError> {
        let settings = self.settings;
        let round_dir = settings
            .out
            .join("artifacts")
            .join(format!("round-{}", round + 1));
        let Some(agent) = &settings.injector_agent else {
            let injector = Injector::new(self.python, self.validator, project)?;
            let report = injector.inject(&InjectSettings {
                strategy: settings.strategy,
                count: settings.artifacts_per_round,
                seed: settings.seed.wrapping_add(round as u64),
                max_candidates: 40 * settings.artifacts_per_round.max(1),
                out: round_dir,
            })?;
            for y in report.yields.values() {
                into.validated += y.validated;
                into.proposals
                    .extend((0..y.invalid).map(|_| (String::new(), false)));
            }
            for written in &report.artifacts {
                into.add_valid(Task::load(&written.dir, project)?);
            }
            return Ok(());
        };
        let specs = (0..settings.artifacts_per_round)
            .map(|index| InjectorSpec {
                project: Arc::new(project.clone()),
                index,
                seed: episode_seed(settings.seed, round, &project.name, index),
                round: round + 1,
            })
            .collect();
        let env = settings.env.clone();
        let played = self.runtime.block_on(self.scheduler.run_injector_episodes(
            specs,
            (agent.to_string(), agent.factory()),
            env,
        ));
        for (record, injected) in played {
            into.validated += 1;
            match injected {
                Some(inj) => {
                    let dir = round_dir.join(inj.artifact.id());
                    crate::inject::write_artifact(&inj.artifact, &inj.validation, &dir)?;
                    into.add_valid(Task::load(&dir, project)?);
                }
                None => into.proposals.push((String::new(), false)),
            }
            into.records.push(record);
        }
        Ok(())
    }

    /// G solver attempts at each task.
    fn solve(&self, round: usize, tasks: &[(Arc<Task>, bool)]) -> Vec<EpisodeRecord> {
        let settings = self.settings;
        let tasks: Vec<Arc<Task>> = tasks.iter().map(|(t, _)| t.clone()).collect();
        let specs = EpisodeSpec::attempts(&tasks, settings.attempts, settings.seed, round);
        let bar = settings.progress.then(|| {
            let bar = indicatif::ProgressBar::new(specs.len() as u64);
            let template = format!(
                "round {}/{} {{bar:30}} {{pos}}/{{len}} episodes {{elapsed}}",
                round + 1,
                settings.rounds
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let solver = (settings.solver.to_string(), settings.solver.factory());
        let records = self.runtime.block_on(self.scheduler.run_episodes(
            specs,
            solver,
            settings.env.clone(),
            settings.concurrency,
            bar.clone(),
        ));
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        records
    }

    /// Each proposal's reward from its solve rate (-1 when invalid); injector episodes get
    /// theirs now that the solvers have played. Returns the mean.
    fn reward_injectors(&self, injection: &mut Injection, graded: &[&EpisodeRecord]) -> f64 {
        let solved = EpisodeRecord::solved_by_task(graded);
        let rewards: Vec<f64> = injection
            .proposals
            .iter()
            .map(|(task_id, valid)| {
                let rate = solved.get(task_id.as_str()).map_or(0.0, |s| solve_rate(s));
                injector_reward(*valid, rate, self.settings.alpha)
            })
            .collect();
        let mut valid_rewards = injection
            .proposals
            .iter()
            .zip(&rewards)
            .filter(|((_, valid), _)| *valid)
            .map(|(_, r)| *r);
        for record in &mut injection.records {
            if record.error.is_none() && record.reward == 0.0 && record.terminated {
                record.reward = valid_rewards.next().unwrap_or(0.0);
                if let Some(last) = record.rewards.last_mut() {
                    *last = record.reward;
                }
            }
        }
        mean(rewards.iter().copied())
    }

    /// Higher-order bugs for the next round from failed attempts at first-order ones.
    fn higher_order(
        &self,
        tasks: &[(Arc<Task>, bool)],
        graded: &[&EpisodeRecord],
    ) -> Vec<Arc<Task>> {
        let mut made = Vec::new();
        for (task, _) in tasks.iter().filter(|(_, first_order)| *first_order) {
            for r in graded.iter().filter(|r| r.task == task.id && !r.solved) {
                if made.len() >= self.settings.max_higher_order {
                    return made;
                }
                let higher = r
                    .final_state
                    .as_ref()
                    .and_then(|s| task.higher_order(s, r.attempt));
                made.extend(higher.map(Arc::new));
            }
        }
        made
    }
}

impl Injection {
    fn add_valid(&mut self, task: Task) {
        self.proposals.push((task.id.clone(), true));
        self.tasks.push((Arc::new(task), true));
    }
}

/// The loop's two logs: every episode, and every round's numbers.
struct Logs {
    episodes: (std::fs::File, PathBuf),
    rounds: (std::fs::File, PathBuf),
}

impl Logs {
    fn create(dir: &Path) -> Result<Logs, SelfPlayError> {
        let log_err = |path: &Path| {
            let path = path.to_owned();
            move |source| SelfPlayError::Log { path, source }
        };
        std::fs::create_dir_all(dir).map_err(log_err(dir))?;
        let open = |name: &str| {
            let path = dir.join(name);
            let file = std::fs::File::create(&path).map_err(log_err(&path))?;
            Ok::<_, SelfPlayError>((file, path))
        };
        Ok(Logs {
            episodes: open("episodes.jsonl")?,
            rounds: open("rounds.jsonl")?,
        })
    }

    fn write<'r>(
        &mut self,
        records: impl Iterator<Item = &'r EpisodeRecord>,
        stats: &RoundStats,
    ) -> Result<(), SelfPlayError> {
        for r in records {
            json_line(&mut self.episodes, r)?;
        }
        json_line(&mut self.rounds, stats)
    }
}

fn json_line(
    (file, path): &mut (std::fs::File, PathBuf),
    value: &impl Serialize,
) -> Result<(), SelfPlayError> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::from);
    if let Ok(line) = &mut line {
        line.push(b'\n');
    }
    line.and_then(|line| file.write_all(&line))
        .map_err(|source| SelfPlayError::Log {
            path: path.clone(),
            source,
        })
}

/// The header of the table `spar selfplay` prints a [`RoundStats`] row of per round.
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
    /// Name of the project the bugs were injected into.
    pub project: String,
    /// Name of the solver agent that played the episodes (`heuristic`, `replay:FILE`, ...).
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
    let tasks = bench_tasks(&python, &validator, project, artifacts, &out)?;
    let inject_s = started.elapsed().as_secs_f64();
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
    let runtime = runtime(workers).map_err(SelfPlayError::Runtime)?;
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
        p50_test_run_ms: percentile(&lat, 0.5),
        p99_test_run_ms: percentile(&lat, 0.99),
        peak_in_flight: stats.peak_in_flight,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// `artifacts` procedural bugs in `project`, written under `out`, as tasks.
fn bench_tasks(
    python: &Python,
    validator: &Validator,
    project: &OpenProject,
    artifacts: usize,
    out: &Path,
) -> Result<Vec<Arc<Task>>, SelfPlayError> {
    let injector = Injector::new(python, validator, project)?;
    let report = injector.inject(&InjectSettings {
        strategy: Strategy::Procedural,
        count: artifacts.max(1),
        seed: 0,
        max_candidates: 40 * artifacts.max(1),
        out: out.join("artifacts"),
    })?;
    let mut tasks = Vec::new();
    for written in &report.artifacts {
        tasks.push(Arc::new(Task::load(&written.dir, project)?));
    }
    if tasks.is_empty() {
        return Err(SelfPlayError::NoProjects);
    }
    Ok(tasks)
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
