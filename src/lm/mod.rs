//! The language-model policy: a Qwen2/Qwen3 checkpoint (a local Hugging Face directory:
//! `config.json`, `*.safetensors`, `tokenizer.json`) that plays both SSR roles through the
//! episode's tools, and its GRPO training.
//!
//! - [`config`]: the checkpoint's `config.json`, checked.
//! - [`model`]: the decoder, with LoRA adapters and per-episode KV caches.
//! - [`chat`]: ChatML with tool definitions; tool calls read from the model's text.
//! - [`generate`]: sampling one turn, keeping each token's log-probability.
//! - [`batch`]: one generator thread stepping every episode's turn together.
//! - [`agent`]: the [`agent::LmAgent`] that acts in an episode and records its trajectory.
//! - [`grpo`]: group-relative advantages and the clipped objective over the model's tokens.
//! - [`tiny`]: a tiny random checkpoint made on the spot, for tests and smoke runs.
//! - [`bench`]: `spar bench lm`, with random weights of a real model's shape.
//!
//! spar never downloads weights: the user brings the checkpoint.

pub mod agent;
pub mod batch;
pub mod bench;
pub mod chat;
pub mod config;
pub mod generate;
pub mod grpo;
pub mod model;
pub mod tiny;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use chat::{ChatTokenizer, TokenizerError};
use config::{ConfigError, LmConfig};
use model::{LoraSettings, Transformer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What of the model training changes.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Trainable {
    /// Nothing: acting only.
    Frozen,
    /// LoRA adapters on every attention and MLP projection; the base stays frozen.
    Adapters(LoraSettings),
    /// Every weight (small models).
    Full,
}

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// `config.json` is missing, unreadable or of an architecture spar does not run.
    #[error("{path}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: ConfigError,
    },
    /// The tokenizer cannot be used.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The directory has no weights.
    #[error(
        "no *.safetensors in {0}: spar reads a local Hugging Face checkpoint directory (for \
         example `huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct --local-dir DIR`)"
    )]
    NoWeights(PathBuf),
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The weights do not fit the config, or a tensor operation failed.
    #[error("in the language model")]
    Tensor(#[from] candle_core::Error),
}

/// PEFT's prefix of adapter names in `adapter_model.safetensors`.
const PEFT_PREFIX: &str = "base_model.model.";
/// Where adapters are saved, as PEFT names them.
pub const ADAPTERS: &str = "adapter_model.safetensors";

/// A loaded checkpoint: the model every episode shares, its tokenizer, and what training
/// changes.
pub struct LmPolicy {
    /// The decoder.
    pub model: Transformer,
    /// The checkpoint's tokenizer.
    pub chat: ChatTokenizer,
    /// The trainable variables (empty when frozen).
    pub varmap: VarMap,
    /// What training changes.
    pub trainable: Trainable,
    /// The checkpoint directory.
    pub dir: PathBuf,
}

impl LmPolicy {
    /// Loads `dir` onto `device` (f32 on the CPU; the frozen base in bf16 on a GPU). Adapters
    /// start at zero (the base model's behaviour), their `A` matrices seeded by `seed`.
    pub fn load(
        dir: &Path,
        device: &Device,
        trainable: Trainable,
        seed: u64,
    ) -> Result<LmPolicy, LmError> {
        let cfg = read_config(dir)?;
        let chat = ChatTokenizer::from_file(&dir.join("tokenizer.json"))?;
        let weights = read_weights(dir, device, LmPolicy::dtype(trainable, device))?;
        LmPolicy::from_weights(&cfg, chat, weights, device, trainable, seed, dir)
    }

    /// The dtype weights are kept in: f32 on the CPU and when every weight trains; bf16 for
    /// a frozen base on a GPU.
    pub fn dtype(trainable: Trainable, device: &Device) -> DType {
        match (trainable, device.is_cpu()) {
            (Trainable::Full, _) | (_, true) => DType::F32,
            _ => DType::BF16,
        }
    }

    /// A policy over weights already in memory (`dir`: where they came from, for saving).
    pub fn from_weights(
        cfg: &LmConfig,
        chat: ChatTokenizer,
        weights: HashMap<String, Tensor>,
        device: &Device,
        trainable: Trainable,
        seed: u64,
        dir: &Path,
    ) -> Result<LmPolicy, LmError> {
        let dtype = LmPolicy::dtype(trainable, device);
        let mut placed = HashMap::with_capacity(weights.len());
        for (name, t) in weights {
            placed.insert(name, t.to_device(device)?.to_dtype(dtype)?);
        }
        let varmap = VarMap::new();
        let model = match trainable {
            Trainable::Frozen => {
                Transformer::new(cfg, VarBuilder::from_tensors(placed, dtype, device), None)?
            }
            Trainable::Full => {
                {
                    let mut data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
                    for (name, t) in placed {
                        data.insert(name, Var::from_tensor(&t)?);
                    }
                }
                Transformer::new(cfg, VarBuilder::from_varmap(&varmap, dtype, device), None)?
            }
            Trainable::Adapters(lora) => {
                let adapters = VarBuilder::from_varmap(&varmap, DType::F32, device);
                let base = VarBuilder::from_tensors(placed, dtype, device);
                let model = Transformer::new(cfg, base, Some((adapters, lora)))?;
                seed_adapters(&varmap, seed)?;
                model
            }
        };
        Ok(LmPolicy {
            model,
            chat,
            varmap,
            trainable,
            dir: dir.to_owned(),
        })
    }

    /// Writes the trained state into `out`: adapters as PEFT writes them
    /// (`adapter_model.safetensors`, `adapter_config.json`), or a whole checkpoint directory
    /// after full fine-tuning (weights, `config.json`, `tokenizer.json`).
    pub fn save(&self, out: &Path) -> Result<(), LmError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| LmError::Io { path, source }
        };
        std::fs::create_dir_all(out).map_err(io(out))?;
        let tensors = self.trained_tensors()?;
        match self.trainable {
            Trainable::Frozen => {}
            Trainable::Adapters(lora) => {
                let named: HashMap<String, Tensor> = tensors
                    .into_iter()
                    .map(|(k, v)| (format!("{PEFT_PREFIX}{k}"), v))
                    .collect();
                candle_core::safetensors::save(&named, out.join(ADAPTERS))?;
                let config = serde_json::json!({
                    "peft_type": "LORA", "r": lora.rank, "lora_alpha": lora.alpha,
                    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                    "base_model_name_or_path": self.dir, "bias": "none", "task_type": "CAUSAL_LM",
                });
                let path = out.join("adapter_config.json");
                std::fs::write(&path, config.to_string()).map_err(io(&path))?;
            }
            Trainable::Full => {
                candle_core::safetensors::save(&tensors, out.join("model.safetensors"))?;
                for file in ["config.json", "tokenizer.json"] {
                    let to = out.join(file);
                    std::fs::copy(self.dir.join(file), &to).map_err(io(&to))?;
                }
            }
        }
        Ok(())
    }

    /// Restores what [`LmPolicy::save`] wrote into `from`.
    pub fn restore(&self, from: &Path) -> Result<(), LmError> {
        let file = match self.trainable {
            Trainable::Frozen => return Ok(()),
            Trainable::Adapters(_) => from.join(ADAPTERS),
            Trainable::Full => from.join("model.safetensors"),
        };
        let tensors = candle_core::safetensors::load(&file, self.model.device())?;
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        for (name, var) in data.iter() {
            let t = tensors
                .get(&format!("{PEFT_PREFIX}{name}"))
                .or_else(|| tensors.get(name))
                .ok_or_else(|| {
                    candle_core::Error::Msg(format!("{} lacks {name}", file.display()))
                })?;
            var.set(&t.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }

    fn trained_tensors(&self) -> candle_core::Result<HashMap<String, Tensor>> {
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        data.iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_device(&Device::Cpu)?)))
            .collect()
    }
}

/// Checks that `dir` looks like a checkpoint spar runs (its config parses and is of a family
/// spar runs; a tokenizer and weights are there) without loading the weights.
pub fn check_dir(dir: &Path) -> Result<LmConfig, LmError> {
    let config = read_config(dir)?;
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(TokenizerError::Load {
            path: tokenizer.display().to_string(),
            why: "no such file (spar reads the checkpoint's own tokenizer.json)".into(),
        }
        .into());
    }
    weight_files(dir)?;
    Ok(config)
}

fn read_config(dir: &Path) -> Result<LmConfig, LmError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| LmError::Config {
        path: path.clone(),
        source: ConfigError::Unsupported(format!("cannot read it: {e}")),
    })?;
    LmConfig::from_json(&text).map_err(|source| LmError::Config { path, source })
}

/// The weight files of `dir`: every `*.safetensors` but adapters, in name order.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, LmError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LmError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("adapter"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LmError::NoWeights(dir.to_owned()));
    }
    Ok(files)
}

/// Every `*.safetensors` of `dir` but adapters, in `dtype` on `device`.
fn read_weights(
    dir: &Path,
    device: &Device,
    dtype: DType,
) -> Result<HashMap<String, Tensor>, LmError> {
    let mut weights = HashMap::new();
    for file in weight_files(dir)? {
        for (name, t) in candle_core::safetensors::load(&file, device)? {
            weights.insert(name, t.to_dtype(dtype)?);
        }
    }
    Ok(weights)
}

/// PEFT's start: `A` uniform in ±1/sqrt(fan-in) (seeded: candle's generator is not), `B` zero.
fn seed_adapters(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<&String> = data.keys().filter(|n| n.contains("lora_A")).collect();
    names.sort();
    let mut rng = crate::agents::Rng(seed ^ 0x4c6f_5241);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let bound = 1.0 / (dims[1] as f64).sqrt();
        let values: Vec<f32> = (0..dims[0] * dims[1])
            .map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32)
            .collect();
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
