//! Burn [`Batcher`](burn::data::dataloader::batcher::Batcher)s that turn tokenised examples
//! into padded tensors.
//!
//! Tokenisation is fallible, and Burn's `Batcher::batch` cannot return an error, so it is a
//! separate step: the batchers' `encode_all` tokenises (and truncates) a whole set once, giving
//! typed errors, and the `Batcher` impls pad the encoded items of each batch to the batch's
//! longest sequence (optionally rounded up to a multiple of some `n`):
//!
//! ```no_run
//! use burn::data::dataloader::DataLoaderBuilder;
//! use burn::data::dataset::InMemDataset;
//! use burn_ndarray::NdArray;
//! use data::batcher::{ClassificationBatcher, ClassificationBatcherConfig};
//! use data::glue::{GlueSplit, GlueTask};
//! use data::{load_tokenizer, DataRoot, LoadOptions};
//!
//! let root = DataRoot::resolve(None);
//! let dev = GlueTask::Sst2.load(&root, GlueSplit::Dev, &LoadOptions::default())?;
//! let tokenizer = load_tokenizer("../shared/models/all-MiniLM-L6-v2/tokenizer.json".as_ref())?;
//! let batcher = ClassificationBatcher::new(tokenizer, ClassificationBatcherConfig::default())?;
//! let encoded = batcher.encode_all(dev.examples())?;
//! let loader = DataLoaderBuilder::<NdArray, _, _>::new(batcher)
//!     .batch_size(32)
//!     .build(InMemDataset::new(encoded));
//! for batch in loader.iter() {
//!     let [batch_size, seq_len] = batch.input_ids.dims();
//!     assert!(batch_size <= 32 && seq_len <= 128);
//! }
//! # Ok::<(), data::DataError>(())
//! ```

mod causal_lm;
mod classification;
mod packing;

pub use causal_lm::{
    CausalLmBatch, CausalLmBatcher, CausalLmBatcherConfig, EncodedSequence, IGNORE_INDEX,
};
pub use classification::{
    ClassificationBatch, ClassificationBatcher, ClassificationBatcherConfig, EncodedPair,
};
pub use packing::{
    Packed, PackedBatch, PackedBatcher, PackedRow, PackingConfig, PackingReport, PackingStrategy,
};

use crate::error::{DataError, Result};

/// Which side of a sequence padding goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaddingSide {
    /// Pad after the tokens (training, encoders).
    #[default]
    Right,
    /// Pad before the tokens (batched generation with decoders).
    Left,
}

/// The padded length of a batch whose longest sequence has `longest` tokens: `longest`
/// rounded up to a multiple of `multiple` when given (as Hugging Face's
/// `pad_to_multiple_of`, this may exceed the truncation length).
pub fn padded_len(longest: usize, multiple: Option<usize>) -> usize {
    match multiple {
        Some(m) if m > 1 => longest.div_ceil(m) * m,
        _ => longest,
    }
}

/// Appends `row` padded with `pad` to `len` on `side`.
pub(crate) fn push_padded<T: Copy>(
    out: &mut Vec<T>,
    row: impl ExactSizeIterator<Item = T>,
    len: usize,
    pad: T,
    side: PaddingSide,
) {
    let n_pad = len.saturating_sub(row.len());
    if side == PaddingSide::Left {
        out.extend(std::iter::repeat_n(pad, n_pad));
    }
    out.extend(row.take(len));
    if side == PaddingSide::Right {
        out.extend(std::iter::repeat_n(pad, n_pad));
    }
}

/// Checks a `pad_to_multiple_of` option.
pub(crate) fn check_multiple(multiple: Option<usize>) -> Result<()> {
    if multiple == Some(0) {
        return Err(DataError::config(
            "pad_to_multiple_of",
            "expected a positive number or None, found 0",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_lengths() {
        assert_eq!(padded_len(13, None), 13);
        assert_eq!(padded_len(13, Some(8)), 16);
        assert_eq!(padded_len(16, Some(8)), 16);
        assert_eq!(padded_len(0, Some(8)), 0);
        assert_eq!(padded_len(5, Some(1)), 5);
    }

    #[test]
    fn padding_sides() {
        let mut out = Vec::new();
        push_padded(&mut out, [1, 2].into_iter(), 4, 0, PaddingSide::Right);
        push_padded(&mut out, [3, 4].into_iter(), 4, 0, PaddingSide::Left);
        assert_eq!(out, vec![1, 2, 0, 0, 0, 0, 3, 4]);
    }
}
