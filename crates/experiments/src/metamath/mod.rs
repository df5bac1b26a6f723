//! Fine-tuning a LLaMA decoder on MetaMathQA (or GSM8K train in its shape) with Bone, Bat,
//! LoRA or all parameters: the Alpaca prompt, the loss on response tokens only, gradient
//! accumulation, gradient checkpointing, half-precision bases, resumable adapter checkpoints
//! and a held-out dev loss. The paper's NLG experiment; `gsm8k-eval` scores the result.

pub mod config;
pub mod data;
pub mod evaluation;
pub mod metric;
pub mod model;
pub mod run;
pub mod task;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

pub use config::{LmMethod, MetamathArgs, MetamathConfig, Precision};
pub use run::{MetamathJob, MetamathSummary};

use crate::train::job::{self, with_help, RunControl, TrainJob};

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
    let matches = with_help(MetamathCli::command(), config::HELP).get_matches();
    let cli = match MetamathCli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let args = cli.args;
    job::main::<MetamathJob, _>(MetamathConfig::defaults(), &args, &args.train, &matches)
}

impl TrainJob for MetamathJob {
    type Config = MetamathConfig;

    fn new(config: MetamathConfig, control: RunControl) -> Self {
        Self { config, control }
    }

    fn report(_config: &MetamathConfig, summary: &MetamathSummary) {
        report(summary);
    }

    fn interrupted(summary: &MetamathSummary) -> bool {
        summary.run.interrupted
    }
}

fn report(s: &MetamathSummary) {
    let run = &s.run;
    if run.interrupted {
        println!(
            "interrupted after {} of {} steps; continue with: --resume {}",
            run.steps,
            s.total_steps,
            run.run_dir.display()
        );
        return;
    }
    let losses = match (s.first_train_loss, s.last_train_loss) {
        (Some(a), Some(b)) => format!("train loss {a:.4} → {b:.4}"),
        _ => "no logged training loss".into(),
    };
    let dev: Vec<String> = run
        .last_dev
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect();
    println!(
        "{} finished: {losses}; dev {} · {} steps in {:.1} min · {:.0} tokens/s · peak memory {:.2} GiB · {} {}",
        s.method,
        dev.join(", "),
        run.steps,
        run.train_seconds / 60.0,
        s.tokens_per_second,
        run.peak_memory_bytes as f64 / (1u64 << 30) as f64,
        s.backend,
        s.precision.name(),
    );
    println!("run folder: {}", run.run_dir.display());
    println!(
        "{}:    {}",
        if s.method == "full" {
            "model"
        } else {
            "adapter"
        },
        run.best_dir.display()
    );
}
