use crate::dropout::Dropout;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::Tensor;

/// A LoRA adapter with PEFT's tensor shapes: `lora_a [r, d_input]`, `lora_b [d_output, r]`.
///
/// Created by [`LoraConfig::init`](super::LoraConfig::init).
#[derive(Module, Debug)]
pub struct Lora<B: Backend> {
    /// Down projection `A`, `[r, d_input]` (PEFT `lora_A.weight`).
    pub lora_a: Param<Tensor<B, 2>>,
    /// Up projection `B`, `[d_output, r]` (PEFT `lora_B.weight`).
    pub lora_b: Param<Tensor<B, 2>>,
    /// The factor `α / r` applied to the update.
    pub scaling: f64,
    /// Dropout on the adapter's input (active only on autodiff backends).
    pub dropout: Dropout,
}

impl<B: Backend> Lora<B> {
    /// The rank `r`.
    pub fn rank(&self) -> usize {
        self.lora_a.shape().dims::<2>()[0]
    }

    /// Input features of the adapted layer.
    pub fn d_input(&self) -> usize {
        self.lora_a.shape().dims::<2>()[1]
    }

    /// Output features of the adapted layer.
    pub fn d_output(&self) -> usize {
        self.lora_b.shape().dims::<2>()[0]
    }

    /// The adapter's contribution `scaling · (x Aᵀ) Bᵀ`. Computes in the adapter's dtype and
    /// returns the input's dtype.
    ///
    /// # Shapes
    /// - x: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let a = self.lora_a.val();
        let input_dtype = x.dtype();
        let x = self.dropout.forward(x.cast(a.dtype()));
        let hidden = linear(x, a.transpose(), None);
        let y = linear(hidden, self.lora_b.val().transpose(), None);
        y.mul_scalar(self.scaling).cast(input_dtype)
    }

    /// The equivalent weight update in Burn's layout `[d_input, d_output]`: `scaling · Aᵀ Bᵀ`.
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        self.lora_a
            .val()
            .transpose()
            .matmul(self.lora_b.val().transpose())
            .mul_scalar(self.scaling)
    }
}
