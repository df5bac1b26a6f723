//! One BERT/RoBERTa encoder layer.

use bone_module::AdaptedLinear;
use burn::module::Module;
use burn::nn::LayerNorm;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use super::attention::{adapted, layer_norm, EncoderAttention};
use super::config::EncoderConfig;
use super::packing::TokenPacking;
use crate::nn::Activation;
use crate::nn::Dropout;

/// `act(dense(x))` (`BertIntermediate`).
#[derive(Module, Debug)]
pub struct Intermediate<B: Backend> {
    /// `[hidden, intermediate]`.
    pub dense: AdaptedLinear<B>,
    act: Activation,
}

/// `LayerNorm(dense(x) + residual)` after the feed-forward block (`BertOutput`).
#[derive(Module, Debug)]
pub struct Output<B: Backend> {
    /// `[intermediate, hidden]`.
    pub dense: AdaptedLinear<B>,
    /// Normalisation of the residual sum.
    pub layer_norm: LayerNorm<B>,
    /// Dropout (training only).
    pub dropout: Dropout,
}

/// Attention then feed-forward, each with a residual and a post-LayerNorm (`BertLayer`).
#[derive(Module, Debug)]
pub struct EncoderLayer<B: Backend> {
    /// `attention`.
    pub attention: EncoderAttention<B>,
    /// `intermediate`.
    pub intermediate: Intermediate<B>,
    /// `output`.
    pub output: Output<B>,
}

impl<B: Backend> EncoderLayer<B> {
    /// A randomly initialised, frozen `{name}.*` (e.g. `encoder.layer.3`); module paths get
    /// `path_prefix` in front.
    pub fn init(config: &EncoderConfig, name: &str, path_prefix: &str, device: &B::Device) -> Self {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        Self {
            attention: EncoderAttention::init(
                config,
                &format!("{name}.attention"),
                path_prefix,
                device,
            ),
            intermediate: Intermediate {
                dense: adapted(
                    &format!("{name}.intermediate.dense"),
                    path_prefix,
                    h,
                    i,
                    device,
                ),
                act: config.activation(),
            },
            output: Output {
                dense: adapted(&format!("{name}.output.dense"), path_prefix, i, h, device),
                layer_norm: layer_norm(config, device),
                dropout: Dropout::new(config.hidden_dropout_prob),
            },
        }
    }

    /// # Shapes
    /// - x: `[b, s, hidden]`; masked: `[b, 1, s, s]`
    /// - output: `[b, s, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, masked: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 3> {
        let attended = self.attention.forward(x, masked);
        self.feed_forward(attended)
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
        let attended = self.attention.forward_packed(x, packing, masked);
        self.feed_forward(attended)
    }

    /// `LayerNorm(dropout(output(act(intermediate(x)))) + x)` on `[…, hidden]` rows.
    fn feed_forward<const D: usize>(&self, attended: Tensor<B, D>) -> Tensor<B, D> {
        let inner = self
            .intermediate
            .act
            .forward(self.intermediate.dense.forward(attended.clone()));
        let out = self
            .output
            .dropout
            .forward(self.output.dense.forward(inner));
        self.output.layer_norm.forward(out + attended)
    }
}
