//! One training step: propose -> pick bugs -> rollout -> advantages. Each is a short function
//! over the step's shared context; the result is the batch the trainer thread trains on.

use super::run_dir::RunDir;
use super::trainer::Batch;
use super::{group_advantages, StepMetrics, TrainError, TrainSettings};
use crate::agents::Rng;
use crate::bytes::SharedBytes;
use crate::corpus::OpenProject;
use crate::episode::record::mean;
use crate::episode::rewards::{injector_reward, solve_rate};
use crate::episode::{episode_seed, EnvSettings, EpisodeRecord, EpisodeSpec, Task};
use crate::inject::{write_artifact, Injector};
use crate::policy::features::{injector_choice, Choice};
use crate::policy::model::{Decision, PolicyNet};
use crate::policy::{sample, solver_factory, DecisionSink};
use crate::protocol::{BugArtifact, ValidationReport, Validator};
use crate::rollout::Scheduler;
use crate::selfplay::SelfPlayError;
use crate::snapshot::{FileChange, Snapshot};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A training project, ready for injection.
pub(super) struct Prepared<'a> {
    pub project: &'a OpenProject,
    pub injector: Injector<'a>,
    /// Lines the project's tests execute, per file: where a bug can break a test.
    pub covered: BTreeMap<String, BTreeSet<u32>>,
}

/// The bugs known so far: loaded tasks, and their artifact directories (relative to the run
/// directory, with their projects) for the checkpoint.
#[derive(Default)]
pub(super) struct Pool {
    pub tasks: Vec<Arc<Task>>,
    pub dirs: Vec<(String, PathBuf)>,
}

impl Pool {
    /// A valid bug found this step: its artifact written into the run's `artifacts/` (once),
    /// and its task: the one the pool or `fresh` has, else loaded and added to `fresh` (kept
    /// apart until the step's bugs are picked) and to the checkpoint's directories.
    pub fn admit(
        &mut self,
        run: &RunDir,
        project: &OpenProject,
        artifact: &BugArtifact,
        validation: &ValidationReport,
        fresh: &mut Vec<Arc<Task>>,
    ) -> Result<Arc<Task>, TrainError> {
        let id = artifact.id();
        let rel = PathBuf::from("artifacts").join(&id);
        let dir = run.path().join(&rel);
        if !dir.exists() {
            write_artifact(artifact, validation, &dir)?;
        }
        if let Some(task) = self.tasks.iter().chain(fresh.iter()).find(|t| t.id == id) {
            return Ok(task.clone());
        }
        let task = Arc::new(Task::load(&dir, project).map_err(SelfPlayError::from)?);
        self.dirs.push((project.name.clone(), rel));
        fresh.push(task.clone());
        Ok(task)
    }
}

/// What every step shares.
pub(super) struct StepContext<'a> {
    pub settings: &'a TrainSettings,
    pub prepared: &'a [Prepared<'a>],
    pub run: &'a RunDir,
    pub validator: &'a Validator,
    pub scheduler: &'a Arc<Scheduler>,
    pub runtime: &'a tokio::runtime::Runtime,
    pub env: &'a EnvSettings,
}

/// One proposal of the injector: its decision and the task it became, if valid.
struct Proposal {
    decision: Decision,
    task: Option<Arc<Task>>,
}

/// Plays step `step` (0-based) with `net`: the batch to train on, with its metrics.
pub(super) fn play(
    ctx: &StepContext,
    step: usize,
    net: &Arc<PolicyNet>,
    pool: &mut Pool,
) -> Result<Batch, TrainError> {
    let started = Instant::now();
    let runs_before = ctx.validator.runs_executed() + ctx.validator.tool_runs_executed();
    let mut rng = Rng(episode_seed(ctx.settings.seed, step, "inject", 0));
    let (proposals, new_tasks) = propose(ctx, step, net, pool, &mut rng)?;
    let found = proposals.iter().filter_map(|p| p.task.clone());
    let bugs = pick_bugs(found, &pool.tasks, ctx.settings.bugs_per_step, &mut rng);
    pool.tasks.extend(new_tasks);
    let (records, mut by_episode) = rollout(ctx, step, net, &bugs);
    let graded: Vec<&EpisodeRecord> = records.iter().filter(|r| r.error.is_none()).collect();
    let mut batch = solver_advantages(&bugs, &graded, &mut by_episode);
    let solved = EpisodeRecord::solved_by_task(&graded);
    let (proposals, injector_rewards) =
        injector_advantages(ctx.settings, proposals, &solved, &mut batch);
    let rollout_s = started.elapsed().as_secs_f64();
    let valid = proposals.iter().filter(|p| p.task.is_some()).count();
    batch.metrics = StepMetrics {
        step: step + 1,
        episodes: records.len(),
        solver_reward: mean(graded.iter().map(|r| r.reward)),
        solve_rate: solve_rate(&graded.iter().map(|r| r.solved).collect::<Vec<_>>()),
        injector_reward: (!proposals.is_empty()).then(|| mean(injector_rewards.iter().copied())),
        valid_rate: (!proposals.is_empty()).then(|| valid as f64 / proposals.len() as f64),
        proposals: proposals.len(),
        bugs: bugs.len(),
        pool: pool.tasks.len(),
        episodes_per_s: records.len() as f64 / rollout_s.max(1e-9),
        rollout_s,
        sandbox_runs: ctx.validator.runs_executed() + ctx.validator.tool_runs_executed()
            - runs_before,
        failed_episodes: records.len() - graded.len(),
        ..StepMetrics::default()
    };
    Ok(batch)
}

/// The injector's group: proposals in one project (round robin) every `inject_every` steps,
/// and whenever there is no bug yet. Valid proposals become artifacts in the run directory
/// and join the pool (returned apart, so that this step's bug sample does not draw them).
fn propose(
    ctx: &StepContext,
    step: usize,
    net: &PolicyNet,
    pool: &mut Pool,
    rng: &mut Rng,
) -> Result<(Vec<Proposal>, Vec<Arc<Task>>), TrainError> {
    let settings = ctx.settings;
    let inject_every = settings.inject_every.max(1);
    let prep = &ctx.prepared[(step / inject_every) % ctx.prepared.len()];
    let choice: Choice = injector_choice(&prep.project.repo, &prep.covered, rng);
    let proposing = step.is_multiple_of(inject_every) || pool.tasks.is_empty();
    let everything = vec![true; choice.candidates.len()];
    let picks: Vec<(usize, f32)> = (0..if proposing { settings.proposals } else { 0 })
        .filter_map(|_| sample(net, &choice, &everything, rng, false))
        .collect();
    let built = crate::par::map(&picks, settings.workers, |(index, _)| {
        let candidate = &choice.candidates[*index];
        let repo = &prep.project.repo;
        let text = repo
            .file(&candidate.path)
            .and_then(|c| String::from_utf8(c.to_vec()).ok())
            .unwrap_or_default();
        let state = with_file(repo, &candidate.path, candidate.edit.apply(&text));
        prep.injector
            .artifact_from_state(&state, "policy", settings.seed)
    });
    let mut proposals = Vec::new();
    let mut new_tasks: Vec<Arc<Task>> = Vec::new();
    for ((index, logp), outcome) in picks.iter().zip(built) {
        let task = match outcome? {
            Ok((artifact, validation)) => Some(pool.admit(
                ctx.run,
                prep.project,
                &artifact,
                &validation,
                &mut new_tasks,
            )?),
            Err(_) => None,
        };
        let decision = Decision {
            choice: choice.clone(),
            allowed: vec![true; choice.candidates.len()],
            chosen: *index,
            logp: *logp,
        };
        proposals.push(Proposal { decision, task });
    }
    Ok((proposals, new_tasks))
}

/// The solver's bugs: this step's valid proposals (`found`) first, then a sample of the
/// older pool.
pub(super) fn pick_bugs(
    found: impl IntoIterator<Item = Arc<Task>>,
    older: &[Arc<Task>],
    wanted: usize,
    rng: &mut Rng,
) -> Vec<Arc<Task>> {
    let mut bugs: Vec<Arc<Task>> = Vec::new();
    for task in found {
        if !bugs.iter().any(|b| b.id == task.id) {
            bugs.push(task);
        }
    }
    let mut older: Vec<Arc<Task>> = older
        .iter()
        .filter(|t| !bugs.iter().any(|b| b.id == t.id))
        .cloned()
        .collect();
    while bugs.len() < wanted && !older.is_empty() {
        bugs.push(older.swap_remove(rng.below(older.len())));
    }
    bugs
}

/// G attempts at each bug by the policy as solver; its decisions, by episode.
fn rollout(
    ctx: &StepContext,
    step: usize,
    net: &Arc<PolicyNet>,
    bugs: &[Arc<Task>],
) -> (Vec<EpisodeRecord>, HashMap<String, Vec<Decision>>) {
    let settings = ctx.settings;
    let specs = EpisodeSpec::attempts(bugs, settings.attempts, settings.seed, step);
    let sink: DecisionSink = Arc::new(Mutex::new(Vec::new()));
    let factory = solver_factory(net.clone(), settings.max_tries, Some(sink.clone()));
    let records = ctx.runtime.block_on(ctx.scheduler.run_episodes(
        specs,
        ("policy".into(), factory),
        ctx.env.clone(),
        settings.attempts * settings.bugs_per_step.max(1),
        None,
    ));
    let decisions = sink
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    (records, decisions)
}

/// The solver's decisions with group-relative advantages over each bug's graded attempts.
fn solver_advantages(
    bugs: &[Arc<Task>],
    graded: &[&EpisodeRecord],
    by_episode: &mut HashMap<String, Vec<Decision>>,
) -> Batch {
    let mut batch = Batch {
        metrics: StepMetrics::default(),
        decisions: Vec::new(),
        advantages: Vec::new(),
    };
    for task in bugs {
        let group: Vec<_> = graded.iter().filter(|r| r.task == task.id).collect();
        let rewards: Vec<f64> = group.iter().map(|r| r.reward).collect();
        for (record, adv) in group.iter().zip(group_advantages(&rewards)) {
            for d in by_episode.remove(&record.episode).unwrap_or_default() {
                batch.decisions.push(d);
                batch.advantages.push(adv as f32);
            }
        }
    }
    batch
}

/// The injector's rewards from the solve rates, and its decisions with group-relative
/// advantages over the step's proposals. A valid proposal none of whose attempts was graded
/// (all cancelled or failed as harness errors) has no solve rate: it is left out of its group,
/// not given -alpha. Returns the proposals kept and their rewards.
fn injector_advantages(
    settings: &TrainSettings,
    proposals: Vec<Proposal>,
    solved: &HashMap<&str, Vec<bool>>,
    batch: &mut Batch,
) -> (Vec<Proposal>, Vec<f64>) {
    let proposals: Vec<Proposal> = proposals
        .into_iter()
        .filter(|p| {
            p.task
                .as_ref()
                .is_none_or(|t| solved.contains_key(t.id.as_str()))
        })
        .collect();
    let rewards: Vec<f64> = proposals
        .iter()
        .map(|p| match &p.task {
            None => injector_reward(false, 0.0, settings.alpha),
            Some(t) => injector_reward(true, solve_rate(&solved[t.id.as_str()]), settings.alpha),
        })
        .collect();
    for (p, adv) in proposals.iter().zip(group_advantages(&rewards)) {
        batch.decisions.push(p.decision.clone());
        batch.advantages.push(adv as f32);
    }
    (proposals, rewards)
}

fn with_file(repo: &Snapshot, path: &str, text: String) -> Snapshot {
    repo.with_changes(&[FileChange::Written {
        path: path.to_owned(),
        contents: SharedBytes::from(text.into_bytes()),
    }])
    .unwrap_or_else(|_| repo.clone())
}
