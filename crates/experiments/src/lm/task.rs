//! The causal-LM job as a [`TrainTask`]: data order, loss, evaluation, the trainable state and
//! the sample generations after each evaluation.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bone_module::{AdapterConfig, AdapterHostExt};
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::transform::{PartialDataset, ShuffledDataset};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use data::batcher::EncodedSequence;
use models::{LlamaForCausalLM, LoadOptions};

use super::data::{LmBatch, LmBatcher};
use super::evaluation::LmEvaluation;
use super::model::{scalar, CausalLmModel, LmOutput};
use super::samples::SampleSet;
use crate::train::{with_stable_param_ids, Evaluation, RunDir, TrainTask, TrainerState};

/// The adapter's name inside the model (PEFT's default).
pub const ADAPTER_NAME: &str = "default";

/// Training data, batching and the trainable state of a causal-LM run.
pub struct LmTrainTask<B: AutodiffBackend> {
    /// Tokenised training sequences.
    pub train: Arc<InMemDataset<EncodedSequence>>,
    /// Pads effective batches into micro-batches.
    pub batcher: LmBatcher,
    /// Examples per optimiser step (micro-batch × accumulation).
    pub effective_batch: usize,
    /// Seed of the per-epoch shuffles.
    pub seed: u64,
    /// The adapter configuration; `None` for full fine-tuning.
    pub adapter: Option<AdapterConfig>,
    /// How the base weights are loaded (full fine-tuning reloads checkpoints with it).
    pub load_options: LoadOptions,
    /// The training device.
    pub device: B::Device,
    /// Held-out prompts generated from after each evaluation (none: no samples).
    pub samples: Option<SampleSet>,
    /// The model and data files the run reads (fingerprinted; `--resume` checks them).
    pub inputs: Vec<std::path::PathBuf>,
}

impl<B: AutodiffBackend> TrainTask<B, CausalLmModel<B>> for LmTrainTask<B> {
    fn input_files(&self) -> Vec<std::path::PathBuf> {
        self.inputs.clone()
    }

    fn train_loader(
        &self,
        epoch: usize,
        skip_batches: usize,
    ) -> Arc<dyn DataLoader<B, LmBatch<B>>> {
        let shuffled = ShuffledDataset::new(
            Arc::clone(&self.train),
            self.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
        );
        let len = shuffled.len();
        let start = (skip_batches * self.effective_batch).min(len);
        DataLoaderBuilder::new(self.batcher.clone())
            .batch_size(self.effective_batch)
            .set_device(self.device.clone())
            .build(PartialDataset::new(shuffled, start, len))
    }

    fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.effective_batch)
    }

    fn train_items(&self) -> usize {
        self.train.len()
    }

    fn loss_value(&self, output: &LmOutput<B>) -> f64 {
        scalar(&output.loss)
    }

    fn new_evaluation(&self) -> Box<dyn Evaluation<LmOutput<B::InnerBackend>>> {
        Box::new(LmEvaluation::new())
    }

    fn save_trainable(&self, model: &CausalLmModel<B>, dir: &Path) -> anyhow::Result<()> {
        match &self.adapter {
            Some(config) => {
                model.inner.save_adapter(ADAPTER_NAME, config, dir)?;
            }
            None => {
                models::export::save_pretrained(&model.inner, dir)?;
            }
        }
        Ok(())
    }

    fn load_trainable(
        &self,
        model: CausalLmModel<B>,
        dir: &Path,
    ) -> anyhow::Result<CausalLmModel<B>> {
        let step_threads = model.step_threads;
        let inner = match &self.adapter {
            Some(_) => {
                let mut inner = model.inner;
                if inner.adapter_names().iter().any(|n| n == ADAPTER_NAME) {
                    inner.delete_adapter(ADAPTER_NAME)?;
                }
                inner.load_adapter(dir, ADAPTER_NAME, &self.device)?;
                inner
            }
            None => LlamaForCausalLM::from_pretrained(dir, &self.load_options, &self.device)
                .with_context(|| format!("loading the fine-tuned model in {}", dir.display()))?
                .set_full_finetune(true),
        };
        Ok(with_stable_param_ids(
            CausalLmModel::new(inner).with_step_threads(step_threads),
        ))
    }

    /// Writes `samples/step-N.jsonl`: greedy generations of the sample prompts.
    fn after_evaluation(
        &self,
        model: &CausalLmModel<B>,
        state: &TrainerState,
        run: &RunDir,
    ) -> anyhow::Result<()> {
        let Some(samples) = self.samples.as_ref().filter(|s| !s.is_empty()) else {
            return Ok(());
        };
        let inner = model.inner.valid();
        samples.write(&inner, run.root(), state.global_step, state.epoch)?;
        Ok(())
    }
}
