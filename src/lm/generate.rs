//! Sampling one turn from the model: the new context tokens are fed through the episode's KV
//! cache, then tokens are drawn one at a time (temperature, then top-p) until a stop token,
//! the turn's token budget or the model's context; each drawn token keeps its log-probability
//! under the sampling temperature (before top-p), which is what the trainer recomputes.

use super::model::{KvCache, Pass, Transformer};
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

/// One sequence being decoded: what it feeds next, its cache, its turn so far.
pub struct Decoding {
    feed: Vec<u32>,
    /// The sequence's cache (handed back with the turn).
    pub cache: KvCache,
    /// The turn so far.
    pub turn: Turn,
    sampling: Sampling,
    stops: Vec<u32>,
    /// The sequence's own random stream, so that batching does not change its draws.
    pub rng: Rng,
    done: bool,
}

impl Decoding {
    /// Starts a turn: `context` (tokens the model did not write, not empty) after what
    /// `cache` holds.
    pub fn new(
        context: Vec<u32>,
        cache: KvCache,
        sampling: Sampling,
        stops: Vec<u32>,
        rng: Rng,
    ) -> Self {
        Decoding {
            feed: context,
            cache,
            turn: Turn {
                tokens: Vec::new(),
                logprobs: Vec::new(),
                end: TurnEnd::Budget,
            },
            sampling,
            stops,
            rng,
            done: false,
        }
    }

    /// The turn has ended.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Ends the turn before the next pass if the budget or the context is spent.
    fn check(&mut self, limit: usize) {
        if self.turn.tokens.len() >= self.sampling.max_turn_tokens {
            self.done = true;
        } else if self.cache.len() + self.feed.len() >= limit {
            self.turn.end = TurnEnd::Context;
            self.done = true;
        }
    }

    /// Draws the next token from `logits` (this sequence's row).
    fn accept(&mut self, logits: &[f32]) {
        let token = draw(logits, &self.sampling, &mut self.rng);
        self.turn.tokens.push(token);
        self.turn
            .logprobs
            .push(logprob(logits, token, self.sampling.temperature));
        self.feed = vec![token];
        if self.stops.contains(&token) {
            self.turn.end = TurnEnd::Stop;
            self.done = true;
        }
    }
}

/// One decoding step for every unfinished sequence of `batch`: one batched pass, one token
/// each.
pub fn step(model: &Transformer, batch: &mut [&mut Decoding]) -> Result<()> {
    let limit = model.config().max_position_embeddings;
    for d in batch.iter_mut() {
        d.check(limit);
    }
    let mut live: Vec<&mut Decoding> = batch
        .iter_mut()
        .filter(|d| !d.done)
        .map(|d| &mut **d)
        .collect();
    if live.is_empty() {
        return Ok(());
    }
    let mut ends = Vec::with_capacity(live.len());
    let mut seqs: Vec<(&[u32], &mut KvCache)> = Vec::with_capacity(live.len());
    let mut at = 0;
    for d in live.iter_mut() {
        at += d.feed.len();
        ends.push(at as u32 - 1);
        seqs.push((&d.feed, &mut d.cache));
    }
    let hidden = model.forward_batch(&mut seqs, Pass::GENERATE)?;
    let last = hidden.index_select(&Tensor::new(ends.as_slice(), hidden.device())?, 0)?;
    let rows = model.logits(&last)?.to_vec2::<f32>()?;
    for (d, row) in live.iter_mut().zip(rows) {
        d.accept(&row);
    }
    Ok(())
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
    let taken = std::mem::take(cache);
    let mut d = Decoding::new(
        context.to_vec(),
        taken,
        *sampling,
        stops.to_vec(),
        Rng(rng.0),
    );
    while !d.done {
        step(model, &mut [&mut d])?;
    }
    *cache = d.cache;
    rng.0 = d.rng.0;
    Ok(d.turn)
}

/// The log-probability of `token` under `logits` at `temperature` (`<= 0`: 1).
fn logprob(logits: &[f32], token: u32, temperature: f64) -> f32 {
    let t = if temperature > 0.0 {
        temperature as f32
    } else {
        1.0
    };
    let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) / t;
    let sum: f32 = logits.iter().map(|l| (l / t - top).exp()).sum();
    logits[token as usize] / t - top - sum.ln()
}

/// One token from `logits` (one row).
fn draw(logits: &[f32], sampling: &Sampling, rng: &mut Rng) -> u32 {
    let best = || {
        logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i as u32)
    };
    if sampling.temperature <= 0.0 {
        return best();
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
            return *token;
        }
        u -= p;
    }
    probs.last().map_or_else(best, |p| p.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_keeps_only_the_nucleus_and_zero_temperature_is_greedy() {
        let logits = [0.0f32, 5.0, 4.9, -3.0];
        let mut rng = Rng(7);
        let greedy = Sampling {
            temperature: 0.0,
            ..Sampling::default()
        };
        assert_eq!(draw(&logits, &greedy, &mut rng), 1);
        let nucleus = Sampling {
            top_p: 0.9,
            ..Sampling::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..400 {
            seen.insert(draw(&logits, &nucleus, &mut rng));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 2]);
    }
}
