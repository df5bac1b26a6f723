//! `cargo xtask …`: the project's chores.
//!
//! - `cargo xtask ci` — every check CI runs, in CI's order: formatting, clippy, the test
//!   suite on NdArray with the adapter suite on WGPU in the same build (Mesa lavapipe without
//!   a GPU), the examples, a CUDA type-check and the GPU check's dry run. `--skip STEP` leaves
//!   a step out (`fmt`, `clippy`, `test`, `examples`, `wgpu` — the WGPU suite within `test`,
//!   `cuda`, `gpu`).
//! - `cargo xtask gpu [--dry-run] [--out DIR] [--budget-secs N]` — the GPU check on a machine
//!   with the NVIDIA driver (see [`gpu`]): CUDA tests, benchmarks and training runs in a
//!   bounded time, results in one folder.
//! - `cargo xtask launch --nproc N -- JOB ARGS…` — N data-parallel ranks of a training job
//!   on this machine, with torchrun's environment (see [`launch`]).
//! - `cargo xtask bench [--features wgpu|cuda]` — runs the benchmarks and rewrites their
//!   result tables under `benchmarks/`.
//! - `cargo xtask fuzz [--secs N]` — the parsers of user files fuzzed for N seconds each
//!   (see `fuzz.rs`).
//! - `cargo xtask peak [--quick]` — f32 GEMM GFLOP/s through NdArray and Flex next to the
//!   CPU's theoretical peak, written to `benchmarks/peak.md`.
//! - `cargo xtask sst2-compare` — the SST-2 comparison of Bone, LoRA and Bat over seeds,
//!   written to `benchmarks/glue_sst2.md`.
//! - `cargo xtask glue-compare` — GLUE tasks × methods × seeds, ours and PyTorch + PEFT,
//!   resumable, written to `benchmarks/glue.md` (see [`glue_compare`]).
//! - `cargo xtask assets [--shared DIR]` — checks that the shared data, weights and golden
//!   files the tests read are present and match their SHA256SUMS.
//! - `cargo xtask assets --download [--to DIR]` — fetches them on a machine without
//!   `../shared` (see `assets.rs`).

mod assets;

mod child;
mod disk;
mod fuzz;
mod glue_compare;
mod gpu;
mod launch;
mod peak;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("assets") if args.iter().any(|a| a == "--download") => assets::download(&args[1..]),
        Some("assets") => assets(&args[1..]),
        Some("sst2-compare") => sst2_compare(&args[1..]),
        Some("glue-compare") => glue_compare::glue_compare(&args[1..], &workspace_root()),
        Some("gpu") => gpu::gpu(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("peak") => peak::peak(&args[1..]),
        Some("launch") => launch::launch(&args[1..]),
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
  ci [--skip STEP]...     fmt, clippy, test (ndarray; with the adapter suite on WGPU unless --skip wgpu), examples (run each), cuda (cargo check),
                          gpu (`gpu --dry-run --out runs/gpu-check-dry`)
  fuzz [--secs N]         fuzz the parsers of user files (safetensors, config.json, adapter_config.json,
                          TSV, JSONL, GGUF) for N seconds each (default 30): no panic, bounded memory
  launch --nproc N [--master-port P] [--release] [--features F] -- JOB ARGS...
                          N data-parallel ranks of a training job (glue-sst2, glue, metamath) on this
                          machine, with WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR=127.0.0.1,
                          MASTER_PORT (default 29500) set; each output line prefixed [rank K]
  bench [--features F]    run the benchmarks, rewriting the tables in benchmarks/
  peak [--quick]          f32 GEMM GFLOP/s of NdArray (matrixmultiply) and Flex (gemm) on all cores next to
                          the CPU's theoretical peak, written to benchmarks/peak.md
  assets [--shared DIR]   check ../shared (data, weights, golden files) against SHA256SUMS
  assets --download [--to DIR]
                          fetch GLUE, GSM8K (into DIR, default $BONE_DATA_ROOT or datasets/) and the
                          default models (into the Hugging Face cache), sha256-checked, resumable
  sst2-compare [--seeds N] [--samples N] [--methods bone,lora,bat] [--device D] [--reference PYTHON] [--reuse]
                          Bone vs LoRA vs Bat on SST-2 (release build), mean ± std over seeds,
                          written to benchmarks/glue_sst2.md (with --reference, PyTorch + PEFT too;
                          --reuse keeps finished runs in runs/sst2-compare)
  glue-compare [--tasks rte,mrpc,cola,stsb,sst2] [--methods bone,lora,bat,head] [--seeds 42,43,44]
      [--impls ours,peft] [--no-sweep] [--python PYTHON] [--glue BIN | --no-build] [--dry-run] [--table-only]
                          GLUE matrix (default rte,mrpc,cola; every method; seeds 42-44; both), ours
                          (target/debug/glue, built first, or --glue BIN) and PyTorch + PEFT (benchmarks/reference/glue_peft.py
                          run by --python, default $BONE_PEFT_PYTHON or python3); a 3-value lr sweep
                          per task and method on seed 42 (ours) fixes the lr first (--no-sweep: the
                          defaults); resumable: a cell whose benchmarks/glue/<task>/<cell>.json
                          exists is not rerun; rewrites benchmarks/glue.md. Run it under nice -n 19
  gpu [--dry-run] [--out DIR] [--budget-secs N] [--step-timeout N] [--skip STEP]...
      [--prebuilt DIR | --bundle DIR] [--shared DIR] [--sst2-samples N]
                          the GPU check, for a machine with the NVIDIA driver and no network, in
                          --budget-secs (default 480) of wall time: builds (or, with --prebuilt,
                          takes) the --features cuda binaries; runs the bone-module suite and every
                          models test on CUDA (f32: the suites have no bf16 form on the GPU); the
                          adapter_layer and causal_lm_train benches (their cuda sections in
                          benchmarks/) and 40 GLUE steps of Bone/LoRA/Bat (benchmarks/glue_step.md);
                          the default glue-sst2 job on --sst2-samples sentences (default 4000); one
                          bf16 step of a random LLaMA h2048 x 16 layers with gradient checkpointing
                          for Bone r=64, LoRA r=32, Bat. Each step has a deadline (--step-timeout
                          caps it) and is killed at it; steps the budget cannot fit are skipped with
                          the reason. Writes DIR/summary.md, summary.json, logs/, runs/ and copies of
                          benchmarks/ (DIR defaults to runs/gpu-check). --dry-run: the same plan on
                          WGPU, cheap enough for CI (type-checks the CUDA build, runs one adapter
                          test on WGPU, skips the long steps with reasons). --bundle DIR: build the
                          CUDA binaries and copy them with this xtask and a manifest into DIR, for
                          `DIR/xtask gpu --prebuilt DIR` where cargo cannot build. --skip takes a
                          step (tests:models/llama_golden) or group (build, tests, bench, train)";

/// Where cargo builds: `CARGO_TARGET_DIR` if set, else `target/` of the workspace.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs `cargo ARGS` in the workspace root, echoing the command and its duration.
fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args).envs(envs.iter().copied());
    timed(&format!("cargo {}", args.join(" ")), command)
}

/// Runs `command` in the workspace root as `line`, echoing it, its duration and the disk.
fn timed(line: &str, mut command: Command) -> Result<(), String> {
    println!("\n==> {line}");
    let start = Instant::now();
    let status = command
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not start `{line}`: {e}"))?;
    println!(
        "<== {line}: {} in {:.0?}",
        if status.success() { "ok" } else { "FAILED" },
        start.elapsed()
    );
    println!("    {}", disk::report(&target_dir()));
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

/// The examples `cargo xtask ci` runs (every file of `examples/`).
const EXAMPLES: [&str; 4] = [
    "bone_on_your_model",
    "switch_backend",
    "load_peft_adapter",
    "finetune_classifier",
];

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
        cargo(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
    }
    if run("test") {
        // One build for the NdArray tests and the adapter suite on WGPU (bone-module's
        // `wgpu_suite`; Mesa's lavapipe runs it on the CPU): a separate `-p bone-module
        // --features wgpu` build resolved features anew and rebuilt everything (9 minutes).
        let mut args = vec!["test", "--workspace"];
        if run("wgpu") {
            args.extend(["--features", "bone-module/wgpu"]);
        }
        // lavapipe compiles every kernel with LLVM; without its optimisation passes the WGPU
        // suite's slowest test runs in 62 s instead of 110 s on a cold shader cache (the
        // suite's tensors are small, so the unoptimised kernels cost little).
        let lavapipe = [("GALLIVM_PERF", "nopt")];
        let envs: &[(&str, &str)] = if std::env::var_os("GALLIVM_PERF").is_some() {
            &[]
        } else {
            &lavapipe
        };
        cargo(&args, envs)?;
    }
    if run("examples") {
        for example in EXAMPLES {
            if run("test") {
                // `cargo test --workspace` has just built them (and put them in
                // target/debug/examples/); `cargo run -p bone-examples` would resolve features
                // for that one package and rebuild the Burn stack (about 4 minutes cold).
                let exe = target_dir()
                    .join("debug/examples")
                    .join(format!("{example}{}", std::env::consts::EXE_SUFFIX));
                timed(&format!("examples/{example}"), Command::new(exe))?;
            } else {
                let args = [
                    "run",
                    "--quiet",
                    "-p",
                    "bone-examples",
                    "--example",
                    example,
                ];
                cargo(&args, &[])?;
            }
        }
    }
    if std::env::var_os("CI").is_some() {
        // CI's disk: the ndarray build's executables have run; the WGPU build needs the room.
        let freed = disk::prune_executables(&target_dir().join("debug"));
        println!(
            "\n(CI) removed the linked executables of target/debug: {:.2} GiB freed",
            freed as f64 / (1u64 << 30) as f64
        );
    }
    if run("cuda") {
        // CUDA compiles with no toolkit (cudarc loads the driver at run time).
        cargo(
            &[
                "check",
                "--workspace",
                "--all-targets",
                "--features",
                "bone-module/cuda,models/cuda,experiments/cuda",
            ],
            &[],
        )?;
    }
    if run("gpu") {
        // The GPU check's plan on WGPU: reuses the cuda check and the wgpu test build above.
        println!("\n==> cargo xtask gpu --dry-run --out runs/gpu-check-dry");
        let step = Instant::now();
        let args = ["--dry-run", "--out", "runs/gpu-check-dry"].map(String::from);
        gpu::gpu(&args)?;
        println!("<== gpu --dry-run: ok in {:.0?}", step.elapsed());
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
    let feature_args: Vec<&str> = features
        .iter()
        .flat_map(|f| ["--features", f.as_str()])
        .collect();
    // Each benchmark rewrites its own section (per backend) of its file in benchmarks/.
    for (package, kind, target) in [
        ("bone-module", "--bench", "adapter_layer"),
        ("models", "--bench", "throughput"),
        ("experiments", "--bench", "causal_lm_train"),
        ("data", "--example", "bench_load"),
    ] {
        let mut args = if kind == "--bench" {
            vec!["bench", "-p", package, kind, target]
        } else {
            vec!["run", "--release", "-p", package, kind, target]
        };
        if package != "data" {
            args.extend(&feature_args);
        }
        cargo(&args, &[])?;
    }
    Ok(())
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

/// One finished run's figures, from its `summary.json`.
struct RunFigures {
    accuracy: f64,
    seconds_per_step: f64,
    train_seconds: f64,
    peak_gib: f64,
    trainable: u64,
}

fn sst2_compare(args: &[String]) -> Result<(), String> {
    let mut seeds = 3u64;
    let mut samples = "4000".to_string();
    let mut methods = vec!["bone".to_string(), "lora".to_string(), "bat".to_string()];
    let mut device = "ndarray".to_string();
    let mut reference: Option<String> = None;
    let mut reuse = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seeds" => seeds = value()?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--samples" => samples = value()?,
            "--methods" => methods = value()?.split(',').map(String::from).collect(),
            "--device" => device = value()?,
            "--reference" => reference = Some(value()?),
            "--reuse" => reuse = true,
            other => return Err(format!("unknown option `{other}` for `sst2-compare`")),
        }
    }
    let root = workspace_root();
    cargo(
        &[
            "build",
            "--release",
            "-p",
            "experiments",
            "--bin",
            "glue-sst2",
        ],
        &[],
    )?;
    let exe = root.join("target/release/glue-sst2");
    let mut per_seed: Vec<(String, Vec<f64>)> = Vec::new();
    let mut table = String::new();
    table.push_str(&format!(
        "| method | trainable params | dev accuracy (mean ± std over {seeds} seeds) | s/step | train time | peak memory | backend |\n|---|---:|---:|---:|---:|---:|---|\n"
    ));
    for method in &methods {
        let mut runs = Vec::new();
        for seed in 0..seeds {
            let seed = 42 + seed;
            let out = root.join(format!("runs/sst2-compare/{method}-seed{seed}"));
            if reuse && out.join("summary.json").is_file() {
                println!("reusing {}", out.display());
                runs.push(read_summary(&out.join("summary.json"))?);
                continue;
            }
            let _ = std::fs::remove_dir_all(&out);
            let (r, alpha) = if method == "lora" {
                ("32", "64")
            } else {
                ("64", "64")
            };
            let args = [
                "--max-train-samples",
                samples.as_str(),
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--max-seq-len",
                "64",
                "--lr",
                "5e-4",
                "--warmup-ratio",
                "0.06",
                "--method",
                method.as_str(),
                "--r",
                r,
                "--lora-alpha",
                alpha,
                "--seed",
                &seed.to_string(),
                "--device",
                device.as_str(),
                "--display",
                "plain",
                "--checkpoint-every",
                "0",
                "--out",
                out.to_str().unwrap_or_default(),
            ];
            println!("\n==> glue-sst2 {}", args.join(" "));
            let status = Command::new(&exe)
                .args(args)
                .current_dir(&root)
                .status()
                .map_err(|e| format!("running {}: {e}", exe.display()))?;
            if !status.success() {
                return Err(format!(
                    "glue-sst2 --method {method} --seed {seed} failed ({status})"
                ));
            }
            runs.push(read_summary(&out.join("summary.json"))?);
        }
        per_seed.push((
            format!("{method} (this crate)"),
            runs.iter().map(|r| r.accuracy).collect(),
        ));
        table.push_str(&row(&format!("{method} (this crate)"), &runs, &device));
    }
    if let Some(python) = reference {
        for method in &methods {
            let mut runs = Vec::new();
            for seed in 0..seeds {
                let output = Command::new(&python)
                    .args([
                        "benchmarks/reference/glue_sst2_peft.py",
                        "--shared",
                        "../shared",
                        "--method",
                        method,
                        "--samples",
                        &samples,
                        "--seed",
                        &(42 + seed).to_string(),
                    ])
                    .env("OMP_NUM_THREADS", "2")
                    .current_dir(&root)
                    .output()
                    .map_err(|e| format!("running {python}: {e}"))?;
                let text = String::from_utf8_lossy(&output.stdout);
                let line = text.lines().last().unwrap_or_default();
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| format!("reference output {line:?}: {e}"))?;
                runs.push(RunFigures {
                    accuracy: v["dev_accuracy"].as_f64().unwrap_or(f64::NAN),
                    seconds_per_step: v["median_step_seconds"].as_f64().unwrap_or(f64::NAN),
                    train_seconds: v["train_seconds"].as_f64().unwrap_or(f64::NAN),
                    peak_gib: f64::NAN,
                    trainable: v["trainable_params"].as_u64().unwrap_or(0),
                });
            }
            per_seed.push((
                format!("{method} (PyTorch + PEFT)"),
                runs.iter().map(|r| r.accuracy).collect(),
            ));
            table.push_str(&row(
                &format!("{method} (PyTorch + PEFT)"),
                &runs,
                "torch cpu, 2 threads",
            ));
        }
    }
    table.push_str(&seed_table(&per_seed, seeds));
    let text = format!(
        "# SST-2: Bone vs LoRA vs Bat\n\n`cargo xtask sst2-compare --seeds {seeds} --samples {samples} --device {device}`: all-MiniLM-L6-v2, \
         {samples} random SST-2 train sentences (a different draw per seed), 1 epoch, batch 32, max length 64, AdamW lr 5e-4 with 6 % \
         warm-up and linear decay, adapters on all 36 encoder linears (Bone r=64, Bat r=64, LoRA r=32 α=64) plus the classification \
         head; dev accuracy on all 872 dev sentences. Machine: {} CPU threads.\n\n{table}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let path = root.join("benchmarks/glue_sst2.md");
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}

/// Dev accuracy of every run, one column per seed (each seed draws its own training sentences).
fn seed_table(rows: &[(String, Vec<f64>)], seeds: u64) -> String {
    let mut out = String::from("\nDev accuracy per seed (a seed draws the same sentences for every method of one implementation; this crate and Python draw differently):\n\n| run |");
    let seeds: Vec<u64> = (42..42 + seeds).collect();
    for seed in &seeds {
        out.push_str(&format!(" seed {seed} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(seeds.len()));
    out.push('\n');
    for (label, accuracies) in rows {
        out.push_str(&format!("| {label} |"));
        for accuracy in accuracies {
            out.push_str(&format!(" {:.2} % |", accuracy * 100.0));
        }
        out.push('\n');
    }
    out
}

fn read_summary(path: &Path) -> Result<RunFigures, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(RunFigures {
        accuracy: v["best_metric"][1].as_f64().unwrap_or(f64::NAN),
        seconds_per_step: v["seconds_per_step"].as_f64().unwrap_or(f64::NAN),
        train_seconds: v["train_seconds"].as_f64().unwrap_or(f64::NAN),
        peak_gib: v["peak_memory_bytes"].as_f64().unwrap_or(f64::NAN) / (1u64 << 30) as f64,
        trainable: v["trainable_params"].as_u64().unwrap_or(0),
    })
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn row(label: &str, runs: &[RunFigures], backend: &str) -> String {
    let (acc, acc_std) = mean_std(&runs.iter().map(|r| r.accuracy).collect::<Vec<_>>());
    let (sps, _) = mean_std(&runs.iter().map(|r| r.seconds_per_step).collect::<Vec<_>>());
    let (secs, _) = mean_std(&runs.iter().map(|r| r.train_seconds).collect::<Vec<_>>());
    let (peak, _) = mean_std(&runs.iter().map(|r| r.peak_gib).collect::<Vec<_>>());
    let peak = if peak.is_finite() {
        format!("{peak:.2} GiB")
    } else {
        "—".into()
    };
    format!(
        "| {label} | {} | {:.2} ± {:.2} % | {sps:.3} | {:.1} min | {peak} | {backend} |\n",
        runs.first().map_or(0, |r| r.trainable),
        acc * 100.0,
        acc_std * 100.0,
        secs / 60.0
    )
}
