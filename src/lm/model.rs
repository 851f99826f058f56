//! The Qwen2/Qwen3 decoder, written for training as well as generation: one copy of the
//! weights is shared (behind an `Arc`) by every episode, each with its own [`KvCache`]; LoRA
//! adapters sit on the attention and MLP projections and can be switched off per pass (the
//! reference policy of the KL term); a [`Pass`] says whether gradients must flow, because
//! candle's fused rotary, softmax and RMS-norm kernels have no backward pass.

use super::config::LmConfig;
use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;

/// How one forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// Apply the LoRA adapters (off: the base model, the KL reference).
    pub adapters: bool,
    /// Gradients flow: differentiable kernels instead of candle's fused ones.
    pub grad: bool,
}

impl Pass {
    /// Generation: adapters on, fused kernels.
    pub const GENERATE: Pass = Pass {
        adapters: true,
        grad: false,
    };
    /// Training: adapters on, differentiable kernels.
    pub const TRAIN: Pass = Pass {
        adapters: true,
        grad: true,
    };
    /// The frozen reference (no adapters), no gradients.
    pub const REFERENCE: Pass = Pass {
        adapters: false,
        grad: false,
    };
}

/// LoRA's shape: rank `r` and scale `alpha / r` on every adapted projection.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraSettings {
    /// Rank of the update `B·A`.
    pub rank: usize,
    /// `alpha`: the update is scaled by `alpha / rank`.
    pub alpha: f64,
}

/// A projection `x·Wᵀ + b`, plus `scale·x·Aᵀ·Bᵀ` when it has an adapter.
struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    /// `(A: rank x in, B: out x rank, scale)`.
    lora: Option<(Tensor, Tensor, f64)>,
}

impl Linear {
    fn new(
        (inp, out): (usize, usize),
        bias: bool,
        vb: &VarBuilder,
        adapters: Option<(&VarBuilder, LoraSettings)>,
    ) -> Result<Linear> {
        let weight = vb.get((out, inp), "weight")?;
        let bias = if bias {
            Some(vb.get(out, "bias")?)
        } else {
            None
        };
        let lora = match adapters {
            Some((avb, s)) => {
                let bound = 1.0 / (inp as f64).sqrt();
                let a = avb.get_with_hints(
                    (s.rank, inp),
                    "lora_A.weight",
                    candle_nn::Init::Uniform {
                        lo: -bound,
                        up: bound,
                    },
                )?;
                let b = avb.get_with_hints(
                    (out, s.rank),
                    "lora_B.weight",
                    candle_nn::Init::Const(0.0),
                )?;
                Some((a, b, s.alpha / s.rank as f64))
            }
            None => None,
        };
        Ok(Linear { weight, bias, lora })
    }

    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let (dims, inp) = (x.dims().to_vec(), x.dim(D::Minus1)?);
        let rows = x.reshape(((), inp))?;
        let mut y = product(&rows, &self.weight)?;
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        if let (Some((a, b, scale)), true) = (&self.lora, pass.adapters) {
            let (a, b) = (a.to_dtype(x.dtype())?, b.to_dtype(x.dtype())?);
            y = (y + (rows.matmul(&a.t()?)?.matmul(&b.t()?)? * *scale)?)?;
        }
        let mut out = dims;
        *out.last_mut()
            .expect("a projection's input has a last dimension") = y.dim(1)?;
        y.reshape(out)
    }
}

/// `rows · Wᵀ`. When gradients flow through `rows` to a weight that does not train, on the
/// CPU, through [`FrozenProduct`]: candle's own product would also compute, allocate and drop
/// a gradient the size of `W` in every backward pass (profiled: half of a LoRA step's time
/// was the kernel zeroing those pages). Generation and GPUs keep candle's product (the custom
/// op has no CUDA kernel).
fn product(rows: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let frozen = rows.track_op() && !weight.is_variable() && weight.device().is_cpu();
    if !frozen || !rows.is_contiguous() {
        return rows.matmul(&weight.t()?);
    }
    rows.apply_op1_arc(std::sync::Arc::new(Box::new(FrozenProduct(weight.clone()))))
}

/// `x · Wᵀ` whose backward pass returns the gradient of `x` only.
struct FrozenProduct(Tensor);

impl candle_core::CustomOp1 for FrozenProduct {
    fn name(&self) -> &'static str {
        "frozen-product"
    }

    fn cpu_fwd(
        &self,
        x: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use candle_core::backend::BackendStorage;
        let (rows, inp) = layout.shape().dims2()?;
        let (storage, w_layout) = self.0.storage_and_layout();
        let candle_core::Storage::Cpu(w) = &*storage else {
            candle_core::bail!("frozen product: the weight is not on the CPU")
        };
        let out = w_layout.shape().dims2()?.0;
        let y = x.matmul(w, (1, rows, out, inp), layout, &w_layout.transpose(0, 1)?)?;
        Ok((y, (rows, out).into()))
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.matmul(&self.0)?))
    }
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64, pass: Pass) -> Result<Tensor> {
    if pass.grad {
        candle_nn::ops::rms_norm_slow(x, weight, eps as f32)
    } else {
        candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps as f32)
    }
}

/// The rotary table: cos and sin of every position's angles, `(positions, head_dim / 2)`.
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(cfg: &LmConfig, dtype: DType, device: &Device) -> Result<Rope> {
        let dim = cfg.head_dim();
        let inv: Vec<f32> = (0..dim)
            .step_by(2)
            .map(|i| 1.0 / cfg.rope_theta.powf(i as f64 / dim as f64) as f32)
            .collect();
        let inv = Tensor::from_vec(inv, (1, dim / 2), device)?;
        let positions = cfg.max_position_embeddings;
        let t = Tensor::arange(0u32, positions as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((positions, 1))?;
        let angles = t.matmul(&inv)?;
        Ok(Rope {
            cos: angles.cos()?.to_dtype(dtype)?,
            sin: angles.sin()?.to_dtype(dtype)?,
        })
    }

    fn apply(&self, x: &Tensor, offset: usize, pass: Pass) -> Result<Tensor> {
        let len = x.dim(2)?;
        let (cos, sin) = (
            self.cos.narrow(0, offset, len)?,
            self.sin.narrow(0, offset, len)?,
        );
        if pass.grad {
            candle_nn::rotary_emb::rope_slow(&x.contiguous()?, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
        }
    }
}

struct Layer {
    input_norm: Tensor,
    post_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// Qwen3's per-head query and key norms.
    qk_norm: Option<(Tensor, Tensor)>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Layer {
    fn new(
        cfg: &LmConfig,
        vb: &VarBuilder,
        adapters: Option<(&VarBuilder, LoraSettings)>,
    ) -> Result<Layer> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let (q_out, kv_out) = (cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd);
        let attn = vb.pp("self_attn");
        let mlp = vb.pp("mlp");
        let sub = |name: &str, module: &str| adapters.map(|(a, s)| (a.pp(module).pp(name), s));
        let lin = |vb: &VarBuilder, module: &str, name: &str, shape, bias| {
            let adapter = sub(name, module);
            Linear::new(
                shape,
                bias,
                &vb.pp(name),
                adapter.as_ref().map(|(a, s)| (a, *s)),
            )
        };
        let bias = cfg.qkv_bias();
        let qk_norm = if cfg.qk_norm() {
            Some((
                attn.pp("q_norm").get(hd, "weight")?,
                attn.pp("k_norm").get(hd, "weight")?,
            ))
        } else {
            None
        };
        Ok(Layer {
            input_norm: vb.pp("input_layernorm").get(h, "weight")?,
            post_norm: vb.pp("post_attention_layernorm").get(h, "weight")?,
            q: lin(&attn, "self_attn", "q_proj", (h, q_out), bias)?,
            k: lin(&attn, "self_attn", "k_proj", (h, kv_out), bias)?,
            v: lin(&attn, "self_attn", "v_proj", (h, kv_out), bias)?,
            o: lin(&attn, "self_attn", "o_proj", (q_out, h), false)?,
            qk_norm,
            gate: lin(&mlp, "mlp", "gate_proj", (h, cfg.intermediate_size), false)?,
            up: lin(&mlp, "mlp", "up_proj", (h, cfg.intermediate_size), false)?,
            down: lin(&mlp, "mlp", "down_proj", (cfg.intermediate_size, h), false)?,
        })
    }
}

/// One sequence's cached keys and values, layer by layer: what generation feeds the next
/// token against. Owned by its episode; the weights are not in it.
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// Tokens the cache holds (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A Qwen2/Qwen3 causal language model.
pub struct Transformer {
    cfg: LmConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    /// `None`: tied to the embedding.
    lm_head: Option<Tensor>,
    rope: Rope,
}

impl Transformer {
    /// The model from `vb` (Hugging Face names: `model.layers.N...`, `lm_head.weight`), with
    /// adapters from `adapters` (names `model.layers.N.self_attn.q_proj.lora_A.weight`, as
    /// PEFT writes them) when given.
    pub fn new(
        cfg: &LmConfig,
        vb: VarBuilder,
        adapters: Option<(VarBuilder, LoraSettings)>,
    ) -> Result<Transformer> {
        let m = vb.pp("model");
        let embed = m
            .pp("embed_tokens")
            .get((cfg.vocab_size, cfg.hidden_size), "weight")?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let avb = adapters
                .as_ref()
                .map(|(a, s)| (a.pp("model").pp("layers").pp(i), *s));
            let adapter = avb.as_ref().map(|(a, s)| (a, *s));
            layers.push(Layer::new(cfg, &m.pp("layers").pp(i), adapter)?);
        }
        let lm_head = if cfg.tie_word_embeddings {
            None
        } else {
            Some(
                vb.pp("lm_head")
                    .get((cfg.vocab_size, cfg.hidden_size), "weight")?,
            )
        };
        Ok(Transformer {
            cfg: cfg.clone(),
            embed,
            norm: m.pp("norm").get(cfg.hidden_size, "weight")?,
            layers,
            lm_head,
            rope: Rope::new(cfg, vb.dtype(), vb.device())?,
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &LmConfig {
        &self.cfg
    }

    /// The device its weights are on.
    pub fn device(&self) -> &Device {
        self.embed.device()
    }

    /// Hidden states `(1, tokens, hidden)` of `tokens` following what `cache` holds (if any),
    /// which then holds them too. Without a cache the tokens are a whole sequence.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: Option<&mut KvCache>,
        pass: Pass,
    ) -> Result<Tensor> {
        let mut scratch = KvCache::default();
        let cache = cache.unwrap_or(&mut scratch);
        self.forward_batch(&mut [(tokens, cache)], pass)?
            .unsqueeze(0)
    }

    /// One pass over a ragged batch: each sequence's new tokens after what its cache holds.
    /// The projections and the MLP run once over every token of every sequence (the weights
    /// are read once per batch); attention runs per sequence against its own cache. Returns
    /// the hidden states `(all tokens, hidden)`, sequence after sequence.
    pub fn forward_batch(&self, seqs: &mut [(&[u32], &mut KvCache)], pass: Pass) -> Result<Tensor> {
        let mut spans = Vec::with_capacity(seqs.len());
        let mut ids = Vec::new();
        for (tokens, cache) in seqs.iter_mut() {
            let offset = cache.len;
            if offset + tokens.len() > self.cfg.max_position_embeddings || tokens.is_empty() {
                candle_core::bail!(
                    "{} tokens after {offset} do not fit the model's context of {}",
                    tokens.len(),
                    self.cfg.max_position_embeddings
                );
            }
            cache.layers.resize_with(self.layers.len(), || None);
            spans.push((ids.len(), tokens.len(), offset));
            ids.extend_from_slice(tokens);
        }
        let ids = Tensor::new(ids.as_slice(), self.device())?;
        let mut x = self.embed.index_select(&ids, 0)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let mut slots: Vec<&mut Option<(Tensor, Tensor)>> =
                seqs.iter_mut().map(|(_, c)| &mut c.layers[i]).collect();
            x = self.layer(layer, &x, &spans, &mut slots, pass)?;
        }
        for (tokens, cache) in seqs.iter_mut() {
            cache.len += tokens.len();
        }
        rms_norm(&x, &self.norm, self.cfg.rms_norm_eps, pass)
    }

    /// Logits `(…, vocab)` in f32 of hidden states `(…, hidden)`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let dims = hidden.dims().to_vec();
        let rows = hidden.reshape(((), self.cfg.hidden_size))?;
        let logits = product(&rows, head)?.to_dtype(DType::F32)?;
        let mut out = dims;
        *out.last_mut().expect("hidden states have a last dimension") = self.cfg.vocab_size;
        logits.reshape(out)
    }

    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        spans: &[(usize, usize, usize)],
        caches: &mut [&mut Option<(Tensor, Tensor)>],
        pass: Pass,
    ) -> Result<Tensor> {
        let eps = self.cfg.rms_norm_eps;
        let normed = rms_norm(x, &layer.input_norm, eps, pass)?;
        let (q, k, v) = (
            layer.q.forward(&normed, pass)?,
            layer.k.forward(&normed, pass)?,
            layer.v.forward(&normed, pass)?,
        );
        let mut outs = Vec::with_capacity(spans.len());
        for (&(start, len, offset), cache) in spans.iter().zip(caches.iter_mut()) {
            let part = |t: &Tensor| t.narrow(0, start, len);
            outs.push(self.attention(
                layer,
                [part(&q)?, part(&k)?, part(&v)?],
                offset,
                cache,
                pass,
            )?);
        }
        let attended = if outs.len() == 1 {
            outs.pop().expect("one")
        } else {
            Tensor::cat(&outs, 0)?
        };
        let x = (x + layer.o.forward(&attended, pass)?)?;
        let normed = rms_norm(&x, &layer.post_norm, eps, pass)?;
        let gate = candle_nn::ops::silu(&layer.gate.forward(&normed, pass)?)?;
        let mlp = layer
            .down
            .forward(&(gate * layer.up.forward(&normed, pass)?)?, pass)?;
        x + mlp
    }

    /// One sequence's attention: `qkv` are its rows of the projections, `(tokens, heads·hd)`;
    /// returns `(tokens, heads·hd)`.
    fn attention(
        &self,
        layer: &Layer,
        [q, k, v]: [Tensor; 3],
        offset: usize,
        cache: &mut Option<(Tensor, Tensor)>,
        pass: Pass,
    ) -> Result<Tensor> {
        let t = q.dim(0)?;
        let (heads, kv_heads, hd) = (
            self.cfg.num_attention_heads,
            self.cfg.num_key_value_heads,
            self.cfg.head_dim(),
        );
        let split = |y: Tensor, n: usize| y.reshape((1, t, n, hd))?.transpose(1, 2);
        let (mut q, mut k, v) = (split(q, heads)?, split(k, kv_heads)?, split(v, kv_heads)?);
        if let Some((qn, kn)) = &layer.qk_norm {
            q = rms_norm(&q, qn, self.cfg.rms_norm_eps, pass)?;
            k = rms_norm(&k, kn, self.cfg.rms_norm_eps, pass)?;
        }
        let q = self.rope.apply(&q, offset, pass)?;
        let k = self.rope.apply(&k, offset, pass)?;
        let (k, v) = match cache.take() {
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
            None => (k, v),
        };
        *cache = Some((k.clone(), v.clone()));
        let (k, v) = (
            repeat_kv(k, heads / kv_heads)?,
            repeat_kv(v, heads / kv_heads)?,
        );
        let scale = 1.0 / (hd as f64).sqrt();
        let mut scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * scale)?;
        if let Some(m) = causal_mask(t, offset, scores.dtype(), self.device())? {
            scores = scores.broadcast_add(&m)?;
        }
        let weights = if pass.grad {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let out = weights.matmul(&v.contiguous()?)?;
        out.transpose(1, 2)?.reshape((t, heads * hd))
    }
}

fn repeat_kv(x: Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x);
    }
    let (b, kv, t, hd) = x.dims4()?;
    x.unsqueeze(2)?
        .broadcast_as((b, kv, n, t, hd))?
        .reshape((b, kv * n, t, hd))
}

/// `(t, offset + t)`: `-inf` above the diagonal; `None` for a single token (it sees all).
fn causal_mask(t: usize, offset: usize, dtype: DType, device: &Device) -> Result<Option<Tensor>> {
    if t <= 1 {
        return Ok(None);
    }
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..offset + t).map(move |j| {
                if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Some(
        Tensor::from_vec(mask, (t, offset + t), device)?.to_dtype(dtype)?,
    ))
}

/// Log-probabilities of `next` at each row of `logits` `(rows, vocab)` at `temperature`
/// (`<= 0`: 1), as a `(rows,)` tensor that gradients flow through.
pub fn token_logprobs(logits: &Tensor, next: &[u32], temperature: f64) -> Result<Tensor> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let scaled = (logits / t)?;
    let logp = candle_nn::ops::log_softmax(&scaled, D::Minus1)?;
    let index = Tensor::new(next, logits.device())?.unsqueeze(1)?;
    logp.gather(&index, 1)?.squeeze(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frozen_product_gives_candles_values_and_input_gradient() {
        let dev = Device::Cpu;
        let x = candle_core::Var::from_tensor(
            &Tensor::arange(0f32, 12.0, &dev)
                .unwrap()
                .reshape((3, 4))
                .unwrap(),
        )
        .unwrap();
        let w = (Tensor::arange(0f32, 20.0, &dev)
            .unwrap()
            .reshape((5, 4))
            .unwrap()
            * 0.1)
            .unwrap();
        let ours = product(x.as_tensor(), &w).unwrap();
        let theirs = x.as_tensor().matmul(&w.t().unwrap()).unwrap();
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(diff(&ours, &theirs) < 1e-5);
        let g_ours = ours.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let g_theirs = theirs.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let (a, b) = (g_ours.get(&x).unwrap(), g_theirs.get(&x).unwrap());
        assert!(diff(a, b) < 1e-4, "{a} {b}");
        // Candle's product also computes a gradient for the (transposed) weight; ours does not.
        assert!(g_ours.get_ids().count() < g_theirs.get_ids().count());
    }
}
