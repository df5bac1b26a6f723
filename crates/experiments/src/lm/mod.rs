//! The causal-LM fine-tuning job: a LLaMA decoder trained with Bone, Bat, LoRA or all
//! parameters on tokenised prompt/response sequences, with the loss on response tokens,
//! gradient accumulation, optional packing, gradient checkpointing, half-precision bases,
//! resumable adapter checkpoints, a held-out dev loss (per epoch or every `eval_every` steps)
//! and sample generations from held-out prompts.
//!
//! `metamath` (MetaMathQA or GSM8K train with the Alpaca prompt, the paper's NLG experiment)
//! and `sft` (your own JSON / JSONL rows with the model's chat template) are presets of it:
//! their binaries differ only in flags, defaults and the data source ([`config::LmConfig`]'s
//! `format`: unset for MetaMath rows, set for [`sft_data`]).

pub mod config;
pub mod data;
pub mod evaluation;
pub mod metric;
pub mod model;
pub mod run;
pub mod samples;
pub mod sft_data;
pub mod task;

pub use config::{LmArgs, LmConfig, LmMethod, Precision, TrainOn};
pub use run::{LmJob, LmSummary};

use crate::train::job::{RunControl, TrainJob};

impl TrainJob for LmJob {
    type Config = LmConfig;

    fn new(config: LmConfig, control: RunControl) -> Self {
        Self { config, control }
    }

    fn report(_config: &LmConfig, summary: &LmSummary) {
        report(summary);
    }

    fn interrupted(summary: &LmSummary) -> bool {
        summary.run.interrupted
    }
}

fn report(s: &LmSummary) {
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
    let mfu = s
        .mfu
        .as_ref()
        .map(|m| format!(" · {}", m.describe_step()))
        .unwrap_or_default();
    println!(
        "{} finished: {losses}; dev {} · {} steps in {:.1} min · {:.0} tokens/s · peak memory {:.2} GiB · {} {}{mfu}",
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
