//! Running a GLUE fine-tuning job end to end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::transform::ShuffledDataset;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::optim::AdamWConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{AccuracyMetric, IterationSpeedMetric, LearningRateMetric, LossMetric};
use data::batcher::{ClassificationBatcher, ClassificationBatcherConfig};
use data::glue::{GlueExample, GlueSplit, GlueTask};
use data::{load_tokenizer, DataRoot, LoadOptions};
use models::targets::{all_block_linears, parse_targets};
use models::{ClassifierOptions, SequenceClassificationModel};
use serde::Serialize;

use super::config::{GlueConfig, Method};
use super::model::GlueModel;
use super::task::{GlueTrainTask, ADAPTER_NAME, HEAD_FILE};
use crate::device::BackendJob;
use crate::train::{
    default_step_threads, launch, with_stable_param_ids, Display, DisplayChoice, MetricGoal,
    SharedOptimizer, Trainer, TrainerOptions, WarmupDecay,
};

/// What a finished (or interrupted) run reports; also written to `<run>/summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct GlueSummary {
    /// The task.
    pub task: String,
    /// The method.
    pub method: String,
    /// The backend that ran.
    pub backend: String,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// All parameters of the model.
    pub total_params: usize,
    /// Training examples per epoch.
    pub train_examples: usize,
    /// Dev examples.
    pub dev_examples: usize,
    /// Optimiser steps done.
    pub steps: usize,
    /// The task's main metric, its best value and the epoch that reached it.
    pub best_metric: Option<(String, f64, usize)>,
    /// The dev metrics of the last evaluation.
    pub last_dev: Vec<(String, f64)>,
    /// Seconds of training (evaluations excluded), this process and earlier ones.
    pub train_seconds: f64,
    /// Median seconds per optimiser step.
    pub seconds_per_step: f64,
    /// Peak resident memory of the process, bytes (Linux; 0 elsewhere).
    pub peak_memory_bytes: u64,
    /// The run folder.
    pub run_dir: PathBuf,
    /// The best adapter (PEFT folder), head or model.
    pub best_dir: PathBuf,
    /// Whether training was interrupted before the end.
    pub interrupted: bool,
}

/// A GLUE run on some backend.
pub struct GlueJob {
    /// The resolved configuration.
    pub config: GlueConfig,
    /// Continue the run in `config.out`.
    pub resume: bool,
    /// `--display`.
    pub display: DisplayChoice,
    /// `--stop-after-steps`.
    pub stop_after_steps: Option<usize>,
}

impl BackendJob for GlueJob {
    type Output = GlueSummary;

    fn run<B: AutodiffBackend>(
        self,
        device: B::Device,
        backend: &'static str,
    ) -> anyhow::Result<GlueSummary> {
        run_glue::<B>(self, device, backend)
    }
}

fn run_glue<B: AutodiffBackend>(
    job: GlueJob,
    device: B::Device,
    backend: &str,
) -> anyhow::Result<GlueSummary> {
    let config = &job.config;
    let task = GlueTask::from_name(&config.task)?;
    validate(config)?;
    let model_dir = &models::hub::resolve_model(&config.model, None)?;
    if !model_dir.is_dir() {
        bail!(
            "--model {}: no such folder; expected a Hugging Face checkpoint folder (config.json, \
             model.safetensors, tokenizer.json), e.g. ../shared/models/all-MiniLM-L6-v2\n{}",
            model_dir.display(),
            default_hint(&models::hub::ENCODER)
        );
    }

    // Data.
    let root = DataRoot::resolve(config.data_root.as_deref());
    let options = LoadOptions::default();
    let train_set = task.load(&root, GlueSplit::Train, &options)?;
    let dev_set = task.load(&root, GlueSplit::Dev, &options)?;
    let mut train: Vec<GlueExample> = train_set.examples().to_vec();
    if let Some(n) = config.max_train_samples.filter(|&n| n > 0) {
        // A random subset, drawn with the seed (the same subset on every backend).
        let shuffled = ShuffledDataset::new(InMemDataset::new(train), config.seed);
        train = (0..n.min(shuffled.len()))
            .filter_map(|i| shuffled.get(i))
            .collect();
    }
    let mut dev: Vec<GlueExample> = dev_set.examples().to_vec();
    if let Some(n) = config.max_eval_samples {
        dev.truncate(n);
    }
    if train.is_empty() || dev.is_empty() {
        bail!("{}: no training or dev examples left to use", task.name());
    }

    // Model.
    let classifier_options = ClassifierOptions {
        seed: Some(config.seed),
        ..ClassifierOptions::with_num_labels(task.num_labels())
    };
    let mut inner =
        SequenceClassificationModel::<B>::from_pretrained(model_dir, &classifier_options, &device)
            .with_context(|| format!("loading --model {}", model_dir.display()))?;
    let family = inner.family();
    let adapter = if config.method.has_adapter() {
        let spec = match config.method {
            Method::Bone => AdapterSpec::bone(config.r),
            Method::Bat => AdapterSpec::bat(config.r),
            _ => AdapterSpec::lora(config.r, config.lora_alpha),
        };
        let targets = if config.targets.trim().is_empty() {
            all_block_linears(family)
        } else {
            parse_targets(&config.targets, family)
        };
        let mut adapter_config = AdapterConfig::from_spec(&spec, targets);
        adapter_config.base_model_name_or_path = Some(model_dir.display().to_string());
        inner
            .add_adapter(ADAPTER_NAME, &adapter_config, &device)
            .context("attaching the adapter")?;
        Some(adapter_config)
    } else {
        if config.method == Method::Full {
            inner = inner.set_full_finetune(true);
        }
        None
    };
    let total_params = burn::module::Module::num_params(&inner);
    let trainable_params = inner.trainable_params();
    let step_threads = config
        .threads
        .unwrap_or_else(|| default_step_threads(backend));
    let model = with_stable_param_ids(GlueModel {
        inner,
        step_threads,
    });

    // Tokenising.
    let tokenizer = load_tokenizer(&model_dir.join("tokenizer.json"))?;
    let pad_id = model.inner.encoder.config().pad_id();
    let batcher = ClassificationBatcher::new(
        tokenizer,
        ClassificationBatcherConfig {
            max_len: config.max_seq_len,
            pad_id,
            pad_type_id: 0,
            pad_to_multiple_of: None,
        },
    )?;
    let train_encoded = batcher.encode_all(&train)?;
    let dev_encoded = batcher.encode_all(&dev)?;

    let task_data = Arc::new(GlueTrainTask::<B> {
        task,
        train: Arc::new(InMemDataset::new(train_encoded)),
        batcher: batcher.clone(),
        batch_size: config.batch_size,
        seed: config.seed,
        method: config.method,
        adapter,
        device: device.clone(),
        step_threads,
    });
    let batches = crate::train::TrainTask::batches_per_epoch(task_data.as_ref());
    let total_steps = config.epochs * batches;
    let optimizer = SharedOptimizer::new(
        AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .with_epsilon(1e-8)
            .init::<B, GlueModel<B>>(),
    );

    // Run folder.
    let out = config.out_dir();
    let (run, model, state) = Trainer::start(
        task_data.as_ref(),
        config,
        &out,
        job.resume,
        model,
        &optimizer,
        total_steps,
        &device,
    )?;
    let scheduler = WarmupDecay::new(
        config.lr,
        WarmupDecay::warmup_from_ratio(config.warmup_ratio, total_steps),
        total_steps,
        config.schedule,
    )
    .at_step(state.global_step);
    let display = job.display.resolve(config.log_every);
    let main_metric = task
        .metrics()
        .first()
        .map(|m| m.name().to_string())
        .unwrap_or_else(|| "accuracy".into());
    let options = TrainerOptions {
        epochs: config.epochs,
        checkpoint_every: config.checkpoint_every,
        keep_checkpoints: 2,
        log_every: config.log_every,
        seed: config.seed,
        max_grad_norm: (config.max_grad_norm > 0.0).then_some(config.max_grad_norm),
        selection_metric: main_metric.clone(),
        selection_goal: MetricGoal::Maximise,
        early_stopping_patience: config.early_stopping_patience,
        stop_after_steps: job.stop_after_steps,
        print_summaries: matches!(display, Display::Quiet(_)),
    };
    if let Display::Quiet(_) = display {
        println!(
            "{} · {} · {} train / {} dev examples · {} steps of batch {} · {} trainable of {} parameters ({:.2} %) · {backend} · {} step thread{}",
            task.name(),
            describe_method(config),
            task_data.train.len(),
            dev.len(),
            total_steps,
            config.batch_size,
            trainable_params,
            total_params,
            100.0 * trainable_params as f64 / total_params.max(1) as f64,
            step_threads,
            if step_threads == 1 { "" } else { "s" },
        );
        println!("run folder: {}", run.root().display());
    }

    let valid_loader = DataLoaderBuilder::new(batcher)
        .batch_size(config.batch_size.max(32))
        .set_device(device.clone())
        .build(InMemDataset::new(dev_encoded));
    let train_loader = crate::train::TrainTask::train_loader(task_data.as_ref(), 1, 0);
    let trainer = Trainer::new(
        Arc::clone(&task_data),
        optimizer.clone(),
        run.clone(),
        options,
        state,
    );
    let regression = task.is_regression();
    let started = Instant::now();
    let (_model, outcome) = launch(
        trainer,
        model,
        optimizer,
        scheduler,
        &run,
        train_loader,
        valid_loader,
        display,
        |t| {
            let t = t
                .metric_train_numeric(LossMetric::new())
                .metric_valid_numeric(LossMetric::new())
                .metric_train_numeric(LearningRateMetric::new())
                .metric_train_numeric(IterationSpeedMetric::new());
            if regression {
                t
            } else {
                t.metric_train_numeric(AccuracyMetric::new())
                    .metric_valid_numeric(AccuracyMetric::new())
            }
        },
    );
    if let Some(error) = outcome.error {
        bail!("{error}");
    }
    let state = outcome
        .state
        .context("training ended without a final state")?;
    let _ = started;
    let steps_done = state.global_step;
    let train_seconds: f64 =
        state.history.iter().map(|e| e.train_seconds).sum::<f64>() + state.epoch_seconds;
    let summary = GlueSummary {
        task: task.name().into(),
        method: describe_method(config),
        backend: backend.into(),
        trainable_params,
        total_params,
        train_examples: task_data.train.len(),
        dev_examples: dev.len(),
        steps: steps_done,
        best_metric: state
            .best
            .as_ref()
            .map(|b| (b.metric.clone(), b.value, b.epoch)),
        last_dev: state
            .history
            .last()
            .map(|e| e.dev.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default(),
        train_seconds,
        seconds_per_step: train_seconds / steps_done.max(1) as f64,
        peak_memory_bytes: peak_memory_bytes(),
        run_dir: run.root().to_path_buf(),
        best_dir: run.best(),
        interrupted: outcome.interrupted,
    };
    bone_module::fs::write_atomic(
        &run.root().join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(summary)
}

fn validate(config: &GlueConfig) -> anyhow::Result<()> {
    let positive = [
        ("epochs", config.epochs),
        ("batch-size", config.batch_size),
        ("max-seq-len", config.max_seq_len),
        ("log-every", config.log_every),
    ];
    for (flag, value) in positive {
        if value == 0 {
            bail!("--{flag} 0: expected a positive number");
        }
    }
    if config.threads == Some(0) {
        bail!("--threads 0: expected a positive number");
    }
    if config.method.has_adapter() && config.r == 0 {
        bail!("--r 0: expected a positive rank");
    }
    if !(config.lr.is_finite() && config.lr > 0.0) {
        bail!("--lr {}: expected a positive learning rate", config.lr);
    }
    if !(0.0..1.0).contains(&config.warmup_ratio) {
        bail!(
            "--warmup-ratio {}: expected a value in [0, 1)",
            config.warmup_ratio
        );
    }
    if config.max_seq_len < 3 {
        bail!(
            "--max-seq-len {}: expected at least 3 (two special tokens and one word)",
            config.max_seq_len
        );
    }
    Ok(())
}

/// `bone r=64`, `lora r=32 α=64`, `head`, `full`.
pub fn describe_method(config: &GlueConfig) -> String {
    match config.method {
        Method::Lora => format!("lora r={} α={}", config.r, config.lora_alpha),
        m if m.has_adapter() => format!("{} r={}", m.name(), config.r),
        m => m.name().to_string(),
    }
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

/// What the best-adapter folder holds, for the final message.
pub fn describe_best(config: &GlueConfig, best: &Path) -> String {
    match config.method {
        Method::Head => format!("{} (classification head)", best.join(HEAD_FILE).display()),
        Method::Full => format!("{} (Hugging Face checkpoint folder)", best.display()),
        _ => format!(
            "{} (PEFT adapter with the classification head)",
            best.display()
        ),
    }
}

/// Where the default model was looked for and how to download it (appended to "no such
/// folder" errors).
pub fn default_hint(model: &models::hub::DefaultModel) -> String {
    match model.locate() {
        Ok(dir) => format!("(the {} is at {})", model.what, dir.display()),
        Err(e) => e.to_string(),
    }
}
