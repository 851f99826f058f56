//! Sampling one turn from the model: the new context tokens are fed through the episode's KV
//! cache, then tokens are drawn one at a time (temperature, then top-p) until a stop token,
//! the turn's token budget or the model's context; each drawn token keeps its log-probability
//! under the sampling temperature (before top-p), which is what the trainer recomputes.

use super::model::{token_logprobs, KvCache, Pass, Transformer};
use crate::agents::Rng;
use candle_core::{Result, Tensor};

/// How tokens are drawn.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sampling {
    /// Softmax temperature; 0 takes the most likely token (its log-probability at 1).
    pub temperature: f64,
    /// Nucleus: draw from the smallest set of tokens whose probability reaches it (1: all).
    pub top_p: f64,
    /// Most tokens of one turn.
    pub max_turn_tokens: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 1.0,
            top_p: 1.0,
            max_turn_tokens: 512,
        }
    }
}

/// How a turn ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnEnd {
    /// The model emitted a stop token (the last token of the turn).
    Stop,
    /// The turn's token budget ran out.
    Budget,
    /// The model's context is full.
    Context,
}

/// One sampled turn.
#[derive(Clone, Debug)]
pub struct Turn {
    /// The drawn tokens, the stop token included.
    pub tokens: Vec<u32>,
    /// Each token's log-probability.
    pub logprobs: Vec<f32>,
    /// Why it ended.
    pub end: TurnEnd,
}

/// Feeds `context` (tokens the model did not write) after what `cache` holds, then samples
/// the model's turn. `context` must not be empty.
pub fn sample_turn(
    model: &Transformer,
    cache: &mut KvCache,
    context: &[u32],
    sampling: &Sampling,
    stops: &[u32],
    rng: &mut Rng,
) -> Result<Turn> {
    let limit = model.config().max_position_embeddings;
    let mut turn = Turn {
        tokens: Vec::new(),
        logprobs: Vec::new(),
        end: TurnEnd::Budget,
    };
    let mut feed = context.to_vec();
    while turn.tokens.len() < sampling.max_turn_tokens {
        if cache.len() + feed.len() >= limit {
            turn.end = TurnEnd::Context;
            break;
        }
        let hidden = model.forward(&feed, Some(cache), Pass::GENERATE)?;
        let last = hidden.narrow(1, feed.len() - 1, 1)?.squeeze(0)?;
        let logits = model.logits(&last)?;
        let token = draw(&logits.squeeze(0)?, sampling, rng)?;
        let logprob = token_logprobs(&logits, &[token], sampling.temperature)?;
        turn.tokens.push(token);
        turn.logprobs.push(logprob.to_vec1::<f32>()?[0]);
        if stops.contains(&token) {
            turn.end = TurnEnd::Stop;
            break;
        }
        feed = vec![token];
    }
    Ok(turn)
}

/// One token from `logits` `(vocab,)`.
fn draw(logits: &Tensor, sampling: &Sampling, rng: &mut Rng) -> Result<u32> {
    let logits = logits.to_vec1::<f32>()?;
    let best = || {
        logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i as u32)
    };
    if sampling.temperature <= 0.0 {
        return Ok(best());
    }
    let t = sampling.temperature as f32;
    let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u32, ((l - top) / t).exp()))
        .collect();
    let total: f32 = probs.iter().map(|p| p.1).sum();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0.0;
    let mut cut = probs.len();
    for (i, p) in probs.iter().enumerate() {
        kept += p.1 / total;
        if kept >= sampling.top_p as f32 {
            cut = i + 1;
            break;
        }
    }
    probs.truncate(cut);
    let mass: f32 = probs.iter().map(|p| p.1).sum();
    let mut u = rng.unit() as f32 * mass;
    for (token, p) in &probs {
        if u < *p {
            return Ok(*token);
        }
        u -= p;
    }
    Ok(probs.last().map_or_else(best, |p| p.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn top_p_keeps_only_the_nucleus_and_zero_temperature_is_greedy() {
        let logits = Tensor::new(&[0.0f32, 5.0, 4.9, -3.0], &Device::Cpu).unwrap();
        let mut rng = Rng(7);
        let greedy = Sampling {
            temperature: 0.0,
            ..Sampling::default()
        };
        assert_eq!(draw(&logits, &greedy, &mut rng).unwrap(), 1);
        let nucleus = Sampling {
            top_p: 0.9,
            ..Sampling::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..400 {
            seen.insert(draw(&logits, &nucleus, &mut rng).unwrap());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 2]);
    }
}
