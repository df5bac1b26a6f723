//! The MetaMath job's configuration: defaults (the paper's NLG setup), an optional TOML file
//! and command-line flags, in that order of precedence; saved as `config.toml` in the run
//! folder and checked on resume.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use burn::tensor::FloatDType;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::device::DeviceChoice;
use crate::glue::config::DisplayChoice;
use crate::train::DecayKind;

/// The seven LLaMA projections the paper adapts.
pub const PAPER_TARGETS: &str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj";

/// What is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LmMethod {
    /// Bone adapters (block `[r, out]`, zero init): the paper's method.
    Bone,
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
            Self::Bat => "bat",
            Self::Lora => "lora",
            Self::Full => "full",
        }
    }
}

/// `--precision`: the float type the base weights are loaded in (adapters stay f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (every backend).
    #[default]
    F32,
    /// 16-bit floats (Flex, WGPU, CUDA; not NdArray).
    F16,
    /// bfloat16 (Flex, CUDA; not NdArray).
    Bf16,
}

impl Precision {
    /// The Burn float type.
    pub fn dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::F16 => FloatDType::F16,
            Self::Bf16 => FloatDType::BF16,
        }
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        }
    }

    /// Fails when backend `B` cannot hold this float type on `device`.
    ///
    /// # Errors
    /// The backend lacks the type, naming the flag and the backends that have it.
    pub fn check<B: burn::tensor::backend::Backend>(
        self,
        device: &B::Device,
        backend: &str,
    ) -> anyhow::Result<()> {
        if self != Self::F32 && !B::supports_dtype(device, burn::tensor::DType::from(self.dtype()))
        {
            bail!(
                "--precision {}: the {backend} backend has no {} tensors; use --device flex \
                 (CPU), wgpu or cuda, or --precision f32",
                self.name(),
                self.name()
            );
        }
        Ok(())
    }
}

/// Every setting of a MetaMath run. Field names are the TOML keys and, with `-` for `_`, the
/// flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetamathConfig {
    /// Hugging Face checkpoint folder of a LLaMA-architecture decoder.
    pub model: PathBuf,
    /// MetaMathQA file (JSON array or JSON Lines of `{query, response, type,
    /// original_question}`); unset: GSM8K train rendered in MetaMathQA's shape.
    pub data: Option<PathBuf>,
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
    /// Training loss is logged every this many optimiser steps.
    pub log_every: usize,
    /// Float type of the base weights (adapters stay f32).
    pub precision: Precision,
    /// Recompute activations in the backward pass instead of keeping them (less memory).
    pub gradient_checkpointing: bool,
    /// Backend: ndarray (CPU), flex (CPU), wgpu or cuda, among those compiled in.
    pub device: DeviceChoice,
}

impl MetamathConfig {
    /// The paper's setup (LLaMA-2-7B, MetaMathQA, Bone r=64 on all seven projections, lr 2e-5
    /// cosine, 3 % warm-up, effective batch 64, one epoch, 512 tokens), on stories260K.
    pub fn defaults() -> Self {
        Self {
            model: PathBuf::from("../shared/models/stories260K"),
            data: None,
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
            log_every: 10,
            precision: Precision::F32,
            gradient_checkpointing: false,
            device: DeviceChoice::default(),
        }
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
            let rank = if self.method.has_adapter() {
                format!("-r{}", self.r)
            } else {
                String::new()
            };
            PathBuf::from("runs").join(format!(
                "metamath-{}{rank}-seed{}",
                self.method.name(),
                self.seed
            ))
        })
    }

    /// Reads a TOML file of (some of) the keys.
    ///
    /// # Errors
    /// A missing file, invalid TOML, an unknown key or a value of the wrong type, with the
    /// file and the key.
    pub fn read_partial(path: &Path) -> anyhow::Result<toml::Table> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut probe = toml::Table::try_from(Self::defaults())?;
        for (k, v) in &table {
            if !probe.contains_key(k) && !OPTIONAL_KEYS.contains(&k.as_str()) {
                bail!(
                    "{}: unknown key `{k}`; known keys: {}",
                    path.display(),
                    KNOWN_KEYS.join(", ")
                );
            }
            probe.insert(k.clone(), v.clone());
        }
        let _: Self = probe
            .try_into()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(table)
    }

    /// This config with the keys of `table` replaced.
    ///
    /// # Errors
    /// A key whose value has the wrong type.
    pub fn overlay(&self, table: &toml::Table) -> anyhow::Result<Self> {
        let mut base = toml::Table::try_from(self)?;
        for (k, v) in table {
            base.insert(k.clone(), v.clone());
        }
        Ok(base.try_into()?)
    }

    /// Writes `config.toml` atomically.
    ///
    /// # Errors
    /// An I/O error.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = toml::to_string_pretty(self)?;
        bone_module::fs::write_atomic(path, text.as_bytes())?;
        Ok(())
    }

    /// Reads a `config.toml` written by [`save`](Self::save).
    ///
    /// # Errors
    /// A missing or invalid file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// A digest of the settings that determine the trained weights (not where files are,
    /// which backend runs, whether activations are recomputed, or how often things are logged
    /// or checkpointed).
    pub fn fingerprint(&self) -> String {
        let mut essential = self.clone();
        essential.out = None;
        essential.data_root = None;
        essential.device = DeviceChoice::default();
        essential.log_every = 0;
        essential.checkpoint_every = 0;
        essential.gradient_checkpointing = false;
        essential.model = file_name(&self.model);
        essential.data = self.data.as_deref().map(file_name);
        let text = toml::to_string(&essential).unwrap_or_default();
        let digest = Sha256::digest(text.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

fn file_name(path: &Path) -> PathBuf {
    PathBuf::from(
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// Keys that may be absent from the defaults table because their value is unset.
const OPTIONAL_KEYS: [&str; 5] = [
    "data",
    "data_root",
    "lora_alpha",
    "max_train_samples",
    "out",
];

const KNOWN_KEYS: [&str; 26] = [
    "model",
    "data",
    "data_root",
    "method",
    "r",
    "lora_alpha",
    "targets",
    "epochs",
    "batch_size",
    "grad_accumulation",
    "lr",
    "schedule",
    "warmup_ratio",
    "weight_decay",
    "max_grad_norm",
    "max_seq_len",
    "max_train_samples",
    "eval_fraction",
    "max_eval_samples",
    "seed",
    "out",
    "checkpoint_every",
    "log_every",
    "precision",
    "gradient_checkpointing",
    "device",
];

/// Keys that may differ on `--resume`: where files are, how progress is shown, which backend
/// runs and whether activations are recomputed.
const CHANGEABLE_ON_RESUME: [&str; 7] = [
    "device",
    "log_every",
    "data_root",
    "model",
    "data",
    "checkpoint_every",
    "gradient_checkpointing",
];

/// Command-line flags; each overrides the TOML file and the defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct MetamathArgs {
    /// TOML file with any of the keys below (flags given on the command line win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Continue the interrupted run in this folder from its last checkpoint (flags given must
    /// match the run's config.toml).
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Hugging Face checkpoint folder of a LLaMA-architecture decoder (config.json,
    /// model.safetensors or shards, tokenizer.json) [default: ../shared/models/stories260K].
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// MetaMathQA JSON (e.g. MetaMathQA-395K.json) [default: none, so GSM8K train (7,473
    /// problems) rendered as MetaMathQA rows is used instead, and the output says so].
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Folder holding gsm8k/train.jsonl [default: $BONE_DATA_ROOT, else ../shared/datasets].
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// What to train [default: bone].
    #[arg(long, value_enum)]
    pub method: Option<LmMethod>,
    /// Rank (Bone, LoRA) or block size (Bat; must divide every target's in and out features,
    /// e.g. 4 on stories260K) [default: 64].
    #[arg(long)]
    pub r: Option<usize>,
    /// LoRA α; the update is scaled by α/r [default: 2·r].
    #[arg(long)]
    pub lora_alpha: Option<f64>,
    /// Target modules: names such as `q_proj,v_proj`, `all`, `default` (PEFT's q_proj,v_proj)
    /// or `re:<regex>` over module paths [default: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj].
    #[arg(long)]
    pub targets: Option<String>,
    /// Epochs [default: 1].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Examples per forward/backward pass [default: 4].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Micro-batches accumulated per optimiser step; effective batch = batch size × this
    /// (the paper: 64) [default: 16].
    #[arg(long)]
    pub grad_accumulation: Option<usize>,
    /// Peak learning rate [default: 2e-5].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate decay after warm-up [default: cosine].
    #[arg(long, value_enum)]
    pub schedule: Option<DecayKind>,
    /// Share of the optimiser steps used for linear warm-up [default: 0.03].
    #[arg(long)]
    pub warmup_ratio: Option<f64>,
    /// AdamW weight decay [default: 0].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Global gradient-norm clipping, 0 to disable [default: 1].
    #[arg(long)]
    pub max_grad_norm: Option<f64>,
    /// Maximum tokens per sequence, BOS and EOS included [default: 512].
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Train on at most this many examples, drawn with the seed [default: all].
    #[arg(long)]
    pub max_train_samples: Option<usize>,
    /// Share of the examples held out (not trained on) for the dev loss [default: 0.01].
    #[arg(long)]
    pub eval_fraction: Option<f64>,
    /// At most this many held-out examples [default: 256].
    #[arg(long)]
    pub max_eval_samples: Option<usize>,
    /// Seed [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run folder [default: runs/metamath-<method>-r<r>-seed<seed>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Checkpoint every N optimiser steps, 0 for epoch ends only [default: 200].
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Log the training loss every N optimiser steps [default: 10].
    #[arg(long)]
    pub log_every: Option<usize>,
    /// Float type of the base weights; adapters and the loss stay f32. NdArray has only f32
    /// [default: f32].
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Recompute activations during the backward pass (Burn's balanced checkpointing): less
    /// memory, more compute [default: off].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub gradient_checkpointing: Option<bool>,
    /// Backend to run on [default: the first compiled of cuda, wgpu, ndarray].
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    /// Progress display: the TUI dashboard (needs a terminal), plain lines, or auto.
    #[arg(long, value_enum, default_value = "auto")]
    pub display: DisplayChoice,
    /// Stop after N optimiser steps as an interruption would (checkpoint first); for testing
    /// `--resume`.
    #[arg(long, hide = true)]
    pub stop_after_steps: Option<usize>,
}

/// The config keys of [`MetamathArgs`] (all optional), for serialising the given flags.
#[derive(Serialize)]
struct ArgsAsConfig {
    model: Option<PathBuf>,
    data: Option<PathBuf>,
    data_root: Option<PathBuf>,
    method: Option<LmMethod>,
    r: Option<usize>,
    lora_alpha: Option<f64>,
    targets: Option<String>,
    epochs: Option<usize>,
    batch_size: Option<usize>,
    grad_accumulation: Option<usize>,
    lr: Option<f64>,
    schedule: Option<DecayKind>,
    warmup_ratio: Option<f64>,
    weight_decay: Option<f64>,
    max_grad_norm: Option<f64>,
    max_seq_len: Option<usize>,
    max_train_samples: Option<usize>,
    eval_fraction: Option<f64>,
    max_eval_samples: Option<usize>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    checkpoint_every: Option<usize>,
    log_every: Option<usize>,
    precision: Option<Precision>,
    gradient_checkpointing: Option<bool>,
    device: Option<DeviceChoice>,
}

impl From<&MetamathArgs> for ArgsAsConfig {
    fn from(a: &MetamathArgs) -> Self {
        Self {
            model: a.model.clone(),
            data: a.data.clone(),
            data_root: a.data_root.clone(),
            method: a.method,
            r: a.r,
            lora_alpha: a.lora_alpha,
            targets: a.targets.clone(),
            epochs: a.epochs,
            batch_size: a.batch_size,
            grad_accumulation: a.grad_accumulation,
            lr: a.lr,
            schedule: a.schedule,
            warmup_ratio: a.warmup_ratio,
            weight_decay: a.weight_decay,
            max_grad_norm: a.max_grad_norm,
            max_seq_len: a.max_seq_len,
            max_train_samples: a.max_train_samples,
            eval_fraction: a.eval_fraction,
            max_eval_samples: a.max_eval_samples,
            seed: a.seed,
            out: a.out.clone(),
            checkpoint_every: a.checkpoint_every,
            log_every: a.log_every,
            precision: a.precision,
            gradient_checkpointing: a.gradient_checkpointing,
            device: a.device,
        }
    }
}

impl MetamathArgs {
    /// The flags that were given on the command line, as TOML keys.
    ///
    /// # Errors
    /// A value that does not serialise (never for valid flags).
    pub fn given(&self, matches: &ArgMatches) -> anyhow::Result<toml::Table> {
        let from_cli = |id: &str| {
            matches.try_get_raw(id).ok().flatten().is_some()
                && matches.value_source(id) == Some(ValueSource::CommandLine)
        };
        let all = toml::Table::try_from(ArgsAsConfig::from(self))?;
        Ok(all.into_iter().filter(|(k, _)| from_cli(k)).collect())
    }
}

/// The configuration of a run: a new one from defaults, `--config` and flags, or the saved one
/// of `--resume` with the given flags checked against it.
///
/// # Errors
/// Invalid files, unknown keys, or (on resume) flags that differ from the saved run.
pub fn resolve(
    defaults: MetamathConfig,
    args: &MetamathArgs,
    matches: &ArgMatches,
) -> anyhow::Result<MetamathConfig> {
    let given = args.given(matches)?;
    let Some(run) = &args.resume else {
        let mut config = defaults;
        if let Some(file) = &args.config {
            config = config.overlay(&MetamathConfig::read_partial(file)?)?;
        }
        return config.overlay(&given);
    };
    let saved = MetamathConfig::load(&run.join("config.toml")).with_context(|| {
        format!(
            "--resume {}: not the folder of an earlier run",
            run.display()
        )
    })?;
    let saved_table = toml::Table::try_from(&saved)?;
    let mut mismatches = Vec::new();
    let mut changeable = toml::Table::new();
    for (key, value) in &given {
        if CHANGEABLE_ON_RESUME.contains(&key.as_str()) {
            changeable.insert(key.clone(), value.clone());
        } else if key != "out" && saved_table.get(key) != Some(value) {
            mismatches.push(format!(
                "--{} {} (the run used {})",
                key.replace('_', "-"),
                value,
                saved_table
                    .get(key)
                    .map_or("nothing".to_string(), |v| v.to_string())
            ));
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "--resume {}: the flags do not match the run: {}; drop them or start a new run",
            run.display(),
            mismatches.join(", ")
        );
    }
    let mut config = saved.overlay(&changeable)?;
    config.out = Some(run.clone());
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MetamathArgs,
    }

    fn parse(argv: &[&str]) -> (MetamathArgs, ArgMatches) {
        let matches = Cli::command().get_matches_from(argv);
        let cli = Cli::from_arg_matches(&matches).unwrap();
        (cli.args, matches)
    }

    #[test]
    fn flags_override_defaults_and_the_fingerprint_ignores_paths() {
        let (args, m) = parse(&["x", "--r", "8", "--gradient-checkpointing", "--lr", "1e-3"]);
        let c = resolve(MetamathConfig::defaults(), &args, &m).unwrap();
        assert_eq!(c.r, 8);
        assert!(c.gradient_checkpointing);
        assert_eq!(c.lr, 1e-3);
        assert_eq!(c.schedule, DecayKind::Cosine);
        assert_eq!(c.effective_batch(), 64);
        assert_eq!(c.lora_alpha(), 16.0);
        let mut moved = c.clone();
        moved.model = PathBuf::from("/elsewhere/stories260K");
        moved.gradient_checkpointing = false;
        moved.out = Some("x".into());
        assert_eq!(moved.fingerprint(), c.fingerprint());
        moved.precision = Precision::Bf16;
        assert_ne!(moved.fingerprint(), c.fingerprint());
        let saved = toml::to_string_pretty(&c).unwrap();
        assert_eq!(toml::from_str::<MetamathConfig>(&saved).unwrap(), c);
    }
}
