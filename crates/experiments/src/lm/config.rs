//! The causal-LM job's configuration: defaults (the paper's NLG setup, which `metamath` keeps
//! and `sft` starts from), an optional TOML file and command-line flags, in that order of
//! precedence; saved as `config.toml` in the run folder and checked on resume.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::device::DeviceChoice;
pub use crate::llama::Precision;
use crate::train::config::{file_name, RunConfig};

use crate::train::DecayKind;

/// The seven LLaMA projections the paper adapts.
pub const PAPER_TARGETS: &str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj";

/// What is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LmMethod {
    /// Bone adapters (block `[r, out]`, zero init): the paper's method.
    Bone,
    /// PEFT MiSS "mini" adapters (block `[r, mini_r]` repeated along the outputs).
    Mini,
    /// Bat adapters (blocks `[out/r, r, r]`); r must divide every target's in and out.
    Bat,
    /// LoRA adapters (`A [r, in]`, `B [out, r]`, scale α/r).
    Lora,
    /// Every parameter (full fine-tuning baseline; the checkpoint is the whole model).
    Full,
}

impl LmMethod {
    /// Whether the method trains adapters.
    pub fn has_adapter(self) -> bool {
        !matches!(self, Self::Full)
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bone => "bone",
            Self::Mini => "mini",
            Self::Bat => "bat",
            Self::Lora => "lora",
            Self::Full => "full",
        }
    }
}

/// Every setting of a causal-LM run (`metamath`, `sft`). Field names are the TOML keys and, with `-` for `_`, the
/// flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmConfig {
    /// Hugging Face checkpoint folder of a LLaMA-architecture decoder, a llama.cpp `.gguf`
    /// file, or a Hub id `org/name` (resolved in the Hugging Face cache when the run starts).
    pub model: PathBuf,
    /// Branch, tag or commit of a Hub id `model` (unset: `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// MetaMathQA file (JSON array or JSON Lines of `{query, response, type,
    /// original_question}`); unset: GSM8K train rendered in MetaMathQA's shape.
    pub data: Option<PathBuf>,
    /// MiSS "mini" block width (`--method mini`): the `[r, mini_r]` block repeats along the
    /// outputs, so mini_r must divide every target's out features.
    pub mini_r: Option<usize>,
    /// Folder holding `gsm8k/train.jsonl` (else `$BONE_DATA_ROOT`, else `../shared/datasets`).
    pub data_root: Option<PathBuf>,
    /// What is trained.
    pub method: LmMethod,
    /// Rank (Bone, LoRA) or block size (Bat).
    pub r: usize,
    /// LoRA α (scale α/r); unset: 2·r, the paper's ratio (r=36, α=72).
    pub lora_alpha: Option<f64>,
    /// Target modules: comma-separated names or `re:<regex>`; `all` = every block linear.
    pub targets: String,
    /// Epochs.
    pub epochs: usize,
    /// Examples per forward/backward pass (micro-batch).
    pub batch_size: usize,
    /// Micro-batches per optimiser step; the effective batch is their product.
    pub grad_accumulation: usize,
    /// Peak learning rate (AdamW).
    pub lr: f64,
    /// Decay after warm-up.
    pub schedule: DecayKind,
    /// Share of the optimiser steps spent warming up.
    pub warmup_ratio: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub max_grad_norm: f64,
    /// Truncate `[BOS] prompt response [EOS]` to this many tokens.
    pub max_seq_len: usize,
    /// Train on at most this many examples (after the held-out split; all when unset).
    pub max_train_samples: Option<usize>,
    /// Share of the examples held out for the dev loss (drawn with the seed).
    pub eval_fraction: f64,
    /// At most this many held-out examples.
    pub max_eval_samples: usize,
    /// Seed of the split, the data order and adapter inits.
    pub seed: u64,
    /// Run folder (default `runs/metamath-<method>-r<r>-seed<seed>`).
    pub out: Option<PathBuf>,
    /// Checkpoint every this many optimiser steps (0: only at the end of each epoch).
    pub checkpoint_every: usize,
    /// Evaluate (and select the best adapter) every this many optimiser steps as well as at
    /// the end of each epoch (0: epoch ends only).
    #[serde(default)]
    pub eval_every: usize,
    /// Training loss is logged every this many optimiser steps.
    pub log_every: usize,
    /// Micro-batches a step runs at once, each on its own thread (default: every core on the
    /// CPU backends, 1 on WGPU and CUDA; at most `grad_accumulation`).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Float type of the base weights (adapters stay f32).
    pub precision: Precision,
    /// Recompute activations in the backward pass instead of keeping them (less memory).
    pub gradient_checkpointing: bool,
    /// Backend: ndarray (CPU), flex (CPU), wgpu or cuda, among those compiled in.
    pub device: DeviceChoice,
    /// Pack whole examples into rows of `max_seq_len` tokens (positions restarting per
    /// example, a block-diagonal causal mask) instead of padding each one.
    #[serde(default)]
    pub packing: bool,
    /// Greedy generations from this many held-out prompts written to
    /// `samples/step-N.jsonl` at each evaluation (0: none).
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// `sft` only (unset for `metamath`, and then absent from `config.toml`): the row shape
    /// of `data` (`auto`, `alpaca`, `chat`, `sharegpt`, `prompt-completion`, `text`,
    /// `metamath`); set, `data` is read as a fine-tuning file with the model's chat template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `sft`: column renames `key=column[,key=column…]` applied before the format is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_map: Option<String>,
    /// `sft`: a separate eval file (same format); unset, `eval_fraction` of `data` is held out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_data: Option<PathBuf>,
    /// `sft`: which tokens carry the loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_on: Option<TrainOn>,
    /// `sft`: drop malformed rows (counted) instead of failing on the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_bad_rows: Option<bool>,
}

/// Sample generations per evaluation unless `--samples` says otherwise.
fn default_samples() -> usize {
    3
}

/// `--train-on`: which tokens of an example carry the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ValueEnum)]
pub enum TrainOn {
    /// Only the response (assistant turns, the completion); the prompt is context.
    #[default]
    #[serde(rename = "response")]
    #[value(name = "response")]
    Response,
    /// Every token, prompt and response.
    #[serde(rename = "prompt+response")]
    #[value(name = "prompt+response")]
    PromptResponse,
}

impl LmConfig {
    /// The paper's setup (LLaMA-2-7B, MetaMathQA, Bone r=64 on all seven projections, lr 2e-5
    /// cosine, 3 % warm-up, effective batch 64, one epoch, 512 tokens), on stories260K.
    pub fn defaults() -> Self {
        Self {
            model: models::hub::DECODER.dir(),
            revision: None,
            data: None,
            mini_r: None,
            data_root: None,
            method: LmMethod::Bone,
            r: 64,
            lora_alpha: None,
            targets: PAPER_TARGETS.into(),
            epochs: 1,
            batch_size: 4,
            grad_accumulation: 16,
            lr: 2e-5,
            schedule: DecayKind::Cosine,
            warmup_ratio: 0.03,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            max_seq_len: 512,
            max_train_samples: None,
            eval_fraction: 0.01,
            max_eval_samples: 256,
            seed: 42,
            out: None,
            checkpoint_every: 200,
            eval_every: 0,
            log_every: 10,
            threads: None,
            precision: Precision::F32,
            gradient_checkpointing: false,
            device: DeviceChoice::default(),
            packing: false,
            samples: default_samples(),
            format: None,
            field_map: None,
            eval_data: None,
            train_on: None,
            skip_bad_rows: None,
        }
    }

    /// Whether this is an `sft` run (`format` set): `data` is a fine-tuning file.
    pub fn is_sft(&self) -> bool {
        self.format.is_some()
    }

    /// LoRA's α: the configured one, else 2·r.
    pub fn lora_alpha(&self) -> f64 {
        self.lora_alpha.unwrap_or(2.0 * self.r as f64)
    }

    /// Examples per optimiser step.
    pub fn effective_batch(&self) -> usize {
        self.batch_size * self.grad_accumulation
    }

    /// The run folder.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            crate::train::config::default_run_folder(
                if self.is_sft() { "sft" } else { "metamath" },
                self.method.name(),
                self.method.has_adapter().then_some(self.r),
                self.seed,
            )
        })
    }
}

impl RunConfig for LmConfig {
    const OPTIONAL_KEYS: &'static [&'static str] = &[
        "revision",
        "data",
        "mini_r",
        "data_root",
        "lora_alpha",
        "max_train_samples",
        "out",
        "format",
        "field_map",
        "eval_data",
        "train_on",
        "skip_bad_rows",
        "threads",
    ];
    const CHANGEABLE_ON_RESUME: &'static [&'static str] = &[
        "device",
        "threads",
        "log_every",
        "data_root",
        "model",
        "data",
        "checkpoint_every",
        "eval_every",
        "gradient_checkpointing",
        "samples",
        "eval_data",
        "skip_bad_rows",
        // Safe to change when a run diverged ("lower --lr first"): the optimiser state and
        // the schedule's position carry over.
        "lr",
        "schedule",
        "max_grad_norm",
    ];

    /// Not where files are, which backend runs, whether activations are recomputed, or how
    /// often things are logged or checkpointed.
    fn essential(&self) -> Self {
        let mut essential = self.clone();
        essential.out = None;
        essential.data_root = None;
        essential.device = DeviceChoice::default();
        essential.threads = None;
        essential.log_every = 0;
        essential.checkpoint_every = 0;
        essential.eval_every = 0;
        essential.gradient_checkpointing = false;
        essential.samples = 0;
        essential.lr = 0.0;
        essential.schedule = DecayKind::Constant;
        essential.max_grad_norm = 0.0;
        essential.model = file_name(&self.model);
        essential.data = self.data.as_deref().map(file_name);
        essential.eval_data = self.eval_data.as_deref().map(file_name);
        essential
    }

    fn set_out(&mut self, out: PathBuf) {
        self.out = Some(out);
    }

    fn device(&self) -> DeviceChoice {
        self.device
    }
}

/// The flags of every decoder fine-tuning job (`metamath`, `sft`): method, accumulation,
/// held-out share, precision and gradient checkpointing; each job flattens them beside
/// [`TrainArgs`](crate::train::job::TrainArgs).
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct LmArgs {
    /// Branch, tag or 40-hex commit of a Hub id given to --model [default: main].
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// What to train [default: bone].
    #[arg(long, value_enum)]
    pub method: Option<LmMethod>,
    /// Block width of `--method mini` (PEFT MiSS `mini_r`): a `[r, N]` block repeated along
    /// the outputs; N must divide every target's out features.
    #[arg(long, value_name = "N")]
    pub mini_r: Option<usize>,
    /// Micro-batches accumulated per optimiser step; effective batch = batch size × this
    /// (the paper: 64) [default: 16].
    #[arg(long)]
    pub grad_accumulation: Option<usize>,
    /// Share of the examples held out (not trained on) for the dev loss [default: 0.01].
    #[arg(long)]
    pub eval_fraction: Option<f64>,
    /// Float type of the base weights; adapters and the loss stay f32. NdArray has only f32
    /// [default: f32].
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Recompute activations during the backward pass (Burn's balanced checkpointing): less
    /// memory, more compute [default: off].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub gradient_checkpointing: Option<bool>,
    /// Pack whole examples into rows of --max-seq-len tokens (positions restart per example,
    /// a block-diagonal causal mask): no compute on padding [default: off].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub packing: Option<bool>,
    /// Greedy generations from this many held-out prompts written to the run folder's
    /// samples/step-N.jsonl at each evaluation, 0 for none [default: 3].
    #[arg(long, value_name = "N")]
    pub samples: Option<usize>,
    /// Micro-batches of a step run at once, each on its own thread with its own graph (more
    /// memory, as many activations at once); at most --grad-accumulation [default: every
    /// core on ndarray and flex, 1 on wgpu and cuda].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}
