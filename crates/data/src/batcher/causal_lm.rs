//! Batches of prompt + response sequences for decoder-only language models.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use tokenizers::Tokenizer;

use super::{check_multiple, padded_len, push_padded, PaddingSide};
use crate::error::{preview, DataError, Result};
use crate::prompt::SftExample;

/// Label of positions that take no part in the loss (prompt and padding), as in PyTorch's
/// `CrossEntropyLoss(ignore_index=-100)` and Hugging Face's trainers.
pub const IGNORE_INDEX: i64 = -100;

/// Options of a [`CausalLmBatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CausalLmBatcherConfig {
    /// Longest sequence, BOS and EOS included. Default 512.
    pub max_len: usize,
    /// Id written at padded positions (masked out; LLaMA has no pad token, 0 = `<unk>` is the
    /// usual choice). Default 0.
    pub pad_id: u32,
    /// Prepended to every sequence when set. Default `Some(1)` (LLaMA `<s>`).
    pub bos_id: Option<u32>,
    /// Appended after the response when set. Default `Some(2)` (LLaMA `</s>`).
    pub eos_id: Option<u32>,
    /// Side to pad on: right for training, left for batched generation. Default right.
    pub padding_side: PaddingSide,
    /// Round each batch's length up to a multiple of this. Default `None`.
    pub pad_to_multiple_of: Option<usize>,
}

impl Default for CausalLmBatcherConfig {
    fn default() -> Self {
        Self {
            max_len: 512,
            pad_id: 0,
            bos_id: Some(1),
            eos_id: Some(2),
            padding_side: PaddingSide::Right,
            pad_to_multiple_of: None,
        }
    }
}

impl CausalLmBatcherConfig {
    /// Sets `max_len`.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Sets `padding_side`.
    pub fn with_padding_side(mut self, side: PaddingSide) -> Self {
        self.padding_side = side;
        self
    }

    /// Sets `pad_to_multiple_of`.
    pub fn with_pad_to_multiple_of(mut self, multiple: Option<usize>) -> Self {
        self.pad_to_multiple_of = multiple;
        self
    }
}

/// One tokenised sequence: `[BOS] prompt response [EOS]`, at most `max_len` ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSequence {
    /// Token ids.
    pub input_ids: Vec<u32>,
    /// Per-position targets aligned with `input_ids` (not shifted): the token id on response
    /// and EOS positions, [`IGNORE_INDEX`] on BOS and prompt positions.
    pub labels: Vec<i64>,
    /// True when tokens were cut to fit `max_len`.
    pub truncated: bool,
}

impl EncodedSequence {
    /// True when at least one position carries a target (false when truncation removed the
    /// whole response, or for prompts encoded for generation).
    pub fn has_targets(&self) -> bool {
        self.labels.iter().any(|&l| l != IGNORE_INDEX)
    }
}

/// A padded batch for a causal LM. `B` = batch size, `S` = padded sequence length.
///
/// `labels` are aligned with `input_ids` (Hugging Face's convention): the loss compares the
/// logits at position `t` with `labels[t + 1]`, skipping [`IGNORE_INDEX`].
#[derive(Debug, Clone)]
pub struct CausalLmBatch<B: Backend> {
    /// Token ids, `[B, S]`; padded positions hold `pad_id`.
    pub input_ids: Tensor<B, 2, Int>,
    /// 1 for real tokens, 0 for padding, `[B, S]`.
    pub attention_mask: Tensor<B, 2, Int>,
    /// Targets, `[B, S]`: token ids on response (and EOS) positions, [`IGNORE_INDEX`] on
    /// BOS, prompt and padding.
    pub labels: Tensor<B, 2, Int>,
    /// Position of each token within its own sequence (0 at its first real token), 0 on
    /// padding, `[B, S]`; equals `arange(S)` on unpadded rows with right padding.
    pub position_ids: Tensor<B, 2, Int>,
}

/// Tokenises prompt/response pairs and pads them into [`CausalLmBatch`]es.
#[derive(Clone)]
pub struct CausalLmBatcher {
    tokenizer: Arc<Tokenizer>,
    config: CausalLmBatcherConfig,
}

impl std::fmt::Debug for CausalLmBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CausalLmBatcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CausalLmBatcher {
    /// Builds a batcher; the tokenizer's own padding and truncation are switched off.
    ///
    /// # Errors
    /// [`DataError::Config`] when `max_len` cannot hold BOS, one token and EOS, or
    /// `pad_to_multiple_of` is 0.
    pub fn new(mut tokenizer: Tokenizer, config: CausalLmBatcherConfig) -> Result<Self> {
        check_multiple(config.pad_to_multiple_of)?;
        let specials = usize::from(config.bos_id.is_some()) + usize::from(config.eos_id.is_some());
        if config.max_len < specials + 1 {
            return Err(DataError::config(
                "max_len",
                format!(
                    "expected at least {} (BOS/EOS plus one token), found {}",
                    specials + 1,
                    config.max_len
                ),
            ));
        }
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| DataError::config("truncation", e.to_string()))?;
        Ok(Self {
            tokenizer: Arc::new(tokenizer),
            config,
        })
    }

    /// The options.
    pub fn config(&self) -> &CausalLmBatcherConfig {
        &self.config
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn tokens(&self, text: &str, what: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| DataError::Encode {
                what: format!("{what} {:?}", preview(text, 40)),
                reason: e.to_string(),
            })
    }

    /// Tokenises a training example: `[BOS] prompt response [EOS]`, prompt and response
    /// tokenised separately (without the tokenizer's special tokens), labels
    /// [`IGNORE_INDEX`] on BOS and prompt. Sequences longer than `max_len` are cut at the end.
    pub fn encode(&self, example: &SftExample) -> Result<EncodedSequence> {
        let prompt = self.tokens(&example.prompt, "prompt")?;
        let response = self.tokens(&example.response, "response")?;
        let c = &self.config;
        let mut input_ids: Vec<u32> = c.bos_id.into_iter().chain(prompt).collect();
        let mut labels = vec![IGNORE_INDEX; input_ids.len()];
        let answer: Vec<u32> = response.into_iter().chain(c.eos_id).collect();
        labels.extend(answer.iter().map(|&t| t as i64));
        input_ids.extend(answer);
        let truncated = input_ids.len() > c.max_len;
        input_ids.truncate(c.max_len);
        labels.truncate(c.max_len);
        Ok(EncodedSequence {
            input_ids,
            labels,
            truncated,
        })
    }

    /// Tokenises every training example, in order.
    pub fn encode_all(&self, examples: &[SftExample]) -> Result<Vec<EncodedSequence>> {
        examples.iter().map(|e| self.encode(e)).collect()
    }

    /// Tokenises a prompt for generation: `[BOS] prompt`, no EOS, all labels
    /// [`IGNORE_INDEX`]. A prompt longer than `max_len` keeps BOS and its last tokens (the
    /// end of the template, `### Response:`, must stay).
    pub fn encode_prompt(&self, prompt: &str) -> Result<EncodedSequence> {
        let mut tokens = self.tokens(prompt, "prompt")?;
        let room = self.config.max_len - usize::from(self.config.bos_id.is_some());
        let truncated = tokens.len() > room;
        if truncated {
            tokens.drain(..tokens.len() - room);
        }
        let input_ids: Vec<u32> = self.config.bos_id.into_iter().chain(tokens).collect();
        Ok(EncodedSequence {
            labels: vec![IGNORE_INDEX; input_ids.len()],
            input_ids,
            truncated,
        })
    }

    /// Pads encoded items into tensors on `device` (what [`Batcher::batch`] does).
    pub fn collate<B: Backend>(
        &self,
        items: &[EncodedSequence],
        device: &B::Device,
    ) -> CausalLmBatch<B> {
        let n = items.len();
        let longest = items.iter().map(|e| e.input_ids.len()).max().unwrap_or(0);
        let seq = padded_len(longest, self.config.pad_to_multiple_of);
        let side = self.config.padding_side;
        let mut ids = Vec::with_capacity(n * seq);
        let mut mask = Vec::with_capacity(n * seq);
        let mut labels = Vec::with_capacity(n * seq);
        let mut positions = Vec::with_capacity(n * seq);
        for item in items {
            let len = item.input_ids.len();
            push_padded(
                &mut ids,
                item.input_ids.iter().map(|&t| t as i64),
                seq,
                self.config.pad_id as i64,
                side,
            );
            push_padded(&mut mask, std::iter::repeat_n(1i64, len), seq, 0, side);
            push_padded(
                &mut labels,
                item.labels.iter().copied(),
                seq,
                IGNORE_INDEX,
                side,
            );
            push_padded(&mut positions, (0..len).map(|p| p as i64), seq, 0, side);
        }
        let int2 = |data: Vec<i64>| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(data, [n, seq]), device)
        };
        CausalLmBatch {
            input_ids: int2(ids),
            attention_mask: int2(mask),
            labels: int2(labels),
            position_ids: int2(positions),
        }
    }
}

impl<B: Backend> Batcher<B, EncodedSequence, CausalLmBatch<B>> for CausalLmBatcher {
    fn batch(&self, items: Vec<EncodedSequence>, device: &B::Device) -> CausalLmBatch<B> {
        self.collate(&items, device)
    }
}
