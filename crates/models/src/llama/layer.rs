//! One LLaMA decoder layer: pre-norm attention and MLP with residuals.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use super::attention::LlamaAttention;
use super::cache::KvCache;
use super::config::LlamaConfig;
use super::mlp::LlamaMlp;
use crate::checkpoint::WeightLoader;
use crate::error::Result;

/// `x + attn(norm(x))`, then `x + mlp(norm(x))` (`LlamaDecoderLayer`).
#[derive(Module, Debug)]
pub struct LlamaDecoderLayer<B: Backend> {
    /// Self-attention.
    pub self_attn: LlamaAttention<B>,
    /// Feed-forward block.
    pub mlp: LlamaMlp<B>,
    /// RMSNorm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// RMSNorm before the MLP.
    pub post_attention_layernorm: RmsNorm<B>,
}

impl<B: Backend> LlamaDecoderLayer<B> {
    /// Loads `{prefix}.*` (e.g. `model.layers.3`).
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn load(loader: &WeightLoader<'_, B>, prefix: &str, config: &LlamaConfig) -> Result<Self> {
        let (h, eps) = (config.hidden_size, config.rms_norm_eps);
        Ok(Self {
            self_attn: LlamaAttention::load(loader, &format!("{prefix}.self_attn"), config)?,
            mlp: LlamaMlp::load(loader, &format!("{prefix}.mlp"), config)?,
            input_layernorm: loader.rms_norm(&format!("{prefix}.input_layernorm"), h, eps)?,
            post_attention_layernorm: loader.rms_norm(
                &format!("{prefix}.post_attention_layernorm"),
                h,
                eps,
            )?,
        })
    }

    /// # Shapes
    /// - x: `[b, s, hidden]`; see [`LlamaAttention::forward`] for the others.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        masked: Option<Tensor<B, 4, Bool>>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let attn = self.self_attn.forward(
            self.input_layernorm.forward(x.clone()),
            cos,
            sin,
            masked,
            cache,
        );
        let x = x + attn;
        let mlp = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()));
        x + mlp
    }
}
