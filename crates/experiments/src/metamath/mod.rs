//! `metamath`: the paper's NLG experiment as a preset of the causal-LM job ([`crate::lm`]):
//! MetaMathQA (or GSM8K train in its shape) with the Alpaca prompt, the loss on response
//! tokens only, and the paper's defaults ([`LmConfig::defaults`]); `gsm8k-eval` scores the
//! result. Only the flags, their help and the data flag are its own.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser};
use serde::Serialize;

use crate::lm::{LmArgs, LmConfig, LmJob};
use crate::train::job::{self, with_help, TrainArgs};

const AFTER_HELP: &str = "\
The defaults are the paper's (MiSS/Bone, arXiv 2409.15371): Bone r=64 on q,k,v,o,gate,up,down,
AdamW lr 2e-5 with cosine decay after 3 % warm-up, effective batch 64 (4 × 16 accumulated),
one epoch, 512 tokens, the Alpaca prompt with the loss on the response only. The default model
is stories260K (hidden 64, intermediate 172): Bone r=64 fits every projection; Bat needs an r
dividing every in and out size there, e.g. --method bat --r 4.

LLaMA-2-7B on CUDA:
  metamath --model Llama-2-7b-hf --data MetaMathQA-395K.json --batch-size 4 \\
    --grad-accumulation 16 --precision bf16 --gradient-checkpointing --device cuda
then: gsm8k-eval --model Llama-2-7b-hf --adapter runs/metamath-bone-r64-seed42/best";

/// `metamath`: fine-tune a LLaMA checkpoint on MetaMathQA.
#[derive(Debug, Parser)]
#[command(
    name = "metamath",
    version,
    about = "Fine-tune a LLaMA checkpoint on MetaMathQA (or GSM8K train) with Bone, Bat, LoRA or all parameters",
    after_help = AFTER_HELP
)]
pub struct MetamathCli {
    #[command(flatten)]
    args: MetamathArgs,
}

/// Entry point of the `metamath` binary.
pub fn main() -> ExitCode {
    let matches = with_help(MetamathCli::command(), HELP).get_matches();
    let cli = match MetamathCli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let args = cli.args;
    job::main::<LmJob, _>(LmConfig::defaults(), &args, &args.train, &matches)
}

/// Command-line flags; each overrides the TOML file and the defaults.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct MetamathArgs {
    /// The flags every training job has.
    #[command(flatten)]
    #[serde(flatten)]
    pub train: TrainArgs,
    /// MetaMathQA JSON (e.g. MetaMathQA-395K.json) [default: none, so GSM8K train (7,473
    /// problems) rendered as MetaMathQA rows is used instead, and the output says so].
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// The decoder fine-tuning flags `metamath` and `sft` share.
    #[command(flatten)]
    #[serde(flatten)]
    pub lm: LmArgs,
}

/// The MetaMath wording of the shared flags' help (see
/// [`with_help`](crate::train::job::with_help)).
pub const HELP: &[(&str, &str)] = &[
    ("model", "Hugging Face checkpoint folder of a LLaMA-architecture decoder (config.json, model.safetensors or shards, tokenizer.json), a llama.cpp .gguf file or a Hub id org/name (see --revision) [default: ../shared/models/stories260K]"),
    ("data_root", "Folder holding gsm8k/train.jsonl [default: $BONE_DATA_ROOT, else ../shared/datasets]"),
    ("r", "Rank (Bone, LoRA) or block size (Bat; must divide every target's in and out features, e.g. 4 on stories260K) [default: 64]"),
    ("lora_alpha", "LoRA α; the update is scaled by α/r [default: 2·r]"),
    ("targets", "Target modules: names such as `q_proj,v_proj`, `all`, `default` (PEFT's q_proj,v_proj) or `re:<regex>` over module paths [default: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]"),
    ("batch_size", "Examples per forward/backward pass [default: 4]"),
    ("lr", "Peak learning rate [default: 2e-5]"),
    ("schedule", "Learning-rate decay after warm-up [default: cosine]"),
    ("warmup_ratio", "Share of the optimiser steps used for linear warm-up [default: 0.03]"),
    ("max_seq_len", "Maximum tokens per sequence, BOS and EOS included [default: 512]"),
    ("max_train_samples", "Train on at most this many examples, drawn with the seed [default: all]"),
    ("max_eval_samples", "At most this many held-out examples [default: 256]"),
    ("out", "Run folder [default: runs/metamath-<method>-r<r>-seed<seed>]"),
];

/// The configuration of a run: a new one from `defaults`, `--config` and the flags given, or
/// the saved one of `--resume` with the given flags checked against it.
///
/// # Errors
/// Invalid files, unknown keys, or (on resume) flags that differ from the saved run.
pub fn resolve(
    defaults: LmConfig,
    args: &MetamathArgs,
    matches: &ArgMatches,
) -> anyhow::Result<LmConfig> {
    job::resolve(defaults, args, &args.train, matches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::LmMethod;
    use crate::lm::Precision;
    use crate::train::config;
    use crate::train::DecayKind;
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
        let c = resolve(LmConfig::defaults(), &args, &m).unwrap();
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
        assert_eq!(config::fingerprint(&moved), config::fingerprint(&c));
        moved.precision = Precision::Bf16;
        assert_ne!(config::fingerprint(&moved), config::fingerprint(&c));
        let saved = toml::to_string_pretty(&c).unwrap();
        assert_eq!(toml::from_str::<LmConfig>(&saved).unwrap(), c);
    }

    #[test]
    fn method_mini_takes_its_block_width_from_mini_r() {
        let (args, m) = parse(&["x", "--method", "mini", "--r", "16", "--mini-r", "4"]);
        let c = resolve(LmConfig::defaults(), &args, &m).unwrap();
        assert_eq!((c.method, c.r, c.mini_r), (LmMethod::Mini, 16, Some(4)));
        assert_eq!(c.out_dir(), PathBuf::from("runs/metamath-mini-r16-seed42"));
        let saved = toml::to_string_pretty(&c).unwrap();
        assert_eq!(toml::from_str::<LmConfig>(&saved).unwrap(), c);
        let check = |mini, r| {
            crate::train::job::check_mini_r(mini, r)
                .map_err(|e| e.to_string())
                .err()
        };
        assert_eq!(check(true, Some(4)), None);
        assert_eq!(
            check(true, None).as_deref(),
            Some("--method mini needs --mini-r N (the block width)")
        );
        assert_eq!(
            check(true, Some(0)).as_deref(),
            Some("--mini-r 0: expected a positive block width")
        );
        assert_eq!(
            check(false, Some(4)).as_deref(),
            Some("--mini-r 4: applies to --method mini only")
        );
    }
}
