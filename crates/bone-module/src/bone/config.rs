use burn::config::Config;
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use super::Bone;
use crate::dropout::Dropout;
use crate::error::{AdapterError, Result};

/// How a trainable block starts.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum BlockInit {
    /// All zeros: the adapted layer starts equal to the base layer (PEFT `init_weights=True`).
    Zeros,
    /// Kaiming-uniform like PyTorch's `kaiming_uniform_(a=√5)` (PEFT `init_weights=False`);
    /// meant for tests that need a non-identity adapter.
    KaimingUniform,
}

/// Configuration of a [`Bone`] adapter for a linear layer `d_input → d_output`.
#[derive(Config, Debug)]
pub struct BoneConfig {
    /// Input features of the adapted layer.
    pub d_input: usize,
    /// Output features of the adapted layer.
    pub d_output: usize,
    /// Block rank `r`; any value ≥ 1 (it need not divide `d_input`).
    pub r: usize,
    /// Initial value of the block.
    #[config(default = "BlockInit::Zeros")]
    pub init: BlockInit,
    /// Dropout on the adapter's input during training (PEFT `miss_dropout`).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// PEFT's MiSS "mini" (`init_weights="mini"`): a block `[r, mini_r]` repeated along the
    /// outputs; `mini_r` must divide `d_output`. `None` is the default Bone, block `[r, out]`.
    #[config(default = "None")]
    pub mini_r: Option<usize>,
}

impl BoneConfig {
    /// Builds the adapter: block `[r, d_output]`, or `[r, mini_r]` with `mini_r`.
    ///
    /// `layer` is the module path of the adapted layer, named in errors.
    ///
    /// # Errors
    /// [`AdapterError::InvalidRank`] when `r == 0`; [`AdapterError::MiniDivisibility`] when
    /// `mini_r` is zero or does not divide `d_output`.
    pub fn init<B: Backend>(&self, layer: &str, device: &B::Device) -> Result<Bone<B>> {
        if self.r == 0 {
            return Err(AdapterError::InvalidRank {
                layer: layer.into(),
                r: self.r,
            });
        }
        if let Some(mini_r) = self.mini_r {
            if mini_r == 0 || !self.d_output.is_multiple_of(mini_r) {
                return Err(AdapterError::MiniDivisibility {
                    layer: layer.into(),
                    out_features: self.d_output,
                    mini_r,
                });
            }
        }
        let dropout = dropout(self.dropout, layer)?;
        let width = self.mini_r.unwrap_or(self.d_output);
        let shape = [self.r, width];
        let block = match self.init {
            BlockInit::Zeros => Param::from_tensor(Tensor::zeros(shape, device)),
            // PyTorch's fan-in of an [r, width] tensor is `width`.
            BlockInit::KaimingUniform => kaiming_uniform(shape, width, device),
        };
        Ok(Bone {
            block,
            d_input: self.d_input,
            d_output: self.d_output,
            mini: self.mini_r.is_some(),
            dropout,
        })
    }
}

/// Checks a dropout probability for the layer at `layer` and builds the module.
pub(crate) fn dropout(prob: f64, layer: &str) -> Result<Dropout> {
    if !(0.0..1.0).contains(&prob) {
        return Err(AdapterError::InvalidDropout {
            layer: layer.into(),
            prob,
        });
    }
    Ok(Dropout::new(prob))
}

/// `kaiming_uniform_(a=√5)` of PyTorch: U(−1/√fan_in, 1/√fan_in). Initialised eagerly, so
/// clones of a fresh module share the values (Burn's lazy params would draw anew per clone).
pub(crate) fn kaiming_uniform<B: Backend, const D: usize>(
    shape: [usize; D],
    fan_in: usize,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Param::from_tensor(Tensor::random(
        shape,
        Distribution::Uniform(-bound, bound),
        device,
    ))
}
