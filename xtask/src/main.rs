//! `cargo xtask …`: the project's chores.
//!
//! - `cargo xtask ci` — every check CI runs, in CI's order: formatting, clippy, the test
//!   suite on NdArray, the adapter tests on WGPU (Mesa lavapipe without a GPU), and a CUDA
//!   type-check. `--skip STEP` leaves a step out (`fmt`, `clippy`, `test`, `wgpu`, `cuda`).
//! - `cargo xtask bench [--features wgpu|cuda]` — runs the benchmarks and rewrites their
//!   result tables under `benchmarks/`.
//! - `cargo xtask assets [--shared DIR]` — checks that the shared data, weights and golden
//!   files the tests read are present and match their SHA256SUMS.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("assets") => assets(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{}", HELP);
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "usage: cargo xtask <task>

tasks:
  ci [--skip STEP]...     fmt, clippy, test (ndarray), wgpu (adapter tests on WGPU), cuda (cargo check)
  bench [--features F]    run the benchmarks, rewriting the tables in benchmarks/
  assets [--shared DIR]   check ../shared (data, weights, golden files) against SHA256SUMS";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs `cargo ARGS` in the workspace root, echoing the command and its duration.
fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let line = format!("cargo {}", args.join(" "));
    println!("\n==> {line}");
    let start = Instant::now();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not start `{line}`: {e}"))?;
    println!("<== {line}: {} in {:.0?}", if status.success() { "ok" } else { "FAILED" }, start.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

fn ci(args: &[String]) -> Result<(), String> {
    let mut skip = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--skip" => skip.push(it.next().ok_or("--skip needs a step name")?.clone()),
            other => return Err(format!("unknown option `{other}` for `ci`")),
        }
    }
    let run = |step: &str| !skip.iter().any(|s| s == step);
    let start = Instant::now();
    if run("fmt") {
        cargo(&["fmt", "--all", "--check"], &[])?;
    }
    if run("clippy") {
        cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])?;
    }
    if run("test") {
        cargo(&["test", "--workspace"], &[])?;
    }
    if run("wgpu") {
        // The same adapter suite on the WGPU backend; Mesa's lavapipe runs it on the CPU.
        cargo(&["test", "-p", "bone-module", "--features", "wgpu"], &[])?;
    }
    if run("cuda") {
        // CUDA compiles with no toolkit (cudarc loads the driver at run time).
        cargo(&["check", "--workspace", "--features", "bone-module/cuda,models/cuda,experiments/cuda"], &[])?;
    }
    println!("\nci: all steps passed in {:.0?}", start.elapsed());
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    let mut features = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--features" => features.push(it.next().ok_or("--features needs a value")?.clone()),
            other => return Err(format!("unknown option `{other}` for `bench`")),
        }
    }
    let feature_args: Vec<&str> = features.iter().flat_map(|f| ["--features", f.as_str()]).collect();
    let mut adapter = vec!["bench", "-p", "bone-module", "--bench", "adapter_layer"];
    adapter.extend(&feature_args);
    cargo(&adapter, &[])
}

fn assets(args: &[String]) -> Result<(), String> {
    let shared = match args {
        [flag, dir] if flag == "--shared" => PathBuf::from(dir),
        [] => workspace_root().join("../shared"),
        _ => return Err("usage: cargo xtask assets [--shared DIR]".into()),
    };
    let sums = shared.join("SHA256SUMS");
    if !sums.is_file() {
        return Err(format!(
            "{} not found: the shared data, weights and golden files belong in {} (see README.md, \"Data and weights\")",
            sums.display(),
            shared.display()
        ));
    }
    println!("==> sha256sum -c SHA256SUMS in {}", shared.display());
    let status = Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(&shared)
        .status()
        .map_err(|e| format!("could not run sha256sum: {e}"))?;
    if status.success() {
        println!("all shared files present and intact");
        Ok(())
    } else {
        Err("some shared files are missing or changed (listed above)".into())
    }
}
