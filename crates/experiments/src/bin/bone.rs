//! `bone`: run, generate with, merge and inspect Hugging Face checkpoints with Bone, Bat or
//! LoRA adapters. `bone --help` lists the commands; `bone <command> --help` their options.
//!
//! Exit codes: 0 success, 1 runtime error (printed with its causes), 2 usage error.

use std::process::ExitCode;

use clap::Parser;
use experiments::cli::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}
