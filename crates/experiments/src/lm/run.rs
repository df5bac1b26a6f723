//! Running a causal-LM fine-tuning job (`metamath`, `sft`) end to end: data, model, the run
//! folder, training, the summary.

use std::sync::Arc;

use anyhow::{bail, Context};
use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::Autodiff;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{LearningRateMetric, LossMetric};
use data::batcher::{CausalLmBatcher, EncodedSequence, PackedBatcher, PackingConfig, PaddingSide};
use models::targets::{all_block_linears, parse_targets};
use models::{LlamaConfig, LlamaForCausalLM, LoadOptions, ModelFamily};
use serde::Serialize;

use super::config::{LmConfig, LmMethod};
use super::data::{encode, load_examples, split, DataSource, EncodeReport, LmBatcher};
use super::evaluation::LmEvaluation;
use super::metric::{TokenPerplexityMetric, TokensPerSecondMetric};
use super::model::CausalLmModel;
use super::samples::SampleSet;
use super::task::{LmTrainTask, ADAPTER_NAME};
use crate::cpu::gemm_gflops_on_threads;
use crate::device::{BackendJob, BackendKind};
use crate::llama::{check_llama_folder, lm_batcher, resolve_model_arg, Precision};
use crate::train::flops::{BaseBackward, Mfu, ModelFlops};
use crate::train::job::{fit, write_summary, RunControl, RunSpec, RunSummary, Schedule};
use crate::train::{
    check_run_folder, default_step_threads, keep_products_on_step_threads, with_stable_param_ids,
    MetricGoal, MetricKey, ProgressDisplay, RunDir, TrainTask, TrainerOptions, TrainerState,
    Training,
};

/// What a finished (or interrupted) run reports; also written to `<run>/summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct LmSummary {
    /// `bone r=64`, `lora r=32 α=64`, `full`.
    pub method: String,
    /// The backend that ran.
    pub backend: BackendKind,
    /// Float type of the base weights.
    pub precision: Precision,
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
    /// Optimiser steps planned (`run.steps` are done).
    pub total_steps: usize,
    /// The first and the last logged training loss.
    pub first_train_loss: Option<f64>,
    /// See `first_train_loss`.
    pub last_train_loss: Option<f64>,
    /// The best dev loss and the epoch that reached it.
    pub best_dev_loss: Option<(f64, usize)>,
    /// Non-padding training tokens per second (from the epoch's token count and the steps
    /// done).
    pub tokens_per_second: f64,
    /// Model FLOPs of a step, FLOP/s and the share of the GEMM peak on the CPU (see
    /// [`crate::train::flops`]).
    pub mfu: Option<Mfu>,
    /// Steps, last dev metrics (loss, perplexity), time, memory and folders (`best_dir`: the
    /// adapter, PEFT folder, or model, Hugging Face folder, with the best dev loss).
    #[serde(flatten)]
    pub run: RunSummary,
}

impl LmSummary {
    /// The summary of a run of `config` on `data` that ended in `state`.
    fn new(
        config: &LmConfig,
        data: &PreparedData,
        size: &ModelSize,
        backend: BackendKind,
        batches: usize,
        run: RunSummary,
        state: &TrainerState,
    ) -> Self {
        let tokens_done =
            data.train_report.tokens as f64 * state.global_step as f64 / batches.max(1) as f64;
        Self {
            method: describe_method(config),
            backend,
            precision: config.precision,
            gradient_checkpointing: config.gradient_checkpointing,
            data: data.source.to_string(),
            trainable_params: size.trainable,
            total_params: size.total,
            train_examples: data.train_report.kept,
            dev_examples: data.dev_report.kept,
            truncated: data.train_report.truncated,
            dropped: data.train_report.dropped + data.dev_report.dropped,
            effective_batch: config.effective_batch(),
            total_steps: config.epochs * batches,
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
            tokens_per_second: tokens_done / run.train_seconds.max(1e-9),
            mfu: None,
            run,
        }
    }
}

/// A causal-LM run (`metamath` or `sft`) on some backend.
pub struct LmJob {
    /// The resolved configuration.
    pub config: LmConfig,
    /// `--resume`, `--display`, `--stop-after-steps`.
    pub control: RunControl,
}

impl BackendJob for LmJob {
    type Output = LmSummary;

    /// With `gradient_checkpointing` the job runs on `Autodiff<_, BalancedCheckpointing>`
    /// over the same inner backend and device.
    fn run<B: AutodiffBackend>(
        self,
        device: B::Device,
        backend: BackendKind,
    ) -> anyhow::Result<LmSummary> {
        if self.config.gradient_checkpointing {
            run_job::<Autodiff<B::InnerBackend, BalancedCheckpointing>>(self, device, backend)
        } else {
            run_job::<B>(self, device, backend)
        }
    }
}

fn run_job<B: AutodiffBackend>(
    job: LmJob,
    device: B::Device,
    backend: BackendKind,
) -> anyhow::Result<LmSummary> {
    // The run folder keeps `--model` as given (a Hub id stays one); the run reads the
    // resolved local path.
    let mut resolved = job.config.clone();
    resolved.model =
        resolve_model_arg(&job.config.model, job.config.revision.as_deref(), "--model")?;
    let config = &resolved;
    run_lm::<B, _>(config, &job.config, job.control, device, backend, |llama| {
        if config.is_sft() {
            super::sft_data::prepare_sft(config, llama)
        } else {
            prepare_data(config, llama)
        }
    })
}

/// Trains the decoder of `config` on the sequences `prepare` tokenises (called once the
/// model folder and the run folder are checked); `run_config` is what the run folder saves
/// and `--resume` checks (the run's own configuration). The
/// training task, model, metrics and summary are the same for every causal-LM job.
///
/// # Errors
/// Invalid settings, a model or run folder that does not fit, and those of `prepare` and of
/// training.
pub(crate) fn run_lm<B: AutodiffBackend, C: crate::train::config::RunConfig>(
    config: &LmConfig,
    run_config: &C,
    control: RunControl,
    device: B::Device,
    backend: BackendKind,
    prepare: impl FnOnce(&LlamaConfig) -> anyhow::Result<PreparedData>,
) -> anyhow::Result<LmSummary> {
    validate(config)?;
    let llama = check_llama_folder(&config.model, "--model")?;
    config.precision.check::<B>(&device, backend)?;
    let out = config.out_dir();
    let fingerprint = crate::train::config::fingerprint(run_config);
    check_run_folder(&out, control.resume, &fingerprint)?;
    warn_past_positions(config, &llama);
    let mut data = prepare(&llama)?;
    let inputs = input_files(config, &data.source)?;
    let step_threads = step_threads(config, backend);
    keep_products_on_step_threads(backend, step_threads);
    let prepared = prepare_model::<B>(config, step_threads, control.force_r, &device)?;
    let gemm_peak = backend
        .is_cpu()
        .then(|| gemm_gflops_on_threads::<B::InnerBackend>(1024, 3, step_threads, &device));
    let lengths: Vec<usize> = data.train.iter().map(|s| s.input_ids.len()).collect();
    let base = if config.method == LmMethod::Full {
        BaseBackward::Full
    } else {
        BaseBackward::Input
    };
    let flops_per_step = ModelFlops::causal_lm(&prepared.model.inner, base)
        .mean_step_flops(&lengths, config.effective_batch());
    let batcher = step_batcher(config, &data.batcher)?;
    let samples = (config.samples > 0)
        .then(|| SampleSet::from_dev(&data.dev, config.samples, data.batcher.tokenizer().clone()));
    let task = Arc::new(LmTrainTask::<B> {
        train: Arc::new(InMemDataset::new(std::mem::take(&mut data.train))),
        batcher: batcher.clone(),
        effective_batch: config.effective_batch(),
        seed: config.seed,
        adapter: prepared.adapter,
        load_options: prepared.load_options,
        device: device.clone(),
        samples,
        inputs,
    });
    let batches = task.batches_per_epoch();
    let valid_loader = DataLoaderBuilder::new(batcher)
        .batch_size(config.batch_size)
        .set_device(device.clone())
        .build(InMemDataset::new(std::mem::take(&mut data.dev)));
    let spec = RunSpec {
        config: run_config,
        out,
        control,
        schedule: Schedule {
            lr: config.lr,
            warmup_ratio: config.warmup_ratio,
            decay: config.schedule,
            weight_decay: config.weight_decay,
        },
        options: trainer_options(config)?,
        log_every: config.log_every,
    };
    let plan = |run: &RunDir, display: ProgressDisplay, total_steps: usize| {
        println!("data: {}", data.source);
        if matches!(data.source, DataSource::Gsm8kTrain(_)) {
            println!(
                "      (MetaMathQA is not available offline; pass --data MetaMathQA-395K.json for the paper's setup)"
            );
        }
        if let ProgressDisplay::Quiet(_) = display {
            print_plan(
                config,
                &data,
                total_steps,
                &prepared.size,
                backend,
                step_threads,
            );
            println!("run folder: {}", run.root().display());
        }
    };
    let (run, summary, state) = fit(
        spec,
        task,
        prepared.model,
        valid_loader,
        &device,
        plan,
        register_metrics,
    )?;
    let summary = LmSummary {
        mfu: Mfu::of_run(flops_per_step, &summary, gemm_peak, backend),
        ..LmSummary::new(
            config,
            &data,
            &prepared.size,
            backend,
            batches,
            summary,
            &state,
        )
    };
    write_summary(&run, &summary)?;
    Ok(summary)
}

/// The batcher of the optimiser steps (and of the dev loss): padded micro-batches of
/// `batch_size` sequences, or with `packing` micro-batches of `batch_size` rows of
/// `max_seq_len` tokens, each holding whole examples.
///
/// # Errors
/// A `max_seq_len` the packer refuses.
fn step_batcher(config: &LmConfig, batcher: &CausalLmBatcher) -> anyhow::Result<LmBatcher> {
    if !config.packing {
        return Ok(LmBatcher::new(batcher.clone(), config.batch_size));
    }
    let packing = PackingConfig::new(config.max_seq_len).with_pad_id(batcher.config().pad_id);
    Ok(LmBatcher::packed(
        batcher.clone(),
        PackedBatcher::new(packing)?,
        config.batch_size,
    ))
}

/// The examples of a run, tokenised: training and held-out sequences and what encoding them
/// cut or dropped.
pub(crate) struct PreparedData {
    /// Where the examples came from.
    pub source: DataSource,
    /// Rows read (before the split).
    pub total_rows: usize,
    /// Pads sequences into batches.
    pub batcher: CausalLmBatcher,
    /// Training sequences.
    pub train: Vec<EncodedSequence>,
    /// Held-out sequences.
    pub dev: Vec<EncodedSequence>,
    /// What encoding the training rows did.
    pub train_report: EncodeReport,
    /// What encoding the held-out rows did.
    pub dev_report: EncodeReport,
}

/// Warns (on stderr) when `--max-seq-len` exceeds the model's `max_position_embeddings`: a
/// rotary decoder computes positions past it, but it was not trained on them.
fn warn_past_positions(config: &LmConfig, llama: &LlamaConfig) {
    if let Some(warning) = crate::train::limits::rope_position_warning(
        config.max_seq_len,
        llama.max_position_embeddings,
        &config.model,
    ) {
        eprintln!("warning: {warning}");
    }
}

/// The files a run reads: the model's (config, tokenizer, weights, or the GGUF file) and the
/// data files (`--data` and `--eval-data`; GSM8K train when `metamath` has no `--data`).
fn input_files(config: &LmConfig, source: &DataSource) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = crate::train::inputs::model_files(&config.model)?;
    match source {
        DataSource::MetaMathQa(path) | DataSource::Gsm8kTrain(path) => files.push(path.clone()),
        DataSource::Sft(_) => files.extend(config.data.iter().cloned()),
    }
    files.extend(config.eval_data.iter().cloned());
    Ok(files)
}

impl PreparedData {
    /// The data, unless no training or no held-out sequence is left.
    ///
    /// # Errors
    /// Every example of a split lost its response to `max_seq_len`.
    pub(crate) fn checked(self, max_seq_len: usize) -> anyhow::Result<Self> {
        if self.train.is_empty() || self.dev.is_empty() {
            bail!(
                "--max-seq-len {max_seq_len}: no {} example has a response token left after the prompt; raise --max-seq-len",
                if self.train.is_empty() { "training" } else { "held-out" }
            );
        }
        Ok(self)
    }
}

/// Reads the rows, holds out the dev split and tokenises both.
fn prepare_data(config: &LmConfig, llama: &LlamaConfig) -> anyhow::Result<PreparedData> {
    let (rows, source) = load_examples(config.data.as_deref(), config.data_root.as_deref())?;
    let total_rows = rows.len();
    let (train_rows, dev_rows) = split(
        rows,
        config.eval_fraction,
        config.max_eval_samples,
        config.max_train_samples,
        config.seed,
    )?;
    let batcher = lm_batcher(&config.model, llama, config.max_seq_len, PaddingSide::Right)?;
    let (train, train_report) = encode(&batcher, &train_rows)?;
    let (dev, dev_report) = encode(&batcher, &dev_rows)?;
    PreparedData {
        source,
        total_rows,
        batcher,
        train,
        dev,
        train_report,
        dev_report,
    }
    .checked(config.max_seq_len)
}

/// Trainable and total parameters.
struct ModelSize {
    trainable: usize,
    total: usize,
}

/// The model a run trains.
struct PreparedModel<B: AutodiffBackend> {
    model: CausalLmModel<B>,
    adapter: Option<AdapterConfig>,
    load_options: LoadOptions,
    size: ModelSize,
}

/// The micro-batches a step runs at once: `--threads` (default: every core on the CPU
/// backends, 1 on WGPU and CUDA), at most the micro-batches of a step (`--grad-accumulation`).
fn step_threads(config: &LmConfig, backend: BackendKind) -> usize {
    config
        .threads
        .unwrap_or_else(|| default_step_threads(backend))
        .min(config.grad_accumulation)
        .max(1)
}

/// `--model` in `--precision`, with the adapter attached (or every parameter trainable);
/// the adapter's `r` and memory are checked first ([`crate::train::limits::check_adapter_plan`];
/// `force_r`: `--force-r`).
fn prepare_model<B: AutodiffBackend>(
    config: &LmConfig,
    step_threads: usize,
    force_r: bool,
    device: &B::Device,
) -> anyhow::Result<PreparedModel<B>> {
    let load_options = LoadOptions {
        dtype: (config.precision != Precision::F32).then(|| config.precision.dtype()),
    };
    let mut inner = LlamaForCausalLM::<B>::from_pretrained(&config.model, &load_options, device)
        .with_context(|| format!("loading --model {}", config.model.display()))?;
    B::seed(device, config.seed);
    let adapter = match config.method {
        LmMethod::Full => {
            inner = inner.set_full_finetune(true);
            None
        }
        method => {
            let spec = match method {
                LmMethod::Bone => AdapterSpec::bone(config.r),
                LmMethod::Mini => AdapterSpec::mini(config.r, config.mini_r.unwrap_or(1)),
                LmMethod::Bat => AdapterSpec::bat(config.r),
                _ => AdapterSpec::lora(config.r, config.lora_alpha()),
            };
            let targets = match config.targets.trim() {
                "" => all_block_linears(ModelFamily::Llama),
                text => parse_targets(text, ModelFamily::Llama),
            };
            let mut adapter_config = AdapterConfig::from_spec(&spec, targets);
            adapter_config.base_model_name_or_path = Some(config.model.display().to_string());
            crate::train::limits::check_adapter_plan(&inner, &adapter_config, force_r)?;
            inner
                .add_adapter(ADAPTER_NAME, &adapter_config, device)
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
    let size = ModelSize {
        trainable: inner.trainable_params(),
        total: burn::module::Module::num_params(&inner),
    };
    Ok(PreparedModel {
        model: with_stable_param_ids(CausalLmModel::new(inner).with_step_threads(step_threads)),
        adapter,
        load_options,
        size,
    })
}

/// The trainer's options: the dev loss selects the best adapter; no early stopping.
fn trainer_options(config: &LmConfig) -> anyhow::Result<TrainerOptions> {
    Ok(TrainerOptions {
        epochs: config.epochs,
        checkpoint_every: config.checkpoint_every,
        eval_every: config.eval_every,
        keep_checkpoints: 2,
        log_every: config.log_every,
        seed: config.seed,
        max_grad_norm: (config.max_grad_norm > 0.0).then_some(config.max_grad_norm),
        selection_metric: MetricKey::new("loss", LmEvaluation::KEYS)?,
        selection_goal: MetricGoal::Minimise,
        early_stopping_patience: None,
        stop_after_steps: None,
        print_summaries: false,
    })
}

/// The dashboard's metrics: loss and perplexity, learning rate, tokens per second.
fn register_metrics<B, O>(
    training: Training<B, CausalLmModel<B>, O>,
) -> Training<B, CausalLmModel<B>, O>
where
    B: AutodiffBackend,
    O: Optimizer<CausalLmModel<B>, B> + 'static,
{
    training
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(TokenPerplexityMetric::new())
        .metric_valid_numeric(TokenPerplexityMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train_numeric(TokensPerSecondMetric::new())
}

fn print_plan(
    config: &LmConfig,
    data: &PreparedData,
    total_steps: usize,
    size: &ModelSize,
    backend: BackendKind,
    step_threads: usize,
) {
    let (train, dev) = (&data.train_report, &data.dev_report);
    let (trainable, total, total_rows) = (size.trainable, size.total, data.total_rows);
    println!(
        "{} · {} train / {} held-out of {total_rows} examples ({} truncated to {} tokens, {} dropped) · \
         {total_steps} steps of {} × {} = {} · {trainable} trainable of {total} parameters ({:.3} %) · \
         {backend} {}{}{}{}",
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
        if config.packing { " · packed" } else { "" },
        if step_threads > 1 {
            format!(" · {step_threads} micro-batches at once")
        } else {
            String::new()
        },
    );
}

fn validate(config: &LmConfig) -> anyhow::Result<()> {
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
    crate::train::job::check_shared_flags(
        config.max_grad_norm,
        config.weight_decay,
        config.threads,
    )?;
    crate::train::job::check_mini_r(config.method == LmMethod::Mini, config.mini_r)?;
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
pub fn describe_method(config: &LmConfig) -> String {
    match config.method {
        LmMethod::Lora => format!("lora r={} α={}", config.r, config.lora_alpha()),
        LmMethod::Full => "full".into(),
        m => format!("{} r={}", m.name(), config.r),
    }
}
