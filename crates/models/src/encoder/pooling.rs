//! Sentence embeddings from token states: mean pooling and the BERT pooler.

use bone_module::AdaptedLinear;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// The mean of the token states over the real tokens (sentence-transformers' mean pooling:
/// `Σ h·m / max(Σ m, 1e-9)`).
///
/// # Shapes
/// - hidden: `[b, s, hidden]`
/// - attention_mask: `[b, s]` (1 = real token)
/// - output: `[b, hidden]`
pub fn mean_pool<B: Backend>(
    hidden: Tensor<B, 3>,
    attention_mask: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let [b, s, h] = hidden.dims();
    let mask = attention_mask
        .float()
        .cast(hidden.dtype())
        .reshape([b, s, 1]);
    let summed = (hidden * mask.clone()).sum_dim(1).reshape([b, h]);
    let counts = mask.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
    summed / counts
}

/// `tanh(dense(h[:, 0]))` (`BertPooler`), module path `pooler.dense` (or `bert.pooler.dense`).
#[derive(Module, Debug)]
pub struct Pooler<B: Backend> {
    /// `[hidden, hidden]`.
    pub dense: AdaptedLinear<B>,
}

impl<B: Backend> Pooler<B> {
    /// A randomly initialised, frozen `pooler.dense` (to be filled from a checkpoint).
    pub fn init(path_prefix: &str, hidden: usize, device: &B::Device) -> Self {
        Self {
            dense: super::attention::adapted("pooler.dense", path_prefix, hidden, hidden, device),
        }
    }

    /// A freshly initialised pooler (normal(0, `std`) weight, zero bias), as transformers
    /// builds one that the checkpoint lacks.
    pub fn fresh(path_prefix: &str, hidden: usize, std: f64, device: &B::Device) -> Self {
        let linear = super::head::fresh_linear(hidden, hidden, std, device);
        Self {
            dense: AdaptedLinear::new(linear, format!("{path_prefix}pooler.dense")),
        }
    }

    /// # Shapes
    /// - hidden: `[b, s, hidden]`
    /// - output: `[b, hidden]`
    pub fn forward(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, _, h] = hidden.dims();
        let first = hidden.narrow(1, 0, 1).reshape([b, h]);
        self.dense.forward(first).tanh()
    }
}
