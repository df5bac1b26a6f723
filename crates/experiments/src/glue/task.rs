//! The GLUE job as a [`TrainTask`]: data order, loss, evaluation and the trainable state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bone_io::tensors::{read_safetensors, write_safetensors};
use bone_module::{AdapterConfig, AdapterHostExt};
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::transform::{PartialDataset, ShuffledDataset};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::tensor::backend::AutodiffBackend;
use data::batcher::{ClassificationBatch, ClassificationBatcher, EncodedPair};
use data::glue::GlueTask;
use models::{ClassifierOptions, SequenceClassificationModel};

use super::config::Method;
use super::evaluation::GlueEvaluation;
use super::model::{GlueModel, GlueOutput};
use crate::train::{with_stable_param_ids, Evaluation, TrainTask};

/// The adapter's name inside the model (PEFT's default).
pub const ADAPTER_NAME: &str = "default";
/// File of the head for `--method head`.
pub const HEAD_FILE: &str = "classifier.safetensors";

/// Training data, batching and the trainable state of a GLUE run.
pub struct GlueTrainTask<B: AutodiffBackend> {
    /// The task.
    pub task: GlueTask,
    /// Encoded training examples.
    pub train: Arc<InMemDataset<EncodedPair>>,
    /// Tokenising batcher (also pads).
    pub batcher: ClassificationBatcher,
    /// Examples per batch.
    pub batch_size: usize,
    /// Seed of the per-epoch shuffles.
    pub seed: u64,
    /// What is trained.
    pub method: Method,
    /// The adapter configuration (adapter methods).
    pub adapter: Option<AdapterConfig>,
    /// The training device.
    pub device: B::Device,
    /// Threads a training step splits its batch over.
    pub step_threads: usize,
    /// The files the run reads (fingerprinted for `--resume`).
    pub inputs: Vec<std::path::PathBuf>,
}

impl<B: AutodiffBackend> TrainTask<B, GlueModel<B>> for GlueTrainTask<B> {
    fn input_files(&self) -> Vec<std::path::PathBuf> {
        self.inputs.clone()
    }

    fn train_loader(
        &self,
        epoch: usize,
        skip_batches: usize,
    ) -> Arc<dyn DataLoader<B, ClassificationBatch<B>>> {
        let shuffled = ShuffledDataset::new(
            Arc::clone(&self.train),
            self.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
        );
        let len = shuffled.len();
        let rest = PartialDataset::new(shuffled, (skip_batches * self.batch_size).min(len), len);
        DataLoaderBuilder::new(self.batcher.clone())
            .batch_size(self.batch_size)
            .set_device(self.device.clone())
            .build(rest)
    }

    fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.batch_size)
    }

    fn train_items(&self) -> usize {
        self.train.len()
    }

    fn loss_value(&self, output: &GlueOutput<B>) -> f64 {
        output
            .loss
            .to_data()
            .iter::<f64>()
            .next()
            .unwrap_or(f64::NAN)
    }

    fn new_evaluation(&self) -> Box<dyn Evaluation<GlueOutput<B::InnerBackend>>> {
        Box::new(GlueEvaluation::new(self.task))
    }

    fn save_trainable(&self, model: &GlueModel<B>, dir: &Path) -> anyhow::Result<()> {
        match (&self.adapter, self.method) {
            (Some(config), _) => {
                model.inner.save_adapter(ADAPTER_NAME, config, dir)?;
            }
            (None, Method::Full) => {
                models::export::save_pretrained(&model.inner, dir)?;
            }
            (None, _) => {
                write_safetensors(
                    &dir.join(HEAD_FILE),
                    &model.inner.head_tensors(),
                    &[("format", "pt")],
                )?;
            }
        }
        Ok(())
    }

    fn load_trainable(&self, model: GlueModel<B>, dir: &Path) -> anyhow::Result<GlueModel<B>> {
        let mut inner = model.inner;
        match (&self.adapter, self.method) {
            (Some(_), _) => {
                if inner.adapter_names().iter().any(|n| n == ADAPTER_NAME) {
                    inner.delete_adapter(ADAPTER_NAME)?;
                }
                inner.load_adapter(dir, ADAPTER_NAME, &self.device)?;
                inner = inner.set_head_trainable(true);
            }
            (None, Method::Full) => {
                let options = ClassifierOptions::with_num_labels(inner.num_labels());
                inner = SequenceClassificationModel::from_pretrained(dir, &options, &self.device)
                    .with_context(|| format!("loading the fine-tuned model in {}", dir.display()))?
                    .set_full_finetune(true);
            }
            (None, _) => {
                let path = dir.join(HEAD_FILE);
                let tensors: BTreeMap<_, _> = read_safetensors(&path)?;
                inner.load_head_tensors(&tensors, &path)?;
                inner = inner.set_head_trainable(true);
            }
        }
        Ok(with_stable_param_ids(GlueModel {
            inner,
            step_threads: self.step_threads,
        }))
    }
}
