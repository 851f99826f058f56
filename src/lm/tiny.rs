//! A tiny checkpoint made on the spot: a byte-level BPE tokenizer trained on a given corpus
//! (with ChatML's markers) and a two-layer model of seeded random weights, written as a
//! Hugging Face directory. Tests use it, and so can a user checking the LM pipeline end to end
//! without downloading weights; it writes text, not sense.

use super::chat::{END_OF_TEXT, IM_END, IM_START};
use super::config::{Family, LmConfig};
use crate::agents::Rng;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    Tokenizer, TokenizerBuilder, TokenizerImpl,
};

/// A byte-level BPE tokenizer of at most `vocab_size` tokens trained on `corpus`, with
/// `<|endoftext|>`, `<|im_start|>` and `<|im_end|>` as special tokens (as Qwen's have).
pub fn train_tokenizer(corpus: &[String], vocab_size: usize) -> tokenizers::Result<Tokenizer> {
    let specials = [END_OF_TEXT, IM_START, IM_END].map(|t| AddedToken::from(t, true));
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(1)
        .show_progress(false)
        .special_tokens(specials.to_vec())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tokenizer: TokenizerImpl<
        ModelWrapper,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    > = TokenizerBuilder::new()
        .with_model(BPE::default().into())
        .with_normalizer(None)
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true).into()))
        .with_post_processor(Some(ByteLevel::default().into()))
        .with_decoder(Some(ByteLevel::default().into()))
        .build()?;
    tokenizer.train(&mut TrainerWrapper::BpeTrainer(trainer), corpus.iter())?;
    tokenizer.add_special_tokens(&specials);
    Ok(Tokenizer::from(tokenizer))
}

/// Seeded random weights for `cfg`, named as Hugging Face names them (normal-ish values of
/// scale `0.5 / sqrt(fan-in)`, norms at 1).
pub fn random_weights(cfg: &LmConfig, seed: u64) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut rng = Rng(seed ^ 0x7469_6e79);
    let mut tensors = HashMap::new();
    let mut put = |name: String, shape: Vec<usize>, fill: Option<f32>| -> candle_core::Result<()> {
        let n: usize = shape.iter().product();
        let bound = 0.5 / (*shape.last().unwrap_or(&1) as f64).sqrt();
        let values: Vec<f32> = (0..n)
            .map(|_| fill.unwrap_or_else(|| ((rng.unit() * 2.0 - 1.0) * bound * 1.7) as f32))
            .collect();
        tensors.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
        Ok(())
    };
    let (h, hd, i) = (cfg.hidden_size, cfg.head_dim(), cfg.intermediate_size);
    let (q, kv) = (cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd);
    put(
        "model.embed_tokens.weight".into(),
        vec![cfg.vocab_size, h],
        None,
    )?;
    put("model.norm.weight".into(), vec![h], Some(1.0))?;
    if !cfg.tie_word_embeddings {
        put("lm_head.weight".into(), vec![cfg.vocab_size, h], None)?;
    }
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        put(format!("{p}.input_layernorm.weight"), vec![h], Some(1.0))?;
        put(
            format!("{p}.post_attention_layernorm.weight"),
            vec![h],
            Some(1.0),
        )?;
        for (name, out, inp) in [
            ("q_proj", q, h),
            ("k_proj", kv, h),
            ("v_proj", kv, h),
            ("o_proj", h, q),
        ] {
            put(format!("{p}.self_attn.{name}.weight"), vec![out, inp], None)?;
            if cfg.qkv_bias() && name != "o_proj" {
                put(format!("{p}.self_attn.{name}.bias"), vec![out], None)?;
            }
        }
        if cfg.qk_norm() {
            put(format!("{p}.self_attn.q_norm.weight"), vec![hd], Some(1.0))?;
            put(format!("{p}.self_attn.k_norm.weight"), vec![hd], Some(1.0))?;
        }
        for (name, out, inp) in [("gate_proj", i, h), ("up_proj", i, h), ("down_proj", h, i)] {
            put(format!("{p}.mlp.{name}.weight"), vec![out, inp], None)?;
        }
    }
    Ok(tensors)
}

/// Writes a tiny checkpoint of `family` into `dir` (`config.json`, `model.safetensors`,
/// `tokenizer.json`), its tokenizer trained on `corpus`.
pub fn write_checkpoint(
    dir: &Path,
    family: Family,
    corpus: &[String],
    vocab_size: usize,
    seed: u64,
) -> anyhow::Result<LmConfig> {
    std::fs::create_dir_all(dir)?;
    let tokenizer = train_tokenizer(corpus, vocab_size).map_err(|e| anyhow::anyhow!("{e}"))?;
    tokenizer
        .save(dir.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = LmConfig::tiny(family, tokenizer.get_vocab_size(true));
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    candle_core::safetensors::save(&random_weights(&cfg, seed)?, dir.join("model.safetensors"))?;
    Ok(cfg)
}
