//! Converting Bone, MiSS-mini and Bat adapters into LoRA adapters (PEFT 0.20's MiSS → LoRA).
//!
//! - Bone and mini are exact at rank `r`: `ΔW[o, i] = block[i mod r, o]` factors as
//!   `lora_B [out, r]` (the block, tiled for mini, transposed) times `lora_A [r, in]` with
//!   `A[j, i] = 1` when `i mod r == j`, a 0/1 matrix summing each input's chunk position.
//! - Bat (and Bone at another rank) is truncated to the top singular directions of `ΔW`,
//!   computed on the host in f64 (see [`svd`]); the relative error
//!   `‖ΔW − B A‖_F / ‖ΔW‖_F` is measured and returned.
//!
//! The LoRA scale is 1 (`lora_alpha = rank`), so `B A` is the update itself.

mod svd;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor, TensorData};

use crate::adapted::AdaptedLinear;
use crate::adapter::Adapter;
use crate::error::{AdapterError, Result};
use crate::lora::{Lora, LoraConfig};

/// How a layer's adapter became LoRA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraConversion {
    /// The LoRA rank.
    pub rank: usize,
    /// `‖ΔW − B A‖_F / ‖ΔW‖_F` in f64 (0 for a zero update).
    pub relative_error: f64,
    /// Whether the factorisation is exact by construction (Bone, mini at rank `r`).
    pub exact: bool,
}

impl<B: Backend> AdaptedLinear<B> {
    /// A LoRA adapter (scale 1) whose update equals that of adapter `name`: exact for Bone and
    /// MiSS mini when `rank` is `None` or `r`; otherwise (Bat, which needs `rank`, or Bone at
    /// another rank) the SVD truncation of `ΔW` to `rank`.
    ///
    /// # Errors
    /// An unknown name; the adapter is merged (its `ΔW` for Bat depends on the base weight);
    /// LoRA itself; Bat without a rank; a zero rank.
    pub fn to_lora(&self, name: &str, rank: Option<usize>) -> Result<(Lora<B>, LoraConversion)> {
        let adapter = self
            .adapter(name)
            .ok_or_else(|| AdapterError::UnknownAdapter {
                name: name.into(),
                layer: self.path().into(),
                available: self.adapter_names().join(", "),
            })?;
        if self.merged_adapters().iter().any(|m| m == name) {
            return Err(AdapterError::AdapterMerged {
                name: name.into(),
                layer: self.path().into(),
            });
        }
        let (d_in, d_out) = (self.d_input(), self.d_output());
        let weight = self.base.weight.val();
        let device = weight.device();
        let delta: Vec<f64> = adapter
            .delta_weight(weight.cast(FloatDType::F32))
            .cast(FloatDType::F32)
            .into_data()
            .iter::<f64>()
            .collect();
        let (rank, a, b, exact) = match (adapter, rank) {
            (Adapter::Lora(_), _) => {
                return Err(AdapterError::Conversion {
                    layer: self.path().into(),
                    message: format!("adapter `{name}` is LoRA already"),
                })
            }
            (Adapter::Bone(bone), r) if r.is_none_or(|r| r == bone.rank()) => {
                let (a, b) = fold_factors(&delta, bone.rank(), d_in, d_out);
                (bone.rank(), a, b, true)
            }
            (Adapter::Bat(_), None) => {
                return Err(AdapterError::Conversion {
                    layer: self.path().into(),
                    message: format!(
                        "Bat adapter `{name}` has no exact low-rank form: give the LoRA rank"
                    ),
                })
            }
            (_, Some(0)) => {
                return Err(AdapterError::InvalidRank {
                    layer: self.path().into(),
                    r: 0,
                })
            }
            (_, Some(r)) => {
                let (a, b) = svd::truncate(&delta, d_in, d_out, r);
                (r, a, b, false)
            }
            (_, None) => unreachable!("Bone without a rank is exact, Bat without one is refused"),
        };
        let relative_error = relative_error(&delta, &a, &b, rank, d_in, d_out);
        let mut lora = LoraConfig::new(d_in, d_out, rank)
            .with_alpha(rank as f64)
            .init::<B>(self.path(), &device)?;
        let to_tensor = |values: Vec<f64>, shape: [usize; 2]| {
            let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
            Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), &device))
        };
        lora.lora_a = to_tensor(a, [rank, d_in]);
        lora.lora_b = to_tensor(b, [d_out, rank]);
        Ok((
            lora,
            LoraConversion {
                rank,
                relative_error,
                exact,
            },
        ))
    }
}

/// `lora_A [r, in]` and `lora_B [out, r]` of a Bone or mini update given in Burn's layout
/// `delta [in, out]`: `A[j, i] = [i mod r == j]`, `B[o, j] = delta[j, o]` (row `j` of `ΔW` is
/// block row `j`; rows `j ≥ in` do not exist and stay zero).
fn fold_factors(delta: &[f64], r: usize, d_in: usize, d_out: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = vec![0.0; r * d_in];
    for i in 0..d_in {
        a[(i % r) * d_in + i] = 1.0;
    }
    let mut b = vec![0.0; d_out * r];
    for j in 0..r.min(d_in) {
        for o in 0..d_out {
            b[o * r + j] = delta[j * d_out + o];
        }
    }
    (a, b)
}

/// `‖ΔW − B A‖_F / ‖ΔW‖_F` with `delta` in Burn's layout `[in, out]` (`ΔW = deltaᵀ`).
fn relative_error(delta: &[f64], a: &[f64], b: &[f64], r: usize, d_in: usize, d_out: usize) -> f64 {
    let (mut residual, mut norm) = (0.0, 0.0);
    for i in 0..d_in {
        for o in 0..d_out {
            let approx: f64 = (0..r).map(|j| b[o * r + j] * a[j * d_in + i]).sum();
            let d = delta[i * d_out + o];
            residual += (d - approx) * (d - approx);
            norm += d * d;
        }
    }
    if norm == 0.0 {
        residual.sqrt()
    } else {
        (residual / norm).sqrt()
    }
}
