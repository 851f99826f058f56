//! A checkpoint's `config.json`: the Qwen2 and Qwen3 fields spar's transformer reads, checked
//! once so that a checkpoint it cannot run is refused with what is wrong, never run wrongly.

use serde::{Deserialize, Serialize};

/// The architecture families spar runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Qwen2 / Qwen2.5: biases on the q, k and v projections.
    Qwen2,
    /// Qwen3: no projection biases (by default), RMS norms on each head's queries and keys.
    Qwen3,
}

/// A Hugging Face `config.json` of the Qwen2 or Qwen3 family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// `qwen2` or `qwen3`.
    pub model_type: Family,
    /// Tokens in the vocabulary (rows of the embedding).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than the query heads).
    pub num_key_value_heads: usize,
    /// Width of one head; Qwen2 derives it as `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Biases on the q, k, v projections (Qwen2 always has them; Qwen3's config says).
    #[serde(default)]
    pub attention_bias: Option<bool>,
    /// Positions the rotary table covers: the model's context.
    pub max_position_embeddings: usize,
    /// The output head is the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Base of the rotary frequencies.
    pub rope_theta: f64,
    /// RMS norm epsilon.
    pub rms_norm_eps: f64,
    /// Activation of the MLP (only `silu` is run).
    #[serde(default = "silu")]
    pub hidden_act: String,
    /// Sliding-window attention (not run: Qwen checkpoints ship with it off).
    #[serde(default)]
    pub use_sliding_window: bool,
    /// Rotary scaling (YaRN and the like: not run; `null` in the released checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<serde_json::Value>,
}

fn silu() -> String {
    "silu".into()
}

/// Why a `config.json` cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not a config of a family spar runs.
    #[error("not a Qwen2/Qwen3 config.json ({0}); spar runs model_type \"qwen2\" and \"qwen3\"")]
    Parse(#[source] serde_json::Error),
    /// A feature of the architecture spar does not implement.
    #[error("{0}")]
    Unsupported(String),
}

impl LmConfig {
    /// Parses and checks a `config.json`.
    pub fn from_json(text: &str) -> Result<LmConfig, ConfigError> {
        let config: LmConfig = serde_json::from_str(text).map_err(ConfigError::Parse)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let refuse = |what: String| Err(ConfigError::Unsupported(what));
        if self.hidden_act != "silu" {
            return refuse(format!(
                "hidden_act {:?}: only silu is run",
                self.hidden_act
            ));
        }
        if self.use_sliding_window {
            return refuse("use_sliding_window: true is not run; set it to false".into());
        }
        if self.rope_scaling.as_ref().is_some_and(|s| !s.is_null()) {
            return refuse(
                "rope_scaling is not run; remove it (context up to max_position_embeddings)".into(),
            );
        }
        let heads = self.num_attention_heads;
        if heads == 0
            || self.num_key_value_heads == 0
            || !heads.is_multiple_of(self.num_key_value_heads)
        {
            return refuse(format!(
                "num_attention_heads {heads} is not a multiple of num_key_value_heads {}",
                self.num_key_value_heads
            ));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(heads) {
            return refuse(format!(
                "hidden_size {} is not a multiple of {heads} heads",
                self.hidden_size
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return refuse(format!(
                "head_dim {} is odd: rotary embeddings need pairs",
                self.head_dim()
            ));
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Whether the q, k, v projections have biases.
    pub fn qkv_bias(&self) -> bool {
        match self.model_type {
            Family::Qwen2 => true,
            Family::Qwen3 => self.attention_bias.unwrap_or(false),
        }
    }

    /// Whether each head's queries and keys are RMS-normed before the rotation (Qwen3).
    pub fn qk_norm(&self) -> bool {
        self.model_type == Family::Qwen3
    }

    /// A tiny config of `family` (two layers, grouped-query attention) for tests and smoke runs.
    pub fn tiny(family: Family, vocab_size: usize) -> LmConfig {
        LmConfig {
            model_type: family,
            vocab_size,
            hidden_size: 64,
            intermediate_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: (family == Family::Qwen3).then_some(16),
            attention_bias: (family == Family::Qwen3).then_some(false),
            max_position_embeddings: 4096,
            tie_word_embeddings: true,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-6,
            hidden_act: "silu".into(),
            use_sliding_window: false,
            rope_scaling: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_qwen2_config_and_refuses_what_it_cannot_run() {
        let text = r#"{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":151936,
            "hidden_size":896,"intermediate_size":4864,"num_hidden_layers":24,
            "num_attention_heads":14,"num_key_value_heads":2,"max_position_embeddings":32768,
            "tie_word_embeddings":true,"rope_theta":1000000.0,"rms_norm_eps":1e-06,
            "hidden_act":"silu","use_sliding_window":false,"sliding_window":32768,
            "torch_dtype":"bfloat16","rope_scaling":null}"#;
        let c = LmConfig::from_json(text).unwrap();
        assert_eq!((c.head_dim(), c.qkv_bias(), c.qk_norm()), (64, true, false));
        let llama = text.replace("\"qwen2\"", "\"llama\"");
        assert!(LmConfig::from_json(&llama)
            .unwrap_err()
            .to_string()
            .contains("qwen3"));
        let gelu = text.replace("\"silu\"", "\"gelu\"");
        assert!(LmConfig::from_json(&gelu)
            .unwrap_err()
            .to_string()
            .contains("silu"));
        let yarn = text.replace("null}", "{\"type\":\"yarn\",\"factor\":4.0}}");
        assert!(LmConfig::from_json(&yarn)
            .unwrap_err()
            .to_string()
            .contains("rope_scaling"));
    }
}
