//! Small building blocks shared by the models: activations by Hugging Face name, dropout,
//! attention masking and a numerically safe softmax.

pub use bone_module::Dropout;

use std::path::Path;

use burn::tensor::activation;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, FloatDType, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::invalid_field;
use crate::error::Result;

/// An activation function, by its Hugging Face `hidden_act` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `gelu`: the exact, erf-based GELU.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation.
    GeluTanh,
    /// `relu`.
    Relu,
    /// `silu` / `swish`.
    Silu,
    /// `tanh`.
    Tanh,
}

impl Activation {
    /// Parses `hidden_act`; `file` names the config in errors.
    ///
    /// # Errors
    /// A name this crate does not implement.
    pub fn from_hf(name: &str, file: &Path) -> Result<Self> {
        Ok(match name {
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "relu" => Self::Relu,
            "silu" | "swish" => Self::Silu,
            "tanh" => Self::Tanh,
            other => {
                return Err(invalid_field(
                    file,
                    "hidden_act",
                    "one of gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh",
                    format!("{other:?}"),
                ))
            }
        })
    }

    /// Applies the activation element-wise.
    pub fn forward<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Gelu => gelu(x),
            Self::GeluTanh => activation::gelu_approximate(x),
            Self::Relu => activation::relu(x),
            Self::Silu => activation::silu(x),
            Self::Tanh => x.tanh(),
        }
    }
}

/// The exact, erf-based GELU `x·Φ(x)`, differentiated exactly.
///
/// Burn 0.21's `gelu` computes the erf form but differentiates the tanh approximation
/// (about 1e-3 off PyTorch's gradient, and a dozen element-wise passes with an f64 `tanh`).
/// Under autodiff this computes the value and the exact slope `Φ(x) + x·φ(x)` outside the
/// graph and records a single product, `value + (x − x̄)·slope` with `x̄` the detached
/// input: the forward value is unchanged (`x − x̄` is exactly zero) and the backward pass is
/// one multiplication. Without autodiff it is Burn's `gelu`.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if !B::ad_enabled(&x.device()) {
        return activation::gelu(x);
    }
    let plain = x.clone().detach();
    // The value in Burn's own order of operations, so that it is bit-identical to `gelu`.
    let erf_plus_one = plain
        .clone()
        .div_scalar(std::f64::consts::SQRT_2)
        .erf()
        .add_scalar(1.0);
    let value = (plain.clone() * erf_plus_one.clone()).div_scalar(2.0);
    let cdf = erf_plus_one.mul_scalar(0.5);
    let density = (plain.clone() * plain.clone())
        .mul_scalar(-0.5)
        .exp()
        .mul_scalar(0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2);
    let slope = cdf + plain.clone() * density;
    value + (x - plain) * slope
}

/// The most negative finite value of `dtype`: what masked attention scores are set to, so
/// that a fully masked row softmaxes to a uniform row instead of NaN (as transformers does).
pub fn mask_value(dtype: DType) -> f32 {
    match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.38e38,
        _ => f32::MIN,
    }
}

/// Softmax over the last axis, computed in f32 for half-precision inputs and cast back.
pub fn softmax_last<B: Backend, const D: usize>(scores: Tensor<B, D>) -> Tensor<B, D> {
    let dtype = scores.dtype();
    if matches!(dtype, DType::F16 | DType::BF16) {
        activation::softmax(scores.cast(FloatDType::F32), D - 1).cast(dtype)
    } else {
        activation::softmax(scores, D - 1)
    }
}

/// Sets the masked entries of attention `scores` `[b, h, q, k]` to [`mask_value`].
///
/// `masked` is `[b, 1, q, k]` (true = may not attend); it is broadcast over the heads.
pub fn apply_mask<B: Backend>(scores: Tensor<B, 4>, masked: Tensor<B, 4, Bool>) -> Tensor<B, 4> {
    let [b, h, q, k] = scores.dims();
    let value = mask_value(scores.dtype());
    scores.mask_fill(masked.expand([b, h, q, k]), value)
}

/// The padding mask of keys: `[b, 1, q, k]`, true where `attention_mask` (`[b, k]`, 1 = real
/// token) is 0.
pub fn padding_mask<B: Backend>(attention_mask: Tensor<B, 2, Int>, q: usize) -> Tensor<B, 4, Bool> {
    let [b, k] = attention_mask.dims();
    attention_mask
        .equal_elem(0)
        .reshape([b, 1, 1, k])
        .expand([b, 1, q, k])
}
