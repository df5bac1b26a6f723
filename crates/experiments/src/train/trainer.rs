//! The resumable trainer, plugged into burn-train as a custom learning strategy: options,
//! starting and restoring runs, checkpoints and the best adapter; the epoch itself is in
//! `epoch.rs`.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use burn::lr_scheduler::LrScheduler;
use burn::module::AutodiffModule;
use burn::module::{ModuleVisitor, Param};
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use burn::train::{
    InferenceStep, Learner, SupervisedLearningStrategy, SupervisedTrainingEventProcessor,
    TrainLoader, TrainStep, TrainingComponents, ValidLoader,
};

use super::checkpoint::{write_synced, CheckpointStore, OPTIMIZER_FILE, TRAINABLE_DIR};
use super::epoch::{Components, Pass};
use super::lock::RunLock;
use super::metric_log::{trim_logs, ResumePoint};
use super::optim::SharedOptimizer;
use super::resume::{check_run_folder, resumable};
use super::run_dir::RunDir;
use super::schedule::WarmupDecay;
use super::state::TrainerState;
use super::task::{MetricGoal, MetricKey, TrainTask};

/// How the trainer runs.
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// Epochs in the run.
    pub epochs: usize,
    /// Write a checkpoint every this many optimiser steps (0: only at the end of epochs).
    pub checkpoint_every: usize,
    /// Also evaluate, select and record a dev point every this many optimiser steps (0: only
    /// at the end of epochs).
    pub eval_every: usize,
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
    pub selection_metric: MetricKey,
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
    pub(super) task: Arc<T>,
    optimizer: SharedOptimizer<O>,
    pub(super) run: RunDir,
    pub(super) store: CheckpointStore,
    pub(super) options: TrainerOptions,
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
        let found = resumable(run, fingerprint)?;
        for skipped in &found.skipped {
            eprintln!("warning: skipping checkpoint {skipped}");
        }
        if !found.skipped.is_empty() {
            eprintln!(
                "warning: resuming from checkpoint {} (step {})",
                found.path.display(),
                found.state.global_step
            );
        }
        let (path, state) = (found.path, found.state);
        let model = task
            .load_trainable(model, &path.join(TRAINABLE_DIR))
            .with_context(|| format!("loading the trainable tensors of {}", path.display()))?;
        let record = load_optimizer_record::<B, M, O>(&path, device)?;
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
        // Refuse a missing folder or (new run) a foreign one before creating the lock file in
        // it; check in full holding the lock (another process may have changed it meanwhile).
        if resume {
            RunDir::open(out)?;
        } else {
            RunDir::check_new(out)?;
        }
        let lock = RunLock::acquire(out)?;
        check_run_folder(out, resume, &fingerprint)?;
        if resume {
            let run = RunDir::open(out)?.with_lock(lock);
            super::inputs::verify(&run, &task.input_files())?;
            run.remove_stale_temps();
            let (model, state) = Self::restore(task, &run, model, optimizer, &fingerprint, device)?;
            trim_logs(run.root(), ResumePoint::of(&state))?;
            Ok((run, model, state))
        } else {
            let run = RunDir::create(out)?.with_lock(lock);
            run.remove_stale_temps();
            let mut saved = config.clone();
            saved.set_out(out.to_path_buf());
            super::config::save(&saved, &run.config_path())?;
            super::inputs::record(&run, &task.input_files())?;
            let state = TrainerState::new(fingerprint, total_steps);
            // A restarted folder's dead run may have left logs.
            trim_logs(run.root(), ResumePoint::of(&state))?;
            Ok((run, model, state))
        }
    }

    /// The batches left of the epoch the starting state is in (what [`launch`](super::launch)
    /// gives burn-train as its training loader).
    pub fn first_loader(&self) -> TrainLoader<Components<B, M, O>> {
        let state = self.start.lock().unwrap_or_else(|p| p.into_inner());
        self.task.train_loader(state.epoch, state.batches_done)
    }

    /// Where this process starts in the run (for the metric logs).
    pub fn resume_point(&self) -> ResumePoint {
        ResumePoint::of(&self.start.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A handle on the outcome, filled in when training returns.
    pub fn outcome(&self) -> Arc<Mutex<Outcome>> {
        Arc::clone(&self.outcome)
    }

    pub(super) fn checkpoint(&self, model: &M, state: &TrainerState) -> anyhow::Result<PathBuf> {
        let path = self.store.save(state, |dir| {
            self.task.save_trainable(model, &dir.join(TRAINABLE_DIR))?;
            let record = <O as Optimizer<M, B>>::to_record(&*self.optimizer.lock());
            // Serialised in memory and written with std I/O, so a full disk or a failing
            // write reports the OS error ("No space left on device"), naming the file.
            let bytes = Recorder::<B>::record(
                &NamedMpkBytesRecorder::<FullPrecisionSettings>::new(),
                record,
                (),
            )
            .context("serialising the optimiser state")?;
            write_synced(&dir.join(optimizer_file_name()), &bytes)
        })?;
        self.lock_outcome().last_checkpoint = Some(path.clone());
        Ok(path)
    }

    /// Writes the best adapter into `best/`, replacing the previous one only once complete.
    ///
    /// # Errors
    /// A model with a non-finite value (a diverged update: never the best adapter), or an
    /// I/O error.
    pub(super) fn save_best(&self, model: &M) -> anyhow::Result<()> {
        if let Some(bad) = first_non_finite(model) {
            anyhow::bail!(
                "the model holds non-finite values ({bad}); it diverged and is not saved as the \
                 best adapter"
            );
        }
        let best = self.run.best();
        let pid = std::process::id();
        let tmp = self.run.root().join(format!(".best.tmp-{pid}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        self.task.save_trainable(model, &tmp)?;
        let old = self.run.root().join(format!(".best.old-{pid}"));
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

    pub(super) fn say(&self, line: &str) {
        log::info!("{line}");
        if self.options.print_summaries {
            println!("{line}");
        }
    }

    pub(super) fn fail(&self, message: String) {
        log::error!("{message}");
        self.lock_outcome().error = Some(message);
    }

    pub(super) fn lock_outcome(&self) -> std::sync::MutexGuard<'_, Outcome> {
        self.outcome.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<B, M, O, T> SupervisedLearningStrategy<Components<B, M, O>> for Trainer<B, M, O, T>
where
    B: AutodiffBackend,
    M: TrainStep + AutodiffModule<B> + core::fmt::Display + 'static,
    M::InnerModule: InferenceStep,
    O: Optimizer<M, B> + 'static,
    T: TrainTask<B, M>,
    WarmupDecay: LrScheduler,
{
    /// The epoch loop. `dataloader_train` is the first epoch's (what [`launch`] passes:
    /// the batches left of the epoch the state is in); later epochs draw their own order from
    /// the task. burn-train's `starting_epoch` is always 1 (no burn-train checkpointer is
    /// configured): the trainer state, not burn-train, knows where a resumed run stands.
    ///
    /// [`launch`]: super::launch
    fn fit(
        &self,
        components: TrainingComponents<Components<B, M, O>>,
        learner: Learner<Components<B, M, O>>,
        dataloader_train: TrainLoader<Components<B, M, O>>,
        dataloader_valid: ValidLoader<Components<B, M, O>>,
        _starting_epoch: usize,
    ) -> (M, SupervisedTrainingEventProcessor<Components<B, M, O>>) {
        let mut state = self.start.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut pass = Pass {
            learner,
            processor: components.event_processor,
            interrupter: components.interrupter,
            steps_this_process: 0,
        };
        let mut loader = Some(dataloader_train);
        if state.finished {
            // Killed after the final checkpoint, before the metric files: write them now.
            self.say(&format!(
                "the run finished ({} steps) but was stopped before writing its outputs; \
                 writing them",
                state.global_step
            ));
            if let Err(e) = super::report::write_metrics(&self.run, &state)
                .and_then(|_| super::report::write_plot(&self.run, &state))
            {
                self.fail(format!("{e:#}"));
            }
        }
        while !state.finished && state.epoch <= self.options.epochs {
            let epoch_loader = loader
                .take()
                .unwrap_or_else(|| self.task.train_loader(state.epoch, state.batches_done));
            let flow = self.run_epoch(&mut pass, &mut state, epoch_loader, &dataloader_valid);
            if flow.is_break() {
                break;
            }
            // A signal during the evaluation: the epoch checkpoint just written is where the
            // run stands.
            if let Some(signal) = super::signal::received().filter(|_| !state.finished) {
                self.lock_outcome().interrupted = true;
                self.say(&format!(
                    "{} after epoch {}: continue with `--resume {}`",
                    super::signal::name(signal),
                    state.epoch - 1,
                    self.run.root().display()
                ));
                break;
            }
        }
        self.lock_outcome().state = Some(state);
        (pass.learner.model(), pass.processor)
    }
}

/// `optimizer.mpk`: the file Burn's named MessagePack recorder writes for [`OPTIMIZER_FILE`].
fn optimizer_file_name() -> String {
    format!("{OPTIMIZER_FILE}.mpk")
}

/// The optimiser record of the checkpoint in `dir`.
///
/// # Errors
/// A missing file (naming it), an I/O error, or a truncated or corrupt file (naming it).
fn load_optimizer_record<B, M, O>(dir: &Path, device: &B::Device) -> anyhow::Result<O::Record>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let file = dir.join(optimizer_file_name());
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("the optimiser state {} is missing", file.display())
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    Recorder::<B>::load(
        &NamedMpkBytesRecorder::<FullPrecisionSettings>::new(),
        bytes,
        device,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "the optimiser state {} is truncated or corrupt ({} bytes): {e}",
            file.display(),
            std::fs::metadata(&file).map_or(0, |m| m.len())
        )
    })
}

/// The first parameter of `model` holding a NaN or an infinity: its id and shape.
pub fn first_non_finite<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M) -> Option<String> {
    struct Finite {
        bad: Option<String>,
    }
    impl<B: burn::tensor::backend::Backend> ModuleVisitor<B> for Finite {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if self.bad.is_some() {
                return;
            }
            let value = param.val();
            let count = value.shape().num_elements();
            let finite = value.clone().is_finite().int().sum().into_scalar();
            if burn::tensor::ElementConversion::elem::<i64>(finite) != count as i64 {
                self.bad = Some(format!(
                    "parameter {} of shape {:?}",
                    param.id,
                    value.dims()
                ));
            }
        }
    }
    let mut visitor = Finite { bad: None };
    model.visit(&mut visitor);
    visitor.bad
}
