use crate::dropout::Dropout;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::ops::PadMode;
use burn::tensor::Tensor;

/// A Bone adapter: one trainable block `[r, d_output]` (PEFT's `miss_block`, same shape), or
/// for MiSS "mini" a block `[r, mini_r]` repeated `d_output / mini_r` times along the outputs.
///
/// Created by [`BoneConfig::init`](super::BoneConfig::init).
#[derive(Module, Debug)]
pub struct Bone<B: Backend> {
    /// The trainable block, `[r, d_output]` (or `[r, mini_r]` for MiSS "mini").
    pub block: Param<Tensor<B, 2>>,
    /// Input features of the adapted layer.
    pub d_input: usize,
    /// Output features of the adapted layer (a multiple of the block's width).
    pub d_output: usize,
    /// Whether this is PEFT's MiSS "mini" (`init_weights="mini"`): the block is
    /// `[r, mini_r]`, tiled along the outputs. `false` for the default Bone.
    pub mini: bool,
    /// Dropout on the adapter's input (active only on autodiff backends).
    pub dropout: Dropout,
}

impl<B: Backend> Bone<B> {
    /// The rank `r` (rows of the block).
    pub fn rank(&self) -> usize {
        self.block.shape().dims::<2>()[0]
    }

    /// Output features of the adapted layer.
    pub fn d_output(&self) -> usize {
        self.d_output
    }

    /// MiSS "mini"'s `mini_r` (the block's width); `None` for the default Bone.
    pub fn mini_r(&self) -> Option<usize> {
        self.mini.then(|| self.block.shape().dims::<2>()[1])
    }

    /// How many times the block repeats along the outputs (1 for the default Bone).
    fn tiles(&self) -> usize {
        self.d_output / self.block.shape().dims::<2>()[1]
    }

    /// The adapter's contribution `s · B` to the layer output, computed in activation space.
    ///
    /// The input is zero-padded on its last axis to a multiple of `r` (only when
    /// `d_input % r != 0`), cut into `⌈d_input / r⌉` chunks of `r` that are summed into
    /// `s [..., r]`, and `s` is multiplied by the block (for MiSS "mini", `s · block
    /// [..., mini_r]` is then repeated along the outputs). `ΔW` is never built. Computes in the
    /// block's dtype and returns the input's dtype.
    ///
    /// # Shapes
    /// - x: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let block = self.block.val();
        let r = block.dims()[0];
        let (d_output, tiles) = (self.d_output, self.tiles());
        let dims = x.dims();
        let input_dtype = x.dtype();
        let d_input = dims[D - 1];
        let rows: usize = dims[..D - 1].iter().product();

        let x: Tensor<B, 2> = self
            .dropout
            .forward(x.cast(block.dtype()))
            .reshape([rows, d_input]);
        let pad = (r - d_input % r) % r;
        let x = if pad > 0 {
            x.pad([(0, pad)], PadMode::Constant(0.0))
        } else {
            x
        };
        let chunks = (d_input + pad) / r;
        let folded: Tensor<B, 2> = x.reshape([rows, chunks, r]).sum_dim(1).reshape([rows, r]);
        let y = folded.matmul(block);
        let y = if tiles > 1 { y.repeat_dim(1, tiles) } else { y };

        let mut out_dims = dims;
        out_dims[D - 1] = d_output;
        y.reshape(out_dims).cast(input_dtype)
    }

    /// The equivalent weight update in Burn's layout `[d_input, d_output]`: row `j` is block
    /// row `j mod r` (the last, partial chunk uses the first `d_input mod r` rows); for MiSS
    /// "mini" entry `(j, o)` is `block[j mod r, o mod mini_r]`.
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        let block = self.block.val();
        let r = block.dims()[0];
        let chunks = self.d_input.div_ceil(r);
        let rows = block.repeat_dim(0, chunks).slice_dim(0, 0..self.d_input);
        match self.tiles() {
            1 => rows,
            tiles => rows.repeat_dim(1, tiles),
        }
    }
}
