use burn::config::Config;
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::Bat;
use crate::bone::{kaiming_uniform, BlockInit};
use crate::error::{AdapterError, Result};

/// Configuration of a [`Bat`] adapter for a linear layer `d_input → d_output`.
#[derive(Config, Debug)]
pub struct BatConfig {
    /// Input features of the adapted layer (a multiple of `r`).
    pub d_input: usize,
    /// Output features of the adapted layer (a multiple of `r`).
    pub d_output: usize,
    /// Block size `r`.
    pub r: usize,
    /// Initial value of the blocks.
    #[config(default = "BlockInit::Zeros")]
    pub init: BlockInit,
}

impl BatConfig {
    /// Builds the adapter: blocks `[d_output / r, r, r]`.
    ///
    /// `layer` is the module path of the adapted layer, named in errors.
    ///
    /// # Errors
    /// [`AdapterError::InvalidRank`] when `r == 0`; [`AdapterError::BatDivisibility`] when `r`
    /// does not divide both `d_input` and `d_output`.
    pub fn init<B: Backend>(&self, layer: &str, device: &B::Device) -> Result<Bat<B>> {
        let r = self.r;
        if r == 0 {
            return Err(AdapterError::InvalidRank {
                layer: layer.into(),
                r,
            });
        }
        if !self.d_input.is_multiple_of(r) || !self.d_output.is_multiple_of(r) {
            return Err(AdapterError::BatDivisibility {
                layer: layer.into(),
                in_features: self.d_input,
                out_features: self.d_output,
                r,
            });
        }
        let shape = [self.d_output / r, r, r];
        let block = match self.init {
            BlockInit::Zeros => Param::from_tensor(Tensor::zeros(shape, device)),
            // PyTorch's fan-in of a [n, r, r] tensor is r · r.
            BlockInit::KaimingUniform => kaiming_uniform(shape, r * r, device),
        };
        Ok(Bat { block })
    }
}
