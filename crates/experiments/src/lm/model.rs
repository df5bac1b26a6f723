//! The causal-LM training model: a LLaMA decoder with burn-train's step traits, gradient
//! accumulation over micro-batches (in turn, or several at once on step threads), and a
//! token-weighted loss.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use models::llama::causal_lm_loss;
use models::LlamaForCausalLM;

use super::data::{LmBatch, LmPart};
use super::metric::{TokenCountInput, TokenLossInput};
use crate::train::{parallel_step_of, PartRows};

/// A LLaMA causal LM fine-tuned with the loss on response tokens.
#[derive(Module, Debug)]
pub struct CausalLmModel<B: Backend> {
    /// The decoder and its adapters.
    pub inner: LlamaForCausalLM<B>,
    /// Micro-batches a step runs at once, each on its own thread with its own graph (see
    /// [`parallel_step_of`]); 1 runs them one after another on the calling thread.
    pub step_threads: usize,
}

/// A micro-batch and the tokens its loss is taken over (its weight in the step's mean).
struct ScoredPart<B: Backend> {
    part: LmPart<B>,
    tokens: usize,
}

impl<B: Backend> PartRows for ScoredPart<B> {
    fn rows(&self) -> usize {
        self.tokens
    }
}

/// One step's loss and token counts.
#[derive(Debug, Clone)]
pub struct LmOutput<B: Backend> {
    /// Mean cross-entropy over every scored token of the batch (all micro-batches), `[1]`.
    pub loss: Tensor<B, 1>,
    /// Tokens scored by the loss.
    pub target_tokens: usize,
    /// Non-padding input tokens.
    pub input_tokens: usize,
}

impl<B: Backend> CausalLmModel<B> {
    /// `inner` trained one micro-batch at a time.
    pub fn new(inner: LlamaForCausalLM<B>) -> Self {
        Self {
            inner,
            step_threads: 1,
        }
    }

    /// The same model running up to `threads` micro-batches of a step at once (at least 1).
    pub fn with_step_threads(self, threads: usize) -> Self {
        Self {
            step_threads: threads.max(1),
            ..self
        }
    }

    /// The mean loss of a micro-batch, `[1]`.
    fn part_loss(&self, part: &LmPart<B>) -> Tensor<B, 1> {
        match part {
            LmPart::Padded(p) => {
                self.inner
                    .forward_lm(
                        p.input_ids.clone(),
                        Some(p.attention_mask.clone()),
                        p.labels.clone(),
                    )
                    .loss
            }
            LmPart::Packed(p) => {
                let logits = self.inner.forward_packed(
                    p.input_ids.clone(),
                    p.position_ids.clone(),
                    p.segment_ids.clone(),
                );
                causal_lm_loss(logits, p.labels.clone()).loss
            }
        }
    }

    /// The token-weighted mean loss over every micro-batch, without gradients.
    pub fn evaluate(&self, batch: LmBatch<B>) -> LmOutput<B> {
        let total: usize = batch.target_tokens.iter().sum();
        let mut loss: Option<Tensor<B, 1>> = None;
        for (i, &n) in batch.target_tokens.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let part = self
                .part_loss(&batch.parts[i])
                .mul_scalar(n as f64 / total as f64);
            loss = Some(add(loss, part));
        }
        let device = self.inner.model.embed_tokens.weight.device();
        LmOutput {
            loss: loss.unwrap_or_else(|| Tensor::zeros([1], &device)),
            target_tokens: total,
            input_tokens: batch.input_tokens,
        }
    }
}

impl<B: AutodiffBackend> TrainStep for CausalLmModel<B> {
    type Input = LmBatch<B>;
    type Output = LmOutput<B>;

    /// Forward and backward of each micro-batch, its mean loss weighted by its share of the
    /// batch's scored tokens, so the summed gradients are those of the mean loss over the
    /// whole batch, as one large batch gives. With one step thread the micro-batches run in
    /// turn (one graph alive at a time); with more, in waves of `step_threads` at once.
    fn step(&self, batch: LmBatch<B>) -> TrainOutput<LmOutput<B>> {
        let total: usize = batch.target_tokens.iter().sum();
        let device = self.inner.model.embed_tokens.weight.device();
        let input_tokens = batch.input_tokens;
        let parts: Vec<ScoredPart<B>> = batch
            .parts
            .into_iter()
            .zip(batch.target_tokens)
            .filter(|(_, tokens)| *tokens > 0)
            .map(|(part, tokens)| ScoredPart { part, tokens })
            .collect();
        let (grads, loss) = if self.step_threads > 1 && parts.len() > 1 {
            self.step_in_waves(parts, total)
        } else {
            self.step_in_turn(parts, total)
        };
        TrainOutput {
            grads,
            item: LmOutput {
                loss: loss.unwrap_or_else(|| Tensor::zeros([1], &device)),
                target_tokens: total,
                input_tokens,
            },
        }
    }
}

impl<B: AutodiffBackend> CausalLmModel<B> {
    /// Each part's forward and backward on this thread; the gradients and the weighted loss.
    fn step_in_turn(
        &self,
        parts: Vec<ScoredPart<B>>,
        total: usize,
    ) -> (GradientsParams, Option<Tensor<B, 1>>) {
        let single = parts.len() == 1;
        let mut accumulator = GradientsAccumulator::<Self>::new();
        let mut only: Option<GradientsParams> = None;
        let mut loss: Option<Tensor<B, 1>> = None;
        for ScoredPart { part, tokens } in parts {
            let part = self
                .part_loss(&part)
                .mul_scalar(tokens as f64 / total as f64);
            let grads = GradientsParams::from_grads(part.backward(), self);
            if single {
                only = Some(grads);
            } else {
                accumulator.accumulate(self, grads);
            }
            loss = Some(add(loss, part.detach()));
        }
        (only.unwrap_or_else(|| accumulator.grads()), loss)
    }

    /// The parts in waves of `step_threads`, each part of a wave on its own thread.
    fn step_in_waves(
        &self,
        mut parts: Vec<ScoredPart<B>>,
        total: usize,
    ) -> (GradientsParams, Option<Tensor<B, 1>>) {
        let mut accumulator = GradientsAccumulator::<Self>::new();
        let mut loss: Option<Tensor<B, 1>> = None;
        while !parts.is_empty() {
            let rest = parts.split_off(self.step_threads.min(parts.len()));
            let (grads, losses) = parallel_step_of(self, parts, total, |replica, scored| {
                let share = scored.tokens as f64 / total as f64;
                let part_loss = replica.part_loss(&scored.part);
                let weighted = part_loss.clone().detach().mul_scalar(share);
                (part_loss, weighted)
            });
            accumulator.accumulate(self, grads);
            for part in losses {
                loss = Some(add(loss, part));
            }
            parts = rest;
        }
        (accumulator.grads(), loss)
    }
}

/// `sum + part` (`part` when there is no sum yet).
fn add<B: Backend>(sum: Option<Tensor<B, 1>>, part: Tensor<B, 1>) -> Tensor<B, 1> {
    match sum {
        Some(sum) => sum + part,
        None => part,
    }
}

impl<B: Backend> InferenceStep for CausalLmModel<B> {
    type Input = LmBatch<B>;
    type Output = LmOutput<B>;

    fn step(&self, batch: LmBatch<B>) -> LmOutput<B> {
        self.evaluate(batch)
    }
}

impl<B: Backend> ItemLazy for LmOutput<B> {
    type ItemSync = LmOutput<burn::backend::Flex>;

    fn sync(self) -> Self::ItemSync {
        let loss = self.loss.into_data().convert::<f32>();
        LmOutput {
            loss: Tensor::from_data(loss, &Default::default()),
            target_tokens: self.target_tokens,
            input_tokens: self.input_tokens,
        }
    }
}

impl<B: Backend> Adaptor<LossInput<B>> for LmOutput<B> {
    fn adapt(&self) -> LossInput<B> {
        LossInput::new(self.loss.clone())
    }
}

impl<B: Backend> Adaptor<TokenLossInput> for LmOutput<B> {
    fn adapt(&self) -> TokenLossInput {
        TokenLossInput {
            mean_loss: scalar(&self.loss),
            tokens: self.target_tokens,
        }
    }
}

impl<B: Backend> Adaptor<TokenCountInput> for LmOutput<B> {
    fn adapt(&self) -> TokenCountInput {
        TokenCountInput {
            tokens: self.input_tokens,
        }
    }
}

/// The value of a one-element tensor (NaN when it cannot be read).
pub fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.to_data().iter::<f64>().next().unwrap_or(f64::NAN)
}
