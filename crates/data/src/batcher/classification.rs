//! Batches of (pairs of) sentences for encoder classifiers and regressors (GLUE).

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::{check_multiple, padded_len, push_padded, PaddingSide};
use crate::error::{preview, DataError, Result};
use crate::glue::{GlueExample, Label};

/// Options of a [`ClassificationBatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationBatcherConfig {
    /// Longest sequence, special tokens included; longer inputs are cut, longest text first
    /// for pairs. Default 128.
    pub max_len: usize,
    /// Id written at padded positions of `input_ids` (BERT `[PAD]` = 0, RoBERTa `<pad>` = 1).
    /// Default 0.
    pub pad_id: u32,
    /// Token type written at padded positions. Default 0.
    pub pad_type_id: u32,
    /// Round each batch's length up to a multiple of this (for example 8 for tensor cores).
    /// Default `None`.
    pub pad_to_multiple_of: Option<usize>,
}

impl Default for ClassificationBatcherConfig {
    fn default() -> Self {
        Self {
            max_len: 128,
            pad_id: 0,
            pad_type_id: 0,
            pad_to_multiple_of: None,
        }
    }
}

impl ClassificationBatcherConfig {
    /// Sets `max_len`.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Sets `pad_id`.
    pub fn with_pad_id(mut self, pad_id: u32) -> Self {
        self.pad_id = pad_id;
        self
    }

    /// Sets `pad_to_multiple_of`.
    pub fn with_pad_to_multiple_of(mut self, multiple: Option<usize>) -> Self {
        self.pad_to_multiple_of = multiple;
        self
    }
}

/// One tokenised GLUE example: `[CLS] a [SEP] (b [SEP])` (as the tokenizer's post-processor
/// writes it), at most `max_len` ids.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPair {
    /// Token ids, special tokens included.
    pub input_ids: Vec<u32>,
    /// Segment ids (0 for the first text, 1 for the second), same length as `input_ids`.
    pub token_type_ids: Vec<u32>,
    /// The label, if the example has one.
    pub label: Option<Label>,
    /// True when tokens were cut to fit `max_len`.
    pub truncated: bool,
}

/// A padded batch for an encoder. `B` = batch size, `S` = padded sequence length.
#[derive(Debug, Clone)]
pub struct ClassificationBatch<B: Backend> {
    /// Token ids, `[B, S]`; padded positions hold `pad_id`.
    pub input_ids: Tensor<B, 2, Int>,
    /// 1 for real tokens, 0 for padding, `[B, S]`.
    pub attention_mask: Tensor<B, 2, Int>,
    /// Segment ids, `[B, S]` (0 for single sentences and padding).
    pub token_type_ids: Tensor<B, 2, Int>,
    /// Class targets `[B]`, when every item has a class label.
    pub labels: Option<Tensor<B, 1, Int>>,
    /// Regression targets `[B]` (STS-B scores), when every item has a score label.
    pub scores: Option<Tensor<B, 1>>,
}

impl<B: Backend> ClassificationBatch<B> {
    /// `true` at padded positions, `[B, S]` (the `mask_pad` convention of Burn's
    /// `TransformerEncoderInput`).
    pub fn pad_mask(&self) -> Tensor<B, 2, Bool> {
        self.attention_mask.clone().equal_elem(0)
    }

    /// The number of examples, `B`.
    pub fn len(&self) -> usize {
        self.input_ids.dims()[0]
    }

    /// Whether the batch holds no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cuts the batch into at most `parts` consecutive groups of rows of near-equal size
    /// (the first ones one row larger), each cut after its last column that holds a real
    /// token. Reads the attention mask back to the host.
    pub fn split(self, parts: usize) -> Vec<Self> {
        let [b, s] = self.input_ids.dims();
        let parts = parts.clamp(1, b.max(1));
        let mask = self.attention_mask.to_data().convert::<i64>();
        let mask = mask.as_slice::<i64>().expect("converted to i64 above");
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        for i in 0..parts {
            let rows = b / parts + usize::from(i < b % parts);
            let used = (start..start + rows)
                .filter_map(|r| mask[r * s..(r + 1) * s].iter().rposition(|&m| m != 0))
                .max()
                .map_or(1, |last| last + 1);
            let cut = |t: Tensor<B, 2, Int>| t.narrow(0, start, rows).narrow(1, 0, used);
            out.push(Self {
                input_ids: cut(self.input_ids.clone()),
                attention_mask: cut(self.attention_mask.clone()),
                token_type_ids: cut(self.token_type_ids.clone()),
                labels: self.labels.clone().map(|l| l.narrow(0, start, rows)),
                scores: self.scores.clone().map(|l| l.narrow(0, start, rows)),
            });
            start += rows;
        }
        out
    }
}

/// Tokenises GLUE examples and pads them into [`ClassificationBatch`]es.
#[derive(Clone)]
pub struct ClassificationBatcher {
    tokenizer: Arc<Tokenizer>,
    config: ClassificationBatcherConfig,
}

impl std::fmt::Debug for ClassificationBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassificationBatcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClassificationBatcher {
    /// Builds a batcher. The tokenizer's own padding is switched off and its truncation set to
    /// `max_len` (longest-first for pairs).
    ///
    /// # Errors
    /// [`DataError::Config`] when `max_len` cannot hold the special tokens of a pair plus one
    /// token of each text, or `pad_to_multiple_of` is 0.
    pub fn new(mut tokenizer: Tokenizer, config: ClassificationBatcherConfig) -> Result<Self> {
        check_multiple(config.pad_to_multiple_of)?;
        let added = tokenizer
            .get_post_processor()
            .map(|p| tokenizers::PostProcessor::added_tokens(p, true))
            .unwrap_or(0);
        if config.max_len < added + 2 {
            return Err(DataError::config(
                "max_len",
                format!(
                    "expected at least {} (the {added} special tokens of a pair plus one token \
                     per text), found {}",
                    added + 2,
                    config.max_len
                ),
            ));
        }
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: config.max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| DataError::config("max_len", e.to_string()))?;
        Ok(Self {
            tokenizer: Arc::new(tokenizer),
            config,
        })
    }

    /// The options.
    pub fn config(&self) -> &ClassificationBatcherConfig {
        &self.config
    }

    /// The tokenizer (padding off, truncation at `max_len`).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Tokenises one example with the tokenizer's special tokens.
    pub fn encode(&self, example: &GlueExample) -> Result<EncodedPair> {
        let encoding = match &example.text_b {
            Some(b) => self
                .tokenizer
                .encode_fast((example.text_a.as_str(), b.as_str()), true),
            None => self.tokenizer.encode_fast(example.text_a.as_str(), true),
        }
        .map_err(|e| DataError::Encode {
            what: format!(
                "the example of line {} ({:?})",
                example.line,
                preview(&example.text_a, 40)
            ),
            reason: e.to_string(),
        })?;
        Ok(EncodedPair {
            input_ids: encoding.get_ids().to_vec(),
            token_type_ids: encoding.get_type_ids().to_vec(),
            label: example.label,
            truncated: !encoding.get_overflowing().is_empty(),
        })
    }

    /// Tokenises every example, in order.
    pub fn encode_all(&self, examples: &[GlueExample]) -> Result<Vec<EncodedPair>> {
        examples.iter().map(|e| self.encode(e)).collect()
    }

    /// Pads encoded items into tensors on `device` (what [`Batcher::batch`] does).
    pub fn collate<B: Backend>(
        &self,
        items: &[EncodedPair],
        device: &B::Device,
    ) -> ClassificationBatch<B> {
        let n = items.len();
        let longest = items.iter().map(|e| e.input_ids.len()).max().unwrap_or(0);
        let seq = padded_len(longest, self.config.pad_to_multiple_of);
        let mut ids = Vec::with_capacity(n * seq);
        let mut mask = Vec::with_capacity(n * seq);
        let mut types = Vec::with_capacity(n * seq);
        let right = PaddingSide::Right;
        for item in items {
            let len = item.input_ids.len();
            push_padded(
                &mut ids,
                item.input_ids.iter().map(|&t| t as i64),
                seq,
                self.config.pad_id as i64,
                right,
            );
            push_padded(&mut mask, std::iter::repeat_n(1i64, len), seq, 0, right);
            push_padded(
                &mut types,
                item.token_type_ids.iter().map(|&t| t as i64),
                seq,
                self.config.pad_type_id as i64,
                right,
            );
        }
        let int2 = |data: Vec<i64>| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(data, [n, seq]), device)
        };
        let classes: Option<Vec<i64>> = items
            .iter()
            .map(|e| e.label.and_then(Label::class).map(|c| c as i64))
            .collect();
        let scores: Option<Vec<f32>> = items
            .iter()
            .map(|e| e.label.and_then(Label::score))
            .collect();
        ClassificationBatch {
            input_ids: int2(ids),
            attention_mask: int2(mask),
            token_type_ids: int2(types),
            labels: classes
                .filter(|_| n > 0)
                .map(|c| Tensor::from_data(TensorData::new(c, [n]), device)),
            scores: scores
                .filter(|_| n > 0)
                .map(|s| Tensor::from_data(TensorData::new(s, [n]), device)),
        }
    }
}

impl<B: Backend> Batcher<B, EncodedPair, ClassificationBatch<B>> for ClassificationBatcher {
    fn batch(&self, items: Vec<EncodedPair>, device: &B::Device) -> ClassificationBatch<B> {
        self.collate(&items, device)
    }
}
