use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::linalg::invert_in_place;

/// An `I + B_a` that [`Bat::restore_weight`] cannot invert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SingularBlock {
    /// Index `a` of the output block.
    pub block: usize,
    /// The pivot that was (numerically) zero.
    pub pivot: f64,
}

/// A Bat adapter: trainable blocks `[d_output / r, r, r]` (PEFT's `miss_block` with
/// `init_weights="bat"`, same shape). Block `a` acts on every `r×r` block of output rows `a`.
///
/// Created by [`BatConfig::init`](super::BatConfig::init).
#[derive(Module, Debug)]
pub struct Bat<B: Backend> {
    /// The trainable blocks, `[d_output / r, r, r]`.
    pub block: Param<Tensor<B, 3>>,
}

impl<B: Backend> Bat<B> {
    /// The block size `r`.
    pub fn rank(&self) -> usize {
        self.block.shape().dims::<3>()[1]
    }

    /// Output features of the adapted layer.
    pub fn d_output(&self) -> usize {
        let [n, r, _] = self.block.shape().dims();
        n * r
    }

    /// `ΔW(W)` in Burn's layout for a weight `w [d_input, d_output]` (the transpose of PyTorch's
    /// `W`): block `(b, a)` of the result is `B_aᵀ · w_{b,a} + B_aᵀ`, which is the transpose of
    /// PEFT's `W_{a,b} · B_a + B_a`. Computes in the block's dtype and returns `w`'s dtype.
    ///
    /// # Shapes
    /// - w: `[d_input, d_output]`
    /// - output: `[d_input, d_output]`
    pub fn delta_weight(&self, w: Tensor<B, 2>) -> Tensor<B, 2> {
        let block = self.block.val();
        let weight_dtype = w.dtype();
        let [d_input, d_output] = w.dims();
        let r = block.dims()[1];
        let (nb, na) = (d_input / r, d_output / r);

        // [in/r, r, out/r, r] → [in/r, out/r, r_in, r_out]: entry (b, a) is the block w_{b,a}.
        let blocks = w
            .cast(block.dtype())
            .reshape([nb, r, na, r])
            .swap_dims(1, 2);
        let block_t: Tensor<B, 4> = block.swap_dims(1, 2).unsqueeze_dim(0);
        let delta = block_t.clone().matmul(blocks) + block_t;
        delta
            .swap_dims(1, 2)
            .reshape([d_input, d_output])
            .cast(weight_dtype)
    }

    /// The adapted weight `w + ΔW(w)`, Burn's layout `[d_input, d_output]`.
    pub fn adapted_weight(&self, w: Tensor<B, 2>) -> Tensor<B, 2> {
        let weight_dtype = w.dtype();
        let w = w.cast(self.block.val().dtype());
        (w.clone() + self.delta_weight(w)).cast(weight_dtype)
    }

    /// Inverts [`adapted_weight`](Self::adapted_weight): from `w' = w + ΔW(w)` recovers
    /// `w_{b,a} = (I + B_a)^{-ᵀ} (w'_{b,a} − B_aᵀ)`. The `r×r` inverses are computed on the host
    /// in f64 with partial pivoting, the products in f32 (or the block's dtype if wider).
    ///
    /// # Errors
    /// [`SingularBlock`] when some `I + B_a` cannot be inverted; the layer turns it into
    /// [`AdapterError::SingularBatBlock`](crate::AdapterError::SingularBatBlock), with its
    /// own path and the adapter's name.
    pub fn restore_weight(&self, merged: Tensor<B, 2>) -> Result<Tensor<B, 2>, SingularBlock> {
        let block = self.block.val();
        let weight_dtype = merged.dtype();
        let device = block.device();
        let [na, r, _] = block.dims();
        let [d_input, d_output] = merged.dims();
        let nb = d_input / r;

        let mut values: Vec<f64> = block.to_data().iter::<f64>().collect();
        for a in 0..na {
            let m = &mut values[a * r * r..(a + 1) * r * r];
            for i in 0..r {
                m[i * r + i] += 1.0;
            }
            invert_in_place(m, r).map_err(|pivot| SingularBlock { block: a, pivot })?;
        }
        let inverse: Tensor<B, 3> = Tensor::from_data(
            TensorData::new(values, [na, r, r]),
            (&device, block.dtype()),
        );
        let inverse_t: Tensor<B, 4> = inverse.swap_dims(1, 2).unsqueeze_dim(0);
        let block_t: Tensor<B, 4> = block.swap_dims(1, 2).unsqueeze_dim(0);
        let blocks = merged
            .cast(inverse_t.dtype())
            .reshape([nb, r, na, r])
            .swap_dims(1, 2);
        Ok(inverse_t
            .matmul(blocks - block_t)
            .swap_dims(1, 2)
            .reshape([d_input, d_output])
            .cast(weight_dtype))
    }
}
