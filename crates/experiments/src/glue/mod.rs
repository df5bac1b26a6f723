//! Fine-tuning BERT/RoBERTa on GLUE with Bone, Bat, LoRA, the head alone or everything.

pub mod config;
pub mod evaluation;
pub mod indices;
pub mod model;
pub mod run;
pub mod task;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

pub use config::{GlueArgs, GlueConfig, Method};
pub use run::{GlueJob, GlueSummary};

use crate::train::distributed::{self, DistributedArgs};
use crate::train::job::{self, with_help, RunControl, TrainJob};

/// `glue-sst2` / `glue`: fine-tune a BERT or RoBERTa checkpoint on a GLUE task.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct GlueCli {
    #[command(flatten)]
    args: GlueArgs,
    /// Data parallelism (not part of the run's configuration).
    #[command(flatten)]
    distributed: DistributedArgs,
}

/// Entry point of the GLUE binaries. `require_task`: `glue` needs `--task` (or a config).
pub fn main(name: &'static str, about: &'static str, require_task: bool) -> ExitCode {
    let command = with_help(GlueCli::command().name(name).about(about), config::HELP);
    let matches = command.get_matches();
    let cli = match GlueCli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(e) = distributed::init(&cli.distributed) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let args = cli.args;
    if require_task
        && args.task.is_none()
        && args.train.config.is_none()
        && args.train.resume.is_none()
    {
        eprintln!("error: `{name}` needs --task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli)\n\nFor more information, try '--help'.");
        return ExitCode::from(2);
    }
    job::main::<GlueJob, _>(GlueConfig::defaults(), &args, &args.train, &matches)
}

impl TrainJob for GlueJob {
    type Config = GlueConfig;

    fn new(config: GlueConfig, control: RunControl) -> Self {
        Self { config, control }
    }

    fn report(config: &GlueConfig, summary: &GlueSummary) {
        report(config, summary);
    }

    fn interrupted(summary: &GlueSummary) -> bool {
        summary.run.interrupted
    }
}

fn report(config: &GlueConfig, s: &GlueSummary) {
    let run = &s.run;
    if run.interrupted {
        println!(
            "interrupted after {} steps; continue with: --resume {}",
            run.steps,
            run.run_dir.display()
        );
        return;
    }
    let best = s
        .best_metric
        .as_ref()
        .map(|(m, v, e)| format!("best dev {m} {v:.4} (epoch {e})"))
        .unwrap_or_else(|| "no evaluation".into());
    let last: Vec<String> = run
        .last_dev
        .iter()
        .filter(|(k, _)| k != "loss")
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect();
    let mfu = s
        .mfu
        .as_ref()
        .map(|m| format!(" · {}", m.describe_step()))
        .unwrap_or_default();
    println!(
        "{} · {} finished: {best}; last dev {} · {} steps in {:.1} min ({:.3} s/step) · peak memory {:.2} GiB · {}{mfu}",
        s.task,
        s.method,
        last.join(", "),
        run.steps,
        run.train_seconds / 60.0,
        s.seconds_per_step,
        run.peak_memory_bytes as f64 / (1u64 << 30) as f64,
        s.backend
    );

    println!("run folder: {}", run.run_dir.display());
    println!("adapter:    {}", run::describe_best(config, &run.best_dir));
}
