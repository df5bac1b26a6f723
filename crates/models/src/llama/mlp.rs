//! The SwiGLU feed-forward block of LLaMA.

use bone_module::AdaptedLinear;
use burn::module::Module;
use burn::nn::LinearConfig;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::config::LlamaConfig;
use crate::error::Result;
use crate::nn::Activation;
use crate::train::frozen;
use crate::weights::HfModule;

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
    /// A randomly initialised MLP whose module paths are `{prefix}.gate_proj`, ….
    pub fn init(config: &LlamaConfig, prefix: &str, device: &B::Device) -> Self {
        let (h, i, bias) = (
            config.hidden_size,
            config.intermediate_size,
            config.mlp_bias,
        );
        let proj = |name: &str, d_in: usize, d_out: usize| {
            let linear = LinearConfig::new(d_in, d_out).with_bias(bias).init(device);
            AdaptedLinear::new(frozen(linear), format!("{prefix}.{name}"))
        };
        Self {
            gate_proj: proj("gate_proj", h, i),
            up_proj: proj("up_proj", h, i),
            down_proj: proj("down_proj", i, h),
            act: config.activation(),
        }
    }

    /// Lists the projections under their Hugging Face names (see
    /// [`HfModules`](crate::weights::HfModules)).
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn visit_hf_modules(
        &mut self,
        f: &mut dyn FnMut(&str, HfModule<'_, B>) -> Result<()>,
    ) -> Result<()> {
        for l in [&mut self.gate_proj, &mut self.up_proj, &mut self.down_proj] {
            let path = l.path().to_string();
            f(&path, HfModule::Linear(&mut l.base))?;
        }
        Ok(())
    }

    /// # Shapes
    /// - x: `[b, s, hidden]`
    /// - output: `[b, s, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = self.act.forward(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}
