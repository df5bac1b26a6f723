//! Running a MetaMath fine-tuning job end to end.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::Autodiff;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::optim::AdamWConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{LearningRateMetric, LossMetric};
use data::batcher::{CausalLmBatcher, CausalLmBatcherConfig, PaddingSide};
use models::targets::{all_block_linears, parse_targets};
use models::{LlamaConfig, LlamaForCausalLM, LoadOptions, ModelConfig, ModelFamily};
use serde::Serialize;

use super::config::{LmMethod, MetamathConfig};
use super::data::{encode, load_examples, split, EncodeReport, LmBatcher};
use super::metric::{TokenPerplexityMetric, TokensPerSecondMetric};
use super::model::CausalLmModel;
use super::task::{MetamathTrainTask, ADAPTER_NAME};
use crate::device::BackendJob;
use crate::glue::run::peak_memory_bytes;
use crate::train::DisplayChoice;
use crate::train::{
    launch, with_stable_param_ids, CheckpointStore, Display, MetricGoal, RunDir, SharedOptimizer,
    TrainTask, Trainer, TrainerOptions, WarmupDecay,
};

/// What a finished (or interrupted) run reports; also written to `<run>/summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct MetamathSummary {
    /// `bone r=64`, `lora r=32 α=64`, `full`.
    pub method: String,
    /// The backend that ran.
    pub backend: String,
    /// Float type of the base weights.
    pub precision: String,
    /// Whether activations were recomputed in the backward pass.
    pub gradient_checkpointing: bool,
    /// Where the examples came from.
    pub data: String,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// All parameters of the model.
    pub total_params: usize,
    /// Training sequences per epoch.
    pub train_examples: usize,
    /// Held-out sequences of the dev loss.
    pub dev_examples: usize,
    /// Training sequences cut at `max_seq_len`.
    pub truncated: usize,
    /// Examples dropped because no response token fit in `max_seq_len`.
    pub dropped: usize,
    /// Examples per optimiser step.
    pub effective_batch: usize,
    /// Optimiser steps done, and planned.
    pub steps: usize,
    /// See `steps`.
    pub total_steps: usize,
    /// The first and the last logged training loss.
    pub first_train_loss: Option<f64>,
    /// See `first_train_loss`.
    pub last_train_loss: Option<f64>,
    /// The best dev loss and the epoch that reached it.
    pub best_dev_loss: Option<(f64, usize)>,
    /// The dev metrics of the last evaluation (loss, perplexity).
    pub last_dev: Vec<(String, f64)>,
    /// Seconds of training (evaluations excluded), this process and earlier ones.
    pub train_seconds: f64,
    /// Non-padding training tokens per second (from the epoch's token count and the steps
    /// done).
    pub tokens_per_second: f64,
    /// Peak resident memory of the process, bytes (Linux `VmHWM`; host memory only).
    pub peak_memory_bytes: u64,
    /// The run folder.
    pub run_dir: PathBuf,
    /// The adapter (PEFT folder) or model (Hugging Face folder) with the best dev loss.
    pub best_dir: PathBuf,
    /// Whether training was interrupted before the end.
    pub interrupted: bool,
}

/// A MetaMath run on some backend.
pub struct MetamathJob {
    /// The resolved configuration.
    pub config: MetamathConfig,
    /// Continue the run in `config.out`.
    pub resume: bool,
    /// `--display`.
    pub display: DisplayChoice,
    /// `--stop-after-steps`.
    pub stop_after_steps: Option<usize>,
}

impl BackendJob for MetamathJob {
    type Output = MetamathSummary;

    /// With `gradient_checkpointing` the job runs on `Autodiff<_, BalancedCheckpointing>`
    /// over the same inner backend and device.
    fn run<B: AutodiffBackend>(
        self,
        device: B::Device,
        backend: &'static str,
    ) -> anyhow::Result<MetamathSummary> {
        if self.config.gradient_checkpointing {
            run_metamath::<Autodiff<B::InnerBackend, BalancedCheckpointing>>(self, device, backend)
        } else {
            run_metamath::<B>(self, device, backend)
        }
    }
}

/// Reads `config.json` of `dir` and checks that it is a LLaMA-architecture decoder.
///
/// # Errors
/// A missing folder, an unreadable config, or another architecture, naming the flag.
pub fn check_llama_folder(dir: &Path, flag: &str) -> anyhow::Result<LlamaConfig> {
    if !dir.is_dir() {
        bail!(
            "{flag} {}: no such folder; expected a Hugging Face LLaMA checkpoint folder \
             (config.json, model.safetensors or shards, tokenizer.json), e.g. \
             ../shared/models/stories260K or Llama-2-7b-hf\n{}",
            dir.display(),
            crate::glue::run::default_hint(&models::hub::DECODER)
        );
    }
    let config = ModelConfig::load(dir).with_context(|| format!("{flag} {}", dir.display()))?;
    match config {
        ModelConfig::Llama(llama) => Ok(llama),
        other => bail!(
            "{flag} {}: config.json describes a {} model ({}), but this needs a LLaMA-architecture \
             decoder (model_type \"llama\", LlamaForCausalLM)",
            dir.display(),
            other.family(),
            other.architecture().unwrap_or("no architectures field")
        ),
    }
}

/// The causal-LM batcher of a LLaMA checkpoint: its BOS, first EOS and pad ids (pad 0 when it
/// has none, masked anyway), right padding for training, left for generation.
///
/// # Errors
/// A missing or unreadable `tokenizer.json`, or a `max_len` too short.
pub fn lm_batcher(
    model_dir: &Path,
    llama: &LlamaConfig,
    max_len: usize,
    side: PaddingSide,
) -> anyhow::Result<CausalLmBatcher> {
    let tokenizer = data::load_tokenizer(&model_dir.join("tokenizer.json"))?;
    let config = CausalLmBatcherConfig {
        max_len,
        pad_id: llama.pad_token_id.unwrap_or(0),
        bos_id: llama.bos_token_id,
        eos_id: llama.eos_token_ids().first().copied(),
        padding_side: side,
        pad_to_multiple_of: None,
    };
    Ok(CausalLmBatcher::new(tokenizer, config)?)
}

fn run_metamath<B: AutodiffBackend>(
    job: MetamathJob,
    device: B::Device,
    backend: &str,
) -> anyhow::Result<MetamathSummary> {
    let config = &job.config;
    validate(config)?;
    let llama = check_llama_folder(&config.model, "--model")?;
    config.precision.check::<B>(&device, backend)?;
    let out = config.out_dir();
    let fingerprint = crate::train::config::fingerprint(config);
    check_run_folder(&out, job.resume, &fingerprint)?;

    // Data: rows, held-out split, tokens.
    let (rows, source) = load_examples(config.data.as_deref(), config.data_root.as_deref())?;
    let total_rows = rows.len();
    let (train_rows, dev_rows) = split(
        rows,
        config.eval_fraction,
        config.max_eval_samples,
        config.max_train_samples,
        config.seed,
    )?;
    let batcher = lm_batcher(
        &config.model,
        &llama,
        config.max_seq_len,
        PaddingSide::Right,
    )?;
    let (train, train_report) = encode(&batcher, &train_rows)?;
    let (dev, dev_report) = encode(&batcher, &dev_rows)?;
    if train.is_empty() || dev.is_empty() {
        bail!(
            "--max-seq-len {}: no {} example has a response token left after the prompt; raise --max-seq-len",
            config.max_seq_len,
            if train.is_empty() { "training" } else { "held-out" }
        );
    }

    // Model and adapter.
    let load_options = LoadOptions {
        dtype: (config.precision != super::config::Precision::F32)
            .then(|| config.precision.dtype()),
    };
    let mut inner = LlamaForCausalLM::<B>::from_pretrained(&config.model, &load_options, &device)
        .with_context(|| format!("loading --model {}", config.model.display()))?;
    B::seed(&device, config.seed);
    let adapter = match config.method {
        LmMethod::Full => {
            inner = inner.set_full_finetune(true);
            None
        }
        method => {
            let spec = match method {
                LmMethod::Bone => AdapterSpec::bone(config.r),
                LmMethod::Bat => AdapterSpec::bat(config.r),
                _ => AdapterSpec::lora(config.r, config.lora_alpha()),
            };
            let targets = match config.targets.trim() {
                "" => all_block_linears(ModelFamily::Llama),
                text => parse_targets(text, ModelFamily::Llama),
            };
            let mut adapter_config = AdapterConfig::from_spec(&spec, targets);
            adapter_config.base_model_name_or_path = Some(config.model.display().to_string());
            inner
                .add_adapter(ADAPTER_NAME, &adapter_config, &device)
                .with_context(|| {
                    format!(
                        "attaching {} to --targets {}",
                        describe_method(config),
                        config.targets
                    )
                })?;
            Some(adapter_config)
        }
    };
    let total_params = burn::module::Module::num_params(&inner);
    let trainable_params = inner.trainable_params();
    let model = with_stable_param_ids(CausalLmModel { inner });

    let task = Arc::new(MetamathTrainTask::<B> {
        train: Arc::new(InMemDataset::new(train)),
        batcher: LmBatcher::new(batcher.clone(), config.batch_size),
        effective_batch: config.effective_batch(),
        seed: config.seed,
        adapter,
        load_options,
        device: device.clone(),
    });
    let batches = task.batches_per_epoch();
    let total_steps = config.epochs * batches;
    let optimizer = SharedOptimizer::new(
        AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .with_epsilon(1e-8)
            .init::<B, CausalLmModel<B>>(),
    );

    // Run folder.
    let (run, model, state) = Trainer::start(
        task.as_ref(),
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
    let options = TrainerOptions {
        epochs: config.epochs,
        checkpoint_every: config.checkpoint_every,
        keep_checkpoints: 2,
        log_every: config.log_every,
        seed: config.seed,
        max_grad_norm: (config.max_grad_norm > 0.0).then_some(config.max_grad_norm),
        selection_metric: "loss".into(),
        selection_goal: MetricGoal::Minimise,
        early_stopping_patience: None,
        stop_after_steps: job.stop_after_steps,
        print_summaries: matches!(display, Display::Quiet(_)),
    };
    println!("data: {source}");
    if matches!(source, super::data::DataSource::Gsm8kTrain(_)) {
        println!(
            "      (MetaMathQA is not available offline; pass --data MetaMathQA-395K.json for the paper's setup)"
        );
    }
    if let Display::Quiet(_) = display {
        print_plan(
            config,
            total_rows,
            &train_report,
            &dev_report,
            total_steps,
            trainable_params,
            total_params,
            backend,
        );
        println!("run folder: {}", run.root().display());
    }

    let valid_loader = DataLoaderBuilder::new(LmBatcher::new(batcher, config.batch_size))
        .batch_size(config.batch_size)
        .set_device(device.clone())
        .build(InMemDataset::new(dev));
    let train_loader = task.train_loader(1, 0);
    let trainer = Trainer::new(
        Arc::clone(&task),
        optimizer.clone(),
        run.clone(),
        options,
        state,
    );
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
            t.metric_train_numeric(LossMetric::new())
                .metric_valid_numeric(LossMetric::new())
                .metric_train_numeric(TokenPerplexityMetric::new())
                .metric_valid_numeric(TokenPerplexityMetric::new())
                .metric_train_numeric(LearningRateMetric::new())
                .metric_train_numeric(TokensPerSecondMetric::new())
        },
    );
    if let Some(error) = outcome.error {
        bail!("{error}");
    }
    let state = outcome
        .state
        .context("training ended without a final state")?;
    let train_seconds: f64 =
        state.history.iter().map(|e| e.train_seconds).sum::<f64>() + state.epoch_seconds;
    let tokens_done = train_report.tokens as f64 * state.global_step as f64 / batches.max(1) as f64;
    let summary = MetamathSummary {
        method: describe_method(config),
        backend: backend.into(),
        precision: config.precision.name().into(),
        gradient_checkpointing: config.gradient_checkpointing,
        data: source.to_string(),
        trainable_params,
        total_params,
        train_examples: train_report.kept,
        dev_examples: dev_report.kept,
        truncated: train_report.truncated,
        dropped: train_report.dropped + dev_report.dropped,
        effective_batch: config.effective_batch(),
        steps: state.global_step,
        total_steps,
        first_train_loss: state
            .steps
            .first()
            .map(|s| s.loss)
            .or_else(|| state.history.first().map(|e| e.train_loss)),
        last_train_loss: state
            .steps
            .last()
            .map(|s| s.loss)
            .or_else(|| state.history.last().map(|e| e.train_loss)),
        best_dev_loss: state.best.as_ref().map(|b| (b.value, b.epoch)),
        last_dev: state
            .history
            .last()
            .map(|e| e.dev.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default(),
        train_seconds,
        tokens_per_second: tokens_done / train_seconds.max(1e-9),
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

/// Fails before any data is read when `--out` already holds a run (without `--resume`), or
/// when `--resume` names a folder with no checkpoint or one of other settings.
fn check_run_folder(out: &Path, resume: bool, fingerprint: &str) -> anyhow::Result<()> {
    if !resume {
        if out.join("config.toml").exists() {
            bail!(
                "{} already holds a run; pass `--resume {}` to continue it, or choose another `--out`",
                out.display(),
                out.display()
            );
        }
        return Ok(());
    }
    let run = RunDir::open(out)?;
    let latest = CheckpointStore::new(run.checkpoints(), 1).latest()?;
    match latest {
        None => bail!(
            "--resume {}: the run has no checkpoint yet (nothing to resume; start it again without --resume)",
            out.display()
        ),
        Some((path, state)) if state.fingerprint != fingerprint => bail!(
            "--resume {}: checkpoint {} was written by a run with other settings (fingerprint {} ≠ {}); \
             the flags must match the run's config.toml",
            out.display(),
            path.display(),
            state.fingerprint,
            fingerprint
        ),
        Some(_) => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn print_plan(
    config: &MetamathConfig,
    total_rows: usize,
    train: &EncodeReport,
    dev: &EncodeReport,
    total_steps: usize,
    trainable: usize,
    total: usize,
    backend: &str,
) {
    println!(
        "{} · {} train / {} held-out of {total_rows} examples ({} truncated to {} tokens, {} dropped) · \
         {total_steps} steps of {} × {} = {} · {trainable} trainable of {total} parameters ({:.3} %) · \
         {backend} {}{}",
        describe_method(config),
        train.kept,
        dev.kept,
        train.truncated + dev.truncated,
        config.max_seq_len,
        train.dropped + dev.dropped,
        config.batch_size,
        config.grad_accumulation,
        config.effective_batch(),
        100.0 * trainable as f64 / total.max(1) as f64,
        config.precision.name(),
        if config.gradient_checkpointing {
            " · gradient checkpointing"
        } else {
            ""
        },
    );
}

fn validate(config: &MetamathConfig) -> anyhow::Result<()> {
    let positive = [
        ("epochs", config.epochs),
        ("batch-size", config.batch_size),
        ("grad-accumulation", config.grad_accumulation),
        ("log-every", config.log_every),
        ("max-eval-samples", config.max_eval_samples),
    ];
    for (flag, value) in positive {
        if value == 0 {
            bail!("--{flag} 0: expected a positive number");
        }
    }
    if config.method.has_adapter() && config.r == 0 {
        bail!("--r 0: expected a positive rank");
    }
    if config.max_seq_len < 4 {
        bail!(
            "--max-seq-len {}: expected at least 4 (BOS, a prompt token, a response token, EOS)",
            config.max_seq_len
        );
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
    if !(0.0..1.0).contains(&config.eval_fraction) {
        bail!(
            "--eval-fraction {}: expected a value in [0, 1)",
            config.eval_fraction
        );
    }
    if let Some(alpha) = config.lora_alpha {
        if !(alpha.is_finite() && alpha > 0.0) {
            bail!("--lora-alpha {alpha}: expected a positive number");
        }
    }
    Ok(())
}

/// `bone r=64`, `lora r=32 α=64`, `full`.
pub fn describe_method(config: &MetamathConfig) -> String {
    match config.method {
        LmMethod::Lora => format!("lora r={} α={}", config.r, config.lora_alpha()),
        LmMethod::Full => "full".into(),
        m => format!("{} r={}", m.name(), config.r),
    }
}
