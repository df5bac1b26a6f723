//! The trainer's epoch, in the shape of burn-train's `single/epoch.rs`: the training pass
//! ([`Trainer::train_epoch`], one [`Trainer::train_step`] per batch), the validation pass
//! ([`Trainer::valid_epoch`]) and what happens between epochs ([`Trainer::end_epoch`]:
//! the record, best-adapter selection, early stopping, the epoch checkpoint). With
//! `eval_every` the validation, its record and selection also run inside the epoch
//! ([`Trainer::eval_within_epoch`]).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use burn::data::dataloader::Progress;
use burn::lr_scheduler::LrScheduler;
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{
    EventProcessorTraining, InferenceStep, Interrupter, Learner, LearnerEvent,
    LearningComponentsMarker, LearningComponentsTypes, SupervisedTrainingEventProcessor,
    TrainLoader, TrainStep, TrainingItem, ValidLoader,
};

use super::optim::{clip_global_norm, SharedOptimizer};
use super::report::{write_metrics, write_plot};
use super::schedule::WarmupDecay;
use super::state::{Best, EpochRecord, StepRecord, TrainerState};
use super::task::TrainTask;
use super::trainer::Trainer;

/// The learning components of our runs.
pub(super) type Components<B, M, O> =
    LearningComponentsMarker<B, WarmupDecay, M, SharedOptimizer<O>>;

/// `Break` stops training (interrupted, failed, or a non-finite loss); the outcome says why.
pub(super) type Flow = ControlFlow<()>;

/// What the passes share: burn-train's learner, event processor and interrupter, and the steps
/// this process has taken (for `--stop-after-steps`).
pub(super) struct Pass<LC: LearningComponentsTypes> {
    pub(super) learner: Learner<LC>,
    pub(super) processor: SupervisedTrainingEventProcessor<LC>,
    pub(super) interrupter: Interrupter,
    pub(super) steps_this_process: usize,
}

impl<B, M, O, T> Trainer<B, M, O, T>
where
    B: AutodiffBackend,
    M: TrainStep + AutodiffModule<B> + core::fmt::Display + 'static,
    M::InnerModule: InferenceStep,
    O: Optimizer<M, B> + 'static,
    T: TrainTask<B, M>,
    WarmupDecay: LrScheduler,
{
    /// One epoch: training from where `state` stands (`loader` holds the epoch's remaining
    /// batches), evaluation, selection and the epoch checkpoint.
    pub(super) fn run_epoch(
        &self,
        pass: &mut Pass<Components<B, M, O>>,
        state: &mut TrainerState,
        loader: TrainLoader<Components<B, M, O>>,
        valid: &ValidLoader<Components<B, M, O>>,
    ) -> Flow {
        self.train_epoch(pass, state, loader, valid)?;
        let train_seconds = state.epoch_seconds;
        let started = Instant::now();
        let dev = self.valid_epoch(pass, valid, state.epoch, true);
        let eval_seconds = started.elapsed().as_secs_f64();
        self.end_epoch(pass, state, dev, train_seconds, eval_seconds)
    }

    /// `eval_every`: after a step that is a multiple of it (the epoch's last one excepted,
    /// which the epoch's own evaluation covers), the dev metrics, their record (a point of
    /// the dev curves), best-adapter selection and the metric files, without the epoch's
    /// dashboard summary.
    fn eval_within_epoch(
        &self,
        pass: &mut Pass<Components<B, M, O>>,
        state: &mut TrainerState,
        valid: &ValidLoader<Components<B, M, O>>,
    ) -> Flow {
        let every = self.options.eval_every;
        let batches = self.task.batches_per_epoch().max(1);
        if every == 0 || !state.global_step.is_multiple_of(every) || state.batches_done >= batches {
            return ControlFlow::Continue(());
        }
        let started = Instant::now();
        let dev = self.valid_epoch(pass, valid, state.epoch, false);
        let eval_seconds = started.elapsed().as_secs_f64();
        let record = self.record(pass, state, &dev, eval_seconds);
        self.say(&format!(
            "step {} (epoch {}/{}, batch {}/{batches}): train loss {:.4} · dev {}",
            state.global_step,
            state.epoch,
            self.options.epochs,
            state.batches_done,
            record.train_loss,
            format_dev(&dev)
        ));
        self.keep_record(pass, state, record, &dev)?;
        self.write_reports(state);
        ControlFlow::Continue(())
    }

    /// The record of an evaluation now: the epoch's mean training loss so far and the
    /// training seconds since the previous record of the epoch.
    fn record(
        &self,
        pass: &Pass<Components<B, M, O>>,
        state: &mut TrainerState,
        dev: &[(String, f64)],
        eval_seconds: f64,
    ) -> EpochRecord {
        let train_seconds = (state.epoch_seconds - state.epoch_seconds_recorded).max(0.0);
        state.epoch_seconds_recorded = state.epoch_seconds;
        EpochRecord {
            epoch: state.epoch,
            global_step: state.global_step,
            train_loss: state.epoch_loss_sum / state.epoch_loss_count.max(1) as f64,
            lr: pass.learner.lr_current(),
            dev: dev.iter().cloned().collect(),
            train_seconds,
            eval_seconds,
        }
    }

    /// Fails the run on a non-finite dev loss (a diverged model is never the best one, nor
    /// checkpointed); else keeps `record`, selects, and lets the task write its artefacts.
    fn keep_record(
        &self,
        pass: &Pass<Components<B, M, O>>,
        state: &mut TrainerState,
        record: EpochRecord,
        dev: &[(String, f64)],
    ) -> Flow {
        if let Some((key, value)) = dev
            .iter()
            .find(|(k, v)| k.contains("loss") && !v.is_finite())
        {
            let kept = self.last_good_checkpoint();
            self.fail(format!(
                "training stopped: the dev {key} is {value} after epoch {} (step {}); the model \
                 diverged and is not saved as the best adapter; {kept}",
                state.epoch, state.global_step
            ));
            return ControlFlow::Break(());
        }
        state.history.push(record);
        let model = pass.learner.model();
        if let Err(e) = self.select(&model, state, dev) {
            self.fail(format!("{e:#}"));
            return ControlFlow::Break(());
        }
        if let Err(e) = self.task.after_evaluation(&model, state, &self.run) {
            log::warn!("after the evaluation at step {}: {e:#}", state.global_step);
        }
        ControlFlow::Continue(())
    }

    /// `metrics.json`, `metrics.csv` and `curves.png`; a failure only warns.
    fn write_reports(&self, state: &TrainerState) {
        if let Err(e) = write_metrics(&self.run, state).and_then(|_| write_plot(&self.run, state)) {
            log::warn!(
                "writing the metrics of {}: {e:#}",
                self.run.root().display()
            );
        }
    }

    /// The training pass over `loader`, a step per batch.
    fn train_epoch(
        &self,
        pass: &mut Pass<Components<B, M, O>>,
        state: &mut TrainerState,
        loader: TrainLoader<Components<B, M, O>>,
        valid: &ValidLoader<Components<B, M, O>>,
    ) -> Flow {
        let epoch = state.epoch;
        let clock = EpochClock {
            resumed_seconds: state.epoch_seconds,
            started: Instant::now(),
        };
        for batch in loader.iter() {
            self.train_step(pass, state, batch, &clock)?;
            self.eval_within_epoch(pass, state, valid)?;
        }
        pass.processor.process_train(LearnerEvent::EndEpoch(epoch));
        ControlFlow::Continue(())
    }

    /// One optimiser step: reseed, forward and backward, the NaN check, clipping, the update,
    /// the loss record, then checkpoints and interruptions.
    fn train_step(
        &self,
        pass: &mut Pass<Components<B, M, O>>,
        state: &mut TrainerState,
        batch: <M as TrainStep>::Input,
        clock: &EpochClock,
    ) -> Flow {
        let options = &self.options;
        let (epoch, iteration, step) = (state.epoch, state.batches_done + 1, state.global_step + 1);
        let device = pass.learner.model().devices()[0].clone();
        B::seed(&device, mix_seed(options.seed, step as u64));
        pass.learner.lr_step();
        let output = pass.learner.train_step(batch);
        let loss = self.task.loss_value(&output.item);
        if !loss.is_finite() {
            self.fail_non_finite(loss, step, epoch, iteration);
            pass.interrupter.stop(Some("non-finite loss"));
            return ControlFlow::Break(());
        }
        let grads = match options.max_grad_norm {
            Some(max) => clip_global_norm(&pass.learner.model(), output.grads, max).0,
            None => output.grads,
        };
        pass.learner.optimizer_step(grads);
        let lr = pass.learner.lr_current();
        record_step(state, loss, lr, options.log_every, clock);
        let items = self.task.train_items();
        let per_batch = items.div_ceil(self.task.batches_per_epoch().max(1));
        pass.processor
            .process_train(LearnerEvent::ProcessedItem(TrainingItem::new(
                output.item,
                Progress {
                    items_processed: (iteration * per_batch).min(items),
                    items_total: items,
                },
                self.global_progress(epoch),
                Some(iteration),
                Some(lr),
            )));
        pass.steps_this_process += 1;
        self.after_step(pass, state)
    }

    /// `--stop-after-steps`, the periodic checkpoint, and an interruption (which checkpoints
    /// first).
    fn after_step(&self, pass: &mut Pass<Components<B, M, O>>, state: &TrainerState) -> Flow {
        let options = &self.options;
        let (step, iteration) = (state.global_step, state.batches_done);
        let batches = self.task.batches_per_epoch().max(1);
        if options.stop_after_steps == Some(pass.steps_this_process) {
            pass.interrupter.stop(Some("--stop-after-steps reached"));
        }
        if super::signal::received().is_some() {
            pass.interrupter.stop(Some("SIGINT/SIGTERM received"));
        }
        let periodic = options.checkpoint_every > 0
            && step.is_multiple_of(options.checkpoint_every)
            && iteration < batches;
        if !periodic && !pass.interrupter.should_stop() {
            return ControlFlow::Continue(());
        }
        let saved_at = match self.checkpoint(&pass.learner.model(), state) {
            Ok(path) => path,
            Err(e) => {
                self.fail(format!("{e:#}"));
                pass.interrupter.stop(Some("checkpoint failed"));
                return ControlFlow::Break(());
            }
        };
        if !pass.interrupter.should_stop() {
            return ControlFlow::Continue(());
        }
        self.lock_outcome().interrupted = true;
        self.say(&format!(
            "interrupted at step {step} (epoch {}, batch {iteration}/{batches}); checkpoint {}; \
             continue with `--resume {}`",
            state.epoch,
            saved_at.display(),
            self.run.root().display()
        ));
        ControlFlow::Break(())
    }

    /// Records why a non-finite loss stopped the run, naming the checkpoint to resume from.
    fn fail_non_finite(&self, loss: f64, step: usize, epoch: usize, iteration: usize) {
        let kept = self.last_good_checkpoint();
        self.fail(format!(
            "training stopped: the loss is {loss} at step {step} (epoch {epoch}, batch {iteration}); \
             the update was not applied and {kept}"
        ));
    }

    /// "the last good checkpoint is …; `--resume …` continues from it (lower --lr first)".
    fn last_good_checkpoint(&self) -> String {
        let last: Option<PathBuf> = self
            .lock_outcome()
            .last_checkpoint
            .clone()
            .or_else(|| self.store.latest().ok().flatten().map(|f| f.path));
        match last {
            Some(p) => format!(
                "the last good checkpoint is {}; `--resume {}` continues from it (lower --lr first)",
                p.display(),
                self.run.root().display()
            ),
            None => "no checkpoint was written before it".to_string(),
        }
    }

    /// The validation pass: the task's metrics over the dev set, in display order. With
    /// `dashboard` the items and the epoch's end go to burn-train's event processor (the
    /// dashboard and its metric logs); an evaluation within an epoch leaves them out, so the
    /// epoch's summary there stays one per epoch.
    fn valid_epoch(
        &self,
        pass: &mut Pass<Components<B, M, O>>,
        valid: &ValidLoader<Components<B, M, O>>,
        epoch: usize,
        dashboard: bool,
    ) -> Vec<(String, f64)> {
        let model = pass.learner.model().valid();
        let mut evaluation = self.task.new_evaluation();
        let total = valid.num_items();
        let mut iterator = valid.iter();
        let mut iteration = 0;
        while let Some(batch) = iterator.next() {
            iteration += 1;
            let progress = iterator.progress();
            let output = model.step(batch);
            evaluation.observe(&output);
            if !dashboard {
                continue;
            }
            pass.processor
                .process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
                    output,
                    Progress {
                        items_processed: progress.items_processed,
                        items_total: total,
                    },
                    self.global_progress(epoch),
                    Some(iteration),
                    None,
                )));
        }
        if dashboard {
            pass.processor.process_valid(LearnerEvent::EndEpoch(epoch));
        }
        evaluation.finish()
    }

    /// Between epochs: the epoch record, best-adapter selection, early stopping, the epoch
    /// checkpoint and the metric files.
    fn end_epoch(
        &self,
        pass: &mut Pass<Components<B, M, O>>,
        state: &mut TrainerState,
        dev: Vec<(String, f64)>,
        train_seconds: f64,
        eval_seconds: f64,
    ) -> Flow {
        let record = self.record(pass, state, &dev, eval_seconds);
        self.say(&format!(
            "epoch {}/{}: train loss {:.4} · dev {} · {:.0} s training, {:.0} s evaluation",
            state.epoch,
            self.options.epochs,
            record.train_loss,
            format_dev(&dev),
            train_seconds,
            eval_seconds
        ));
        self.keep_record(pass, state, record, &dev)?;
        self.advance_epoch(state);
        if let Err(e) = self.checkpoint(&pass.learner.model(), state) {
            self.fail(format!("{e:#}"));
            return ControlFlow::Break(());
        }
        self.write_reports(state);
        ControlFlow::Continue(())
    }

    /// Updates the best adapter when the selection metric improves on it, else counts an
    /// evaluation without improvement. An evaluation that could not compute the metric (a
    /// degenerate dev set) leaves both alone, with a warning.
    ///
    /// # Errors
    /// Writing `best/` failed.
    fn select(
        &self,
        model: &M,
        state: &mut TrainerState,
        dev: &[(String, f64)],
    ) -> anyhow::Result<()> {
        let key = &self.options.selection_metric;
        let Some(value) = key.value_in(dev) else {
            log::warn!("the evaluation has no metric `{key}`; the best adapter is not updated");
            return Ok(());
        };
        let improves = state
            .best
            .as_ref()
            .is_none_or(|b| self.options.selection_goal.improves(value, b.value));
        if !improves {
            state.evals_without_improvement += 1;
            return Ok(());
        }
        state.best = Some(Best {
            metric: key.clone(),
            value,
            epoch: state.epoch,
            global_step: state.global_step,
        });
        state.evals_without_improvement = 0;
        self.save_best(model)
            .with_context(|| format!("writing the best adapter to {}", self.run.best().display()))
    }

    /// Moves `state` to the next epoch; marks the run finished after the last one or when the
    /// early-stopping patience is spent.
    fn advance_epoch(&self, state: &mut TrainerState) {
        state.epoch += 1;
        state.batches_done = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_loss_count = 0;
        state.epoch_seconds = 0.0;
        state.epoch_seconds_recorded = 0.0;
        let patience_out = self
            .options
            .early_stopping_patience
            .is_some_and(|p| state.evals_without_improvement >= p);
        if patience_out {
            self.say(&format!(
                "early stopping: no improvement of dev {} in {} evaluation(s)",
                self.options.selection_metric, state.evals_without_improvement
            ));
        }
        if patience_out || state.epoch > self.options.epochs {
            state.finished = true;
        }
    }

    /// Epochs done of the run, for the dashboard.
    fn global_progress(&self, epoch: usize) -> Progress {
        Progress {
            items_processed: epoch,
            items_total: self.options.epochs,
        }
    }
}

/// `loss 0.4321 · accuracy 0.8750`.
fn format_dev(dev: &[(String, f64)]) -> String {
    let metrics: Vec<String> = dev.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    metrics.join(" · ")
}

/// Training seconds of the epoch in progress: those of earlier processes plus this one's.
struct EpochClock {
    resumed_seconds: f64,
    started: Instant,
}

/// Counts a successful step in `state`: position, loss sums, seconds, and a step record every
/// `log_every` steps.
fn record_step(state: &mut TrainerState, loss: f64, lr: f64, log_every: usize, clock: &EpochClock) {
    let step = state.global_step + 1;
    state.global_step = step;
    state.batches_done += 1;
    state.epoch_loss_sum += loss;
    state.epoch_loss_count += 1;
    state.pending_loss_sum += loss;
    state.pending_loss_count += 1;
    state.epoch_seconds = clock.resumed_seconds + clock.started.elapsed().as_secs_f64();
    if step.is_multiple_of(log_every.max(1)) {
        state.steps.push(StepRecord {
            step,
            epoch: state.epoch,
            loss: state.pending_loss_sum / state.pending_loss_count as f64,
            lr,
        });
        state.pending_loss_sum = 0.0;
        state.pending_loss_count = 0;
    }
}

/// A per-step seed: SplitMix64 of the run seed and the step.
fn mix_seed(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
