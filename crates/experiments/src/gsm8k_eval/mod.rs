//! `gsm8k-eval`: GSM8K accuracy of a LLaMA checkpoint and an optional PEFT adapter, by
//! batched greedy generation with the Alpaca prompt the MetaMath scripts use (or the model's
//! chat template, `--chat-template`), the last number
//! of each generation (or the one after `The answer is:`) against the number after `####`.

pub mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

pub use run::{Gsm8kEvalJob, Gsm8kRecord, Gsm8kSummary};

use crate::device::{run_on, DeviceChoice};
use crate::llama::Precision;

/// `--split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SplitChoice {
    /// gsm8k/test.jsonl, 1,319 problems (the paper's numbers).
    #[default]
    Test,
    /// gsm8k/train.jsonl, 7,473 problems.
    Train,
}

impl SplitChoice {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Train => "train",
        }
    }
}

/// Score a LLaMA checkpoint (plus a PEFT adapter) on GSM8K by greedy generation.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gsm8k-eval",
    version,
    about = "GSM8K accuracy of a LLaMA checkpoint plus an optional PEFT adapter (batched greedy generation, KV cache)",
    after_help = "Each problem is prompted with the Alpaca template of the MetaMath scripts; the answer is the \
number after the last `The answer is:` in the generation, else its last number, compared with the number \
after `####` (thousands commas removed). The JSONL file has one line per problem: index, question, \
prompt_tokens, generation, predicted, gold, gold_text, correct, new_tokens, finish; <name>.summary.json \
beside it has the counts.\n\nPaper (LLaMA-2-7B, MetaMathQA 395K, 1 epoch): Bone r=64 48.16 %, LoRA r=36 \
40.75 %, PiSSA 43.89 %, DoRA 42.93 %."
)]
pub struct Gsm8kEvalArgs {
    /// Hugging Face checkpoint folder of a LLaMA-architecture decoder, a llama.cpp .gguf file
    /// (or a folder holding one), or a Hub id `org/name` found in or downloaded to the HF cache.
    #[arg(
        long,
        value_name = "DIR|FILE.gguf|ORG/NAME",
        default_value = "../shared/models/stories260K"
    )]
    pub model: PathBuf,
    /// Branch, tag or 40-hex commit of a Hub id given to --model [default: main].
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// PEFT adapter folder (adapter_config.json, adapter_model.safetensors), e.g. the best/
    /// folder of a metamath run, or a Hub id `org/name`.
    #[arg(long, value_name = "DIR|ORG/NAME")]
    pub adapter: Option<PathBuf>,
    /// Prompt with the model's chat template (tokenizer_config.json's `chat_template`, or the
    /// GGUF file's `tokenizer.chat_template`): the question as the one user turn, with the
    /// generation prompt; instead of the Alpaca prompt.
    #[arg(long)]
    pub chat_template: bool,
    /// Folder holding gsm8k/{train,test}.jsonl [default: $BONE_DATA_ROOT, else ../shared/datasets].
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Which split to score.
    #[arg(long, value_enum, default_value_t = SplitChoice::Test)]
    pub split: SplitChoice,
    /// Score only the first N problems of the split.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Prompts generated together (left-padded).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Stop a generation after this many tokens if it has not produced EOS (the MetaMath
    /// scripts allow 512).
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// JSONL file of the predictions [default: runs/gsm8k-eval/<model>[+<adapter>]-<split>.jsonl].
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
    /// Keep the adapter separate instead of merging it into the weights (slower generation,
    /// especially for Bat; the same tokens up to rounding). With --precision f16/bf16 the
    /// adapter always stays separate, in f32.
    #[arg(long)]
    pub no_merge: bool,
    /// Float type of the base weights (NdArray has only f32).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

/// Entry point of the `gsm8k-eval` binary.
pub fn main() -> ExitCode {
    let args = Gsm8kEvalArgs::parse();
    match run_on(args.device, Gsm8kEvalJob { args }) {
        Ok(s) => {
            println!(
                "accuracy {:.2} % ({} of {} correct, {} without a number, {} cut at the length limit) · \
                 {} tokens in {:.1} s ({:.0} tokens/s)",
                100.0 * s.accuracy,
                s.correct,
                s.problems,
                s.no_answer,
                s.hit_length_limit,
                s.new_tokens,
                s.seconds,
                s.tokens_per_second
            );
            println!("predictions: {}", s.predictions.display());
            println!(
                "summary:     {}",
                run::summary_path(&s.predictions).display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
