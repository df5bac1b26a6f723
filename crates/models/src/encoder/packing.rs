//! Running an encoder on the real tokens of a padded batch only ("unpadding").
//!
//! A batch of sentences padded to its longest one is mostly padding: on SST-2 with batch 32 a
//! batch holds about three padded positions per real token. Linear layers, adapters, layer
//! norms, activations and dropout treat every position on its own, so they can run on the
//! packed `[tokens, hidden]` rows of the real tokens; only attention needs the padded
//! `[b, s, hidden]` layout, and it gets it back through [`TokenPacking::unpack`].

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// Where the real tokens of a padded `[b, s]` batch sit.
///
/// Built once per batch from the attention mask, then used by every layer to move hidden
/// states between the padded `[b, s, hidden]` layout and the packed `[tokens, hidden]` one.
/// Works for any mask (right or left padding, holes).
#[derive(Debug, Clone)]
pub struct TokenPacking<B: Backend> {
    batch: usize,
    seq_len: usize,
    tokens: usize,
    /// Flat padded position (`row * s + col`) of each real token, `[tokens]`.
    gather: Tensor<B, 1, Int>,
    /// Packed row of each padded position, or `tokens` (a row of zeros) for padding, `[b * s]`.
    scatter: Tensor<B, 1, Int>,
}

impl<B: Backend> TokenPacking<B> {
    /// Reads `attention_mask` (`[b, s]`, non-zero = real token) back to the host and indexes
    /// its real tokens.
    pub fn from_mask(attention_mask: &Tensor<B, 2, Int>) -> Self {
        let [batch, seq_len] = attention_mask.dims();
        let device = attention_mask.device();
        let mask = attention_mask.to_data().convert::<i64>();
        let mask = mask.as_slice::<i64>().expect("converted to i64 above");
        let mut gather = Vec::with_capacity(mask.len());
        let mut scatter = Vec::with_capacity(mask.len());
        for (position, &m) in mask.iter().enumerate() {
            if m != 0 {
                scatter.push(gather.len() as i64);
                gather.push(position as i64);
            } else {
                scatter.push(-1);
            }
        }
        let tokens = gather.len();
        for row in scatter.iter_mut().filter(|r| **r < 0) {
            *row = tokens as i64;
        }
        let index = |values: Vec<i64>| {
            let n = values.len();
            Tensor::from_data(TensorData::new(values, [n]), &device)
        };
        Self {
            batch,
            seq_len,
            tokens,
            gather: index(gather),
            scatter: index(scatter),
        }
    }

    /// The number of real tokens.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Whether the batch has no padding at all (packing would change nothing).
    pub fn is_dense(&self) -> bool {
        self.tokens == self.batch * self.seq_len
    }

    /// The real entries of an id tensor, in row-major order.
    ///
    /// # Shapes
    /// - ids: `[b, s]`
    /// - output: `[tokens]`
    pub fn pack_ids(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 1, Int> {
        ids.reshape([self.batch * self.seq_len])
            .select(0, self.gather.clone())
    }

    /// The hidden states of the real tokens.
    ///
    /// # Shapes
    /// - x: `[b, s, hidden]`
    /// - output: `[tokens, hidden]`
    pub fn pack(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let [_, _, hidden] = x.dims();
        x.reshape([self.batch * self.seq_len, hidden])
            .select(0, self.gather.clone())
    }

    /// Back to the padded layout, with zeros at the padding positions.
    ///
    /// # Shapes
    /// - x: `[tokens, hidden]`
    /// - output: `[b, s, hidden]`
    pub fn unpack(&self, x: Tensor<B, 2>) -> Tensor<B, 3> {
        let [_, hidden] = x.dims();
        let zero_row = Tensor::zeros([1, hidden], (&x.device(), x.dtype()));
        Tensor::cat(vec![x, zero_row], 0)
            .select(0, self.scatter.clone())
            .reshape([self.batch, self.seq_len, hidden])
    }
}
