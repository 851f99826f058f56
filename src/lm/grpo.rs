//! GRPO over the model's own tokens: advantages relative to the group of attempts at the same
//! bug, the clipped importance-ratio objective against the log-probabilities kept while
//! acting (prompt and observation tokens masked), an optional KL penalty to the base model
//! (adapters switched off: the reference costs no second copy), AdamW, and gradient
//! accumulation one sequence at a time, so memory is one sequence's activations.

use super::agent::Trajectory;
use super::model::{token_logprobs, Pass};
use super::LmPolicy;
use crate::policy::model::AdamW;
use candle_core::{Tensor, TensorId};
use std::collections::HashMap;

/// The objective's settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GrpoSettings {
    /// The ratio is clipped to `1 ± clip`.
    pub clip: f64,
    /// Weight of the KL penalty to the base model (0: none; needs adapters).
    pub kl: f64,
    /// AdamW's learning rate.
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// The accumulated gradient's global norm is clipped to it (0: no clipping).
    pub max_grad_norm: f64,
    /// The sampling temperature the log-probabilities were taken at.
    pub temperature: f64,
}

impl Default for GrpoSettings {
    fn default() -> Self {
        GrpoSettings {
            clip: 0.2,
            kl: 0.0,
            lr: 1e-5,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            temperature: 1.0,
        }
    }
}

/// What one optimizer step saw.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GrpoStats {
    /// Mean loss over the sequences trained on.
    pub loss: f64,
    /// Mean KL estimate to the base model (0 when not computed).
    pub kl: f64,
    /// Share of the model's tokens whose ratio was clipped.
    pub clipped: f64,
    /// Sequences trained on (those with a nonzero advantage, or all with a KL term).
    pub sequences: usize,
    /// The model's tokens trained on.
    pub tokens: usize,
    /// The gradient's global norm before clipping.
    pub grad_norm: f64,
}

/// The optimizer and its settings; one [`GrpoTrainer::step`] per batch of trajectories.
pub struct GrpoTrainer {
    opt: AdamW,
    settings: GrpoSettings,
}

impl GrpoTrainer {
    /// An optimizer over `policy`'s trainable variables.
    pub fn new(policy: &LmPolicy, settings: GrpoSettings) -> candle_core::Result<Self> {
        Ok(GrpoTrainer {
            opt: AdamW::new(&policy.varmap, settings.lr, settings.weight_decay)?,
            settings,
        })
    }

    /// The optimizer (its state is saved with checkpoints).
    pub fn optimizer(&mut self) -> &mut AdamW {
        &mut self.opt
    }

    /// One optimizer step over `batch` (`(trajectory, advantage)`), gradients accumulated one
    /// sequence at a time. No step when no sequence carries a signal.
    pub fn step(
        &mut self,
        policy: &LmPolicy,
        batch: &[(&Trajectory, f64)],
    ) -> candle_core::Result<GrpoStats> {
        let used: Vec<_> = batch
            .iter()
            .filter(|(t, a)| t.own_tokens() > 0 && (*a != 0.0 || self.settings.kl > 0.0))
            .collect();
        let mut stats = GrpoStats::default();
        let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
        for (trajectory, advantage) in &used {
            let (loss, seq) = sequence_loss(policy, trajectory, *advantage, &self.settings)?;
            let loss = (loss / used.len() as f64)?;
            let store = loss.backward()?;
            for (_, var) in self.opt.params() {
                if let Some(g) = store.get(var) {
                    let sum = match grads.remove(&var.id()) {
                        Some(prev) => (prev + g)?,
                        None => g.clone(),
                    };
                    grads.insert(var.id(), sum);
                }
            }
            stats.loss += seq.loss / used.len() as f64;
            stats.kl += seq.kl / used.len() as f64;
            stats.clipped += seq.clipped;
            stats.tokens += seq.tokens;
        }
        stats.sequences = used.len();
        stats.clipped /= stats.tokens.max(1) as f64;
        if used.is_empty() {
            return Ok(stats);
        }
        stats.grad_norm = clip_norm(&mut grads, self.settings.max_grad_norm)?;
        self.opt.update(&grads)?;
        Ok(stats)
    }
}

/// Scales `grads` so their global norm is at most `max` (0: unchanged); the norm before.
fn clip_norm(grads: &mut HashMap<TensorId, Tensor>, max: f64) -> candle_core::Result<f64> {
    let mut sq = 0.0;
    for g in grads.values() {
        sq += f64::from(
            g.sqr()?
                .sum_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_scalar::<f32>()?,
        );
    }
    let norm = sq.sqrt();
    if max > 0.0 && norm > max {
        for g in grads.values_mut() {
            *g = (&*g * (max / norm))?;
        }
    }
    Ok(norm)
}

/// One sequence's numbers: `loss`, `kl`, clipped tokens (a count), the model's tokens.
#[derive(Default)]
struct SequenceStats {
    loss: f64,
    kl: f64,
    clipped: f64,
    tokens: usize,
}

/// The clipped objective over the model's tokens of one trajectory (plus the KL term).
fn sequence_loss(
    policy: &LmPolicy,
    t: &Trajectory,
    advantage: f64,
    s: &GrpoSettings,
) -> candle_core::Result<(Tensor, SequenceStats)> {
    let model = &policy.model;
    let device = model.device();
    // Position i predicts token i + 1: keep the positions whose next token is the model's.
    let positions: Vec<u32> = (0..t.tokens.len() - 1)
        .filter(|i| t.own[i + 1])
        .map(|i| i as u32)
        .collect();
    let targets: Vec<u32> = positions
        .iter()
        .map(|&i| t.tokens[i as usize + 1])
        .collect();
    let old: Vec<f32> = positions
        .iter()
        .map(|&i| t.logprobs[i as usize + 1])
        .collect();
    let inputs = &t.tokens[..t.tokens.len() - 1];
    let rows = Tensor::new(positions.as_slice(), device)?;
    let logps = |pass| -> candle_core::Result<Tensor> {
        let hidden = model.forward(inputs, None, pass)?.squeeze(0)?;
        token_logprobs(
            &model.logits(&hidden.index_select(&rows, 0)?)?,
            &targets,
            s.temperature,
        )
    };
    let new = logps(Pass::TRAIN)?;
    let old = Tensor::new(old.as_slice(), device)?;
    let ratio = (&new - &old)?.exp()?;
    let unclipped = (&ratio * advantage)?;
    let clipped = (ratio.clamp(1.0 - s.clip, 1.0 + s.clip)? * advantage)?;
    let surrogate = unclipped.minimum(&clipped)?;
    let mut loss = surrogate.mean_all()?.neg()?;
    let mut stats = SequenceStats {
        tokens: positions.len(),
        ..SequenceStats::default()
    };
    let r = ratio.to_vec1::<f32>()?;
    stats.clipped = r
        .iter()
        .filter(|x| (f64::from(**x) - 1.0).abs() > s.clip)
        .count() as f64;
    if s.kl > 0.0 && matches!(policy.trainable, super::Trainable::Adapters(_)) {
        let reference = logps(Pass::REFERENCE)?.detach();
        let d = (reference - &new)?;
        let k3 = ((d.exp()? - &d)? - 1.0)?.mean_all()?;
        stats.kl = f64::from(k3.to_scalar::<f32>()?);
        loss = (loss + (k3 * s.kl)?)?;
    }
    stats.loss = f64::from(loss.to_scalar::<f32>()?);
    Ok((loss, stats))
}
