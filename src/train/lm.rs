//! `spar train --policy lm`: GRPO on a language model playing both roles through the tools.
//!
//! Each step, the model (as injector) plays `proposals` injector episodes in one training
//! project; what it submits goes through the same weakening and seven checks as any
//! injector's, and valid bugs join the pool. The step's bugs (its valid proposals, topped up
//! from the pool) get G solver episodes each; rewards come from grading. Advantages are
//! relative to each bug's G attempts and to the step's proposals; one GRPO update over all
//! of the step's trajectories follows. Rollouts and updates alternate (the model generates
//! on the training device), so every episode is played with the latest weights.

use super::run_dir::{CheckpointState, RunDir, OPTIMIZER};
use super::step::{pick_bugs, Pool};
use super::{start, StepMetrics, TrainError, TrainSettings, TrainSummary};
use crate::agents::Rng;
use crate::corpus::OpenProject;
use crate::episode::record::mean;
use crate::episode::rewards::{group_advantages, injector_reward, solve_rate};
use crate::episode::{episode_seed, EnvSettings, EpisodeRecord, EpisodeSpec, Task};
use crate::guest::Python;
use crate::lm::agent::{factory, ActSettings, Trajectory, TrajectorySink};
use crate::lm::batch::Generator;
use crate::lm::grpo::{GrpoSettings, GrpoStats, GrpoTrainer};
use crate::lm::{LmPolicy, Trainable};
use crate::protocol::Validator;
use crate::rollout::{InjectorSpec, Scheduler};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The language model's settings of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmTrainSettings {
    /// The checkpoint directory (`config.json`, `*.safetensors`, `tokenizer.json`).
    pub model: PathBuf,
    /// What training changes: LoRA adapters, or every weight.
    pub trainable: Trainable,
    /// Sampling, tools and context while acting.
    pub act: ActSettings,
    /// The objective and the optimizer.
    pub grpo: GrpoSettings,
    /// Turns of one episode before it is truncated.
    pub max_turns: u32,
}

/// What the language model did in a step, in `metrics.jsonl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LmStepMetrics {
    /// The update's numbers.
    pub grpo: GrpoStats,
    /// Tokens the model wrote in the step's episodes.
    pub generated_tokens: usize,
    /// Generated tokens per second of sampling time (summed over episodes).
    pub generate_tokens_per_s: f64,
    /// Share of the episodes' wall time spent outside sampling (tools, sandbox runs).
    pub engine_share: f64,
    /// Turns per episode.
    pub turns_per_episode: f64,
    /// Turns without a usable tool call, per episode.
    pub fumbles_per_episode: f64,
}

/// One episode's trajectory and its advantage.
type Sample = (Trajectory, f64);

/// An injector episode's record and the bug it made, if valid.
type Proposal = (EpisodeRecord, Option<Arc<Task>>);

/// Trains the language model of `lm`; see [`super::train`].
#[allow(clippy::too_many_arguments)]
pub(super) fn train_lm(
    python: Arc<Python>,
    validator: Arc<Validator>,
    projects: &[OpenProject],
    settings: &TrainSettings,
    lm: &LmTrainSettings,
    out: &Path,
    resume: bool,
    mut env: EnvSettings,
    mut on_step: impl FnMut(&StepMetrics) + Send,
) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    let dev = crate::policy::device(settings.device)?;
    let policy = LmPolicy::load(&lm.model, &dev, lm.trainable, settings.seed)?;
    let mut trainer = GrpoTrainer::new(&policy, lm.grpo)?;
    let (run, resumed) = match resume {
        true => RunDir::resume_with(out, |dir| {
            policy.restore(dir)?;
            Ok(trainer.optimizer().load(&dir.join(OPTIMIZER))?)
        })?,
        false => (RunDir::create(out, settings)?, CheckpointState::default()),
    };
    let mut log = run.metrics_log()?;
    env.max_turns = lm.max_turns;
    let resumed_pool = resume.then(|| resumed.pool.clone());
    let (mut pool, rt, scheduler) = start(
        &python,
        &validator,
        projects,
        settings,
        &run,
        resumed_pool,
        &mut env,
    )?;
    let policy = Arc::new(policy);
    let generator = Generator::spawn(policy.clone(), lm.act.max_batch);
    let ctx = LmStep {
        settings,
        lm,
        projects,
        run: &run,
        scheduler: &scheduler,
        runtime: &rt,
        env: &env,
        generator: &generator,
    };
    let (mut done, mut interrupted, mut metrics) = (resumed.step, false, Vec::new());
    for step in resumed.step..settings.steps {
        let (batch, mut m) = ctx.play(step, &mut pool)?;
        interrupted = scheduler.cancel_flag().load(Ordering::Relaxed);
        if interrupted {
            break;
        }
        let trained = Instant::now();
        let refs: Vec<(&Trajectory, f64)> = batch.iter().map(|(t, a)| (t, *a)).collect();
        let stats = trainer.step(&policy, &refs)?;
        m.train_s = trained.elapsed().as_secs_f64();
        m.grad_steps_per_s = f64::from(u8::from(stats.sequences > 0)) / m.train_s.max(1e-9);
        m.loss = stats.loss;
        if let Some(l) = m.lm.as_mut() {
            l.grpo = stats;
        }
        m.wall_s = started.elapsed().as_secs_f64();
        run.log_step(&mut log, &m)?;
        on_step(&m);
        metrics.push(m);
        done = step + 1;
        if done == settings.steps || done.is_multiple_of(settings.checkpoint_every.max(1)) {
            save(&run, &policy, &mut trainer, done, &pool)?;
        }
    }
    if interrupted {
        save(&run, &policy, &mut trainer, done, &pool)?;
    }
    Ok(TrainSummary {
        steps: done,
        metrics,
        checkpoint: run.checkpoint(),
        wall_s: started.elapsed().as_secs_f64(),
        interrupted,
    })
}

fn save(
    run: &RunDir,
    policy: &LmPolicy,
    trainer: &mut GrpoTrainer,
    step: usize,
    pool: &Pool,
) -> Result<(), TrainError> {
    let state = CheckpointState {
        step,
        pool: pool.dirs.clone(),
    };
    run.save_checkpoint_with(&state, |dir| {
        policy.save(dir)?;
        Ok(trainer.optimizer().save(&dir.join(OPTIMIZER))?)
    })
}

/// What every step shares.
struct LmStep<'a> {
    settings: &'a TrainSettings,
    lm: &'a LmTrainSettings,
    projects: &'a [OpenProject],
    run: &'a RunDir,
    scheduler: &'a Arc<Scheduler>,
    runtime: &'a tokio::runtime::Runtime,
    env: &'a EnvSettings,
    generator: &'a Arc<Generator>,
}

impl LmStep<'_> {
    /// Plays step `step`: its trajectories with advantages, and its metrics (the update's
    /// left to fill).
    fn play(&self, step: usize, pool: &mut Pool) -> Result<(Vec<Sample>, StepMetrics), TrainError> {
        let started = Instant::now();
        let sink: TrajectorySink = Arc::new(Mutex::new(Vec::new()));
        let proposals = self.inject(step, pool, &sink)?;
        let mut rng = Rng(episode_seed(self.settings.seed, step, "bugs", 0));
        let found = proposals.iter().filter_map(|p| p.1.clone());
        let bugs = pick_bugs(found, &pool.tasks, self.settings.bugs_per_step, &mut rng);
        let records = self.solve(step, &bugs, &sink);
        let rollout_s = started.elapsed().as_secs_f64();
        let mut trajectories: HashMap<String, Trajectory> = sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        let graded: Vec<&EpisodeRecord> = records.iter().filter(|r| r.error.is_none()).collect();
        let mut batch = Vec::new();
        for task in &bugs {
            let group: Vec<&&EpisodeRecord> = graded.iter().filter(|r| r.task == task.id).collect();
            let rewards: Vec<f64> = group.iter().map(|r| r.reward).collect();
            for (record, adv) in group.iter().zip(group_advantages(&rewards)) {
                batch.extend(trajectories.remove(&record.episode).map(|t| (t, adv)));
            }
        }
        let solved = EpisodeRecord::solved_by_task(&graded);
        let rewards: Vec<f64> = proposals
            .iter()
            .map(|(_, task)| match task {
                Some(t) => injector_reward(
                    true,
                    solve_rate(solved.get(t.id.as_str()).map_or(&[][..], |v| v)),
                    self.settings.alpha,
                ),
                None => injector_reward(false, 0.0, self.settings.alpha),
            })
            .collect();
        for ((record, _), adv) in proposals.iter().zip(group_advantages(&rewards)) {
            batch.extend(trajectories.remove(&record.episode).map(|t| (t, adv)));
        }
        let valid = proposals.iter().filter(|p| p.1.is_some()).count();
        let all: Vec<&EpisodeRecord> = records
            .iter()
            .chain(proposals.iter().map(|p| &p.0))
            .collect();
        let metrics = StepMetrics {
            step: step + 1,
            episodes: records.len(),
            solver_reward: mean(graded.iter().map(|r| r.reward)),
            solve_rate: solve_rate(&graded.iter().map(|r| r.solved).collect::<Vec<_>>()),
            injector_reward: (!proposals.is_empty()).then(|| mean(rewards.iter().copied())),
            valid_rate: (!proposals.is_empty()).then(|| valid as f64 / proposals.len() as f64),
            proposals: proposals.len(),
            bugs: bugs.len(),
            pool: pool.tasks.len(),
            episodes_per_s: all.len() as f64 / rollout_s.max(1e-9),
            rollout_s,
            failed_episodes: all.iter().filter(|r| r.error.is_some()).count(),
            lm: Some(lm_metrics(&all, &batch)),
            ..StepMetrics::default()
        };
        Ok((batch, metrics))
    }

    /// The step's injector episodes (every `inject_every` steps, and while the pool is
    /// empty), in one project round robin; valid bugs are written into the run directory and
    /// join the pool.
    fn inject(
        &self,
        step: usize,
        pool: &mut Pool,
        sink: &TrajectorySink,
    ) -> Result<Vec<Proposal>, TrainError> {
        let every = self.settings.inject_every.max(1);
        if !step.is_multiple_of(every) && !pool.tasks.is_empty() {
            return Ok(Vec::new());
        }
        let project = &self.projects[(step / every) % self.projects.len()];
        let shared = Arc::new(project.clone());
        let specs = (0..self.settings.proposals)
            .map(|index| InjectorSpec {
                project: shared.clone(),
                index,
                seed: episode_seed(self.settings.seed, step, &project.name, index),
                round: step + 1,
            })
            .collect();
        let agent = factory(
            self.generator.clone(),
            self.lm.act.clone(),
            Some(sink.clone()),
        );
        let played = self.runtime.block_on(self.scheduler.run_injector_episodes(
            specs,
            ("lm".into(), agent),
            self.env.clone(),
        ));
        let mut proposals = Vec::new();
        let mut fresh = Vec::new();
        for (record, injected) in played {
            let task = match injected {
                Some(inj) => Some(pool.admit(
                    self.run,
                    project,
                    &inj.artifact,
                    &inj.validation,
                    &mut fresh,
                )?),
                None => None,
            };
            proposals.push((record, task));
        }
        pool.tasks.extend(fresh);
        Ok(proposals)
    }

    /// G solver episodes at each bug.
    fn solve(&self, step: usize, bugs: &[Arc<Task>], sink: &TrajectorySink) -> Vec<EpisodeRecord> {
        let s = self.settings;
        let specs = EpisodeSpec::attempts(bugs, s.attempts, s.seed, step);
        let agent = factory(
            self.generator.clone(),
            self.lm.act.clone(),
            Some(sink.clone()),
        );
        self.runtime.block_on(self.scheduler.run_episodes(
            specs,
            ("lm".into(), agent),
            self.env.clone(),
            s.attempts * s.bugs_per_step.max(1),
            None,
        ))
    }
}

/// Token and time numbers of the step's episodes.
fn lm_metrics(records: &[&EpisodeRecord], batch: &[Sample]) -> LmStepMetrics {
    let usage = |r: &EpisodeRecord, key: &str| {
        r.usage
            .as_ref()
            .and_then(|u| u[key].as_f64())
            .unwrap_or(0.0)
    };
    let generate_ms: f64 = records.iter().map(|r| usage(r, "generate_ms")).sum();
    let wall_ms: f64 = records.iter().map(|r| r.wall_ms).sum();
    let tokens: usize = batch.iter().map(|(t, _)| t.own_tokens()).sum();
    let n = records.len().max(1) as f64;
    LmStepMetrics {
        grpo: GrpoStats::default(),
        generated_tokens: records
            .iter()
            .map(|r| usage(r, "completion_tokens") as usize)
            .sum(),
        generate_tokens_per_s: tokens as f64 / (generate_ms / 1e3).max(1e-9),
        engine_share: if wall_ms > 0.0 {
            (wall_ms - generate_ms).max(0.0) / wall_ms
        } else {
            0.0
        },
        turns_per_episode: records.iter().map(|r| usage(r, "turns")).sum::<f64>() / n,
        fumbles_per_episode: records.iter().map(|r| usage(r, "fumbles")).sum::<f64>() / n,
    }
}

/// Agents of a finished `--policy lm` run for evaluation: the trained model (its checkpoint
/// in `run_dir`) and the base checkpoint it started from, each with its own generator.
pub fn eval_agents(
    run_dir: &Path,
    settings: &TrainSettings,
    lm: &LmTrainSettings,
) -> Result<crate::eval::Trained, TrainError> {
    let dev = crate::policy::device(settings.device)?;
    let trained = LmPolicy::load(&lm.model, &dev, lm.trainable, settings.seed)?;
    let checkpoint = run_dir.join(super::CHECKPOINT);
    if !checkpoint.is_dir() {
        return Err(TrainError::NoPolicy {
            path: run_dir.to_owned(),
        });
    }
    trained.restore(&checkpoint)?;
    let base = LmPolicy::load(&lm.model, &dev, Trainable::Frozen, settings.seed)?;
    let agents = |policy: LmPolicy| {
        let generator = Generator::spawn(Arc::new(policy), lm.act.max_batch);
        factory(generator, lm.act.clone(), None)
    };
    Ok(crate::eval::Trained::Lm {
        trained: agents(trained),
        base: agents(base),
    })
}
