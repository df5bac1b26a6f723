//! The causal-LM training model: a LLaMA decoder with burn-train's step traits, gradient
//! accumulation over micro-batches, and a token-weighted loss.

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

/// A LLaMA causal LM fine-tuned with the loss on response tokens.
#[derive(Module, Debug)]
pub struct CausalLmModel<B: Backend> {
    /// The decoder and its adapters.
    pub inner: LlamaForCausalLM<B>,
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
    /// The mean loss of micro-batch `part` of `batch`, `[1]`.
    fn part_loss(&self, batch: &LmBatch<B>, part: usize) -> Tensor<B, 1> {
        match &batch.parts[part] {
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
                .part_loss(&batch, i)
                .mul_scalar(n as f64 / total as f64);
            loss = Some(match loss {
                Some(l) => l + part,
                None => part,
            });
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

    /// Forward and backward of each micro-batch in turn (only one graph alive at a time),
    /// its mean loss weighted by its share of the batch's scored tokens, so the summed
    /// gradients are those of the mean loss over the whole batch, as one large batch gives.
    fn step(&self, batch: LmBatch<B>) -> TrainOutput<LmOutput<B>> {
        let total: usize = batch.target_tokens.iter().sum();
        let device = self.inner.model.embed_tokens.weight.device();
        let mut accumulator = GradientsAccumulator::<Self>::new();
        let mut single: Option<GradientsParams> = None;
        let mut loss: Option<Tensor<B, 1>> = None;
        let parts = batch.target_tokens.iter().filter(|&&n| n > 0).count();
        for (i, &n) in batch.target_tokens.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let part = self
                .part_loss(&batch, i)
                .mul_scalar(n as f64 / total as f64);
            let grads = GradientsParams::from_grads(part.backward(), self);
            if parts == 1 {
                single = Some(grads);
            } else {
                accumulator.accumulate(self, grads);
            }
            let part = part.detach();
            loss = Some(match loss {
                Some(l) => l + part,
                None => part,
            });
        }
        let grads = single.unwrap_or_else(|| accumulator.grads());
        TrainOutput {
            grads,
            item: LmOutput {
                loss: loss.unwrap_or_else(|| Tensor::zeros([1], &device)),
                target_tokens: total,
                input_tokens: batch.input_tokens,
            },
        }
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
