//! The trainer's progress, saved with every checkpoint.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::task::MetricKey;

/// One evaluation's results: at the end of an epoch, and every `eval_every` steps within
/// one; each is a point of the dev curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimiser steps done at the end of the epoch.
    pub global_step: usize,
    /// Mean training loss over the epoch's steps (so far, for an evaluation within it).
    pub train_loss: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Dev metrics (name → value).
    pub dev: BTreeMap<String, f64>,
    /// Wall-clock seconds spent training since the previous record of the epoch (its start
    /// for the first), excluding evaluation; the records' sum is the training time.
    pub train_seconds: f64,
    /// Wall-clock seconds of the evaluation.
    pub eval_seconds: f64,
}

/// A logged training step (every `log_every` steps), for the curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based optimiser step.
    pub step: usize,
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean loss over the steps since the previous record.
    pub loss: f64,
    /// Learning rate used by this step.
    pub lr: f64,
}

/// The best evaluation so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// The selection metric.
    pub metric: MetricKey,
    /// Its value.
    pub value: f64,
    /// The epoch that reached it.
    pub epoch: usize,
    /// The optimiser step at that point.
    pub global_step: usize,
}

/// Everything needed to continue training exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// A digest of the settings that must not change on resume.
    pub fingerprint: String,
    /// The epoch in progress (1-based).
    pub epoch: usize,
    /// Batches of that epoch already trained.
    pub batches_done: usize,
    /// Optimiser steps done in total.
    pub global_step: usize,
    /// Optimiser steps the whole run will take.
    pub total_steps: usize,
    /// Sum and count of the current epoch's losses so far.
    pub epoch_loss_sum: f64,
    /// See `epoch_loss_sum`.
    pub epoch_loss_count: usize,
    /// Seconds spent training in the current epoch so far.
    pub epoch_seconds: f64,
    /// Of `epoch_seconds`, those already counted in records of this epoch.
    #[serde(default)]
    pub epoch_seconds_recorded: f64,
    /// Loss sum and count since the last step record.
    pub pending_loss_sum: f64,
    /// See `pending_loss_sum`.
    pub pending_loss_count: usize,
    /// Evaluations done (one per finished epoch, more with `eval_every`).
    pub history: Vec<EpochRecord>,
    /// Logged steps.
    pub steps: Vec<StepRecord>,
    /// The best evaluation so far.
    pub best: Option<Best>,
    /// Evaluations since the best one (for early stopping).
    pub evals_without_improvement: usize,
    /// Whether the run has finished (all epochs, or early stopping).
    pub finished: bool,
}

impl TrainerState {
    /// The state at the start of a run.
    pub fn new(fingerprint: String, total_steps: usize) -> Self {
        Self {
            fingerprint,
            epoch: 1,
            batches_done: 0,
            global_step: 0,
            total_steps,
            epoch_loss_sum: 0.0,
            epoch_loss_count: 0,
            epoch_seconds: 0.0,
            epoch_seconds_recorded: 0.0,
            pending_loss_sum: 0.0,
            pending_loss_count: 0,
            history: Vec::new(),
            steps: Vec::new(),
            best: None,
            evals_without_improvement: 0,
            finished: false,
        }
    }
}
