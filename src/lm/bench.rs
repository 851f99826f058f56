//! `spar bench lm`: what the language-model policy costs on this machine, with random weights
//! of a real model's shape (no download): prompt processing, generation one turn at a time and
//! batched across episodes (the generator's shape), and one GRPO step with LoRA adapters.

use super::agent::Trajectory;
use super::chat::ChatTokenizer;
use super::config::{Family, LmConfig};
use super::generate::{step, Decoding, Sampling};
use super::grpo::{GrpoSettings, GrpoTrainer};
use super::model::{KvCache, LoraSettings, Pass};
use super::{tiny, LmError, LmPolicy, Trainable};
use crate::agents::Rng;
use candle_core::Device;
use std::time::Instant;

/// A model shape to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Shape {
    /// The two-layer model of the tests.
    #[serde(rename = "tiny")]
    Tiny,
    /// Qwen2.5-0.5B: 24 layers, width 896, 14 query and 2 key/value heads, 151,936 tokens.
    #[serde(rename = "qwen2-0.5b")]
    Qwen2_0_5b,
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tiny" => Ok(Shape::Tiny),
            "qwen2-0.5b" => Ok(Shape::Qwen2_0_5b),
            _ => Err(format!("unknown shape {s:?}: use tiny or qwen2-0.5b")),
        }
    }
}

impl Shape {
    /// The config of this shape.
    pub fn config(self) -> LmConfig {
        match self {
            Shape::Tiny => LmConfig::tiny(Family::Qwen2, 512),
            Shape::Qwen2_0_5b => LmConfig {
                hidden_size: 896,
                intermediate_size: 4864,
                num_hidden_layers: 24,
                num_attention_heads: 14,
                num_key_value_heads: 2,
                max_position_embeddings: 32768,
                rope_theta: 1_000_000.0,
                ..LmConfig::tiny(Family::Qwen2, 151_936)
            },
        }
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct LmBenchSettings {
    /// The model shape.
    pub shape: Shape,
    /// Prompt tokens before generation.
    pub prompt_tokens: usize,
    /// Tokens generated per sequence.
    pub new_tokens: usize,
    /// Sequences generated together in the batched measurement.
    pub batch: usize,
    /// Tokens of the GRPO step's trajectory (its last quarter is the model's).
    pub train_tokens: usize,
    /// LoRA rank of the GRPO step.
    pub lora_rank: usize,
}

/// The measurements.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LmBenchReport {
    /// The model shape.
    pub shape: Shape,
    /// The device, as candle names it.
    pub device: String,
    /// Parameters of the model.
    pub parameters: usize,
    /// Prompt tokens per second (one sequence's prompt in one pass).
    pub prefill_tokens_per_s: f64,
    /// Generated tokens per second, one sequence.
    pub decode_tokens_per_s: f64,
    /// Generated tokens per second over `batch` sequences stepped together.
    pub batched_decode_tokens_per_s: f64,
    /// Sequences in the batched measurement.
    pub batch: usize,
    /// Seconds of one GRPO step (forward, backward, AdamW) over one trajectory.
    pub grpo_step_s: f64,
    /// Tokens of that trajectory.
    pub train_tokens: usize,
    /// Seconds to make the random weights and place them on the device.
    pub setup_s: f64,
}

/// Runs the measurements on `device`.
pub fn bench(settings: &LmBenchSettings, device: &Device) -> Result<LmBenchReport, LmError> {
    let started = Instant::now();
    let cfg = settings.shape.config();
    let weights = tiny::random_weights(&cfg, 1)?;
    let parameters = weights.values().map(|t| t.elem_count()).sum();
    let corpus = vec!["def add(a, b):\n    return a + b\n".to_owned()];
    let tokenizer = tiny::train_tokenizer(&corpus, 300)
        .map_err(|e| LmError::Tensor(candle_core::Error::Msg(format!("tokenizer: {e}"))))?;
    let chat = ChatTokenizer::new(tokenizer)?;
    let lora = Trainable::Adapters(LoraSettings {
        rank: settings.lora_rank,
        alpha: 2.0 * settings.lora_rank as f64,
    });
    let here = std::path::Path::new(".");
    let policy = LmPolicy::from_weights(&cfg, chat, weights, device, lora, 1, here)?;
    let setup_s = started.elapsed().as_secs_f64();
    let mut rng = Rng(3);
    let prompt: Vec<u32> = (0..settings.prompt_tokens)
        .map(|_| rng.below(cfg.vocab_size) as u32)
        .collect();
    let model = &policy.model;
    // A first pass touches every weight's pages; time the second.
    model.forward(&prompt, None, Pass::GENERATE)?;
    let mut cache = KvCache::default();
    let timer = Instant::now();
    model.forward(&prompt, Some(&mut cache), Pass::GENERATE)?;
    sync(device)?;
    let prefill_tokens_per_s = prompt.len() as f64 / timer.elapsed().as_secs_f64();
    let decode_tokens_per_s = decode_rate(model, &cache, prompt[0], settings.new_tokens, 1)?;
    let batched_decode_tokens_per_s = decode_rate(
        model,
        &cache,
        prompt[0],
        settings.new_tokens,
        settings.batch,
    )?;
    let grpo_step_s = grpo_step(&policy, settings, &mut rng)?;
    Ok(LmBenchReport {
        shape: settings.shape,
        device: format!("{device:?}"),
        parameters,
        prefill_tokens_per_s,
        decode_tokens_per_s,
        batched_decode_tokens_per_s,
        batch: settings.batch,
        grpo_step_s,
        train_tokens: settings.train_tokens,
        setup_s,
    })
}

/// Tokens per second of `n` sequences drawing `tokens` each after `cache`, stepped together.
fn decode_rate(
    model: &super::model::Transformer,
    cache: &KvCache,
    first: u32,
    tokens: usize,
    n: usize,
) -> Result<f64, LmError> {
    let sampling = Sampling {
        temperature: 1.0,
        top_p: 1.0,
        max_turn_tokens: tokens,
    };
    let mut turns: Vec<Decoding> = (0..n)
        .map(|i| {
            Decoding::new(
                vec![first],
                cache.clone(),
                sampling,
                Vec::new(),
                Rng(i as u64),
            )
        })
        .collect();
    let timer = Instant::now();
    while turns.iter().any(|t| !t.done()) {
        step(model, &mut turns.iter_mut().collect::<Vec<_>>())?;
    }
    sync(model.device())?;
    let drawn: usize = turns.iter().map(|t| t.turn.tokens.len()).sum();
    Ok(drawn as f64 / timer.elapsed().as_secs_f64())
}

/// One GRPO step over a random trajectory whose last quarter is the model's.
fn grpo_step(policy: &LmPolicy, settings: &LmBenchSettings, rng: &mut Rng) -> Result<f64, LmError> {
    let n = settings.train_tokens.max(8);
    let vocab = policy.model.config().vocab_size;
    let trajectory = Trajectory {
        tokens: (0..n).map(|_| rng.below(vocab) as u32).collect(),
        own: (0..n).map(|i| i >= n - n / 4).collect(),
        logprobs: vec![-5.0; n],
        turns: 1,
        fumbles: 0,
    };
    let mut trainer = GrpoTrainer::new(policy, GrpoSettings::default())?;
    let timer = Instant::now();
    trainer.step(policy, &[(&trajectory, 1.0)])?;
    sync(policy.model.device())?;
    Ok(timer.elapsed().as_secs_f64())
}

fn sync(device: &Device) -> candle_core::Result<()> {
    device.synchronize()
}

impl std::fmt::Display for LmBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:?}, {:.1}M parameters, random weights, on {} (set up in {:.1} s)",
            self.shape,
            self.parameters as f64 / 1e6,
            self.device,
            self.setup_s
        )?;
        writeln!(
            f,
            "prompt          {:>10.1} tokens/s",
            self.prefill_tokens_per_s
        )?;
        writeln!(
            f,
            "generate x1     {:>10.1} tokens/s",
            self.decode_tokens_per_s
        )?;
        writeln!(
            f,
            "generate x{:<3}   {:>10.1} tokens/s ({:.2}x one sequence)",
            self.batch,
            self.batched_decode_tokens_per_s,
            self.batched_decode_tokens_per_s / self.decode_tokens_per_s.max(1e-9)
        )?;
        writeln!(
            f,
            "GRPO step       {:>10.2} s for {} tokens (LoRA)",
            self.grpo_step_s, self.train_tokens
        )
    }
}
