//! Running a GLUE fine-tuning job end to end: data, model, the run folder, training, the
//! summary.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::transform::ShuffledDataset;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{AccuracyMetric, IterationSpeedMetric, LearningRateMetric, LossMetric};
use data::batcher::{ClassificationBatcher, ClassificationBatcherConfig};
use data::glue::{GlueExample, GlueSplit, GlueTask};
use data::{load_tokenizer, DataRoot, LoadOptions};
use models::targets::{all_block_linears, parse_targets};
use models::{ClassifierOptions, SequenceClassificationModel};
use serde::Serialize;

use super::config::{GlueConfig, Method};
use super::evaluation::GlueEvaluation;
use super::indices::read_train_indices;
use super::model::GlueModel;
use super::task::{GlueTrainTask, ADAPTER_NAME, HEAD_FILE};
use crate::cpu::gemm_gflops_on_threads;
use crate::device::{BackendJob, BackendKind};
use crate::train::config::RunConfig;
use crate::train::distributed;
use crate::train::flops::{BaseBackward, Mfu, ModelFlops};
use crate::train::job::default_hint;
use crate::train::job::{fit, write_summary, RunControl, RunSpec, RunSummary, Schedule};
use crate::train::limits;
use crate::train::{
    default_step_threads, keep_products_on_step_threads, with_stable_param_ids, MetricGoal,
    MetricKey, ProgressDisplay, RunDir, TrainerOptions, Training,
};

/// What a finished (or interrupted) run reports; also written to `<run>/summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct GlueSummary {
    /// The task.
    pub task: String,
    /// The method.
    pub method: String,
    /// The backend that ran.
    pub backend: BackendKind,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// All parameters of the model.
    pub total_params: usize,
    /// Training examples per epoch.
    pub train_examples: usize,
    /// Dev examples.
    pub dev_examples: usize,
    /// The task's main metric, its best value and the epoch that reached it.
    pub best_metric: Option<(MetricKey, f64, usize)>,
    /// Mean seconds per optimiser step: training seconds over the steps done.
    pub seconds_per_step: f64,
    /// Model FLOPs per step, FLOP/s and their share of the GEMM peak measured at the start
    /// of the run (see [`crate::train::flops`]).
    pub mfu: Option<Mfu>,
    /// Steps, last dev metrics, time, memory and folders.
    #[serde(flatten)]
    pub run: RunSummary,
}

/// A GLUE run on some backend.
pub struct GlueJob {
    /// The resolved configuration.
    pub config: GlueConfig,
    /// `--resume`, `--display`, `--stop-after-steps`.
    pub control: RunControl,
}

impl BackendJob for GlueJob {
    type Output = GlueSummary;

    fn run<B: AutodiffBackend>(
        self,
        device: B::Device,
        backend: BackendKind,
    ) -> anyhow::Result<GlueSummary> {
        run_glue::<B>(self, device, backend)
    }
}

/// The model a run trains, and what the summary says of it.
struct Prepared<B: AutodiffBackend> {
    model: GlueModel<B>,
    adapter: Option<AdapterConfig>,
    size: ModelSize,
}

/// Trainable and total parameters.
struct ModelSize {
    trainable: usize,
    total: usize,
}

fn run_glue<B: AutodiffBackend>(
    job: GlueJob,
    device: B::Device,
    backend: BackendKind,
) -> anyhow::Result<GlueSummary> {
    let config = &job.config;
    let task = config.task;
    validate(config)?;
    let step_threads = config
        .threads
        .unwrap_or_else(|| default_step_threads(backend));
    keep_products_on_step_threads(backend, step_threads);
    let gemm_peak = backend
        .is_cpu()
        .then(|| gemm_gflops_on_threads::<B::InnerBackend>(1024, 3, step_threads, &device));
    let (train, dev) = load_examples(config)?;
    let prepared = prepare_model::<B>(config, step_threads, job.control.force_r, &device)?;
    distributed::start::<B, _>(&config.essential(), backend, &device)?;
    let batcher = batcher(config, prepared.model.inner.encoder.config())?;
    let train_encoded = batcher.encode_all(&train)?;
    let lengths: Vec<usize> = train_encoded.iter().map(|e| e.input_ids.len()).collect();
    let flops_per_step =
        ModelFlops::sequence_classifier(&prepared.model.inner, base_backward(config))
            .mean_step_flops(&lengths, config.batch_size);
    let dev_encoded = batcher.encode_all(&dev)?;
    let task_data = Arc::new(GlueTrainTask::<B> {
        task,
        train: Arc::new(InMemDataset::new(train_encoded)),
        batcher: batcher.clone(),
        batch_size: config.batch_size,
        seed: config.seed,
        method: config.method,
        adapter: prepared.adapter.clone(),
        device: device.clone(),
        step_threads,
        inputs: input_files(config)?,
    });
    let valid_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(config.batch_size.max(32))
        .set_device(device.clone())
        .build(InMemDataset::new(dev_encoded));
    let spec = RunSpec {
        config,
        out: distributed::rank_out_dir(&config.out_dir(), job.control.resume)?,
        control: job.control,
        schedule: Schedule {
            lr: config.lr,
            warmup_ratio: config.warmup_ratio,
            decay: config.schedule,
            weight_decay: config.weight_decay,
        },
        options: trainer_options(config)?,
        log_every: config.log_every,
    };
    let train_examples = task_data.train.len();
    let plan = |run: &RunDir, display: ProgressDisplay, total_steps: usize| {
        if let ProgressDisplay::Quiet(_) = display {
            print_plan(
                config,
                &prepared.size,
                train_examples,
                dev.len(),
                total_steps,
                backend,
                step_threads,
            );
            println!("run folder: {}", run.root().display());
        }
    };
    let (run, summary, state) = fit(
        spec,
        task_data,
        prepared.model,
        valid_loader,
        &device,
        plan,
        |t| register_metrics(t, task),
    )?;
    distributed::finish();
    if let Some(line) = distributed::report_line() {
        println!("{line}");
    }
    let seconds_per_step = summary.train_seconds / summary.steps.max(1) as f64;
    let summary = GlueSummary {
        task: task.name().into(),
        method: describe_method(config),
        backend,
        trainable_params: prepared.size.trainable,
        total_params: prepared.size.total,
        train_examples,
        dev_examples: dev.len(),
        best_metric: state.best.map(|b| (b.metric, b.value, b.epoch)),
        seconds_per_step,
        mfu: Mfu::of_run(flops_per_step, &summary, gemm_peak, backend),
        run: summary,
    };
    write_summary(&run, &summary)?;
    Ok(summary)
}

/// How far a method's backward pass goes into the encoder.
fn base_backward(config: &GlueConfig) -> BaseBackward {
    match config.method {
        Method::Full => BaseBackward::Full,
        Method::Head => BaseBackward::None,
        _ => BaseBackward::Input,
    }
}

/// The line a quiet run starts with: task, method, data, steps, parameters, backend.
fn print_plan(
    config: &GlueConfig,
    size: &ModelSize,
    train_examples: usize,
    dev_examples: usize,
    total_steps: usize,
    backend: BackendKind,
    step_threads: usize,
) {
    let (trainable, total) = (size.trainable, size.total);
    println!(
        "{} · {} · {train_examples} train / {dev_examples} dev examples · {total_steps} steps of batch {} · {trainable} trainable of {total} parameters ({:.2} %) · {backend} · {step_threads} step thread{}",
        config.task.name(),
        describe_method(config),
        config.batch_size,
        100.0 * trainable as f64 / total.max(1) as f64,
        if step_threads == 1 { "" } else { "s" },
    );
}

/// The files a run reads: the model's config.json, tokenizer files and weights, and the
/// task's train and dev files.
fn input_files(config: &GlueConfig) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let model_dir = models::hub::resolve_model(&config.model, None)?;
    let mut files = crate::train::inputs::model_files(&model_dir)?;
    let root = DataRoot::resolve(config.data_root.as_deref());
    for split in [GlueSplit::Train, GlueSplit::Dev] {
        files.push(root.file(&config.task.relative_path(split)?)?);
    }
    Ok(files)
}

/// The training examples (those of `train_indices`, else a random subset of
/// `max_train_samples` drawn with the seed: the same on every backend) and the first
/// `max_eval_samples` dev examples.
fn load_examples(config: &GlueConfig) -> anyhow::Result<(Vec<GlueExample>, Vec<GlueExample>)> {
    let task = config.task;
    let root = DataRoot::resolve(config.data_root.as_deref());
    let options = LoadOptions::default();
    let train_set = task.load(&root, GlueSplit::Train, &options)?;
    let dev_set = task.load(&root, GlueSplit::Dev, &options)?;
    let mut train: Vec<GlueExample> = train_set.examples().to_vec();
    if let Some(path) = &config.train_indices {
        let indices = read_train_indices(path, train.len())?;
        let n = config
            .max_train_samples
            .filter(|&n| n > 0)
            .unwrap_or(indices.len());
        train = indices.iter().take(n).map(|&i| train[i].clone()).collect();
    } else if let Some(n) = config.max_train_samples.filter(|&n| n > 0) {
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
    Ok((train, dev))
}

/// The sequence classifier of `--model` with the adapter attached (adapter methods), the
/// whole model trainable (`full`) or the head alone (`head`).
fn prepare_model<B: AutodiffBackend>(
    config: &GlueConfig,
    step_threads: usize,
    force_r: bool,
    device: &B::Device,
) -> anyhow::Result<Prepared<B>> {
    let model_dir = &models::hub::resolve_model(&config.model, None)?;
    if !model_dir.is_dir() {
        bail!(
            "--model {}: no such folder; expected a Hugging Face checkpoint folder (config.json, \
             model.safetensors, tokenizer.json), e.g. ../shared/models/all-MiniLM-L6-v2\n{}",
            model_dir.display(),
            default_hint(&models::hub::ENCODER)
        );
    }
    let classifier_options = ClassifierOptions {
        seed: Some(config.seed),
        ..ClassifierOptions::with_num_labels(config.task.num_labels())
    };
    let mut inner =
        SequenceClassificationModel::<B>::from_pretrained(model_dir, &classifier_options, device)
            .with_context(|| format!("loading --model {}", model_dir.display()))?;
    limits::check_max_seq_len(config.max_seq_len, inner.encoder.max_input_len(), model_dir)?;
    let family = inner.family();
    let adapter = if config.method.has_adapter() {
        let spec = match config.method {
            Method::Bone => AdapterSpec::bone(config.r),
            Method::Mini => AdapterSpec::mini(config.r, config.mini_r.unwrap_or(1)),
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
        limits::check_adapter_plan(&inner, &adapter_config, force_r)?;
        inner
            .add_adapter(ADAPTER_NAME, &adapter_config, device)
            .context("attaching the adapter")?;
        Some(adapter_config)
    } else {
        if config.method == Method::Full {
            inner = inner.set_full_finetune(true);
        }
        None
    };
    Ok(Prepared {
        size: ModelSize {
            trainable: inner.trainable_params(),
            total: burn::module::Module::num_params(&inner),
        },
        model: with_stable_param_ids(GlueModel {
            inner,
            step_threads,
        }),
        adapter,
    })
}

/// The tokenising batcher of `--model` (its `tokenizer.json`), checked against the model's
/// vocabulary.
fn batcher(
    config: &GlueConfig,
    model: &models::EncoderConfig,
) -> anyhow::Result<ClassificationBatcher> {
    let path = config.model.join("tokenizer.json");
    let tokenizer = load_tokenizer(&path)?;
    limits::check_tokenizer_vocab(
        tokenizer.get_vocab_size(true),
        &path,
        model.vocab_size,
        &config.model,
    )?;
    let pad_id = model.pad_id();
    Ok(ClassificationBatcher::new(
        tokenizer,
        ClassificationBatcherConfig {
            max_len: config.max_seq_len,
            pad_id,
            pad_type_id: 0,
            pad_to_multiple_of: None,
        },
    )?)
}

/// The trainer's options: the task's main metric selects the best adapter.
fn trainer_options(config: &GlueConfig) -> anyhow::Result<TrainerOptions> {
    let keys = GlueEvaluation::keys(config.task);
    let main_metric = keys.first().copied().unwrap_or("loss");
    Ok(TrainerOptions {
        epochs: config.epochs,
        checkpoint_every: config.checkpoint_every,
        eval_every: config.eval_every,
        keep_checkpoints: 2,
        log_every: config.log_every,
        seed: config.seed,
        max_grad_norm: (config.max_grad_norm > 0.0).then_some(config.max_grad_norm),
        selection_metric: MetricKey::new(main_metric, &keys)?,
        selection_goal: MetricGoal::Maximise,
        early_stopping_patience: config.early_stopping_patience,
        stop_after_steps: None,
        print_summaries: false,
    })
}

/// The dashboard's metrics: loss, learning rate, speed, and accuracy for classification.
fn register_metrics<B, O>(
    training: Training<B, GlueModel<B>, O>,
    task: GlueTask,
) -> Training<B, GlueModel<B>, O>
where
    B: AutodiffBackend,
    O: Optimizer<GlueModel<B>, B> + 'static,
{
    let training = training
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train_numeric(IterationSpeedMetric::new());
    if task.is_regression() {
        training
    } else {
        training
            .metric_train_numeric(AccuracyMetric::new())
            .metric_valid_numeric(AccuracyMetric::new())
    }
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
    crate::train::job::check_shared_flags(
        config.max_grad_norm,
        config.weight_decay,
        config.threads,
    )?;
    if config.method.has_adapter() && config.r == 0 {
        bail!("--r 0: expected a positive rank");
    }
    crate::train::job::check_mini_r(config.method == Method::Mini, config.mini_r)?;
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
