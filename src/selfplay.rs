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
use crate::rollout::{peak_rss_mib, runtime, InjectorSpec, Scheduler};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
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
                let specs = (0..settings.artifacts_per_round)
                    .map(|index| InjectorSpec {
                        project: Arc::new(project.clone()),
                        index,
                        seed: episode_seed(settings.seed, round, &project.name, index),
                        round: round + 1,
                    })
                    .collect();
                let played = runtime.block_on(scheduler.run_injector_episodes(
                    specs,
                    agent,
                    settings.env.clone(),
                ));
                for (record, injected) in played {
                    stats.proposed += 1;
                    match injected {
                        Some(inj) => {
                            let dir = round_dir.join(inj.artifact.id());
                            crate::inject::write_artifact(&inj.artifact, &inj.validation, &dir)?;
                            let task = Task::load(&dir, project)?;
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
                let task = Task::load(&written.dir, project)?;
                injector_rewards.push((task.id.clone(), true));
                tasks.push((Arc::new(task), true));
            }
        }
        stats.higher_order_tasks = pending_higher.len();
        tasks.extend(pending_higher.drain(..).map(|t| (t, false)));
        stats.tasks = tasks.len();
        // Solve.
        let round_tasks: Vec<Arc<Task>> = tasks.iter().map(|(t, _)| t.clone()).collect();
        let specs = EpisodeSpec::attempts(&round_tasks, settings.attempts, settings.seed, round);
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
        let solved = EpisodeRecord::solved_by_task(&graded);
        let inj: Vec<f64> = injector_rewards
            .iter()
            .map(|(task_id, valid)| {
                let rate = solved.get(task_id.as_str()).map_or(0.0, |s| solve_rate(s));
                injector_reward(*valid, rate, settings.alpha)
            })
            .collect();
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
        let task = Task::load(&written.dir, project)?;
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
