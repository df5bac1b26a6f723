//! BERT/RoBERTa self-attention with its output projection.

use bone_module::AdaptedLinear;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use super::config::EncoderConfig;
use super::packing::TokenPacking;
use crate::nn::Dropout;
use crate::nn::{apply_mask, softmax_last};
use crate::train::frozen;

/// Bidirectional multi-head attention (`BertSelfAttention`): `query`, `key`, `value`.
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    /// `[hidden, hidden]`.
    pub query: AdaptedLinear<B>,
    /// `[hidden, hidden]`.
    pub key: AdaptedLinear<B>,
    /// `[hidden, hidden]`.
    pub value: AdaptedLinear<B>,
    /// Dropout on the attention probabilities (training only).
    pub dropout: Dropout,
    heads: usize,
    head_dim: usize,
}

/// `LayerNorm(dense(x) + residual)` after attention (`BertSelfOutput`).
#[derive(Module, Debug)]
pub struct SelfOutput<B: Backend> {
    /// `[hidden, hidden]`.
    pub dense: AdaptedLinear<B>,
    /// Normalisation of the residual sum.
    pub layer_norm: LayerNorm<B>,
    /// Dropout (training only).
    pub dropout: Dropout,
}

/// Self-attention and its output block (`BertAttention`).
#[derive(Module, Debug)]
pub struct EncoderAttention<B: Backend> {
    /// `attention.self`.
    pub self_attn: SelfAttention<B>,
    /// `attention.output`.
    pub output: SelfOutput<B>,
}

/// A randomly initialised, frozen [`AdaptedLinear`] (with bias) at module path
/// `{path_prefix}{name}`; `{name}` is its Hugging Face name in the checkpoint.
pub(crate) fn adapted<B: Backend>(
    name: &str,
    path_prefix: &str,
    d_in: usize,
    d_out: usize,
    device: &B::Device,
) -> AdaptedLinear<B> {
    let linear = LinearConfig::new(d_in, d_out).init(device);
    AdaptedLinear::new(frozen(linear), format!("{path_prefix}{name}"))
}

/// A randomly initialised, frozen [`LayerNorm`] of the configuration's width and epsilon.
pub(crate) fn layer_norm<B: Backend>(config: &EncoderConfig, device: &B::Device) -> LayerNorm<B> {
    frozen(
        LayerNormConfig::new(config.hidden_size)
            .with_epsilon(config.layer_norm_eps)
            .init(device),
    )
}

impl<B: Backend> EncoderAttention<B> {
    /// Randomly initialised, frozen `{name}.self.{query,key,value}` and `{name}.output.*`
    /// (e.g. `encoder.layer.0.attention`); module paths get `path_prefix` in front.
    pub fn init(config: &EncoderConfig, name: &str, path_prefix: &str, device: &B::Device) -> Self {
        let h = config.hidden_size;
        let lin = |n: &str| adapted(&format!("{name}.{n}"), path_prefix, h, h, device);
        Self {
            self_attn: SelfAttention {
                query: lin("self.query"),
                key: lin("self.key"),
                value: lin("self.value"),
                dropout: Dropout::new(config.attention_probs_dropout_prob),
                heads: config.num_attention_heads,
                head_dim: config.head_dim(),
            },
            output: SelfOutput {
                dense: lin("output.dense"),
                layer_norm: layer_norm(config, device),
                dropout: Dropout::new(config.hidden_dropout_prob),
            },
        }
    }

    /// # Shapes
    /// - x: `[b, s, hidden]`
    /// - masked: `[b, 1, s, s]`, true for padding keys (`None`: no padding)
    /// - output: `[b, s, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, masked: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 3> {
        let context = self.self_attn.forward(x.clone(), masked);
        self.output.forward(context, x)
    }

    /// [`forward`](Self::forward) on the real tokens only (see [`TokenPacking`]).
    ///
    /// # Shapes
    /// - x: `[tokens, hidden]`; masked: `[b, 1, s, s]`
    /// - output: `[tokens, hidden]`
    pub fn forward_packed(
        &self,
        x: Tensor<B, 2>,
        packing: &TokenPacking<B>,
        masked: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 2> {
        let context = self.self_attn.forward_packed(x.clone(), packing, masked);
        self.output.forward(context, x)
    }
}

impl<B: Backend> SelfOutput<B> {
    /// `LayerNorm(dropout(dense(context)) + residual)`, on `[…, hidden]` rows.
    pub fn forward<const D: usize>(
        &self,
        context: Tensor<B, D>,
        residual: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let out = self.dropout.forward(self.dense.forward(context));
        self.layer_norm.forward(out + residual)
    }
}

impl<B: Backend> SelfAttention<B> {
    /// The attended context before the output projection, `[b, s, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>, masked: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 3> {
        let q = self.query.forward(x.clone());
        let k = self.key.forward(x.clone());
        let v = self.value.forward(x);
        self.attend(q, k, v, masked)
    }

    /// [`forward`](Self::forward) on the real tokens only: the projections run on the packed
    /// rows and the attention itself on the padded layout.
    ///
    /// # Shapes
    /// - x: `[tokens, hidden]`; masked: `[b, 1, s, s]`
    /// - output: `[tokens, hidden]`
    pub fn forward_packed(
        &self,
        x: Tensor<B, 2>,
        packing: &TokenPacking<B>,
        masked: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 2> {
        let q = packing.unpack(self.query.forward(x.clone()));
        let k = packing.unpack(self.key.forward(x.clone()));
        let v = packing.unpack(self.value.forward(x));
        packing.pack(self.attend(q, k, v, masked))
    }

    /// Scaled dot-product attention over the heads of projected `q`, `k`, `v`
    /// (`[b, s, hidden]` each), merged back to `[b, s, hidden]`.
    fn attend(
        &self,
        q: Tensor<B, 3>,
        k: Tensor<B, 3>,
        v: Tensor<B, 3>,
        masked: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let [b, s, _] = q.dims();
        let (h, d) = (self.heads, self.head_dim);
        let split = |t: Tensor<B, 3>| t.reshape([b, s, h, d]).swap_dims(1, 2);
        let (q, k, v) = (split(q), split(k), split(v));
        let mut scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (d as f64).sqrt());
        if let Some(masked) = masked {
            scores = apply_mask(scores, masked);
        }
        let probs = self.dropout.forward(softmax_last(scores));
        probs.matmul(v).swap_dims(1, 2).reshape([b, s, h * d])
    }
}
