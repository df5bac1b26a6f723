//! The resumable epoch loop, plugged into burn-train as a custom learning strategy.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use burn::data::dataloader::Progress;
use burn::lr_scheduler::LrScheduler;
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::{
    EventProcessorTraining, InferenceStep, Learner, LearnerEvent, LearningComponentsMarker,
    SupervisedLearningStrategy, SupervisedTrainingEventProcessor, TrainLoader, TrainStep,
    TrainingComponents, TrainingItem, ValidLoader,
};

use super::checkpoint::{CheckpointStore, OPTIMIZER_FILE, TRAINABLE_DIR};
use super::optim::{clip_global_norm, SharedOptimizer};
use super::report::{write_metrics, write_plot};
use super::run_dir::RunDir;
use super::schedule::WarmupDecay;
use super::state::{Best, EpochRecord, StepRecord, TrainerState};
use super::task::{MetricGoal, TrainTask};

/// How the trainer runs.
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// Epochs in the run.
    pub epochs: usize,
    /// Write a checkpoint every this many optimiser steps (0: only at the end of epochs).
    pub checkpoint_every: usize,
    /// Checkpoints to keep.
    pub keep_checkpoints: usize,
    /// Record the mean loss every this many steps (metrics.json and the curves).
    pub log_every: usize,
    /// Seed of the run; each step reseeds the backend from it, so dropout masks depend only on
    /// the step and a resumed run draws the same ones.
    pub seed: u64,
    /// Clip the global gradient norm to this value.
    pub max_grad_norm: Option<f64>,
    /// The dev metric that selects the best adapter, and its direction.
    pub selection_metric: String,
    /// See `selection_metric`.
    pub selection_goal: MetricGoal,
    /// Stop after this many evaluations without improvement.
    pub early_stopping_patience: Option<usize>,
    /// Stop (with a checkpoint, as an interruption would) after this many optimiser steps in
    /// this process; used to test resuming.
    pub stop_after_steps: Option<usize>,
    /// Print epoch summaries to stdout (off while the TUI owns the terminal).
    pub print_summaries: bool,
}

/// How a run ended, for the binary to report.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The state at the end (also written to the last checkpoint).
    pub state: Option<TrainerState>,
    /// Why training stopped early, when it failed (a non-finite loss).
    pub error: Option<String>,
    /// Whether training was interrupted (TUI `q` then `s`, or `stop_after_steps`); resume continues it.
    pub interrupted: bool,
    /// The newest checkpoint written.
    pub last_checkpoint: Option<PathBuf>,
}

/// burn-train learning strategy with step checkpoints, exact resume, NaN stop, global-norm
/// clipping, task metrics and best-adapter selection. Build it with [`Trainer::new`], restore
/// a checkpoint with [`Trainer::restore`] when resuming, and pass it to
/// `SupervisedTraining::with_training_strategy(TrainingStrategy::Custom(..))`.
pub struct Trainer<B, M, O, T> {
    task: Arc<T>,
    optimizer: SharedOptimizer<O>,
    run: RunDir,
    store: CheckpointStore,
    options: TrainerOptions,
    start: Mutex<TrainerState>,
    outcome: Arc<Mutex<Outcome>>,
    _types: PhantomData<fn() -> (B, M)>,
}

impl<B, M, O, T> Trainer<B, M, O, T>
where
    B: AutodiffBackend,
    M: TrainStep + AutodiffModule<B> + core::fmt::Display + 'static,
    M::InnerModule: InferenceStep,
    O: Optimizer<M, B> + 'static,
    T: TrainTask<B, M>,
{
    /// A trainer starting from `state` (fresh, or restored by [`restore`](Self::restore)).
    pub fn new(
        task: Arc<T>,
        optimizer: SharedOptimizer<O>,
        run: RunDir,
        options: TrainerOptions,
        state: TrainerState,
    ) -> Self {
        let store = CheckpointStore::new(run.checkpoints(), options.keep_checkpoints);
        Self {
            task,
            optimizer,
            run,
            store,
            options,
            start: Mutex::new(state),
            outcome: Arc::new(Mutex::new(Outcome::default())),
            _types: PhantomData,
        }
    }

    /// Loads the newest checkpoint of `run`: the trainable tensors into `model`, the optimiser
    /// state into `optimizer`. Returns the model and the trainer state to continue from.
    ///
    /// # Errors
    /// No checkpoint yet, a checkpoint of another configuration (`fingerprint` differs), or
    /// unreadable files; each names the path.
    pub fn restore(
        task: &T,
        run: &RunDir,
        model: M,
        optimizer: &SharedOptimizer<O>,
        fingerprint: &str,
        device: &B::Device,
    ) -> anyhow::Result<(M, TrainerState)> {
        let store = CheckpointStore::new(run.checkpoints(), 1);
        let (path, state) = store.latest()?.with_context(|| {
            format!(
                "--resume {}: the run has no checkpoint yet (nothing to resume; start it again without --resume)",
                run.root().display()
            )
        })?;
        if state.fingerprint != fingerprint {
            anyhow::bail!(
                "--resume {}: checkpoint {} was written by a run with other settings \
                 (fingerprint {} ≠ {}); the flags must match the run's config.toml",
                run.root().display(),
                path.display(),
                state.fingerprint,
                fingerprint
            );
        }
        let model = task
            .load_trainable(model, &path.join(TRAINABLE_DIR))
            .with_context(|| format!("loading the trainable tensors of {}", path.display()))?;
        let record = NamedMpkFileRecorder::<FullPrecisionSettings>::new()
            .load(path.join(OPTIMIZER_FILE), device)
            .with_context(|| format!("loading the optimiser state of {}", path.display()))?;
        {
            let mut guard = optimizer.lock();
            let current = guard.clone();
            *guard = current.load_record(record);
        }
        Ok((model, state))
    }

    /// The options the trainer runs with.
    pub fn options(&self) -> &TrainerOptions {
        &self.options
    }

    /// Opens the run folder: for a new run, creates it and writes `config` as `config.toml`
    /// (with `out` as its run folder); for `resume`, restores the newest checkpoint into
    /// `model` and `optimizer`. Returns the run folder, the model and the state to start from.
    ///
    /// # Errors
    /// A folder that already holds a run (new run), or (resume) a missing folder or
    /// checkpoint, another configuration's checkpoint, or a run that already finished.
    #[allow(clippy::too_many_arguments)]
    pub fn start<C: super::config::RunConfig>(
        task: &T,
        config: &C,
        out: &Path,
        resume: bool,
        model: M,
        optimizer: &SharedOptimizer<O>,
        total_steps: usize,
        device: &B::Device,
    ) -> anyhow::Result<(RunDir, M, TrainerState)> {
        let fingerprint = super::config::fingerprint(config);
        if resume {
            let run = RunDir::open(out)?;
            let (model, state) = Self::restore(task, &run, model, optimizer, &fingerprint, device)?;
            if state.finished {
                anyhow::bail!(
                    "--resume {}: the run already finished ({} steps); its adapter is in {}",
                    out.display(),
                    state.global_step,
                    run.best().display()
                );
            }
            Ok((run, model, state))
        } else {
            let run = RunDir::create(out)?;
            let mut saved = config.clone();
            saved.set_out(out.to_path_buf());
            super::config::save(&saved, &run.config_path())?;
            Ok((run, model, TrainerState::new(fingerprint, total_steps)))
        }
    }

    /// A handle on the outcome, filled in when training returns.
    pub fn outcome(&self) -> Arc<Mutex<Outcome>> {
        Arc::clone(&self.outcome)
    }

    fn checkpoint(&self, model: &M, state: &TrainerState) -> anyhow::Result<PathBuf> {
        let path = self.store.save(state, |dir| {
            self.task.save_trainable(model, &dir.join(TRAINABLE_DIR))?;
            let record = <O as Optimizer<M, B>>::to_record(&*self.optimizer.lock());
            NamedMpkFileRecorder::<FullPrecisionSettings>::new()
                .record(record, dir.join(OPTIMIZER_FILE))
                .context("writing the optimiser state")?;
            Ok(())
        })?;
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_checkpoint = Some(path.clone());
        Ok(path)
    }

    /// Writes the best adapter into `best/`, replacing the previous one only once complete.
    fn save_best(&self, model: &M) -> anyhow::Result<()> {
        let best = self.run.best();
        let tmp = self.run.root().join(".best.tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        self.task.save_trainable(model, &tmp)?;
        let old = self.run.root().join(".best.old");
        if best.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old)?;
            }
            std::fs::rename(&best, &old)?;
        }
        std::fs::rename(&tmp, &best)?;
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        Ok(())
    }

    fn say(&self, line: &str) {
        log::info!("{line}");
        if self.options.print_summaries {
            println!("{line}");
        }
    }

    fn fail(&self, message: String) {
        log::error!("{message}");
        self.outcome.lock().unwrap_or_else(|p| p.into_inner()).error = Some(message);
    }
}

type Components<B, M, O> = LearningComponentsMarker<B, WarmupDecay, M, SharedOptimizer<O>>;

impl<B, M, O, T> SupervisedLearningStrategy<Components<B, M, O>> for Trainer<B, M, O, T>
where
    B: AutodiffBackend,
    M: TrainStep + AutodiffModule<B> + core::fmt::Display + 'static,
    M::InnerModule: InferenceStep,
    O: Optimizer<M, B> + 'static,
    T: TrainTask<B, M>,
    WarmupDecay: LrScheduler,
{
    fn fit(
        &self,
        components: TrainingComponents<Components<B, M, O>>,
        mut learner: Learner<Components<B, M, O>>,
        _dataloader_train: TrainLoader<Components<B, M, O>>,
        dataloader_valid: ValidLoader<Components<B, M, O>>,
        _starting_epoch: usize,
    ) -> (M, SupervisedTrainingEventProcessor<Components<B, M, O>>) {
        let mut processor = components.event_processor;
        let interrupter = components.interrupter;
        let mut state = self.start.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let device = learner.model().devices()[0].clone();
        let options = &self.options;
        let batches = self.task.batches_per_epoch().max(1);
        let items = self.task.train_items();
        let per_batch = items.div_ceil(batches);
        let mut steps_this_process = 0usize;

        'epochs: while !state.finished && state.epoch <= options.epochs {
            let epoch = state.epoch;
            let global = Progress {
                items_processed: epoch,
                items_total: options.epochs,
            };
            let loader = self.task.train_loader(epoch, state.batches_done);
            let resumed_seconds = state.epoch_seconds;
            let started = Instant::now();
            let mut iteration = state.batches_done;
            let mut saved_at = None;
            for batch in loader.iter() {
                iteration += 1;
                let step = state.global_step + 1;
                B::seed(&device, mix_seed(options.seed, step as u64));
                learner.lr_step();
                let output = learner.train_step(batch);
                let loss = self.task.loss_value(&output.item);
                if !loss.is_finite() {
                    let last = self
                        .outcome
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .last_checkpoint
                        .clone()
                        .or_else(|| self.store.latest().ok().flatten().map(|(p, _)| p));
                    let kept = match last {
                        Some(p) => format!(
                            "the last good checkpoint is {}; `--resume {}` continues from it (lower --lr first)",
                            p.display(),
                            self.run.root().display()
                        ),
                        None => "no checkpoint was written before it".to_string(),
                    };
                    self.fail(format!(
                        "training stopped: the loss is {loss} at step {step} (epoch {epoch}, batch {iteration}); \
                         the update was not applied and {kept}"
                    ));
                    interrupter.stop(Some("non-finite loss"));
                    break 'epochs;
                }
                let grads = match options.max_grad_norm {
                    Some(max) => clip_global_norm(&learner.model(), output.grads, max).0,
                    None => output.grads,
                };
                learner.optimizer_step(grads);
                let lr = learner.lr_current();

                state.global_step = step;
                state.batches_done = iteration;
                state.epoch_loss_sum += loss;
                state.epoch_loss_count += 1;
                state.pending_loss_sum += loss;
                state.pending_loss_count += 1;
                state.epoch_seconds = resumed_seconds + started.elapsed().as_secs_f64();
                if step.is_multiple_of(options.log_every.max(1)) {
                    state.steps.push(StepRecord {
                        step,
                        epoch,
                        loss: state.pending_loss_sum / state.pending_loss_count as f64,
                        lr,
                    });
                    state.pending_loss_sum = 0.0;
                    state.pending_loss_count = 0;
                }
                let progress = Progress {
                    items_processed: (iteration * per_batch).min(items),
                    items_total: items,
                };
                processor.process_train(LearnerEvent::ProcessedItem(TrainingItem::new(
                    output.item,
                    progress,
                    global.clone(),
                    Some(iteration),
                    Some(lr),
                )));
                steps_this_process += 1;

                let stop_requested = options.stop_after_steps == Some(steps_this_process);
                if stop_requested {
                    interrupter.stop(Some("--stop-after-steps reached"));
                }
                let periodic = options.checkpoint_every > 0
                    && step.is_multiple_of(options.checkpoint_every)
                    && iteration < batches;
                if periodic || interrupter.should_stop() {
                    match self.checkpoint(&learner.model(), &state) {
                        Ok(path) => saved_at = Some(path),
                        Err(e) => {
                            self.fail(format!("{e:#}"));
                            interrupter.stop(Some("checkpoint failed"));
                            break 'epochs;
                        }
                    }
                }
                if interrupter.should_stop() {
                    let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
                    outcome.interrupted = true;
                    drop(outcome);
                    self.say(&format!(
                        "interrupted at step {step} (epoch {epoch}, batch {iteration}/{batches}); checkpoint {}; \
                         continue with `--resume {}`",
                        saved_at.as_deref().map_or("none".into(), |p: &Path| p.display().to_string()),
                        self.run.root().display()
                    ));
                    break 'epochs;
                }
            }
            processor.process_train(LearnerEvent::EndEpoch(epoch));
            let train_seconds = state.epoch_seconds;

            // Evaluation on the dev set, with the task's metrics.
            let eval_started = Instant::now();
            let model = learner.model().valid();
            let mut evaluation = self.task.new_evaluation();
            let total_valid = dataloader_valid.num_items();
            let mut valid_iterator = dataloader_valid.iter();
            let mut valid_iteration = 0;
            while let Some(batch) = valid_iterator.next() {
                valid_iteration += 1;
                let progress = valid_iterator.progress();
                let output = model.step(batch);
                evaluation.observe(&output);
                processor.process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
                    output,
                    Progress {
                        items_processed: progress.items_processed,
                        items_total: total_valid,
                    },
                    global.clone(),
                    Some(valid_iteration),
                    None,
                )));
            }
            processor.process_valid(LearnerEvent::EndEpoch(epoch));
            let dev: Vec<(String, f64)> = evaluation.finish();
            let eval_seconds = eval_started.elapsed().as_secs_f64();

            let record = EpochRecord {
                epoch,
                global_step: state.global_step,
                train_loss: state.epoch_loss_sum / state.epoch_loss_count.max(1) as f64,
                lr: learner.lr_current(),
                dev: dev.iter().cloned().collect(),
                train_seconds,
                eval_seconds,
            };
            let metrics_line: Vec<String> =
                dev.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            self.say(&format!(
                "epoch {epoch}/{}: train loss {:.4} · dev {} · {:.0} s training, {:.0} s evaluation",
                options.epochs,
                record.train_loss,
                metrics_line.join(" · "),
                train_seconds,
                eval_seconds
            ));
            state.history.push(record);

            let selected = dev
                .iter()
                .find(|(k, _)| *k == options.selection_metric)
                .map(|(_, v)| *v);
            match selected {
                Some(value)
                    if state
                        .best
                        .as_ref()
                        .is_none_or(|b| options.selection_goal.improves(value, b.value)) =>
                {
                    state.best = Some(Best {
                        metric: options.selection_metric.clone(),
                        value,
                        epoch,
                        global_step: state.global_step,
                    });
                    state.evals_without_improvement = 0;
                    if let Err(e) = self.save_best(&learner.model()) {
                        self.fail(format!(
                            "writing the best adapter to {}: {e:#}",
                            self.run.best().display()
                        ));
                        break 'epochs;
                    }
                }
                Some(_) => state.evals_without_improvement += 1,
                None => log::warn!(
                    "the evaluation has no metric `{}`; the best adapter is not updated",
                    options.selection_metric
                ),
            }

            state.epoch += 1;
            state.batches_done = 0;
            state.epoch_loss_sum = 0.0;
            state.epoch_loss_count = 0;
            state.epoch_seconds = 0.0;
            let patience_out = options
                .early_stopping_patience
                .is_some_and(|p| state.evals_without_improvement >= p);
            if patience_out {
                self.say(&format!(
                    "early stopping: no improvement of dev {} in {} evaluation(s)",
                    options.selection_metric, state.evals_without_improvement
                ));
            }
            if patience_out || state.epoch > options.epochs {
                state.finished = true;
            }
            if let Err(e) = self.checkpoint(&learner.model(), &state) {
                self.fail(format!("{e:#}"));
                break 'epochs;
            }
            if let Err(e) =
                write_metrics(&self.run, &state).and_then(|_| write_plot(&self.run, &state))
            {
                log::warn!(
                    "writing the metrics of {}: {e:#}",
                    self.run.root().display()
                );
            }
        }

        self.outcome.lock().unwrap_or_else(|p| p.into_inner()).state = Some(state);
        (learner.model(), processor)
    }
}

/// A per-step seed: SplitMix64 of the run seed and the step.
fn mix_seed(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
