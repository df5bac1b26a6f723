//! The GLUE training model: a sequence classifier with burn-train's step traits.

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData, Transaction};
use burn::train::metric::{AccuracyInput, Adaptor, ItemLazy, LossInput};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use data::batcher::ClassificationBatch;
use models::SequenceClassificationModel;

use crate::train::distributed::{self, World};
use crate::train::{data_parallel_step, parallel_step, PartRows};

/// A BERT/RoBERTa sequence classifier (or regressor) trained on a GLUE task.
#[derive(Module, Debug)]
pub struct GlueModel<B: Backend> {
    /// The encoder, its adapters and the head.
    pub inner: SequenceClassificationModel<B>,
    /// Threads a training step splits its batch over (see [`parallel_step`]); 1 runs the
    /// batch on the calling thread.
    pub step_threads: usize,
}

/// One batch's loss, outputs and targets.
#[derive(Debug, Clone)]
pub struct GlueOutput<B: Backend> {
    /// Mean loss, `[1]`.
    pub loss: Tensor<B, 1>,
    /// Logits `[b, num_labels]` (scores `[b, 1]` for regression).
    pub logits: Tensor<B, 2>,
    /// Class targets `[b]` (zeros for regression).
    pub labels: Tensor<B, 1, Int>,
    /// Score targets `[b]` (zeros for classification).
    pub scores: Tensor<B, 1>,
}

impl<B: Backend> GlueModel<B> {
    /// Logits and loss of a labelled batch: cross-entropy for classification, mean squared
    /// error for regression.
    pub fn forward_batch(&self, batch: ClassificationBatch<B>) -> GlueOutput<B> {
        let [b, _] = batch.input_ids.dims();
        let device = batch.input_ids.device();
        let logits = self.inner.forward(
            batch.input_ids,
            Some(batch.attention_mask),
            Some(batch.token_type_ids),
        );
        if self.inner.is_regression() {
            let scores = batch.scores.unwrap_or_else(|| Tensor::zeros([b], &device));
            let loss = SequenceClassificationModel::regression_loss(logits.clone(), scores.clone());
            GlueOutput {
                loss,
                logits,
                labels: Tensor::zeros([b], &device),
                scores,
            }
        } else {
            let labels = batch.labels.unwrap_or_else(|| Tensor::zeros([b], &device));
            let loss =
                SequenceClassificationModel::classification_loss(logits.clone(), labels.clone());
            GlueOutput {
                loss,
                logits,
                labels,
                scores: Tensor::zeros([b], &device),
            }
        }
    }
}

impl<B: AutodiffBackend> TrainStep for GlueModel<B> {
    type Input = ClassificationBatch<B>;
    type Output = GlueOutput<B>;

    fn step(&self, batch: ClassificationBatch<B>) -> TrainOutput<GlueOutput<B>> {
        if let Some(world) = distributed::active() {
            return self.data_parallel(batch, world);
        }
        if self.step_threads <= 1 || batch.len() < 2 {
            let output = self.forward_batch(batch);
            return TrainOutput::new(self, output.loss.backward(), output);
        }
        let parts = batch.split(self.step_threads);
        let (grads, outputs) = parallel_step(self, parts, |replica, part| {
            let output = replica.forward_batch(part);
            (output.loss.clone(), output.detach())
        });
        TrainOutput {
            grads,
            item: GlueOutput::concat(outputs),
        }
    }
}

impl<B: AutodiffBackend> GlueModel<B> {
    /// One rank's step of a data-parallel run: its share of the global batch split over its
    /// replicas (threads, devices), the gradients all-reduced, and the outputs of the whole
    /// batch (each rank's rows in place, the loss the mean over all rows) gathered by an
    /// all-reduce, so every rank logs what one process would.
    fn data_parallel(
        &self,
        batch: ClassificationBatch<B>,
        world: &World,
    ) -> TrainOutput<GlueOutput<B>> {
        let total = batch.len();
        let rows = distributed::share(total, world.world_size, world.rank);
        let device = batch.input_ids.device();
        let parts = if rows.is_empty() {
            Vec::new()
        } else {
            let mine = batch
                .split(world.world_size)
                .into_iter()
                .nth(world.rank)
                .expect("a non-empty share is one of the batch's parts");
            let replicas = self.step_threads.max(world.local_devices());
            if replicas > 1 && mine.len() > 1 {
                mine.split(replicas)
            } else {
                vec![mine]
            }
        };
        let (grads, outputs) = data_parallel_step(self, parts, total, |replica, part| {
            let replica_device = replica.devices().into_iter().next().unwrap_or_default();
            let part = batch_to_device(part, &replica_device);
            let output = replica.forward_batch(part);
            (output.loss.clone(), output.detach_to(&device))
        });
        let labels = self.inner.num_labels();
        let item = GlueOutput::gather(outputs, rows, total, labels, world, &device);
        TrainOutput { grads, item }
    }
}

/// `batch` on `device` (a replica's, in a run over several devices).
fn batch_to_device<B: Backend>(
    batch: ClassificationBatch<B>,
    device: &B::Device,
) -> ClassificationBatch<B> {
    if batch.input_ids.device() == *device {
        return batch;
    }
    ClassificationBatch {
        input_ids: batch.input_ids.to_device(device),
        attention_mask: batch.attention_mask.to_device(device),
        token_type_ids: batch.token_type_ids.to_device(device),
        labels: batch.labels.map(|t| t.to_device(device)),
        scores: batch.scores.map(|t| t.to_device(device)),
    }
}

impl<B: AutodiffBackend> GlueOutput<B> {
    /// [`detach`](Self::detach), on `device`.
    fn detach_to(self, device: &B::Device) -> Self {
        let out = self.detach();
        Self {
            loss: out.loss.to_device(device),
            logits: out.logits.to_device(device),
            labels: out.labels.to_device(device),
            scores: out.scores.to_device(device),
        }
    }

    /// The output of the whole global batch of `total` rows from this rank's `parts` (rows
    /// `rows` of it), by one all-reduce of a buffer where each rank fills its rows: logits
    /// `[total, labels]`, labels and scores `[total]`, and the loss weighted by the rank's
    /// share.
    fn gather(
        parts: Vec<Self>,
        rows: std::ops::Range<usize>,
        total: usize,
        labels: usize,
        world: &World,
        device: &B::Device,
    ) -> Self {
        let n = rows.len();
        let zeros = |len: usize| Tensor::<B, 1>::zeros([len], device);
        let flat = if parts.is_empty() {
            zeros(total * labels + 2 * total + 1)
        } else {
            let mine = Self::concat(parts);
            let (before, after) = (rows.start, total - rows.end);
            Tensor::cat(
                vec![
                    zeros(before * labels),
                    mine.logits.reshape([n * labels]),
                    zeros(after * labels),
                    zeros(before),
                    mine.labels.float(),
                    zeros(after),
                    zeros(before),
                    mine.scores,
                    zeros(after),
                    mine.loss.mul_scalar(n as f64 / total.max(1) as f64),
                ],
                0,
            )
        };
        let devices = world.devices_on::<B::InnerBackend>(device);
        let sum = distributed::all_reduce_sum(world, flat, &devices);
        let at = |offset: usize, len: usize| sum.clone().narrow(0, offset, len);
        Self {
            logits: at(0, total * labels).reshape([total, labels]),
            labels: at(total * labels, total).round().int(),
            scores: at(total * labels + total, total),
            loss: at(total * labels + 2 * total, 1),
        }
    }
}

impl<B: AutodiffBackend> PartRows for ClassificationBatch<B> {
    fn rows(&self) -> usize {
        self.len()
    }
}

impl<B: AutodiffBackend> GlueOutput<B> {
    /// The same output outside the autodiff graph.
    fn detach(self) -> Self {
        Self {
            loss: self.loss.detach(),
            logits: self.logits.detach(),
            labels: self.labels,
            scores: self.scores.detach(),
        }
    }
}

impl<B: Backend> GlueOutput<B> {
    /// The outputs of consecutive parts of a batch as one: rows concatenated, the loss the
    /// mean over all rows.
    fn concat(parts: Vec<Self>) -> Self {
        let rows: Vec<usize> = parts.iter().map(|p| p.labels.dims()[0]).collect();
        let total = rows.iter().sum::<usize>().max(1) as f64;
        let loss = parts
            .iter()
            .zip(&rows)
            .map(|(p, &n)| p.loss.clone().mul_scalar(n as f64 / total))
            .reduce(|a, b| a + b)
            .expect("a batch has at least one part");
        Self {
            loss,
            logits: Tensor::cat(parts.iter().map(|p| p.logits.clone()).collect(), 0),
            labels: Tensor::cat(parts.iter().map(|p| p.labels.clone()).collect(), 0),
            scores: Tensor::cat(parts.into_iter().map(|p| p.scores).collect(), 0),
        }
    }
}

impl<B: Backend> InferenceStep for GlueModel<B> {
    type Input = ClassificationBatch<B>;
    type Output = GlueOutput<B>;

    /// The batch's outputs; with `step_threads > 1` its rows are split over that many
    /// threads as a training step's are (each on a clone of the model), and the parts'
    /// outputs concatenated in order: the same logits as one thread computes, the loss the
    /// mean over all rows.
    fn step(&self, batch: ClassificationBatch<B>) -> GlueOutput<B> {
        if self.step_threads <= 1 || batch.len() < 2 {
            return self.forward_batch(batch);
        }
        let parts = batch.split(self.step_threads);
        let outputs = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| {
                    let model = self.clone();
                    scope.spawn(move || model.forward_batch(part))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        GlueOutput::concat(outputs)
    }
}

impl<B: Backend> ItemLazy for GlueOutput<B> {
    type ItemSync = GlueOutput<burn::backend::Flex>;

    fn sync(self) -> Self::ItemSync {
        let [logits, loss, labels, scores] = Transaction::default()
            .register(self.logits)
            .register(self.loss)
            .register(self.labels)
            .register(self.scores)
            .execute()
            .try_into()
            .expect("four tensors were registered");
        let device = Default::default();
        GlueOutput {
            loss: Tensor::from_data(loss.convert::<f32>(), &device),
            logits: Tensor::from_data(logits.convert::<f32>(), &device),
            labels: Tensor::from_data(convert_ints(labels), &device),
            scores: Tensor::from_data(scores.convert::<f32>(), &device),
        }
    }
}

fn convert_ints(data: TensorData) -> TensorData {
    data.convert::<i32>()
}

impl<B: Backend> Adaptor<LossInput<B>> for GlueOutput<B> {
    fn adapt(&self) -> LossInput<B> {
        LossInput::new(self.loss.clone())
    }
}

impl<B: Backend> Adaptor<AccuracyInput<B>> for GlueOutput<B> {
    fn adapt(&self) -> AccuracyInput<B> {
        AccuracyInput::new(self.logits.clone(), self.labels.clone())
    }
}
