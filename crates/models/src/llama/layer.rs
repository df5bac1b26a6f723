//! One LLaMA decoder layer: pre-norm attention and MLP with residuals.

use burn::module::Module;
use burn::nn::{RmsNorm, RmsNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use super::attention::LlamaAttention;
use super::cache::KvCache;
use super::config::LlamaConfig;
use super::mlp::LlamaMlp;
use crate::error::Result;
use crate::train::frozen;
use crate::weights::HfModule;

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
    prefix: String,
}

impl<B: Backend> LlamaDecoderLayer<B> {
    /// A randomly initialised layer whose module paths are `{prefix}.*` (e.g.
    /// `model.layers.3`).
    pub fn init(config: &LlamaConfig, prefix: &str, device: &B::Device) -> Self {
        let norm = || {
            frozen(
                RmsNormConfig::new(config.hidden_size)
                    .with_epsilon(config.rms_norm_eps)
                    .init(device),
            )
        };
        Self {
            self_attn: LlamaAttention::init(config, &format!("{prefix}.self_attn"), device),
            mlp: LlamaMlp::init(config, &format!("{prefix}.mlp"), device),
            input_layernorm: norm(),
            post_attention_layernorm: norm(),
            prefix: prefix.to_string(),
        }
    }

    /// Lists the layer's modules under their Hugging Face names (see
    /// [`HfModules`](crate::weights::HfModules)).
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn visit_hf_modules(
        &mut self,
        f: &mut dyn FnMut(&str, HfModule<'_, B>) -> Result<()>,
    ) -> Result<()> {
        self.self_attn.visit_hf_modules(f)?;
        self.mlp.visit_hf_modules(f)?;
        let p = &self.prefix;
        f(
            &format!("{p}.input_layernorm"),
            HfModule::RmsNorm(&mut self.input_layernorm),
        )?;
        f(
            &format!("{p}.post_attention_layernorm"),
            HfModule::RmsNorm(&mut self.post_attention_layernorm),
        )
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
