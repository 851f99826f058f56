//! What one episode is made of and leaves behind: its coordinates ([`EpisodeSpec`], with
//! seeds from [`episode_seed`]) and its record ([`EpisodeRecord`], one line of an
//! `episodes.jsonl`), which every caller (the scheduler's driver, the HTTP server) grows the
//! same way, one [`Step`] at a time.

use super::{Action, EpisodeError, Observation, Step, Task};
use crate::corpus::OpenProject;
use crate::protocol::{BugArtifact, ValidationReport};
use crate::snapshot::Snapshot;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// One solver episode to play.
#[derive(Clone, Debug)]
pub struct EpisodeSpec {
    /// The task to solve, shared by all its attempts.
    pub task: Arc<Task>,
    /// Which attempt (0..G).
    pub attempt: usize,
    /// The episode seed.
    pub seed: u64,
    /// The round (1-based) it is played in; `spar train` counts its steps as rounds.
    pub round: usize,
}

/// Everything about one finished episode, as written to `episodes.jsonl`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// `TASK#ATTEMPT`.
    pub episode: String,
    /// The round (1-based) it was played in; 0 for `spar serve` episodes.
    pub round: usize,
    /// `solver` or `injector`.
    pub role: String,
    /// The task id.
    pub task: String,
    /// The corpus project.
    pub project: String,
    /// The bug's order.
    pub order: u32,
    /// Name of the agent that played it (`heuristic`, `http` for `spar serve`, ...).
    pub agent: String,
    /// Which attempt at the task (0..G); for an injector episode, its index in the project.
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

impl EpisodeSpec {
    /// G attempts at each of `tasks` in round `round` (0-based), seeded from `seed` and
    /// their coordinates.
    pub fn attempts(tasks: &[Arc<Task>], g: usize, seed: u64, round: usize) -> Vec<EpisodeSpec> {
        tasks
            .iter()
            .flat_map(|task| {
                (0..g).map(move |attempt| EpisodeSpec {
                    task: task.clone(),
                    attempt,
                    seed: episode_seed(seed, round, &task.id, attempt),
                    round: round + 1,
                })
            })
            .collect()
    }
}

impl EpisodeRecord {
    /// Which of `records`' attempts solved their task, by task id.
    pub fn solved_by_task<'a>(records: &[&'a EpisodeRecord]) -> HashMap<&'a str, Vec<bool>> {
        let mut solved: HashMap<&str, Vec<bool>> = HashMap::new();
        for r in records {
            solved.entry(r.task.as_str()).or_default().push(r.solved);
        }
        solved
    }

    /// The record of a solver attempt not played yet.
    pub fn solver(spec: &EpisodeSpec, agent: &str) -> EpisodeRecord {
        EpisodeRecord {
            episode: format!("{}#{}", spec.task.id, spec.attempt),
            round: spec.round,
            role: "solver".into(),
            task: spec.task.id.clone(),
            project: spec.task.project.clone(),
            order: spec.task.order,
            agent: agent.to_owned(),
            attempt: spec.attempt,
            seed: spec.seed,
            ..EpisodeRecord::default()
        }
    }

    /// The record of an injector episode not played yet: the `index`th in `project` this
    /// round.
    pub fn injector(
        project: &str,
        index: usize,
        round: usize,
        agent: &str,
        seed: u64,
    ) -> EpisodeRecord {
        EpisodeRecord {
            episode: format!("{project}@inject#{index}"),
            round,
            role: "injector".into(),
            project: project.to_owned(),
            order: 1,
            agent: agent.to_owned(),
            attempt: index,
            seed,
            ..EpisodeRecord::default()
        }
    }

    /// The first observation (the prompt).
    pub fn begin(&mut self, observation: &Observation) {
        self.observations.push(observation.clone());
    }

    /// Adds one step; returns true when it ended the episode. The episode's reward is the sum
    /// of its steps' (all are 0 but the last).
    pub fn push(&mut self, action: Action, step: &Step) -> bool {
        self.actions.push(action);
        self.observations.push(step.observation.clone());
        self.rewards.push(step.reward);
        self.reward += step.reward;
        self.sandbox_runs += step.info.sandbox_runs;
        self.fuel += step.info.fuel;
        self.sandbox_ms += step.info.sandbox_ms;
        self.terminated = step.terminated;
        self.truncated = step.truncated;
        self.solved = step.info.grade.as_ref().is_some_and(|g| g.solved);
        step.terminated || step.truncated
    }

    /// Ends the episode unplayed to its end (Ctrl-C, a shutting-down run): truncated, with
    /// the reward of an unsubmitted attempt.
    pub fn cancel(&mut self) {
        self.truncated = true;
        self.reward = -1.0;
        self.error = Some("cancelled".into());
    }

    /// The record with a harness failure as its error.
    pub fn failed(mut self, reason: impl Into<String>) -> EpisodeRecord {
        self.error = Some(reason.into());
        self
    }
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

impl Task {
    /// The task of an artifact that `spar inject` wrote (with its validation report) in
    /// `dir`, over `project`.
    pub fn load(dir: &Path, project: &OpenProject) -> Result<Task, EpisodeError> {
        let artifact = BugArtifact::load(dir).map_err(|source| EpisodeError::Load {
            dir: dir.to_owned(),
            source: Box::new(source),
        })?;
        let path = dir.join(crate::inject::VALIDATION);
        let validation: ValidationReport = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| EpisodeError::NoValidation { path })?;
        Task::from_artifact(
            &artifact,
            &validation,
            project.repo.clone(),
            project.run.clone(),
        )
    }
}

/// The mean of `values` (0 for none).
pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}
