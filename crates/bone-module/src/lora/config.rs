use burn::config::Config;
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::Lora;
use crate::bone::{dropout, kaiming_uniform, BlockInit};
use crate::error::{AdapterError, Result};

/// Configuration of a [`Lora`] adapter for a linear layer `d_input → d_output`.
#[derive(Config, Debug)]
pub struct LoraConfig {
    /// Input features of the adapted layer.
    pub d_input: usize,
    /// Output features of the adapted layer.
    pub d_output: usize,
    /// Rank `r` of the update.
    pub r: usize,
    /// Scaling numerator `α`: the update is scaled by `α / r` (or `α / √r` with rsLoRA).
    #[config(default = 8.0)]
    pub alpha: f64,
    /// Rank-stabilised scaling `α / √r` (PEFT `use_rslora`).
    #[config(default = false)]
    pub use_rslora: bool,
    /// Initial value of `B` (`A` is always kaiming-uniform, as in PEFT). `Zeros` makes the
    /// adapter start as the identity; `KaimingUniform` is for tests.
    #[config(default = "BlockInit::Zeros")]
    pub init_b: BlockInit,
    /// Dropout on the adapter's input during training (PEFT `lora_dropout`).
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl LoraConfig {
    /// The factor applied to `B A`.
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }

    /// Builds the adapter: `lora_a [r, d_input]` (kaiming-uniform) and `lora_b [d_output, r]`.
    ///
    /// `layer` is the module path of the adapted layer, named in errors.
    ///
    /// # Errors
    /// [`AdapterError::InvalidRank`] when `r == 0`; [`AdapterError::InvalidAlpha`] when
    /// `alpha` is zero or not finite.
    pub fn init<B: Backend>(&self, layer: &str, device: &B::Device) -> Result<Lora<B>> {
        if self.r == 0 {
            return Err(AdapterError::InvalidRank {
                layer: layer.into(),
                r: self.r,
            });
        }
        if !self.alpha.is_finite() || self.alpha == 0.0 {
            return Err(AdapterError::InvalidAlpha {
                layer: layer.into(),
                alpha: self.alpha,
            });
        }
        let dropout = dropout(self.dropout, layer)?;
        let lora_a = kaiming_uniform([self.r, self.d_input], self.d_input, device);
        let lora_b = match self.init_b {
            BlockInit::Zeros => Param::from_tensor(Tensor::zeros([self.d_output, self.r], device)),
            BlockInit::KaimingUniform => kaiming_uniform([self.d_output, self.r], self.r, device),
        };
        Ok(Lora {
            lora_a,
            lora_b,
            scaling: self.scaling(),
            dropout,
        })
    }
}
