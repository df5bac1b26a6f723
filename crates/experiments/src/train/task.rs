//! What a task (GLUE, causal LM) gives the trainer.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{InferenceStep, TrainStep};
use serde::{Deserialize, Serialize};

/// Whether a larger or a smaller value of the selection metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricGoal {
    /// Accuracy, F1, correlations.
    Maximise,
    /// Losses, perplexity.
    Minimise,
}

impl MetricGoal {
    /// Whether `candidate` improves on `best`.
    pub fn improves(self, candidate: f64, best: f64) -> bool {
        match self {
            Self::Maximise => candidate > best,
            Self::Minimise => candidate < best,
        }
    }
}

/// The dev metric that selects the best adapter: one of the keys the task's evaluation
/// reports (`accuracy`, `matthews`, `pearson`, `loss`, …), checked when it is made.
/// Serialised as the bare key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetricKey(String);

impl MetricKey {
    /// `name` when it is one of `valid` (the keys the evaluation reports).
    ///
    /// # Errors
    /// An unknown key, naming the valid ones.
    pub fn new(name: &str, valid: &[&str]) -> anyhow::Result<Self> {
        if valid.contains(&name) {
            Ok(Self(name.to_string()))
        } else {
            anyhow::bail!(
                "selection metric `{name}`: unknown; the evaluation reports {}",
                valid.join(", ")
            )
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This metric's value among an evaluation's results, if it has one.
    pub fn value_in(&self, metrics: &[(String, f64)]) -> Option<f64> {
        metrics.iter().find(|(k, _)| *k == self.0).map(|(_, v)| *v)
    }
}

impl std::fmt::Display for MetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Accumulates evaluation outputs over the dev set and turns them into named metrics.
pub trait Evaluation<O>: Send {
    /// Takes one batch's output.
    fn observe(&mut self, output: &O);
    /// The metrics over everything observed (name → value), in display order.
    fn finish(&mut self) -> Vec<(String, f64)>;
}

/// The task-specific half of training: data order, losses, evaluation and the trainable state.
pub trait TrainTask<B, M>: Send + Sync + 'static
where
    B: AutodiffBackend,
    M: TrainStep + AutodiffModule<B>,
    M::InnerModule: InferenceStep,
{
    /// The files the run reads (model config, tokenizer, weights, data): their fingerprints
    /// are recorded when the run starts and `--resume` refuses a changed one. None by default.
    fn input_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// Batches of training epoch `epoch` (1-based) in that epoch's shuffled order (a function
    /// of the seed and the epoch only), without its first `skip_batches` batches.
    fn train_loader(
        &self,
        epoch: usize,
        skip_batches: usize,
    ) -> Arc<dyn DataLoader<B, <M as TrainStep>::Input>>;

    /// Training batches per epoch.
    fn batches_per_epoch(&self) -> usize;

    /// Training examples per epoch.
    fn train_items(&self) -> usize;

    /// The scalar loss of a training step's output (this synchronises with the device).
    fn loss_value(&self, output: &<M as TrainStep>::Output) -> f64;

    /// A fresh evaluation accumulator for the dev set.
    fn new_evaluation(&self) -> Box<dyn Evaluation<<M::InnerModule as InferenceStep>::Output>>;

    /// Writes what training changes (adapters, heads; everything for full fine-tuning) into
    /// `dir`, in the format users take away (PEFT for adapters).
    fn save_trainable(&self, model: &M, dir: &Path) -> anyhow::Result<()>;

    /// Loads what [`save_trainable`](Self::save_trainable) wrote into `model`.
    fn load_trainable(&self, model: M, dir: &Path) -> anyhow::Result<M>;

    /// Called after each evaluation (per epoch and every `eval_every` steps), once `state`
    /// holds its record: a task writes what it keeps of the model then (the causal-LM job's
    /// sample generations). A failure is reported as a warning, not a failed run.
    ///
    /// # Errors
    /// Whatever the task's writing fails with.
    fn after_evaluation(
        &self,
        _model: &M,
        _state: &super::state::TrainerState,
        _run: &super::run_dir::RunDir,
    ) -> anyhow::Result<()> {
        Ok(())
    }
}
