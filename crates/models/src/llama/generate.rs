//! Text generation: greedy or sampled decoding of a batch of prompts, with or without the KV
//! cache, stopping on end-of-sequence or after a number of tokens.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::model::LlamaForCausalLM;
use super::sampling::{SamplingParams, SplitMix64};
use crate::error::{ModelError, Result};

/// Settings of [`LlamaForCausalLM::generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// The most tokens to add to each prompt.
    pub max_new_tokens: usize,
    /// Softmax temperature; `0` is greedy decoding (argmax).
    pub temperature: f64,
    /// Sample only among the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Sample only among the most likely tokens whose probability adds up to `p` (nucleus).
    pub top_p: Option<f64>,
    /// Seed of the sampler; prompt `i` of a batch draws from a generator seeded with
    /// `seed + i`, so a prompt samples the same tokens alone or first in a batch.
    pub seed: u64,
    /// Tokens that end a sequence; `None` uses the model's `eos_token_id`.
    pub eos_token_ids: Option<Vec<u32>>,
    /// The id that pads shorter prompts on the left; `None` uses the model's
    /// `pad_token_id`, else its first EOS id, else 0. Padding is masked, so its value does
    /// not change the result.
    pub pad_token_id: Option<u32>,
    /// Whether to keep keys and values between steps (fast) or recompute the whole sequence
    /// at every step (slow; the same tokens).
    pub use_cache: bool,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
            eos_token_ids: None,
            pad_token_id: None,
            use_cache: true,
        }
    }
}

impl GenerationConfig {
    /// Greedy decoding of at most `max_new_tokens` tokens.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            ..Self::default()
        }
    }

    /// Sampling at `temperature` with `seed`.
    pub fn sampled(max_new_tokens: usize, temperature: f64, seed: u64) -> Self {
        Self {
            max_new_tokens,
            temperature,
            seed,
            ..Self::default()
        }
    }

    /// The sampling part of the settings.
    pub fn sampling(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// A negative or non-finite temperature, `top_k = 0`, or `top_p` outside `(0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(ModelError::invalid(
                "temperature",
                format!(
                    "expected a finite number ≥ 0 (0 = greedy), found {}",
                    self.temperature
                ),
            ));
        }
        if self.top_k == Some(0) {
            return Err(ModelError::invalid("top_k", "expected at least 1, found 0"));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(ModelError::invalid(
                    "top_p",
                    format!("expected a probability in (0, 1], found {p}"),
                ));
            }
        }
        Ok(())
    }
}

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// It produced an end-of-sequence token (kept in the output).
    Eos,
    /// It reached `max_new_tokens`.
    MaxTokens,
}

/// What [`LlamaForCausalLM::generate`] returns, per prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationOutput {
    /// Prompt followed by the generated tokens (no padding).
    pub sequences: Vec<Vec<u32>>,
    /// Length of each prompt.
    pub prompt_lens: Vec<usize>,
    /// Why each sequence stopped.
    pub finish_reasons: Vec<FinishReason>,
}

impl GenerationOutput {
    /// The generated tokens of prompt `row`.
    pub fn new_tokens(&self, row: usize) -> &[u32] {
        &self.sequences[row][self.prompt_lens[row]..]
    }
}

impl<B: Backend> LlamaForCausalLM<B> {
    /// Generates a continuation of each prompt (token ids). See
    /// [`generate_with`](Self::generate_with).
    ///
    /// # Errors
    /// See [`generate_with`](Self::generate_with).
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        config: &GenerationConfig,
    ) -> Result<GenerationOutput> {
        self.generate_with(prompts, config, |_, _| {})
    }

    /// Generates a continuation of each prompt, calling `on_token(row, token)` for every new
    /// token as soon as it is chosen (for streaming).
    ///
    /// Prompts of different lengths are padded on the left and masked; positions start at
    /// each prompt's first token, so a prompt yields the same tokens alone or in a batch. A
    /// sequence stops after an end-of-sequence token (which is kept) or `max_new_tokens`;
    /// generation stops when all have.
    ///
    /// # Errors
    /// No prompt, an empty prompt, a token id outside the vocabulary, or invalid settings.
    pub fn generate_with(
        &self,
        prompts: &[Vec<u32>],
        config: &GenerationConfig,
        mut on_token: impl FnMut(usize, u32),
    ) -> Result<GenerationOutput> {
        config.validate()?;
        self.check_prompts(prompts)?;
        let device = self.model.embed_tokens.weight.device();
        let b = prompts.len();
        let eos = config
            .eos_token_ids
            .clone()
            .unwrap_or_else(|| self.config().eos_token_ids());
        let pad = config
            .pad_token_id
            .or(self.config().pad_token_id)
            .or(eos.first().copied())
            .unwrap_or(0);
        let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let limit = self.config().max_position_embeddings;
        if width + config.max_new_tokens > limit {
            log::warn!(
                "prompt ({width} tokens) + max_new_tokens ({}) exceeds max_position_embeddings ({limit}); \
                 quality may degrade past the trained context",
                config.max_new_tokens
            );
        }
        let mut sequences: Vec<Vec<u32>> = prompts.to_vec();
        let mut finish: Vec<Option<FinishReason>> = vec![None; b];
        if config.max_new_tokens == 0 {
            return Ok(output(sequences, prompts, finish));
        }

        // Left-padded ids and mask; `rows` grows when recomputing without a cache.
        let mut rows: Vec<Vec<i64>> = prompts
            .iter()
            .map(|p| {
                let mut row = vec![pad as i64; width - p.len()];
                row.extend(p.iter().map(|&t| t as i64));
                row
            })
            .collect();
        let mut mask_rows: Vec<Vec<i64>> = prompts
            .iter()
            .map(|p| {
                let mut row = vec![0i64; width - p.len()];
                row.extend(std::iter::repeat_n(1, p.len()));
                row
            })
            .collect();
        let sampling = config.sampling();
        let mut rngs: Vec<SplitMix64> = (0..b)
            .map(|i| SplitMix64::new(config.seed.wrapping_add(i as u64)))
            .collect();

        let mut cache = config.use_cache.then(|| self.new_cache());
        let mut logits = self.forward_last(
            int_tensor(&rows, &device),
            Some(int_tensor(&mask_rows, &device)),
            cache.as_mut(),
        );
        for step in 0..config.max_new_tokens {
            let vocab = logits.dims()[1];
            let values: Vec<f32> = logits.into_data().convert::<f32>().iter::<f32>().collect();
            let mut next = Vec::with_capacity(b);
            for row in 0..b {
                if finish[row].is_some() {
                    next.push(pad);
                    continue;
                }
                let token = sampling.pick(&values[row * vocab..(row + 1) * vocab], &mut rngs[row]);
                sequences[row].push(token);
                on_token(row, token);
                if eos.contains(&token) {
                    finish[row] = Some(FinishReason::Eos);
                }
                next.push(token);
            }
            if finish.iter().all(Option::is_some) || step + 1 == config.max_new_tokens {
                break;
            }
            let next_ids: Vec<Vec<i64>> = next.iter().map(|&t| vec![t as i64]).collect();
            logits = match cache.as_mut() {
                Some(cache) => self.forward_last(
                    int_tensor(&next_ids, &device),
                    Some(Tensor::ones([b, 1], &device)),
                    Some(cache),
                ),
                None => {
                    for (row, &t) in rows.iter_mut().zip(&next) {
                        row.push(t as i64);
                    }
                    for row in &mut mask_rows {
                        row.push(1);
                    }
                    self.forward_last(
                        int_tensor(&rows, &device),
                        Some(int_tensor(&mask_rows, &device)),
                        None,
                    )
                }
            };
        }
        Ok(output(sequences, prompts, finish))
    }

    fn check_prompts(&self, prompts: &[Vec<u32>]) -> Result<()> {
        if prompts.is_empty() {
            return Err(ModelError::invalid(
                "prompts",
                "expected at least one prompt",
            ));
        }
        let vocab = self.config().vocab_size;
        for (i, p) in prompts.iter().enumerate() {
            if p.is_empty() {
                return Err(ModelError::invalid(
                    "prompts",
                    format!("prompt {i} is empty; it needs at least one token (e.g. BOS)"),
                ));
            }
            if let Some(&bad) = p.iter().find(|&&t| t as usize >= vocab) {
                return Err(ModelError::invalid(
                    "prompts",
                    format!("prompt {i} holds token id {bad}, outside the vocabulary of {vocab}"),
                ));
            }
        }
        Ok(())
    }
}

fn output(
    sequences: Vec<Vec<u32>>,
    prompts: &[Vec<u32>],
    finish: Vec<Option<FinishReason>>,
) -> GenerationOutput {
    GenerationOutput {
        sequences,
        prompt_lens: prompts.iter().map(Vec::len).collect(),
        finish_reasons: finish
            .into_iter()
            .map(|f| f.unwrap_or(FinishReason::MaxTokens))
            .collect(),
    }
}

/// A `[rows, cols]` Int tensor from equal-length rows.
fn int_tensor<B: Backend>(rows: &[Vec<i64>], device: &B::Device) -> Tensor<B, 2, Int> {
    let cols = rows.first().map_or(0, Vec::len);
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), cols]), device)
}
