//! The scaffold of the training binaries (`glue`, `glue-sst2`, `metamath`): the flags every
//! job has, the entry point (flags → configuration → backend → report), and the part of the
//! summary every run reports.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::train::{InferenceStep, TrainStep, ValidLoader};
use clap::{ArgMatches, Args, Command};
use serde::Serialize;

use super::config::{self, given_flags, RunConfig};
use super::epoch::Components;
use super::launch::{launch, DisplayChoice, ProgressDisplay, Training};
use super::optim::SharedOptimizer;
use super::run_dir::RunDir;
use super::schedule::{DecayKind, WarmupDecay};
use super::state::TrainerState;
use super::task::TrainTask;
use super::trainer::{Outcome, Trainer, TrainerOptions};
use crate::device::{run_on, BackendJob, DeviceChoice};

/// The flags every training job has; a job's own flags struct flattens it (for clap and, so
/// the TOML keys stay flat, for serde). Each overrides the TOML file and the defaults. Where
/// the help depends on the job (its defaults), the job sets it with [`with_help`].
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct TrainArgs {
    /// TOML file with any of the keys below (flags given on the command line win).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Continue the interrupted run in this folder from its last checkpoint (flags given must
    /// match the run's config.toml). Exit status: 0 finished, 1 error, 3 interrupted before
    /// the end (continue it with --resume), 130/143 stopped by SIGINT/SIGTERM (a checkpoint
    /// is written first; a second signal exits at once).
    #[arg(long, value_name = "RUN_DIR")]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    /// Hugging Face checkpoint folder of the base model.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Folder holding the datasets [default: $BONE_DATA_ROOT, else ../shared/datasets].
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Rank (Bone, LoRA) or block size (Bat).
    #[arg(long)]
    pub r: Option<usize>,
    /// LoRA α; the update is scaled by α/r.
    #[arg(long)]
    pub lora_alpha: Option<f64>,
    /// Target modules: names or `re:<regex>` over module paths.
    #[arg(long)]
    pub targets: Option<String>,
    /// Epochs [default: 1].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate decay after warm-up.
    #[arg(long, value_enum)]
    pub schedule: Option<DecayKind>,
    /// Share of the steps used for linear warm-up.
    #[arg(long)]
    pub warmup_ratio: Option<f64>,
    /// AdamW weight decay [default: 0].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Global gradient-norm clipping, 0 to disable [default: 1].
    #[arg(long)]
    pub max_grad_norm: Option<f64>,
    /// Maximum tokens per sequence.
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Train on this many examples drawn at random with the seed.
    #[arg(long)]
    pub max_train_samples: Option<usize>,
    /// Evaluate on at most this many examples.
    #[arg(long)]
    pub max_eval_samples: Option<usize>,
    /// Seed [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Checkpoint every N optimiser steps, 0 for epoch ends only [default: 200].
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Also evaluate on the dev set (and select the best adapter) every N optimiser steps,
    /// 0 for epoch ends only [default: 0].
    #[arg(long, value_name = "N")]
    pub eval_every: Option<usize>,
    /// Log the training loss every N optimiser steps [default: 10].
    #[arg(long)]
    pub log_every: Option<usize>,
    /// Backend to run on [default: the first compiled of cuda, wgpu, ndarray].
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    /// Progress display: the TUI dashboard (needs a terminal), plain lines, or auto.
    #[arg(long, value_enum, default_value = "auto")]
    #[serde(skip)]
    pub display: DisplayChoice,
    /// Stop after N optimiser steps as an interruption would (checkpoint first); for testing
    /// `--resume`.
    #[arg(long, hide = true)]
    #[serde(skip)]
    pub stop_after_steps: Option<usize>,
    /// Build a Bone/mini adapter whose --r exceeds a targeted layer's input.
    #[arg(long)]
    #[serde(skip)]
    pub force_r: bool,
}

impl TrainArgs {
    /// How the run is driven (not part of its configuration).
    pub fn control(&self) -> RunControl {
        RunControl {
            resume: self.resume.is_some(),
            display: self.display,
            stop_after_steps: self.stop_after_steps,
            force_r: self.force_r,
        }
    }
}

/// `command` with the help of the arguments named in `help` (ids: the flags' field names)
/// replaced: a job's own wording and defaults for the shared flags of [`TrainArgs`].
///
/// # Panics
/// An id that is not an argument of `command` (a programming error the help tests catch).
pub fn with_help(command: Command, help: &[(&'static str, &'static str)]) -> Command {
    help.iter().fold(command, |command, &(id, text)| {
        command.mut_arg(id, |arg| arg.help(text).long_help(None::<&str>))
    })
}

/// How a run is driven: the flags that are not part of its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunControl {
    /// Continue the run in the configuration's run folder.
    pub resume: bool,
    /// `--display`.
    pub display: DisplayChoice,
    /// `--stop-after-steps`.
    pub stop_after_steps: Option<usize>,
    /// `--force-r`: skip the check of `r` against each layer's input.
    pub force_r: bool,
}

/// A training job the scaffold runs.
pub trait TrainJob: BackendJob + Sized {
    /// Its configuration.
    type Config: RunConfig;
    /// The job of a resolved configuration.
    fn new(config: Self::Config, control: RunControl) -> Self;
    /// Prints the final lines of a successful run.
    fn report(config: &Self::Config, output: &Self::Output);
    /// Whether the run stopped before its end (exit status [`INTERRUPTED_EXIT`]).
    fn interrupted(_output: &Self::Output) -> bool {
        false
    }
}

/// Exit status of a run interrupted before its end (`--stop-after-steps`, the TUI's quit):
/// `--resume` continues it. A run stopped by SIGINT or SIGTERM exits 130 or 143 instead.
pub const INTERRUPTED_EXIT: u8 = 3;

/// The configuration of a run: a new one from `defaults`, `--config` and the flags given
/// (`args`, the job's flags struct that flattens `train`), or the saved one of `--resume`
/// with the given flags checked against it.
///
/// # Errors
/// Invalid files, unknown keys, or (on resume) flags that differ from the saved run.
pub fn resolve<C: RunConfig, A: Serialize>(
    defaults: C,
    args: &A,
    train: &TrainArgs,
    matches: &ArgMatches,
) -> anyhow::Result<C> {
    let given = given_flags(args, matches)?;
    config::resolve(
        defaults,
        train.config.as_deref(),
        train.resume.as_deref(),
        &given,
    )
}

/// The entry point of a training binary, once its flags are parsed: resolves the
/// configuration, runs the job on the chosen backend and reports; an error is printed as
/// `error: …` with exit code 1.
pub fn main<J: TrainJob, A: Serialize>(
    defaults: J::Config,
    args: &A,
    train: &TrainArgs,
    matches: &ArgMatches,
) -> ExitCode {
    super::signal::install();
    let result = resolve(defaults, args, train, matches).and_then(|config| {
        let job = J::new(config.clone(), train.control());
        crate::device::announce_auto(config.device());
        run_on(config.device(), job).map(|output| (config, output))
    });
    match result {
        Ok((config, output)) => {
            J::report(&config, &output);
            if J::interrupted(&output) {
                // Stopped by SIGINT/SIGTERM: the shell's status of that signal (130, 143).
                let status = super::signal::received()
                    .map_or(INTERRUPTED_EXIT, |s| super::signal::exit_status(s) as u8);
                ExitCode::from(status)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The AdamW optimiser every job trains with.
pub type JobOptimizer<B, M> = OptimizerAdaptor<AdamW, M, B>;

/// How a job trains, apart from its model and data.
pub struct RunSpec<'a, C> {
    /// The resolved configuration (saved as `config.toml`, fingerprinted for `--resume`).
    pub config: &'a C,
    /// The run folder.
    pub out: PathBuf,
    /// `--resume`, `--display`, `--stop-after-steps`.
    pub control: RunControl,
    /// Peak learning rate, warm-up share and decay, and AdamW's weight decay.
    pub schedule: Schedule,
    /// The trainer's options; `stop_after_steps` and `print_summaries` are set from
    /// `control`.
    pub options: TrainerOptions,
    /// `--log-every`: quiet progress lines every this many steps.
    pub log_every: usize,
}

/// The learning-rate schedule and the optimiser's weight decay.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Peak learning rate.
    pub lr: f64,
    /// Share of the steps spent warming up.
    pub warmup_ratio: f64,
    /// Decay after warm-up.
    pub decay: DecayKind,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
}

/// Trains `model` on `task` as `spec` says, evaluating on `valid`: opens the run folder
/// ([`Trainer::start`]: new, or resumed from its checkpoint), calls `plan` with the folder,
/// the display and the run's total steps (the job prints what it will do), runs burn-train
/// with the metrics `register` adds, and returns the folder, the summary and the final state.
///
/// # Errors
/// The run folder's checks, or a failed run (a non-finite loss, a checkpoint that could not
/// be written).
pub fn fit<B, M, T, C>(
    spec: RunSpec<'_, C>,
    task: Arc<T>,
    model: M,
    valid: ValidLoader<Components<B, M, JobOptimizer<B, M>>>,
    device: &B::Device,
    plan: impl FnOnce(&RunDir, ProgressDisplay, usize),
    register: impl FnOnce(Training<B, M, JobOptimizer<B, M>>) -> Training<B, M, JobOptimizer<B, M>>,
) -> anyhow::Result<(RunDir, RunSummary, TrainerState)>
where
    B: AutodiffBackend,
    M: TrainStep + AutodiffModule<B> + core::fmt::Display + 'static,
    M::InnerModule: InferenceStep,
    T: TrainTask<B, M>,
    C: RunConfig,
{
    let total_steps = spec.options.epochs * task.batches_per_epoch();
    let optimizer = SharedOptimizer::new(
        AdamWConfig::new()
            .with_weight_decay(spec.schedule.weight_decay as f32)
            .with_epsilon(1e-8)
            .init::<B, M>(),
    );
    let (run, model, state) = Trainer::start(
        task.as_ref(),
        spec.config,
        &spec.out,
        spec.control.resume,
        model,
        &optimizer,
        total_steps,
        device,
    )?;
    let schedule = spec.schedule;
    let scheduler = WarmupDecay::new(
        schedule.lr,
        WarmupDecay::warmup_from_ratio(schedule.warmup_ratio, total_steps),
        total_steps,
        schedule.decay,
    )
    .at_step(state.global_step);
    let display = spec.control.display.resolve(spec.log_every);
    let options = TrainerOptions {
        stop_after_steps: spec.control.stop_after_steps,
        print_summaries: matches!(display, ProgressDisplay::Quiet(_)),
        ..spec.options
    };
    plan(&run, display, total_steps);
    let trainer = Trainer::new(task, optimizer.clone(), run.clone(), options, state);
    let (_model, outcome) = launch(
        trainer, model, optimizer, scheduler, &run, valid, display, register,
    );
    let (summary, state) = RunSummary::of(outcome, &run)?;
    Ok((run, summary, state))
}

/// What every run reports in its `summary.json` (flattened into the job's summary).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Optimiser steps done.
    pub steps: usize,
    /// The dev metrics of the last evaluation.
    pub last_dev: Vec<(String, f64)>,
    /// Seconds of training (evaluations excluded), this process and earlier ones.
    pub train_seconds: f64,
    /// Peak resident memory of the process, bytes (Linux `VmHWM`, host memory only; 0
    /// elsewhere).
    pub peak_memory_bytes: u64,
    /// The run folder.
    pub run_dir: PathBuf,
    /// The best adapter (PEFT folder), head or model.
    pub best_dir: PathBuf,
    /// Whether training was interrupted before the end.
    pub interrupted: bool,
}

impl RunSummary {
    /// The summary of a run that returned `outcome`, and its final state.
    ///
    /// # Errors
    /// The run failed (a non-finite loss, a checkpoint that could not be written): its
    /// message.
    pub fn of(outcome: Outcome, run: &RunDir) -> anyhow::Result<(Self, TrainerState)> {
        if let Some(error) = outcome.error {
            anyhow::bail!("{error}");
        }
        let state = outcome
            .state
            .context("training ended without a final state")?;
        let summary = Self {
            steps: state.global_step,
            last_dev: state
                .history
                .last()
                .map(|e| e.dev.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default(),
            train_seconds: state.history.iter().map(|e| e.train_seconds).sum::<f64>()
                + state.epoch_seconds,
            peak_memory_bytes: peak_memory_bytes(),
            run_dir: run.root().to_path_buf(),
            best_dir: run.best(),
            interrupted: outcome.interrupted,
        };
        Ok((summary, state))
    }
}

/// Writes `summary` as `<run>/summary.json`, atomically.
///
/// # Errors
/// An I/O error.
pub fn write_summary<S: Serialize>(run: &RunDir, summary: &S) -> anyhow::Result<()> {
    bone_io::fs::write_atomic(
        &run.summary_json(),
        serde_json::to_string_pretty(summary)?.as_bytes(),
    )?;
    Ok(())
}

/// Peak resident set size of this process (`VmHWM`), in bytes; 0 where unknown.
pub fn peak_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Where the default model was looked for and how to download it (appended to "no such
/// folder" errors).
pub fn default_hint(model: &models::hub::DefaultModel) -> String {
    match model.find_here() {
        Ok(found) => format!("(the {} is at {})", found.model.what, found.path.display()),
        Err(e) => e.to_string(),
    }
}

/// Checks the optimiser and thread flags every job shares: `--max-grad-norm` finite and ≥ 0
/// (0 disables clipping), `--weight-decay` finite and ≥ 0, `--threads` positive and at most
/// four per core.
///
/// # Errors
/// The first bad value, naming its flag and what is expected.
pub fn check_shared_flags(
    max_grad_norm: f64,
    weight_decay: f64,
    threads: Option<usize>,
) -> anyhow::Result<()> {
    if threads == Some(0) {
        anyhow::bail!("--threads 0: expected a positive number");
    }
    if !(max_grad_norm.is_finite() && max_grad_norm >= 0.0) {
        anyhow::bail!(
            "--max-grad-norm {max_grad_norm}: expected a finite number ≥ 0 (0 disables clipping)"
        );
    }
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        anyhow::bail!("--weight-decay {weight_decay}: expected a finite number ≥ 0");
    }
    if let Some(threads) = threads {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads > cores * 4 {
            anyhow::bail!(
                "--threads {threads}: expected at most {} (4 per core, {cores} cores)",
                cores * 4
            );
        }
    }
    Ok(())
}

/// Checks `--mini-r` against `--method` (shared by the GLUE and MetaMath jobs): `mini` needs a
/// positive `--mini-r`, other methods take none. Whether it divides each layer's out features
/// is checked when the adapters are built, naming the layer.
///
/// # Errors
/// A missing or zero `--mini-r` with `--method mini`, or one given with another method.
pub fn check_mini_r(is_mini: bool, mini_r: Option<usize>) -> anyhow::Result<()> {
    match (is_mini, mini_r) {
        (true, None) => anyhow::bail!("--method mini needs --mini-r N (the block width)"),
        (true, Some(0)) => anyhow::bail!("--mini-r 0: expected a positive block width"),
        (false, Some(n)) => anyhow::bail!("--mini-r {n}: applies to --method mini only"),
        _ => Ok(()),
    }
}
