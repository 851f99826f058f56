//! The policy network: one set of weights for both roles, scoring a decision's candidates; the
//! loss (group-relative, clipped policy gradient with an entropy bonus); and AdamW whose state
//! is saved with the checkpoint so that `--resume` continues the optimizer where it stopped.

use super::features::{Choice, Role, CANDIDATE_TOKENS, CONTEXT_TOKENS, DENSE, VOCAB};
use candle_core::{DType, Device, Tensor, TensorId, Var, D};
use candle_nn::{Embedding, Linear, Module, VarBuilder, VarMap};
use std::collections::HashMap;

/// Width of token embeddings.
pub const EMBED: usize = 32;
/// Width of the hidden layer.
pub const HIDDEN: usize = 64;

/// Variable prefix of the linear term in the dense features (zero-initialized).
const EVIDENCE: &str = "evidence";

/// Scores every candidate of a decision; a softmax over the scores is the policy.
///
/// A candidate's tokens and the decision's context tokens are embedded and averaged (bags of
/// hashed tokens); the candidate vector, its elementwise product with the context vector (what
/// the candidate shares with the failing output) and the dense features (the role among them)
/// go through a two-layer MLP to one score, plus a linear term in the dense features alone.
///
/// The linear term is there for credit assignment: how near a candidate is to the traceback
/// is what carries over to unseen repositories, and through the MLP alone whether the weights
/// learn it depended on the initialization (of three seeds trained 40 steps, two had learned to
/// prefer a candidate on a traceback frame's line by 6 and 11 logits, the third by 1, having
/// memorized its training bugs' tokens instead). The linear weights start at zero, so the
/// untrained policy is the MLP's.
pub struct PolicyNet {
    tokens: Embedding,
    hidden: Linear,
    hidden2: Linear,
    score: Linear,
    evidence: Linear,
}

impl PolicyNet {
    /// The network over the variables in `vb` (created there if missing).
    pub fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        let tokens = candle_nn::embedding(VOCAB, EMBED, vb.pp("tokens"))?;
        let hidden = candle_nn::linear(2 * EMBED + DENSE, HIDDEN, vb.pp("hidden"))?;
        let hidden2 = candle_nn::linear(HIDDEN, HIDDEN, vb.pp("hidden2"))?;
        let score = candle_nn::linear(HIDDEN, 1, vb.pp("score"))?;
        let evidence = candle_nn::linear_no_bias(DENSE, 1, vb.pp(EVIDENCE))?;
        Ok(PolicyNet {
            tokens,
            hidden,
            hidden2,
            score,
            evidence,
        })
    }

    /// Log-probabilities `[decisions, max candidates]` of `batch`; padding and excluded
    /// candidates get (practically) zero probability.
    pub fn forward(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let (m, c) = (batch.decisions, batch.width);
        let candidates = self.bag(&batch.tokens, &batch.token_mask)?; // [m*c, E]
        let context = self.bag(&batch.context, &batch.context_mask)?; // [m, E]
        let context = context
            .unsqueeze(1)?
            .broadcast_as((m, c, EMBED))?
            .reshape((m * c, EMBED))?;
        let shared = (&candidates * &context)?;
        let x = Tensor::cat(&[&candidates, &shared, &batch.dense], 1)?;
        let h = self.hidden.forward(&x)?.relu()?;
        let h = self.hidden2.forward(&h)?.relu()?;
        let scores = (self.score.forward(&h)? + self.evidence.forward(&batch.dense)?)?;
        let scores = scores.reshape((m, c))?;
        let scores = (scores + &batch.exclusion)?;
        candle_nn::ops::log_softmax(&scores, D::Minus1)
    }

    /// Mean embedding of each row's non-padding tokens.
    fn bag(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let embedded = self.tokens.forward(ids)?; // [rows, len, E]
        let mask3 = mask.unsqueeze(2)?;
        let summed = embedded.broadcast_mul(&mask3)?.sum(1)?;
        let counts = mask.sum_keepdim(1)?.clamp(1.0, f64::MAX)?;
        summed.broadcast_div(&counts)
    }
}

/// Decisions as tensors: candidates padded to the widest decision.
pub struct Batch {
    /// How many decisions (rows of `context`); each has `width` candidate rows.
    pub decisions: usize,
    /// Candidates per decision after padding.
    pub width: usize,
    /// `[decisions*width, CANDIDATE_TOKENS]` token ids (0 pads).
    pub tokens: Tensor,
    /// 1 where `tokens` is a token.
    pub token_mask: Tensor,
    /// `[decisions, CONTEXT_TOKENS]`.
    pub context: Tensor,
    /// 1 where `context` is a token.
    pub context_mask: Tensor,
    /// `[decisions*width, DENSE]`.
    pub dense: Tensor,
    /// `[decisions, width]`: 0 for a live candidate, a large negative number otherwise.
    pub exclusion: Tensor,
}

/// What the network may not choose gets this score added.
const EXCLUDED: f32 = -1e9;

impl Batch {
    /// Builds the tensors for `choices`, each with the candidates it may still pick
    /// (`allowed[i][j]`).
    pub fn new(
        choices: &[&Choice],
        allowed: &[&[bool]],
        device: &Device,
    ) -> candle_core::Result<Batch> {
        let m = choices.len();
        let c = choices
            .iter()
            .map(|ch| ch.candidates.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut tokens = vec![0u32; m * c * CANDIDATE_TOKENS];
        let mut token_mask = vec![0f32; m * c * CANDIDATE_TOKENS];
        let mut dense = vec![0f32; m * c * DENSE];
        let mut context = vec![0u32; m * CONTEXT_TOKENS];
        let mut context_mask = vec![0f32; m * CONTEXT_TOKENS];
        let mut exclusion = vec![EXCLUDED; m * c];
        for (i, choice) in choices.iter().enumerate() {
            for (k, t) in choice.context.iter().take(CONTEXT_TOKENS).enumerate() {
                context[i * CONTEXT_TOKENS + k] = *t;
                context_mask[i * CONTEXT_TOKENS + k] = 1.0;
            }
            for (j, cand) in choice.candidates.iter().enumerate() {
                let row = i * c + j;
                for (k, t) in cand
                    .encoded
                    .tokens
                    .iter()
                    .take(CANDIDATE_TOKENS)
                    .enumerate()
                {
                    tokens[row * CANDIDATE_TOKENS + k] = *t;
                    token_mask[row * CANDIDATE_TOKENS + k] = 1.0;
                }
                dense[row * DENSE..(row + 1) * DENSE].copy_from_slice(&cand.encoded.dense);
                if allowed[i].get(j).copied().unwrap_or(true) {
                    exclusion[row] = 0.0;
                }
            }
        }
        Ok(Batch {
            decisions: m,
            width: c,
            tokens: Tensor::from_vec(tokens, (m * c, CANDIDATE_TOKENS), device)?,
            token_mask: Tensor::from_vec(token_mask, (m * c, CANDIDATE_TOKENS), device)?,
            context: Tensor::from_vec(context, (m, CONTEXT_TOKENS), device)?,
            context_mask: Tensor::from_vec(context_mask, (m, CONTEXT_TOKENS), device)?,
            dense: Tensor::from_vec(dense, (m * c, DENSE), device)?,
            exclusion: Tensor::from_vec(exclusion, (m, c), device)?,
        })
    }
}

/// One choice a policy made during an episode, with what training needs.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The candidates and context.
    pub choice: Choice,
    /// Which candidates were still allowed.
    pub allowed: Vec<bool>,
    /// The candidate taken.
    pub chosen: usize,
    /// Its log-probability under the weights that chose it.
    pub logp: f32,
}

/// Fills every variable of `varmap` from a seeded generator (uniform in +-1/sqrt(fan-in) for
/// matrices, small for embeddings, zero for biases and the dense features' linear term):
/// candle's CPU generator cannot be seeded, and the same seed must give the same untrained
/// policy.
pub fn seeded_init(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = crate::agents::Rng(seed ^ 0x504f_4c49_4359);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let bound = if name.ends_with("bias") || name.starts_with(EVIDENCE) {
            0.0
        } else if name.starts_with("tokens") {
            0.1
        } else {
            1.0 / (*dims.last().unwrap_or(&1) as f64).sqrt()
        };
        let values: Vec<f32> = (0..n)
            .map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32)
            .collect();
        var.set(&Tensor::from_vec(values, dims, var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// A fresh network with seeded weights on `device`.
pub fn fresh(seed: u64, device: &Device) -> candle_core::Result<(VarMap, PolicyNet)> {
    let varmap = VarMap::new();
    let net = PolicyNet::new(VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    seeded_init(&varmap, seed)?;
    Ok((varmap, net))
}

/// A frozen copy of `varmap`'s weights on the CPU, for rollouts while training goes on.
pub fn frozen(varmap: &VarMap) -> candle_core::Result<PolicyNet> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut tensors = HashMap::new();
    for (name, var) in data.iter() {
        tensors.insert(
            name.clone(),
            var.as_tensor().to_device(&Device::Cpu)?.copy()?,
        );
    }
    PolicyNet::new(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
}

/// Settings of the loss.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct LossSettings {
    /// The entropy bonus.
    pub entropy: f64,
    /// PPO-style ratio clip (rollouts run one step behind the weights being trained).
    pub clip: f64,
}

/// What one loss evaluation found, for the metrics log.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct LossStats {
    /// The value of the loss tensor [`loss()`] returns (0 when there were no decisions).
    pub loss: f64,
    /// Mean entropy of the solver's decisions (nats).
    pub entropy_solver: Option<f64>,
    /// Mean entropy of the injector's decisions.
    pub entropy_injector: Option<f64>,
}

/// The clipped policy-gradient loss of `decisions` with per-decision `advantages`, averaged
/// per role and summed over roles (so that the many solver decisions do not drown the few
/// injector ones), minus the entropy bonus.
pub fn loss(
    net: &PolicyNet,
    decisions: &[&Decision],
    advantages: &[f32],
    settings: LossSettings,
    device: &Device,
) -> candle_core::Result<(Tensor, LossStats)> {
    let choices: Vec<&Choice> = decisions.iter().map(|d| &d.choice).collect();
    let allowed: Vec<&[bool]> = decisions.iter().map(|d| d.allowed.as_slice()).collect();
    let batch = Batch::new(&choices, &allowed, device)?;
    let logp = net.forward(&batch)?; // [m, c]
    let m = decisions.len();
    let chosen: Vec<u32> = decisions.iter().map(|d| d.chosen as u32).collect();
    let chosen = Tensor::from_vec(chosen, (m, 1), device)?;
    let taken = logp.gather(&chosen, 1)?.squeeze(1)?; // [m]
    let old: Vec<f32> = decisions.iter().map(|d| d.logp).collect();
    let old = Tensor::from_vec(old, m, device)?;
    let adv = Tensor::from_vec(advantages.to_vec(), m, device)?;
    let ratio = (taken - old)?.exp()?;
    let clipped = ratio.clamp(1.0 - settings.clip, 1.0 + settings.clip)?;
    let surrogate = (&ratio * &adv)?.minimum(&(&clipped * &adv)?)?;
    let probs = logp.exp()?;
    // Excluded candidates have probability 0: zero their log-probabilities so 0 * -1e9 stays 0.
    let live = batch.exclusion.eq(0f32)?.to_dtype(DType::F32)?;
    let entropy = (probs * (logp * &live)?)?.sum(1)?.neg()?; // [m]
    let mut total: Option<Tensor> = None;
    let mut stats = LossStats::default();
    for role in [Role::Solver, Role::Injector] {
        let rows: Vec<u32> = (0..m)
            .filter(|i| decisions[*i].choice.role == role)
            .map(|i| i as u32)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let index = Tensor::from_vec(rows.clone(), rows.len(), device)?;
        let s = surrogate.index_select(&index, 0)?.mean_all()?;
        let h = entropy.index_select(&index, 0)?.mean_all()?;
        let h_value = f64::from(h.to_scalar::<f32>()?);
        match role {
            Role::Solver => stats.entropy_solver = Some(h_value),
            Role::Injector => stats.entropy_injector = Some(h_value),
        }
        let part = (s.neg()? - (h * settings.entropy)?)?;
        total = Some(match total {
            Some(t) => (t + part)?,
            None => part,
        });
    }
    let total = match total {
        Some(t) => t,
        None => Tensor::zeros((), DType::F32, device)?,
    };
    stats.loss = f64::from(total.to_scalar::<f32>()?);
    Ok((total, stats))
}

/// AdamW (decoupled weight decay), with its moments kept in a [`VarMap`] so that they are
/// saved and restored with the checkpoint: candle's own AdamW keeps them private.
pub struct AdamW {
    params: Vec<(String, Var)>,
    moments: VarMap,
    step: u64,
    /// Learning rate.
    pub lr: f64,
    /// Decoupled decay: each step first scales every weight by `1 - lr * weight_decay`.
    pub weight_decay: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    /// An optimizer over every variable of `varmap`, with zero moments.
    pub fn new(varmap: &VarMap, lr: f64, weight_decay: f64) -> candle_core::Result<Self> {
        let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut params: Vec<(String, Var)> =
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let moments = VarMap::new();
        {
            let mut m = moments.data().lock().unwrap_or_else(|e| e.into_inner());
            for (name, var) in &params {
                for which in ["m", "v"] {
                    let zeros = Var::zeros(var.shape(), var.dtype(), var.device())?;
                    m.insert(format!("{which}.{name}"), zeros);
                }
            }
        }
        Ok(AdamW {
            params,
            moments,
            step: 0,
            lr,
            weight_decay,
        })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update from `loss`'s gradients.
    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        let grads: HashMap<TensorId, Tensor> = self
            .params
            .iter()
            .filter_map(|(_, v)| Some((v.id(), grads.get(v)?.clone())))
            .collect();
        self.update(&grads)
    }

    /// The variables it updates, by name.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// One update from gradients gathered by the caller (accumulated over micro-batches, for
    /// instance), by variable id; variables without one are left alone.
    pub fn update(&mut self, grads: &HashMap<TensorId, Tensor>) -> candle_core::Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let scale_m = 1.0 / (1.0 - BETA1.powi(t));
        let scale_v = 1.0 / (1.0 - BETA2.powi(t));
        let moments = self
            .moments
            .data()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (name, theta) in &self.params {
            let Some(g) = grads.get(&theta.id()) else {
                continue;
            };
            let m = &moments[&format!("m.{name}")];
            let v = &moments[&format!("v.{name}")];
            let next_m = ((m.as_tensor() * BETA1)? + (g * (1.0 - BETA1))?)?;
            let next_v = ((v.as_tensor() * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let step = ((&next_m * scale_m)? / ((&next_v * scale_v)?.sqrt()? + EPS)?)?;
            let decayed = (theta.as_tensor() * (1.0 - self.lr * self.weight_decay))?;
            theta.set(&(decayed - (step * self.lr)?)?)?;
            m.set(&next_m)?;
            v.set(&next_v)?;
        }
        Ok(())
    }

    /// Saves the moments and the step count.
    pub fn save(&self, path: &std::path::Path) -> candle_core::Result<()> {
        let step = Tensor::new(&[self.step as f32], &Device::Cpu)?;
        let moments = self
            .moments
            .data()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut tensors: HashMap<String, Tensor> = moments
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        tensors.insert("step".into(), step);
        candle_core::safetensors::save(&tensors, path)
    }

    /// Restores what [`AdamW::save`] wrote.
    pub fn load(&mut self, path: &std::path::Path) -> candle_core::Result<()> {
        let device = self
            .params
            .first()
            .map_or(Device::Cpu, |(_, v)| v.device().clone());
        let tensors = candle_core::safetensors::load(path, &device)?;
        let moments = self
            .moments
            .data()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (name, var) in moments.iter() {
            let t = tensors.get(name).ok_or_else(|| {
                candle_core::Error::Msg(format!("{} lacks the moment {name}", path.display()))
            })?;
            var.set(t)?;
        }
        let step = tensors
            .get("step")
            .ok_or_else(|| candle_core::Error::Msg(format!("{} lacks step", path.display())))?;
        self.step = step.to_vec1::<f32>()?.first().copied().unwrap_or(0.0) as u64;
        Ok(())
    }
}

/// The log-probabilities of one decision's candidates under `net` (on the CPU), for sampling.
pub fn candidate_logps(
    net: &PolicyNet,
    choice: &Choice,
    allowed: &[bool],
) -> candle_core::Result<Vec<f32>> {
    let batch = Batch::new(&[choice], &[allowed], &Device::Cpu)?;
    let logp = net.forward(&batch)?;
    let mut row = logp.squeeze(0)?.to_vec1::<f32>()?;
    row.truncate(choice.candidates.len());
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::features::{Candidate, Encoded};
    use crate::pyedit::Edit;

    pub(crate) fn toy_choice(role: Role, n: usize, salt: u32) -> Choice {
        Choice {
            role,
            context: vec![7, 8, 9],
            candidates: (0..n)
                .map(|j| {
                    let mut dense = vec![0.0; DENSE];
                    dense[0] = 1.0;
                    dense[1] = f32::from(j == 0);
                    Candidate {
                        path: "a.py".into(),
                        line: j as u32 + 1,
                        label: format!("c{j}"),
                        edit: Edit {
                            start: 0,
                            end: 0,
                            replacement: String::new(),
                        },
                        encoded: Encoded {
                            tokens: vec![1 + (j as u32 * 31 + salt) % 8000, 5],
                            dense,
                        },
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn forward_is_a_distribution_over_allowed_candidates() {
        let (_, net) = fresh(1, &Device::Cpu).unwrap();
        let a = toy_choice(Role::Solver, 5, 0);
        let b = toy_choice(Role::Injector, 3, 1);
        let allowed_a = [true, false, true, true, true];
        let allowed_b = [true, true, true];
        let batch = Batch::new(&[&a, &b], &[&allowed_a, &allowed_b], &Device::Cpu).unwrap();
        let logp = net.forward(&batch).unwrap().to_vec2::<f32>().unwrap();
        for row in &logp {
            let total: f32 = row.iter().map(|l| l.exp()).sum();
            assert!((total - 1.0).abs() < 1e-4, "{total}");
        }
        assert!(logp[0][1].exp() < 1e-6, "excluded");
        assert!(logp[1][3].exp() < 1e-6, "padding");
        let single = candidate_logps(&net, &a, &allowed_a).unwrap();
        assert!((single[0] - logp[0][0]).abs() < 1e-5);
    }

    #[test]
    fn same_seed_same_weights() {
        let (_, a) = fresh(9, &Device::Cpu).unwrap();
        let (_, b) = fresh(9, &Device::Cpu).unwrap();
        let (_, c) = fresh(10, &Device::Cpu).unwrap();
        let choice = toy_choice(Role::Solver, 4, 0);
        let all = [true; 4];
        let la = candidate_logps(&a, &choice, &all).unwrap();
        assert_eq!(la, candidate_logps(&b, &choice, &all).unwrap());
        assert_ne!(la, candidate_logps(&c, &choice, &all).unwrap());
    }

    /// `rounds` gradient steps that reward candidate 0 (the one on the "frame") and punish
    /// candidate 1, in 6 toy decisions that differ in their tokens.
    fn reward_the_frame_candidate(varmap: &VarMap, net: &PolicyNet, rounds: usize) {
        let mut opt = AdamW::new(varmap, 0.01, 0.0).unwrap();
        let choices: Vec<Choice> = (0..6).map(|i| toy_choice(Role::Solver, 6, i)).collect();
        let all = [true; 6];
        for round in 0..rounds {
            let decisions: Vec<Decision> = choices
                .iter()
                .flat_map(|c| {
                    let lp = candidate_logps(net, c, &all).unwrap();
                    [0, 1].map(|chosen| Decision {
                        choice: c.clone(),
                        allowed: all.to_vec(),
                        chosen,
                        logp: lp[chosen],
                    })
                })
                .collect();
            let refs: Vec<&Decision> = decisions.iter().collect();
            let adv: Vec<f32> = (0..refs.len())
                .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
            let settings = LossSettings {
                entropy: 0.0,
                clip: 0.2,
            };
            let (l, stats) = loss(net, &refs, &adv, settings, &Device::Cpu).unwrap();
            assert!(stats.loss.is_finite());
            let h = stats.entropy_solver.unwrap();
            assert!(h >= -1e-6 && h <= 6f64.ln() + 1e-4, "{h}");
            if round == 0 {
                assert!(h > 1.5, "an untrained policy is near uniform: {h}");
            }
            opt.backward_step(&l).unwrap();
        }
    }

    #[test]
    fn gradient_steps_raise_the_probability_of_rewarded_choices() {
        let (varmap, net) = fresh(3, &Device::Cpu).unwrap();
        let choice = toy_choice(Role::Solver, 6, 0);
        let all = [true; 6];
        let before = candidate_logps(&net, &choice, &all).unwrap()[0];
        reward_the_frame_candidate(&varmap, &net, 60);
        let after = candidate_logps(&net, &choice, &all).unwrap()[0];
        assert!(after > before + 1.0, "{before} -> {after}");
    }

    #[test]
    fn the_evidence_term_starts_at_zero_and_learns_what_the_rewards_point_at() {
        let (varmap, net) = fresh(3, &Device::Cpu).unwrap();
        let weights = || {
            let data = varmap.data().lock().unwrap();
            data[&format!("{EVIDENCE}.weight")]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert!(weights().iter().all(|&w| w == 0.0));
        reward_the_frame_candidate(&varmap, &net, 10);
        let learned = weights();
        // Dense feature 1 ("on a frame's line") is what sets the rewarded candidate apart.
        assert!(learned[1] > 0.05, "{learned:?}");
        assert!(learned[1] > learned[2..].iter().fold(0f32, |m, w| m.max(w.abs())));
    }

    #[test]
    fn optimizer_state_round_trips() {
        let (varmap, net) = fresh(4, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(&varmap, 0.01, 0.01).unwrap();
        let choice = toy_choice(Role::Injector, 3, 0);
        let d = Decision {
            choice: choice.clone(),
            allowed: vec![true; 3],
            chosen: 2,
            logp: -1.0,
        };
        let settings = LossSettings {
            entropy: 0.01,
            clip: 0.2,
        };
        let (l, _) = loss(&net, &[&d], &[1.0], settings, &Device::Cpu).unwrap();
        opt.backward_step(&l).unwrap();
        let dir = std::env::temp_dir().join(format!("spar-adamw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("opt.safetensors");
        opt.save(&path).unwrap();
        let mut again = AdamW::new(&varmap, 0.01, 0.01).unwrap();
        again.load(&path).unwrap();
        assert_eq!(again.steps(), 1);
        let m1 = opt.moments.data().lock().unwrap()["m.score.weight"]
            .as_tensor()
            .to_vec2::<f32>()
            .unwrap();
        let m2 = again.moments.data().lock().unwrap()["m.score.weight"]
            .as_tensor()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(m1, m2);
        std::fs::remove_dir_all(dir).ok();
    }

    /// Built only with `--features cuda`; runs where a GPU is present.
    #[cfg(feature = "cuda")]
    #[test]
    fn cpu_and_cuda_agree_on_a_forward_and_backward_step() {
        let Ok(gpu) = Device::new_cuda(0) else {
            eprintln!("no CUDA GPU here: CPU/CUDA agreement not checked");
            return;
        };
        let (cpu_vars, cpu_net) = fresh(5, &Device::Cpu).unwrap();
        let (gpu_vars, gpu_net) = fresh(5, &gpu).unwrap();
        let choices: Vec<Choice> = (0..4)
            .map(|i| {
                toy_choice(
                    if i % 2 == 0 {
                        Role::Solver
                    } else {
                        Role::Injector
                    },
                    5,
                    i,
                )
            })
            .collect();
        let decisions: Vec<Decision> = choices
            .iter()
            .enumerate()
            .map(|(i, c)| Decision {
                choice: c.clone(),
                allowed: vec![true; 5],
                chosen: i % 5,
                logp: -1.5,
            })
            .collect();
        let refs: Vec<&Decision> = decisions.iter().collect();
        let adv = [1.0, -0.5, 0.25, -0.75];
        let settings = LossSettings {
            entropy: 0.01,
            clip: 0.2,
        };
        let (cpu_loss, cpu_stats) = loss(&cpu_net, &refs, &adv, settings, &Device::Cpu).unwrap();
        let (gpu_loss, gpu_stats) = loss(&gpu_net, &refs, &adv, settings, &gpu).unwrap();
        assert!(
            (cpu_stats.loss - gpu_stats.loss).abs() < 1e-4,
            "{cpu_stats:?} {gpu_stats:?}"
        );
        let cpu_grads = cpu_loss.backward().unwrap();
        let gpu_grads = gpu_loss.backward().unwrap();
        let cpu_map = cpu_vars.data().lock().unwrap();
        let gpu_map = gpu_vars.data().lock().unwrap();
        for (name, var) in cpu_map.iter() {
            let a = cpu_grads.get(var).unwrap().flatten_all().unwrap();
            let b = gpu_grads
                .get(&gpu_map[name])
                .unwrap()
                .to_device(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap();
            let diff = (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-4, "{name}: gradients differ by {diff}");
        }
    }
}
