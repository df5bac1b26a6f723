//! Dev-set evaluation with the task's GLUE metrics.

use burn::tensor::backend::Backend;
use data::glue::GlueTask;

use super::model::GlueOutput;
use crate::train::Evaluation;

/// Collects predictions and references over the dev set.
pub struct GlueEvaluation {
    task: GlueTask,
    predicted_classes: Vec<usize>,
    reference_classes: Vec<usize>,
    predicted_scores: Vec<f64>,
    reference_scores: Vec<f64>,
    loss_sum: f64,
    batches: usize,
}

impl GlueEvaluation {
    /// An empty evaluation for `task`.
    pub fn new(task: GlueTask) -> Self {
        Self {
            task,
            predicted_classes: Vec::new(),
            reference_classes: Vec::new(),
            predicted_scores: Vec::new(),
            reference_scores: Vec::new(),
            loss_sum: 0.0,
            batches: 0,
        }
    }

    /// The metrics an evaluation of `task` reports, the task's main one first, then `loss`.
    pub fn keys(task: GlueTask) -> Vec<&'static str> {
        task.metrics()
            .iter()
            .map(|m| m.name())
            .chain(["loss"])
            .collect()
    }
}

impl<B: Backend> Evaluation<GlueOutput<B>> for GlueEvaluation {
    fn observe(&mut self, output: &GlueOutput<B>) {
        self.loss_sum += output
            .loss
            .to_data()
            .iter::<f64>()
            .next()
            .unwrap_or(f64::NAN);
        self.batches += 1;
        if self.task.is_regression() {
            self.predicted_scores
                .extend(output.logits.to_data().iter::<f64>());
            self.reference_scores
                .extend(output.scores.to_data().iter::<f64>());
        } else {
            self.predicted_classes.extend(
                output
                    .logits
                    .clone()
                    .argmax(1)
                    .to_data()
                    .iter::<i64>()
                    .map(|v| v as usize),
            );
            self.reference_classes
                .extend(output.labels.to_data().iter::<i64>().map(|v| v as usize));
        }
    }

    fn finish(&mut self) -> Vec<(String, f64)> {
        let metrics = if self.task.is_regression() {
            self.task
                .evaluate_scores(&self.predicted_scores, &self.reference_scores)
        } else {
            self.task
                .evaluate_classes(&self.predicted_classes, &self.reference_classes)
        };
        let mut out: Vec<(String, f64)> = match metrics {
            Ok(values) => values
                .into_iter()
                .map(|(m, v)| (m.name().to_string(), v))
                .collect(),
            Err(e) => {
                log::warn!("dev metrics of {}: {e}", self.task.name());
                Vec::new()
            }
        };
        out.push(("loss".into(), self.loss_sum / self.batches.max(1) as f64));
        out
    }
}
