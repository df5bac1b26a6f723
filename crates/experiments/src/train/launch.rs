//! Assembling burn-train's `SupervisedTraining` around a [`Trainer`].

use std::io::IsTerminal;
use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{InferenceStep, Learner, SupervisedTraining, TrainStep, TrainingStrategy};

use super::metric_log::RunMetricLogger;
use super::optim::SharedOptimizer;
use super::renderer::QuietRenderer;
use super::run_dir::RunDir;
use super::schedule::WarmupDecay;
use super::task::TrainTask;
use super::trainer::{Outcome, Trainer};

/// The burn-train configuration type of our runs.
pub type Training<B, M, O> = SupervisedTraining<
    burn::train::LearningComponentsMarker<B, WarmupDecay, M, SharedOptimizer<O>>,
>;

/// Where progress goes (named so as not to shadow `std::fmt::Display`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressDisplay {
    /// burn-train's TUI dashboard (needs a terminal).
    Dashboard,
    /// One line every this many steps.
    Quiet(usize),
}

/// `--display`: where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DisplayChoice {
    /// The dashboard on a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// burn-train's TUI dashboard.
    Tui,
    /// One line every `--log-every` steps.
    Plain,
}

impl DisplayChoice {
    /// The display to use, printing plain lines every `log_every` steps.
    pub fn resolve(self, log_every: usize) -> ProgressDisplay {
        match self {
            Self::Auto => ProgressDisplay::auto(log_every),
            Self::Tui => ProgressDisplay::Dashboard,
            Self::Plain => ProgressDisplay::Quiet(log_every),
        }
    }
}

impl ProgressDisplay {
    /// The dashboard on a terminal, quiet lines every `every` steps otherwise.
    pub fn auto(every: usize) -> Self {
        if std::io::stdout().is_terminal() {
            Self::Dashboard
        } else {
            Self::Quiet(every)
        }
    }
}

/// Runs `trainer` through burn-train's supervised training on the task's training batches and
/// `dataloader_valid`: `register` adds the dashboard metrics; `display` chooses the TUI or
/// quiet lines. Returns the trained model (inference
/// form) and the outcome.
#[allow(clippy::too_many_arguments)]
pub fn launch<B, M, O, T>(
    trainer: Trainer<B, M, O, T>,
    model: M,
    optimizer: SharedOptimizer<O>,
    scheduler: WarmupDecay,
    run: &RunDir,
    dataloader_valid: Arc<
        dyn DataLoader<B::InnerBackend, <M::InnerModule as InferenceStep>::Input>,
    >,
    display: ProgressDisplay,
    register: impl FnOnce(Training<B, M, O>) -> Training<B, M, O>,
) -> (M::InnerModule, Outcome)
where
    B: AutodiffBackend,
    M: TrainStep + AutodiffModule<B> + core::fmt::Display + 'static,
    M::InnerModule: InferenceStep,
    O: Optimizer<M, B> + 'static,
    T: TrainTask<B, M>,
{
    let outcome = trainer.outcome();
    let epochs = trainer.options().epochs;
    let dataloader_train = trainer.first_loader();
    let logger = RunMetricLogger::new(run.root(), trainer.resume_point());
    let training = SupervisedTraining::new(run.root(), dataloader_train, dataloader_valid)
        .with_metric_logger(logger)
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(trainer)))
        .num_epochs(epochs);
    let training = register(training);
    let training = match display {
        ProgressDisplay::Dashboard => training.summary(),
        ProgressDisplay::Quiet(every) => training.renderer(QuietRenderer::new(every)),
    };
    let result = training.launch(Learner::new(model, optimizer, scheduler));
    let outcome = outcome.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (result.model, outcome)
}
