//! Rotary position embeddings in Hugging Face's rotate-half layout.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Int, Tensor, TensorData};

use super::config::{LlamaConfig, RopeScaling};

/// Rotary embeddings: `x·cos + rotate_half(x)·sin`, with `rotate_half(x) = [-x₂, x₁]` over
/// the two halves of the head dimension (transformers' `apply_rotary_pos_emb`).
///
/// The angles are computed in f32 from integer position ids, so left-padded batches (whose
/// positions start at each row's first real token) rotate exactly like unpadded prompts.
#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    /// `1 / base^(2i/d)`, after any scaling, `[head_dim / 2]`.
    inv_freq: Vec<f32>,
}

impl RotaryEmbedding {
    /// The frequencies of `config` (`rope_theta`, `head_dim`, scaling).
    pub fn new(config: &LlamaConfig) -> Self {
        let d = config.head_dim();
        let base = config.rope_base();
        let scaling = config
            .rope_scaling_kind(std::path::Path::new("<config>"))
            .unwrap_or(RopeScaling::None);
        let inv_freq = (0..d / 2)
            .map(|i| {
                let f = 1.0 / base.powf((2 * i) as f64 / d as f64);
                scale(f, scaling) as f32
            })
            .collect();
        Self { inv_freq }
    }

    /// The inverse frequencies `[head_dim / 2]`, after any scaling.
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// `cos` and `sin` for `positions` `[b, s]`, as `[b, 1, s, head_dim]` in `dtype`.
    pub fn cos_sin<B: Backend>(
        &self,
        positions: Tensor<B, 2, Int>,
        dtype: DType,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let device = positions.device();
        let [b, s] = positions.dims();
        let half = self.inv_freq.len();
        let inv: Tensor<B, 3> = Tensor::from_data(
            TensorData::new(self.inv_freq.clone(), [1, 1, half]),
            (&device, DType::F32),
        );
        let pos: Tensor<B, 3> = positions.float().cast(FloatDType::F32).reshape([b, s, 1]);
        let freqs = pos * inv;
        let emb = Tensor::cat(vec![freqs.clone(), freqs], 2).unsqueeze_dim::<4>(1);
        (emb.clone().cos().cast(dtype), emb.sin().cast(dtype))
    }

    /// Rotates `x` `[b, heads, s, head_dim]` by the angles of [`cos_sin`](Self::cos_sin).
    pub fn apply<B: Backend>(
        x: Tensor<B, 4>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        let d = x.dims()[3];
        let x1 = x.clone().narrow(3, 0, d / 2);
        let x2 = x.clone().narrow(3, d / 2, d / 2);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * cos.clone() + rotated * sin.clone()
    }
}

fn scale(inv_freq: f64, scaling: RopeScaling) -> f64 {
    match scaling {
        RopeScaling::None => inv_freq,
        RopeScaling::Linear { factor } => inv_freq / factor,
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        } => {
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
            if wavelen < high_wavelen {
                inv_freq
            } else if wavelen > low_wavelen {
                inv_freq / factor
            } else {
                let smooth =
                    (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                (1.0 - smooth) * inv_freq / factor + smooth * inv_freq
            }
        }
    }
}
