//! `cargo xtask gpu`: the whole GPU check in one bounded run, for a machine with the NVIDIA
//! driver and no network.
//!
//! Steps, in order (each with its own deadline, all within `--budget-secs`):
//! 1. `build`: the CUDA test, bench and release binaries (cargo; a no-op when `target/` is
//!    fresh), or the ones of a `--prebuilt` bundle made by `--bundle DIR` elsewhere;
//! 2. `tests`: the bone-module suite and every models test binary on CUDA (f32; the suites
//!    have no bf16 form on CUDA, which the summary records);
//! 3. `bench`: adapter_layer and causal_lm_train (their CUDA sections in `benchmarks/`), and
//!    40 GLUE steps of Bone, LoRA and Bat (`benchmarks/glue_step.md`);
//! 4. `train`: the default `glue-sst2` job on a reduced budget, and one bf16 step of a random
//!    LLaMA of about 1B shape with gradient checkpointing for Bone, LoRA and Bat.
//!
//! Everything lands in `--out DIR`: `summary.md`, `summary.json`, `logs/`, the runs and copies
//! of the rewritten benchmark files. `--dry-run` plans the same steps on WGPU (lavapipe): it
//! type-checks the CUDA build, runs one adapter test on WGPU and skips the rest with reasons.

mod build;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::child::{run_with_deadline, MemorySampler, Outcome};
use build::Binaries;
use report::{Figures, LlamaRow, Status, StepResult};

/// Options of `cargo xtask gpu`.
pub struct Options {
    pub dry_run: bool,
    pub out: PathBuf,
    pub budget: Duration,
    pub step_timeout: Option<Duration>,
    pub prebuilt: Option<PathBuf>,
    pub bundle: Option<PathBuf>,
    pub skip: Vec<String>,
    pub shared: Option<PathBuf>,
    pub sst2_samples: usize,
}

pub const USAGE: &str =
    "gpu [--dry-run] [--out DIR] [--budget-secs N] [--step-timeout N] [--skip STEP]...
      [--prebuilt DIR | --bundle DIR] [--shared DIR] [--sst2-samples N]";

impl Options {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Options {
            dry_run: false,
            out: PathBuf::from("runs/gpu-check"),
            budget: Duration::from_secs(480),
            step_timeout: None,
            prebuilt: None,
            bundle: None,
            skip: Vec::new(),
            shared: None,
            sst2_samples: 4000,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
            let secs = |v: String| {
                v.parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|e| format!("{arg} {v}: {e}; expected whole seconds"))
            };
            match arg.as_str() {
                "--dry-run" => o.dry_run = true,
                "--out" => o.out = PathBuf::from(value()?),
                "--budget-secs" => o.budget = secs(value()?)?,
                "--step-timeout" => o.step_timeout = Some(secs(value()?)?),
                "--prebuilt" => o.prebuilt = Some(PathBuf::from(value()?)),
                "--bundle" => o.bundle = Some(PathBuf::from(value()?)),
                "--skip" => o.skip.push(value()?),
                "--shared" => o.shared = Some(PathBuf::from(value()?)),
                "--sst2-samples" => {
                    let v = value()?;
                    o.sst2_samples = v.parse().map_err(|e| format!("--sst2-samples {v}: {e}"))?
                }
                other => {
                    return Err(format!(
                        "unknown option `{other}` for `gpu`\nusage: {USAGE}"
                    ))
                }
            }
        }
        if o.prebuilt.is_some() && o.bundle.is_some() {
            return Err("--prebuilt and --bundle exclude each other".into());
        }
        Ok(o)
    }
}

/// What a step does once the binaries exist.
enum Work {
    /// Left out, with the reason.
    Skip(String),
    /// A test binary, run from its package folder.
    Test {
        binary: String,
        package: &'static str,
        args: Vec<String>,
    },
    /// A bench binary that rewrites `benchmarks/{file}`.
    Bench {
        binary: &'static str,
        args: Vec<String>,
        file: &'static str,
    },
    /// 40 `glue-sst2` steps of one method.
    GlueStep { method: &'static str },
    /// The default `glue-sst2` job on `--sst2-samples` sentences.
    Sst2,
    /// One bf16 step of the 1B-shaped random LLaMA with gradient checkpointing.
    Llama1b { method: &'static str },
}

struct Step {
    name: String,
    timeout: Duration,
    work: Work,
}

/// Where things are: the workspace, the shared data, the results folder.
struct Paths {
    root: PathBuf,
    shared: PathBuf,
    out: PathBuf,
}

/// The method's `glue-sst2` rank flags: Bone and Bat r=64, LoRA r=32 α=64.
fn rank_args(method: &str) -> [&'static str; 4] {
    if method == "lora" {
        ["--r", "32", "--lora-alpha", "64"]
    } else {
        ["--r", "64", "--lora-alpha", "64"]
    }
}

const METHODS: [&str; 3] = ["bone", "lora", "bat"];

pub fn gpu(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    let root = crate::workspace_root();
    let out = if options.out.is_absolute() {
        options.out.clone()
    } else {
        root.join(&options.out)
    };
    if let Some(dir) = &options.bundle {
        return build::bundle(&root, dir, &out);
    }
    std::fs::create_dir_all(out.join("logs"))
        .map_err(|e| format!("creating {}: {e}", out.display()))?;
    let paths = Paths {
        shared: shared_dir(&options, &root)?,
        root,
        out,
    };
    let start = Instant::now();
    let mode = if options.dry_run {
        "dry run (WGPU)"
    } else {
        "CUDA"
    };
    let steps = plan(&options, &paths);
    println!(
        "gpu check, {mode}: budget {} s, results in {}\nplan:",
        options.budget.as_secs(),
        paths.out.display()
    );
    println!("  build      {}", build::describe(&options));
    if options.dry_run {
        println!("             (the CUDA run: {})", build::describe_cuda());
    }
    for step in &steps {
        let what = match &step.work {
            Work::Skip(reason) => format!("skip: {reason}"),
            _ => format!("up to {} s", step.timeout.as_secs()),
        };
        println!("  {:<26} {what}", step.name);
    }

    let mut results = Vec::new();
    let mut figures = Figures::default();
    let binaries = if skipped(&options, "build") {
        results.push(StepResult::skipped("build", "--skip build"));
        build::Binaries::default()
    } else {
        let (result, binaries) = build::run(&options, &paths.root, &paths.out, options.budget);
        results.push(result);
        binaries
    };
    for step in steps {
        let left = options.budget.saturating_sub(start.elapsed());
        let result = match &step.work {
            Work::Skip(reason) => StepResult::skipped(&step.name, reason),
            _ if left < Duration::from_secs(15) => StepResult::skipped(
                &step.name,
                &format!(
                    "over budget: {} s of {} s left",
                    left.as_secs(),
                    options.budget.as_secs()
                ),
            ),
            _ => run_step(
                &step,
                step.timeout.min(left),
                &options,
                &paths,
                &binaries,
                &mut figures,
            ),
        };
        println!(
            "[{:>4.0} s] {:<26} {} {}",
            start.elapsed().as_secs_f64(),
            result.name,
            result.status.word(),
            result.detail
        );
        results.push(result);
    }
    for file in ["adapter_layer.md", "causal_lm.md", "glue_step.md"] {
        let from = paths.root.join("benchmarks").join(file);
        if from.is_file() {
            let _ = std::fs::create_dir_all(paths.out.join("benchmarks"));
            let _ = std::fs::copy(&from, paths.out.join("benchmarks").join(file));
        }
    }
    let summary = report::write(
        &paths.out,
        mode,
        &options,
        &results,
        &figures,
        start.elapsed(),
    )?;
    println!(
        "\n{summary}\nwrote {}",
        paths.out.join("summary.md").display()
    );
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| matches!(r.status, Status::Failed | Status::TimedOut))
        .map(|r| r.name.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "gpu check: {} failed or timed out",
            failed.join(", ")
        ))
    }
}

/// `--shared`, `$BONE_SHARED_DIR`, `../shared` or `shared/` (the first holding `golden/`).
fn shared_dir(options: &Options, root: &Path) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = options
        .shared
        .clone()
        .into_iter()
        .chain(std::env::var_os("BONE_SHARED_DIR").map(PathBuf::from))
        .chain([root.join("../shared"), root.join("shared")])
        .collect();
    candidates
        .iter()
        .find(|d| d.join("golden").is_dir())
        .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()))
        .ok_or_else(|| {
            format!(
                "the shared data (golden/, models/, datasets/) is not in any of {}; pass --shared DIR",
                candidates
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

fn skipped(options: &Options, name: &str) -> bool {
    options.skip.iter().any(|s| {
        name == s || name.starts_with(&format!("{s}:")) || name.starts_with(&format!("{s}/"))
    })
}

/// The steps after `build`, with their deadlines (capped by `--step-timeout`).
fn plan(options: &Options, paths: &Paths) -> Vec<Step> {
    let dry = options.dry_run;
    let mut steps = Vec::new();
    let mut add = |name: String, secs: u64, work: Work| {
        let work = if skipped(options, &name) {
            Work::Skip(format!("--skip {name}"))
        } else {
            work
        };
        let timeout = Duration::from_secs(secs).min(options.step_timeout.unwrap_or(Duration::MAX));
        steps.push(Step {
            name,
            timeout,
            work,
        });
    };
    let release_only = "needs the release binaries (minutes to build on CI's cores); the CUDA run builds or carries them";
    // 2. Tests.
    add(
        "tests:bone-module/suite".into(),
        if dry { 120 } else { 100 },
        Work::Test {
            binary: if dry {
                "test:bone-module/wgpu_suite".into()
            } else {
                "test:bone-module/suite".into()
            },
            package: "bone-module",
            args: if dry {
                vec![
                    "bone_forward::forward_keeps_leading_dimensions".into(),
                    "--exact".into(),
                ]
            } else {
                Vec::new()
            },
        },
    );
    // The models tests are one binary (`tests/suite.rs`); each former test file is a module,
    // run as its own step so that one slow or failing part does not hide the others.
    for name in test_modules(&paths.root.join("crates/models/tests")) {
        let work = if dry {
            Work::Skip("models tests are not built with WGPU in CI; `cargo xtask ci` type-checks them with CUDA".into())
        } else {
            Work::Test {
                binary: "test:models/suite".into(),
                package: "models",
                args: vec![format!("{name}::")],
            }
        };
        add(format!("tests:models/{name}"), 60, work);
    }
    // 3. Benchmarks.
    let bench = |work: Work| {
        if dry {
            Work::Skip(release_only.into())
        } else {
            work
        }
    };
    add(
        "bench:adapter_layer".into(),
        60,
        bench(Work::Bench {
            binary: "bench:bone-module/adapter_layer",
            args: vec!["--bench".into()],
            file: "adapter_layer.md",
        }),
    );
    add(
        "bench:causal_lm_train".into(),
        90,
        bench(Work::Bench {
            binary: "bench:experiments/causal_lm_train",
            args: vec!["--bench".into(), "--synthetic".into()],
            file: "causal_lm.md",
        }),
    );
    for method in METHODS {
        add(
            format!("bench:glue-step/{method}"),
            45,
            bench(Work::GlueStep { method }),
        );
    }
    // 4. Training.
    add("train:glue-sst2".into(), 90, bench(Work::Sst2));
    for method in METHODS {
        add(
            format!("train:llama-1b/{method}"),
            90,
            bench(Work::Llama1b { method }),
        );
    }
    steps
}

/// The modules of a crate's `tests/suite.rs`: the other `.rs` files of its `tests/` folder.
fn test_modules(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(String::from)
        })
        .filter(|name| name != "suite")
        .collect();
    names.sort();
    names
}

/// The environment every child gets: where the shared data is and where benchmarks go.
fn child_env(paths: &Paths) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("BONE_SHARED_DIR", paths.shared.clone()),
        ("BONE_DATA_ROOT", paths.shared.join("datasets")),
        ("BONE_MODELS_ROOT", paths.shared.join("models")),
        ("BONE_BENCHMARKS_DIR", paths.root.join("benchmarks")),
    ]
}

fn run_step(
    step: &Step,
    deadline: Duration,
    options: &Options,
    paths: &Paths,
    binaries: &Binaries,
    figures: &mut Figures,
) -> StepResult {
    let device = if options.dry_run { "wgpu" } else { "cuda" };
    let glue = |method: &str, samples: usize, extra: &[&str], out: &Path| -> Vec<String> {
        let mut args: Vec<String> = [
            "--device",
            device,
            "--method",
            method,
            "--max-train-samples",
            &samples.to_string(),
            "--epochs",
            "1",
            "--display",
            "plain",
            "--checkpoint-every",
            "0",
            "--model",
            &paths
                .shared
                .join("models/all-MiniLM-L6-v2")
                .to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(rank_args(method).iter().chain(extra).map(|s| s.to_string()));
        args
    };
    let run_dir = |name: &str| paths.out.join("runs").join(name);
    let (binary, args, cwd) = match &step.work {
        Work::Skip(_) => unreachable!("skipped steps are not run"),
        Work::Test {
            binary,
            package,
            args,
        } => (
            binary.clone(),
            args.clone(),
            paths.root.join("crates").join(package),
        ),
        Work::Bench { binary, args, .. } => (binary.to_string(), args.clone(), paths.root.clone()),
        Work::GlueStep { method } => (
            "bin:glue-sst2".into(),
            glue(
                method,
                40 * 32,
                &["--max-eval-samples", "64"],
                &run_dir(&format!("glue-step-{method}")),
            ),
            paths.root.clone(),
        ),
        Work::Sst2 => (
            "bin:glue-sst2".into(),
            glue("bone", options.sst2_samples, &[], &run_dir("glue-sst2")),
            paths.root.clone(),
        ),
        Work::Llama1b { method } => (
            "bench:experiments/causal_lm_train".into(),
            [
                "--bench",
                "--skip-stories",
                "--synthetic-1b",
                "--methods",
                method,
                "--precision",
                "bf16",
                "--gradient-checkpointing",
                "--steps",
                "1",
                "--quick",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            paths.root.clone(),
        ),
    };
    let Some(program) = binaries.get(&binary) else {
        return StepResult::failed(
            &step.name,
            0.0,
            &format!("no `{binary}` binary (the build step did not produce it)"),
        );
    };
    if let Work::GlueStep { .. } | Work::Sst2 = step.work {
        // A fresh run: glue-sst2 would resume (or refuse) an existing run folder.
        if let Some(dir) = args.iter().skip_while(|a| *a != "--out").nth(1) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    let mut command = Command::new(program);
    command.args(&args).current_dir(&cwd).envs(child_env(paths));
    let log = paths
        .out
        .join("logs")
        .join(format!("{}.log", step.name.replace([':', '/'], "-")));
    println!("\n==> {} ({} s at most)", step.name, deadline.as_secs());
    let sampler = MemorySampler::start();
    let outcome = match run_with_deadline(command, &log, deadline, true) {
        Ok(o) => o,
        Err(e) => return StepResult::failed(&step.name, 0.0, &e),
    };
    let memory = sampler.and_then(MemorySampler::stop);
    let secs = outcome.elapsed.as_secs_f64();
    let mut result = finish(&step.name, &outcome, deadline);
    result.memory = memory;
    if result.status != Status::Ok {
        return result;
    }
    result.detail = match &step.work {
        Work::Test { .. } => report::test_counts(&outcome.stdout),
        Work::Bench { file, .. } => format!("wrote benchmarks/{file}"),
        Work::GlueStep { method } => {
            match report::read_glue(&run_dir(&format!("glue-step-{method}")), method, memory) {
                Ok(row) => {
                    let d = row.describe();
                    figures.glue_steps.push(row);
                    d
                }
                Err(e) => return StepResult::failed(&step.name, secs, &e),
            }
        }
        Work::Sst2 => match report::read_glue(&run_dir("glue-sst2"), "bone", memory) {
            Ok(row) => {
                let d = row.describe();
                figures.sst2 = Some(row);
                d
            }
            Err(e) => return StepResult::failed(&step.name, secs, &e),
        },
        Work::Llama1b { method } => match LlamaRow::parse(&outcome.stdout, method, memory) {
            Ok(row) => {
                let d = row.describe();
                figures.llama.push(row);
                d
            }
            Err(e) => return StepResult::failed(&step.name, secs, &e),
        },
        Work::Skip(_) => unreachable!(),
    };
    if matches!(step.work, Work::GlueStep { method: "bat" }) {
        report::write_glue_step_section(&paths.root, device, &figures.glue_steps);
    }
    if matches!(step.work, Work::Llama1b { method: "bat" }) {
        report::write_llama_section(&paths.root.join("benchmarks/causal_lm.md"), &figures.llama);
    }
    result
}

/// The status of a finished child: ok, failed (with the last lines) or timed out.
fn finish(name: &str, outcome: &Outcome, deadline: Duration) -> StepResult {
    let secs = outcome.elapsed.as_secs_f64();
    if outcome.timed_out {
        let mut r = StepResult::failed(
            name,
            secs,
            &format!("killed at its {} s deadline", deadline.as_secs()),
        );
        r.status = Status::TimedOut;
        return r;
    }
    if outcome.success() {
        return StepResult::ok(name, secs, "");
    }
    let status = outcome
        .status
        .map_or("no status".to_string(), |s| s.to_string());
    StepResult::failed(name, secs, &format!("{status}; see the log"))
}

/// Binaries by logical name (`test:PACKAGE/TARGET`, `bench:PACKAGE/TARGET`, `bin:NAME`).
pub type BinaryMap = BTreeMap<String, PathBuf>;
