//! The SwiGLU feed-forward block of LLaMA.

use bone_module::AdaptedLinear;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::config::LlamaConfig;
use crate::checkpoint::WeightLoader;
use crate::error::Result;
use crate::nn::Activation;

/// `down_proj(act(gate_proj(x)) ⊙ up_proj(x))` (`LlamaMLP`).
#[derive(Module, Debug)]
pub struct LlamaMlp<B: Backend> {
    /// `[hidden, intermediate]`.
    pub gate_proj: AdaptedLinear<B>,
    /// `[hidden, intermediate]`.
    pub up_proj: AdaptedLinear<B>,
    /// `[intermediate, hidden]`.
    pub down_proj: AdaptedLinear<B>,
    act: Activation,
}

impl<B: Backend> LlamaMlp<B> {
    /// Loads `{prefix}.{gate,up,down}_proj`.
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn load(loader: &WeightLoader<'_, B>, prefix: &str, config: &LlamaConfig) -> Result<Self> {
        let (h, i, bias) = (
            config.hidden_size,
            config.intermediate_size,
            config.mlp_bias,
        );
        let proj = |name: &str, d_in: usize, d_out: usize| -> Result<AdaptedLinear<B>> {
            let path = format!("{prefix}.{name}");
            Ok(AdaptedLinear::new(
                loader.linear(&path, d_in, d_out, bias)?,
                path,
            ))
        };
        Ok(Self {
            gate_proj: proj("gate_proj", h, i)?,
            up_proj: proj("up_proj", h, i)?,
            down_proj: proj("down_proj", i, h)?,
            act: config.activation(),
        })
    }

    /// # Shapes
    /// - x: `[b, s, hidden]`
    /// - output: `[b, s, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = self.act.forward(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}
