//! `sft`: fine-tune a LLaMA decoder on your own data (Alpaca, chat, ShareGPT,
//! prompt/completion, plain text or MetaMathQA rows, JSON or JSON Lines) with Bone, Bat, LoRA
//! or all parameters.
//!
//! A preset of the causal-LM job ([`crate::lm`]), as `metamath` is: the same [`LmConfig`]
//! (with `format` set), training task, model, dashboard, adapter-only checkpoints,
//! `--resume`, eval loss and perplexity, `--packing` and sample generations; only the rows
//! are read with [`data::sft`] (see [`crate::lm::sft_data`]) and rendered with the model's
//! chat template (else the Alpaca prompt).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use serde::Serialize;

use crate::lm::{LmArgs, LmConfig, LmJob, TrainOn};
use crate::train::job::{self, with_help, TrainArgs};

const AFTER_HELP: &str = "\
Each row is a JSON object (a JSON array of them, or one per line); --format auto picks the shape
from the first row's keys:
  alpaca             {\"instruction\": \"…\", \"input\": \"…\", \"output\": \"…\"}
  chat               {\"messages\": [{\"role\": \"user\", \"content\": \"…\"}, {\"role\": \"assistant\", \"content\": \"…\"}]}
  sharegpt           {\"conversations\": [{\"from\": \"human\", \"value\": \"…\"}, {\"from\": \"gpt\", \"value\": \"…\"}]}
  prompt-completion  {\"prompt\": \"…\", \"completion\": \"…\"}
  text               {\"text\": \"…\"}
  metamath           {\"query\": \"…\", \"response\": \"…\"}
Conversations use the model's chat template (tokenizer_config.json) when it has one, else the
Alpaca prompt; the output says which. Other column names: --field-map instruction=question,output=answer.

Example:
  sft --model ../shared/models/stories260K --data my.jsonl --eval-fraction 0.05 --method lora --r 8";

/// `sft`: fine-tune a LLaMA checkpoint on your own JSON / JSONL data.
#[derive(Debug, Parser)]
#[command(
    name = "sft",
    version,
    about = "Fine-tune a LLaMA checkpoint on your own data (Alpaca, chat, ShareGPT, prompt/completion, text JSON or JSONL) with Bone, Bat, LoRA or all parameters",
    after_help = AFTER_HELP
)]
pub struct SftCli {
    #[command(flatten)]
    args: SftArgs,
}

/// The `sft` flags; each overrides the TOML file and the defaults.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct SftArgs {
    /// The flags every training job has.
    #[command(flatten)]
    #[serde(flatten)]
    pub train: TrainArgs,
    /// The decoder fine-tuning flags shared with `metamath`.
    #[command(flatten)]
    #[serde(flatten)]
    pub lm: LmArgs,
    /// The training examples: a JSON array or JSON Lines file.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Row shape of --data (and --eval-data): auto, alpaca, chat, sharegpt,
    /// prompt-completion, text or metamath [default: auto].
    #[arg(long)]
    pub format: Option<String>,
    /// Column renames before the format is read, `key=column[,key=column…]`, e.g.
    /// `instruction=question,output=answer` [default: none].
    #[arg(long, value_name = "MAP")]
    pub field_map: Option<String>,
    /// Evaluation examples in a separate file (same format) instead of --eval-fraction of
    /// --data.
    #[arg(long, value_name = "FILE")]
    pub eval_data: Option<PathBuf>,
    /// Which tokens carry the loss [default: response].
    #[arg(long, value_enum)]
    pub train_on: Option<TrainOn>,
    /// Drop malformed rows (counted in the output) instead of failing on the first one.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub skip_bad_rows: Option<bool>,
}

/// The wording of the shared flags' help for `sft`.
const HELP: &[(&str, &str)] = &[
    ("model", "Hugging Face checkpoint folder of a LLaMA-architecture decoder (config.json, model.safetensors or shards, tokenizer.json, tokenizer_config.json for the chat template), a llama.cpp .gguf file (its tokenizer and tokenizer.chat_template) or a Hub id org/name (see --revision) [default: ../shared/models/stories260K]"),
    ("data_root", "Unused by sft (kept for config files shared with metamath)"),
    ("r", "Rank (Bone, LoRA) or block size (Bat; must divide every target's in and out features) [default: 64]"),
    ("lora_alpha", "LoRA α; the update is scaled by α/r [default: 2·r]"),
    ("targets", "Target modules: names such as `q_proj,v_proj`, `all`, `default` or `re:<regex>` over module paths [default: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]"),
    ("batch_size", "Examples per forward/backward pass [default: 4]"),
    ("lr", "Peak learning rate [default: 2e-5]"),
    ("schedule", "Learning-rate decay after warm-up [default: cosine]"),
    ("warmup_ratio", "Share of the optimiser steps used for linear warm-up [default: 0.03]"),
    ("max_seq_len", "Maximum tokens per sequence, special tokens included [default: 512]"),
    ("max_train_samples", "Train on at most this many examples [default: all]"),
    ("max_eval_samples", "At most this many evaluation examples [default: 256]"),
    ("out", "Run folder [default: runs/sft-<method>-r<r>-seed<seed>]"),
];

/// The `sft` defaults: the MetaMath (paper) training setup, the data read as `--format auto`.
pub fn defaults() -> LmConfig {
    LmConfig {
        format: Some("auto".into()),
        ..LmConfig::defaults()
    }
}

/// Entry point of the `sft` binary.
pub fn main() -> ExitCode {
    let matches = with_help(SftCli::command(), HELP).get_matches();
    let cli = match SftCli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let args = cli.args;
    job::main::<LmJob, _>(defaults(), &args, &args.train, &matches)
}
