//! The GLUE job's configuration: defaults, an optional TOML file and command-line flags, in
//! that order of precedence; saved as `config.toml` in the run folder and checked on resume.

use std::path::PathBuf;

use clap::{ArgMatches, Args, ValueEnum};
use serde::{Deserialize, Serialize};

use data::glue::GlueTask;

use crate::device::DeviceChoice;
use crate::train::config::{file_name, RunConfig};
use crate::train::job::{self, TrainArgs};
use crate::train::DecayKind;

/// What is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Bone adapters (block `[r, out]`) plus the classification head.
    Bone,
    /// PEFT MiSS "mini" adapters (block `[r, mini_r]` repeated along the outputs) plus the
    /// head.
    Mini,
    /// Bat adapters (blocks `[out/r, r, r]`) plus the head.
    Bat,
    /// LoRA adapters (`A [r, in]`, `B [out, r]`, scale α/r) plus the head.
    Lora,
    /// The classification head alone (linear probe baseline).
    Head,
    /// Every parameter (full fine-tuning baseline).
    Full,
}

impl Method {
    /// Whether the method trains adapters.
    pub fn has_adapter(self) -> bool {
        matches!(self, Self::Bone | Self::Mini | Self::Bat | Self::Lora)
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bone => "bone",
            Self::Mini => "mini",
            Self::Bat => "bat",
            Self::Lora => "lora",
            Self::Head => "head",
            Self::Full => "full",
        }
    }
}

/// Every setting of a GLUE run. Field names are the TOML keys and, with `-` for `_`, the flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlueConfig {
    /// GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli.
    #[serde(with = "task_name")]
    pub task: GlueTask,
    /// Hugging Face checkpoint folder of a BERT or RoBERTa model.
    pub model: PathBuf,
    /// Folder holding `glue/<TASK>/…` (else `$BONE_DATA_ROOT`, else `../shared/datasets`).
    pub data_root: Option<PathBuf>,
    /// What is trained.
    pub method: Method,
    /// Rank (Bone, LoRA) or block size (Bat).
    pub r: usize,
    /// LoRA scaling numerator α (scale α/r).
    pub lora_alpha: f64,
    /// MiSS "mini" block width (`--method mini`): the `[r, mini_r]` block repeats along the
    /// outputs, so mini_r must divide every target's out features.
    pub mini_r: Option<usize>,
    /// Target modules: comma-separated names (`query,value`) or `re:<regex>`; empty means
    /// every linear layer of the encoder.
    pub targets: String,
    /// Epochs.
    pub epochs: usize,
    /// Examples per batch.
    pub batch_size: usize,
    /// Peak learning rate (AdamW).
    pub lr: f64,
    /// Decay after warm-up.
    pub schedule: DecayKind,
    /// Share of the steps spent warming up.
    pub warmup_ratio: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub max_grad_norm: f64,
    /// Truncate sequences to this many tokens.
    pub max_seq_len: usize,
    /// Train on this many examples, drawn at random with the seed (all when unset or 0); with
    /// `train_indices`, the first this many of the file's.
    pub max_train_samples: Option<usize>,
    /// Text file of 0-based train-row indices, one per line (`#` starts a comment): the
    /// training examples, in this order, instead of the seed's random draw, so that another
    /// implementation can train on the same examples.
    pub train_indices: Option<PathBuf>,
    /// Evaluate on the first this many dev examples (all when unset).
    pub max_eval_samples: Option<usize>,
    /// Seed of the head's init, the data order and dropout.
    pub seed: u64,
    /// Run folder (default `runs/<task>-<method>-r<r>-seed<seed>`).
    pub out: Option<PathBuf>,
    /// Stop after this many evaluations without improvement of the task's main metric.
    pub early_stopping_patience: Option<usize>,
    /// Checkpoint every this many optimiser steps (0: only at the end of each epoch).
    pub checkpoint_every: usize,
    /// Evaluate (and select the best adapter) every this many optimiser steps as well as at
    /// the end of each epoch (0: epoch ends only).
    #[serde(default)]
    pub eval_every: usize,
    /// Training loss is logged every this many steps (metrics.json, curves, quiet output).
    pub log_every: usize,
    /// Backend: ndarray (CPU), wgpu or cuda, among those compiled in.
    pub device: DeviceChoice,
    /// Threads a training step splits its batch over (default: every core on the CPU
    /// backends, 1 on WGPU and CUDA).
    pub threads: Option<usize>,
}

impl GlueConfig {
    /// Defaults of `glue-sst2` (and of `glue`, which requires `--task`).
    pub fn defaults() -> Self {
        Self {
            task: GlueTask::Sst2,
            model: models::hub::ENCODER.dir(),
            data_root: None,
            method: Method::Bone,
            r: 64,
            lora_alpha: 64.0,
            mini_r: None,
            targets: String::new(),
            epochs: 1,
            batch_size: 32,
            lr: 5e-4,
            schedule: DecayKind::Linear,
            warmup_ratio: 0.06,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            max_seq_len: 64,
            // One epoch over 20,000 random sentences (625 steps) keeps the default run under
            // half an hour on two CPU cores; 0 trains on the whole set.
            max_train_samples: Some(20_000),
            train_indices: None,
            max_eval_samples: None,
            seed: 42,
            out: None,
            early_stopping_patience: None,
            checkpoint_every: 200,
            eval_every: 0,
            log_every: 10,
            device: DeviceChoice::default(),
            threads: None,
        }
    }

    /// The run folder.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            crate::train::config::default_run_folder(
                self.task.name(),
                self.method.name(),
                self.method.has_adapter().then_some(self.r),
                self.seed,
            )
        })
    }
}

impl RunConfig for GlueConfig {
    const OPTIONAL_KEYS: &'static [&'static str] = &[
        "data_root",
        "mini_r",
        "max_train_samples",
        "train_indices",
        "max_eval_samples",
        "out",
        "early_stopping_patience",
        "threads",
    ];
    const CHANGEABLE_ON_RESUME: &'static [&'static str] = &[
        "device",
        "threads",
        "log_every",
        "data_root",
        "model",
        "checkpoint_every",
        "eval_every",
        // Safe to change when a run diverged ("lower --lr first"): the optimiser state and
        // the schedule's position carry over.
        "lr",
        "schedule",
        "max_grad_norm",
    ];

    fn essential(&self) -> Self {
        let mut essential = self.clone();
        essential.out = None;
        essential.data_root = None;
        essential.device = DeviceChoice::default();
        essential.threads = None;
        essential.log_every = 0;
        essential.checkpoint_every = 0;
        essential.eval_every = 0;
        essential.lr = 0.0;
        essential.schedule = DecayKind::Constant;
        essential.max_grad_norm = 0.0;
        essential.model = file_name(&self.model);
        essential
    }

    fn set_out(&mut self, out: PathBuf) {
        self.out = Some(out);
    }

    fn device(&self) -> DeviceChoice {
        self.device
    }
}

/// Command-line flags; each overrides the TOML file and the defaults.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct GlueArgs {
    /// The flags every training job has.
    #[command(flatten)]
    #[serde(flatten)]
    pub train: TrainArgs,
    /// GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli.
    #[arg(long)]
    pub task: Option<String>,
    /// What to train [default: bone].
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// Block width of `--method mini` (PEFT MiSS `mini_r`): a `[r, N]` block repeated along
    /// the outputs; N must divide every target's out features.
    #[arg(long, value_name = "N")]
    pub mini_r: Option<usize>,
    /// Train on the rows listed in FILE (0-based indices into the train split, one per line,
    /// `#` comments), in that order, instead of a random draw; `--max-train-samples N` keeps
    /// the first N. Lets another implementation train on the same examples.
    #[arg(long, value_name = "FILE")]
    pub train_indices: Option<PathBuf>,
    /// Stop after this many epochs without improvement of the main dev metric [default: off].
    #[arg(long)]
    pub early_stopping_patience: Option<usize>,
    /// Threads a training step splits its batch over; each runs the forward and backward pass
    /// of a slice of the batch and the gradients are summed [default: every core on ndarray
    /// and flex, 1 on wgpu and cuda].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// The GLUE wording of the shared flags' help (see [`with_help`](crate::train::job::with_help)).
pub const HELP: &[(&str, &str)] = &[
    ("model", "Hugging Face checkpoint folder of a BERT or RoBERTa model [default: ../shared/models/all-MiniLM-L6-v2]"),
    ("data_root", "Folder holding glue/<TASK>/ [default: $BONE_DATA_ROOT, else ../shared/datasets]"),
    ("r", "Rank (Bone, LoRA) or block size (Bat) [default: 64]"),
    ("lora_alpha", "LoRA α; the update is scaled by α/r [default: 64]"),
    ("targets", "Target modules: `query,key,value,dense` style names or `re:<regex>` over module paths [default: every linear layer of the encoder]"),
    ("batch_size", "Batch size [default: 32]"),
    ("lr", "Peak learning rate [default: 5e-4]"),
    ("schedule", "Learning-rate decay after warm-up [default: linear]"),
    ("warmup_ratio", "Share of the steps used for linear warm-up [default: 0.06]"),
    ("max_seq_len", "Maximum tokens per sequence [default: 64]"),
    ("max_train_samples", "Train on this many examples drawn at random with the seed; 0 for all [default: 20000]"),
    ("max_eval_samples", "Evaluate on the first this many dev examples [default: all]"),
    ("out", "Run folder [default: runs/<task>-<method>-r<r>-seed<seed>]"),
    ("log_every", "Log the training loss every N steps [default: 10]"),
];

/// The configuration of a run: a new one from `defaults`, `--config` and the flags given, or
/// the saved one of `--resume` with the given flags checked against it.
///
/// # Errors
/// Invalid files, unknown keys, or (on resume) flags that differ from the saved run.
pub fn resolve(
    defaults: GlueConfig,
    args: &GlueArgs,
    matches: &ArgMatches,
) -> anyhow::Result<GlueConfig> {
    job::resolve(defaults, args, &args.train, matches)
}

/// `task` in TOML and in `config.toml`: its lowercase name (`sst2`); any spelling
/// [`GlueTask::from_name`] accepts (`SST-2`) reads.
mod task_name {
    use data::glue::GlueTask;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(task: &GlueTask, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(task.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<GlueTask, D::Error> {
        let name = String::deserialize(deserializer)?;
        GlueTask::from_name(&name).map_err(serde::de::Error::custom)
    }
}
