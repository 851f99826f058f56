//! The trainer thread and its protocol. Sandbox work and gradient steps overlap: the trainer
//! trains on step t's batch while the scheduler plays step t+1 with the weights from before
//! step t, so the rollout side asks for the weights of a given version ([`Trainer::net_for`])
//! and the thread answers each batch with the weights it produced.

use super::run_dir::{CheckpointState, RunDir};
use super::{StepMetrics, TrainError, TrainSettings};
use crate::policy::model::{self, AdamW, Decision, LossSettings, LossStats, PolicyNet};
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// One step's training batch: its decisions, their advantages, and its metrics so far.
pub(super) struct Batch {
    pub metrics: StepMetrics,
    pub decisions: Vec<Decision>,
    pub advantages: Vec<f32>,
}

enum ToTrainer {
    Batch(Box<Batch>),
    Checkpoint(CheckpointState),
}

/// What the thread sends back per batch: the new weights and the step's finished metrics.
struct Trained {
    net: Arc<PolicyNet>,
    metrics: StepMetrics,
}

/// What the trainer thread owns: the weights, the optimizer, the metrics log.
pub(super) struct TrainerState<'a, F> {
    pub varmap: candle_nn::VarMap,
    pub net: PolicyNet,
    pub opt: AdamW,
    pub settings: &'a TrainSettings,
    pub dev: candle_core::Device,
    pub run: &'a RunDir,
    /// The metrics log, opened before any sandbox work.
    pub log: std::fs::File,
    pub started: Instant,
    pub on_step: F,
}

impl<F: FnMut(&StepMetrics)> TrainerState<'_, F> {
    /// Trains on each batch as it arrives, completes its metrics with the loss and writes
    /// them at once, and saves checkpoints when asked; stops at the first error.
    fn serve(
        mut self,
        inbox: mpsc::Receiver<ToTrainer>,
        outbox: mpsc::Sender<Result<Trained, TrainError>>,
    ) {
        for message in inbox {
            let result = match message {
                ToTrainer::Batch(batch) => self.train(*batch).map(Some),
                ToTrainer::Checkpoint(state) => self
                    .run
                    .save_checkpoint(&self.varmap, &self.opt, &state)
                    .map(|()| None),
            };
            let failed = result.is_err();
            if let Some(answer) = result.transpose() {
                if outbox.send(answer).is_err() || failed {
                    return;
                }
            }
        }
    }

    fn train(&mut self, batch: Batch) -> Result<Trained, TrainError> {
        let started = Instant::now();
        let refs: Vec<&Decision> = batch.decisions.iter().collect();
        let loss_settings = LossSettings {
            entropy: self.settings.entropy,
            clip: self.settings.clip,
        };
        let epochs = self.settings.epochs.max(1);
        let mut stats = LossStats::default();
        if !refs.is_empty() {
            for _ in 0..epochs {
                let (loss, s) = model::loss(
                    &self.net,
                    &refs,
                    &batch.advantages,
                    loss_settings,
                    &self.dev,
                )?;
                self.opt.backward_step(&loss)?;
                stats = s;
            }
        }
        let mut m = batch.metrics;
        m.loss = stats.loss;
        m.entropy_solver = stats.entropy_solver;
        m.entropy_injector = stats.entropy_injector;
        m.train_s = started.elapsed().as_secs_f64();
        m.grad_steps_per_s = match refs.is_empty() {
            true => 0.0,
            false => epochs as f64 / m.train_s.max(1e-9),
        };
        m.wall_s = self.started.elapsed().as_secs_f64();
        self.run.log_step(&mut self.log, &m)?;
        (self.on_step)(&m);
        Ok(Trained {
            net: Arc::new(model::frozen(&self.varmap)?),
            metrics: m,
        })
    }
}

/// The rollout side's end of the protocol: weights by version, batches and checkpoints out,
/// finished metrics in.
pub(super) struct Trainer<'scope> {
    to: mpsc::Sender<ToTrainer>,
    from: mpsc::Receiver<Result<Trained, TrainError>>,
    thread: std::thread::ScopedJoinHandle<'scope, ()>,
    /// Weights by the number of batches they were trained on.
    nets: BTreeMap<usize, Arc<PolicyNet>>,
    /// Metrics of the batches trained so far.
    pub metrics: Vec<StepMetrics>,
}

impl<'scope> Trainer<'scope> {
    /// Starts the thread; `first` is the weights it starts from, trained on `version`
    /// batches.
    pub fn spawn<'env, F: FnMut(&StepMetrics) + Send + 'scope>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        state: TrainerState<'scope, F>,
        version: usize,
        first: Arc<PolicyNet>,
    ) -> Trainer<'scope> {
        let (to, inbox) = mpsc::channel();
        let (outbox, from) = mpsc::channel();
        Trainer {
            to,
            from,
            thread: scope.spawn(move || state.serve(inbox, outbox)),
            nets: BTreeMap::from([(version, first)]),
            metrics: Vec::new(),
        }
    }

    /// The weights trained on `version` batches (waiting for them), forgetting older ones.
    pub fn net_for(&mut self, version: usize) -> Result<Arc<PolicyNet>, TrainError> {
        while !self.nets.contains_key(&version) {
            self.receive(true)?;
        }
        self.nets.retain(|v, _| *v >= version);
        Ok(self.nets[&version].clone())
    }

    /// Sends a batch to train on.
    pub fn send(&self, batch: Batch) -> Result<(), TrainError> {
        self.to
            .send(ToTrainer::Batch(Box::new(batch)))
            .map_err(|_| TrainError::TrainerGone)
    }

    /// Asks for a checkpoint (saved after the batches sent before it).
    pub fn checkpoint(&self, state: CheckpointState) -> Result<(), TrainError> {
        self.to
            .send(ToTrainer::Checkpoint(state))
            .map_err(|_| TrainError::TrainerGone)
    }

    /// Takes every answer that is ready.
    pub fn poll(&mut self) -> Result<(), TrainError> {
        while self.receive(false)? {}
        Ok(())
    }

    /// Waits until `sent` batches are trained, then stops the thread.
    pub fn finish(mut self, sent: usize) -> Result<Vec<StepMetrics>, TrainError> {
        self.net_for(sent)?;
        drop(self.to);
        self.thread.join().map_err(|_| TrainError::TrainerGone)?;
        Ok(self.metrics)
    }

    /// Takes the next answer (waiting for it when `wait`); false when none was ready.
    fn receive(&mut self, wait: bool) -> Result<bool, TrainError> {
        let next = match wait {
            true => self.from.recv().map_err(|_| TrainError::TrainerGone)?,
            false => match self.from.try_recv() {
                Ok(next) => next,
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => return Err(TrainError::TrainerGone),
            },
        };
        let trained = next?;
        self.nets.insert(trained.metrics.step, trained.net);
        self.metrics.push(trained.metrics);
        Ok(true)
    }
}
