//! Fine-tuning BERT/RoBERTa on GLUE with Bone, Bat, LoRA, the head alone or everything.

pub mod config;
pub mod evaluation;
pub mod model;
pub mod run;
pub mod task;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

pub use config::{GlueArgs, GlueConfig, Method};
pub use run::{GlueJob, GlueSummary};

use crate::device::run_on;

/// `glue-sst2` / `glue`: fine-tune a BERT or RoBERTa checkpoint on a GLUE task.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct GlueCli {
    #[command(flatten)]
    args: GlueArgs,
}

/// Entry point of the GLUE binaries. `require_task`: `glue` needs `--task` (or a config).
pub fn main(name: &'static str, about: &'static str, require_task: bool) -> ExitCode {
    let command = GlueCli::command().name(name).about(about);
    let matches = command.get_matches();
    let cli = match GlueCli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let args = cli.args;
    if require_task && args.task.is_none() && args.config.is_none() && args.resume.is_none() {
        eprintln!("error: `{name}` needs --task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli)\n\nFor more information, try '--help'.");
        return ExitCode::from(2);
    }
    init_logging();
    let result = config::resolve(GlueConfig::defaults(), &args, &matches).and_then(|config| {
        let backend = config.device.resolve().name();
        let threads = config
            .threads
            .unwrap_or_else(|| crate::train::default_step_threads(backend));
        crate::train::keep_products_on_step_threads(backend, threads);
        let job = GlueJob {
            resume: args.resume.is_some(),
            display: args.display,
            stop_after_steps: args.stop_after_steps,
            config: config.clone(),
        };
        run_on(config.device, job).map(|summary| (config, summary))
    });
    match result {
        Ok((config, summary)) => {
            report(&config, &summary);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn report(config: &GlueConfig, s: &GlueSummary) {
    if s.interrupted {
        println!(
            "interrupted after {} steps; continue with: --resume {}",
            s.steps,
            s.run_dir.display()
        );
        return;
    }
    let best = s
        .best_metric
        .as_ref()
        .map(|(m, v, e)| format!("best dev {m} {v:.4} (epoch {e})"))
        .unwrap_or_else(|| "no evaluation".into());
    let last: Vec<String> = s
        .last_dev
        .iter()
        .filter(|(k, _)| k != "loss")
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect();
    println!(
        "{} · {} finished: {best}; last dev {} · {} steps in {:.1} min ({:.3} s/step) · peak memory {:.2} GiB · {}",
        s.task,
        s.method,
        last.join(", "),
        s.steps,
        s.train_seconds / 60.0,
        s.seconds_per_step,
        s.peak_memory_bytes as f64 / (1u64 << 30) as f64,
        s.backend
    );
    println!("run folder: {}", s.run_dir.display());
    println!("adapter:    {}", run::describe_best(config, &s.best_dir));
}

/// Sends `log` records at info level and above to stderr unless burn-train captures them.
fn init_logging() {
    // burn-train installs its own file logger (experiment.log in the run folder).
}
