//! LLaMA self-attention: grouped-query attention with rotary embeddings and a KV cache.

use bone_module::AdaptedLinear;
use burn::module::Module;
use burn::nn::{LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use super::cache::KvCache;
use super::config::LlamaConfig;
use super::rope::RotaryEmbedding;
use crate::error::Result;
use crate::nn::Dropout;
use crate::nn::{apply_mask, softmax_last};
use crate::train::frozen;
use crate::weights::HfModule;

/// Multi-head self-attention with `num_key_value_heads` shared key/value heads
/// (`LlamaAttention`, and the attention of Mistral, Qwen2 and Qwen3). Every projection is an
/// [`AdaptedLinear`].
#[derive(Module, Debug)]
pub struct LlamaAttention<B: Backend> {
    /// `[hidden, heads·head_dim]`.
    pub q_proj: AdaptedLinear<B>,
    /// `[hidden, kv_heads·head_dim]`.
    pub k_proj: AdaptedLinear<B>,
    /// `[hidden, kv_heads·head_dim]`.
    pub v_proj: AdaptedLinear<B>,
    /// `[heads·head_dim, hidden]`.
    pub o_proj: AdaptedLinear<B>,
    /// RMSNorm over each query head `[head_dim]`, before RoPE (`qwen3`).
    pub q_norm: Option<RmsNorm<B>>,
    /// RMSNorm over each key head `[head_dim]`, before RoPE (`qwen3`).
    pub k_norm: Option<RmsNorm<B>>,
    /// Dropout on the attention probabilities (`attention_dropout`; training only).
    pub dropout: Dropout,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
    prefix: String,
}

impl<B: Backend> LlamaAttention<B> {
    /// A randomly initialised attention block whose module paths are `{prefix}.q_proj`, ….
    pub fn init(config: &LlamaConfig, prefix: &str, device: &B::Device) -> Self {
        let h = config.hidden_size;
        let d = config.head_dim();
        let q = config.num_attention_heads * d;
        let kv = config.num_kv_heads() * d;
        let proj = |name: &str, d_in: usize, d_out: usize, bias: bool| {
            let linear = LinearConfig::new(d_in, d_out).with_bias(bias).init(device);
            AdaptedLinear::new(frozen(linear), format!("{prefix}.{name}"))
        };
        let norm = || {
            config.qk_norm().then(|| {
                frozen(
                    RmsNormConfig::new(d)
                        .with_epsilon(config.rms_norm_eps)
                        .init(device),
                )
            })
        };
        Self {
            q_proj: proj("q_proj", h, q, config.qkv_bias()),
            k_proj: proj("k_proj", h, kv, config.qkv_bias()),
            v_proj: proj("v_proj", h, kv, config.qkv_bias()),
            o_proj: proj("o_proj", q, h, config.o_bias()),
            q_norm: norm(),
            k_norm: norm(),
            dropout: Dropout::new(config.attention_dropout),
            n_heads: config.num_attention_heads,
            n_kv_heads: config.num_kv_heads(),
            head_dim: d,
            prefix: prefix.to_string(),
        }
    }

    /// Lists the projections and norms under their Hugging Face names (see
    /// [`HfModules`](crate::weights::HfModules)).
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn visit_hf_modules(
        &mut self,
        f: &mut dyn FnMut(&str, HfModule<'_, B>) -> Result<()>,
    ) -> Result<()> {
        for l in [
            &mut self.q_proj,
            &mut self.k_proj,
            &mut self.v_proj,
            &mut self.o_proj,
        ] {
            let path = l.path().to_string();
            f(&path, HfModule::Linear(&mut l.base))?;
        }
        for (name, norm) in [("q_norm", &mut self.q_norm), ("k_norm", &mut self.k_norm)] {
            if let Some(norm) = norm {
                f(&format!("{}.{name}", self.prefix), HfModule::RmsNorm(norm))?;
            }
        }
        Ok(())
    }

    /// Attends over the cached tokens (if any) and `x`.
    ///
    /// # Shapes
    /// - x: `[b, s, hidden]`
    /// - cos, sin: `[b, 1, s, head_dim]`
    /// - masked: `[b, 1, s, past + s]`, true where a query may not attend (`None`: no mask)
    /// - output: `[b, s, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        masked: Option<Tensor<B, 4, Bool>>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let [b, s, _] = x.dims();
        let (h, kvh, d) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let q = self
            .q_proj
            .forward(x.clone())
            .reshape([b, s, h, d])
            .swap_dims(1, 2);
        let k = self
            .k_proj
            .forward(x.clone())
            .reshape([b, s, kvh, d])
            .swap_dims(1, 2);
        let v = self
            .v_proj
            .forward(x)
            .reshape([b, s, kvh, d])
            .swap_dims(1, 2);
        let (q, k) = match (&self.q_norm, &self.k_norm) {
            (Some(qn), Some(kn)) => (qn.forward(q), kn.forward(k)),
            _ => (q, k),
        };
        let q = RotaryEmbedding::apply(q, cos, sin);
        let k = RotaryEmbedding::apply(k, cos, sin);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v),
            None => (k, v),
        };
        let t = k.dims()[2];
        let rep = h / kvh;
        // Grouped-query attention without copying keys: the `rep` query heads that share a
        // key/value head are stacked along the query axis.
        let q = q.reshape([b, kvh, rep * s, d]);
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (d as f64).sqrt());
        let mut scores = scores.reshape([b, h, s, t]);
        if let Some(masked) = masked {
            scores = apply_mask(scores, masked);
        }
        let probs = self.dropout.forward(softmax_last(scores));
        let context = probs.reshape([b, kvh, rep * s, t]).matmul(v);
        let context = context
            .reshape([b, h, s, d])
            .swap_dims(1, 2)
            .reshape([b, s, h * d]);
        self.o_proj.forward(context)
    }

    /// Query heads.
    pub fn num_heads(&self) -> usize {
        self.n_heads
    }

    /// Key/value heads.
    pub fn num_kv_heads(&self) -> usize {
        self.n_kv_heads
    }
}
