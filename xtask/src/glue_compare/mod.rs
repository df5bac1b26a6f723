//! `cargo xtask glue-compare`: GLUE tasks × methods (Bone r=64, LoRA r=32 α=64, Bat r=64, the
//! head alone) × seeds × implementation (this workspace's `glue` binary, and PyTorch + PEFT
//! through benchmarks/reference/glue_peft.py), with a 3-value learning-rate sweep per task and
//! method on one seed (ours) that then fixes the lr of every other cell.
//!
//! Resumable: each finished cell leaves `benchmarks/glue/<task>/<impl>-<method>-lr<lr>-seed<s>.json`
//! and is not run again; run folders go to `runs/glue-compare/` and are not kept in git. After
//! every cell the generated part of benchmarks/glue.md is rewritten.

mod plan;
mod table;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use plan::{Budget, Cell, Implementation, Selection, BATCH_SIZE, BUDGETS, WARMUP_RATIO};
use table::CellResult;

/// Options besides the selection.
struct Options {
    python: String,
    glue: Option<PathBuf>,
    build: bool,
    dry_run: bool,
    table_only: bool,
    results: PathBuf,
    device: String,
}

/// `cargo xtask glue-compare [...]`.
pub fn glue_compare(args: &[String], root: &Path) -> Result<(), String> {
    let (selection, rest) = plan::parse_selection(args)?;
    let mut options = Options {
        python: std::env::var("BONE_PEFT_PYTHON").unwrap_or_else(|_| "python3".into()),
        glue: None,
        build: true,
        dry_run: false,
        table_only: false,
        results: root.join("benchmarks/glue"),
        device: "ndarray".into(),
    };
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--python" => options.python = value()?,
            "--glue" => options.glue = Some(PathBuf::from(value()?)),
            "--results" => options.results = PathBuf::from(value()?),
            "--device" => options.device = value()?,
            "--no-build" => options.build = false,
            "--dry-run" => options.dry_run = true,
            "--table-only" => options.table_only = true,
            other => return Err(format!("unknown option `{other}` for `glue-compare`")),
        }
    }
    if options.table_only {
        return write_tables(root, &options.results);
    }
    let exe = options.glue.clone().unwrap_or_else(glue_binary);
    if options.build
        && options.glue.is_none()
        && !options.dry_run
        && selection.implementations.contains(&Implementation::Ours)
    {
        super::cargo(&["build", "-p", "experiments", "--bin", "glue"], &[])?;
    }
    let mut ran = 0usize;
    // Each pass runs what is runnable now; a finished sweep makes the next pass add the
    // matrix cells at its chosen lr.
    loop {
        let main_metric = |c: &Cell| main_of(c, &options.results);
        let todo: Vec<Cell> = plan::cells(&selection, main_metric)
            .into_iter()
            .filter(|c| !c.result_path(&options.results).is_file())
            .collect();
        if options.dry_run {
            print_plan(&selection, &options.results);
            return Ok(());
        }
        let Some(cell) = todo.first().copied() else {
            break;
        };
        run_cell(&cell, root, &exe, &options)?;
        ran += 1;
        write_tables(root, &options.results)?;
    }
    write_tables(root, &options.results)?;
    println!(
        "glue-compare: {ran} cell{} run; results in {} (one JSON per cell), tables in {}",
        if ran == 1 { "" } else { "s" },
        options.results.display(),
        root.join("benchmarks/glue.md").display()
    );
    Ok(())
}

fn main_of(cell: &Cell, results: &Path) -> Option<f64> {
    CellResult::read(&cell.result_path(results), cell.budget.main_metric)
        .ok()
        .map(|r| r.main)
}

fn print_plan(selection: &Selection, results: &Path) {
    let main_metric = |c: &Cell| main_of(c, results);
    let cells = plan::cells(selection, main_metric);
    for cell in &cells {
        let done = cell.result_path(results).is_file();
        println!(
            "{} {}/{}",
            if done { "done" } else { "todo" },
            cell.budget.task,
            cell.stem()
        );
    }
    println!("(cells whose lr waits for an unfinished sweep are listed once the sweep is done)");
}

fn glue_binary() -> PathBuf {
    crate::target_dir().join("debug/glue")
}

/// The data folder both implementations read (`$BONE_DATA_ROOT`, else ../shared/datasets).
fn data_root(root: &Path) -> PathBuf {
    std::env::var_os("BONE_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/datasets"))
}

/// Rows of the task's train.tsv (non-blank lines, header left out).
fn train_rows(root: &Path, budget: &Budget) -> Result<usize, String> {
    let path = data_root(root)
        .join("glue")
        .join(budget.dir)
        .join("train.tsv");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    Ok(lines - usize::from(budget.header && lines > 0))
}

/// The index file of a budget that trains on a subset (written once per task and seed under
/// runs/glue-compare/indices), or `None` when every row is used.
fn index_file(root: &Path, budget: &Budget, seed: u64) -> Result<Option<PathBuf>, String> {
    let Some(n) = budget.samples else {
        return Ok(None);
    };
    let path = root
        .join("runs/glue-compare/indices")
        .join(format!("{}-n{n}-seed{seed}.txt", budget.task));
    if !path.is_file() {
        let rows = train_rows(root, budget)?;
        let mut text = format!(
            "# {n} of the {rows} rows of glue/{}/train.tsv (0-based, header excluded) drawn for seed {seed} by cargo xtask glue-compare\n",
            budget.dir
        );
        for i in plan::draw_indices(rows, n, seed) {
            text.push_str(&format!("{i}\n"));
        }
        std::fs::create_dir_all(path.parent().unwrap_or(root))
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(Some(path))
}

/// The protocol flags both implementations take, in the same spelling.
fn protocol_flags(cell: &Cell, indices: Option<&Path>) -> Vec<String> {
    let (r, alpha) = cell.method.rank();
    let mut flags: Vec<String> = [
        ("--task", cell.budget.task.to_string()),
        ("--method", cell.method.name().to_string()),
        ("--r", r.to_string()),
        ("--lora-alpha", alpha.to_string()),
        ("--epochs", cell.budget.epochs.to_string()),
        ("--batch-size", BATCH_SIZE.to_string()),
        ("--max-seq-len", cell.budget.max_seq_len.to_string()),
        ("--lr", plan::lr_name(cell.lr)),
        ("--warmup-ratio", WARMUP_RATIO.to_string()),
        ("--weight-decay", "0".into()),
        ("--max-grad-norm", "1".into()),
        ("--max-train-samples", "0".into()),
        ("--seed", cell.seed.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    if let Some(path) = indices {
        flags.push("--train-indices".into());
        flags.push(path.display().to_string());
    }
    flags
}

fn run_cell(cell: &Cell, root: &Path, exe: &Path, options: &Options) -> Result<(), String> {
    let indices = index_file(root, cell.budget, cell.seed)?;
    let flags = protocol_flags(cell, indices.as_deref());
    let result = cell.result_path(&options.results);
    let start = Instant::now();
    println!("\n==> {}/{}", cell.budget.task, cell.stem());
    match cell.implementation {
        Implementation::Ours => {
            let out = root
                .join("runs/glue-compare")
                .join(cell.budget.task)
                .join(cell.stem());
            let summary = out.join("summary.json");
            let expected = expected_steps(root, cell.budget)?;
            if finished_run(&summary, expected) {
                println!("reusing the finished run {}", out.display());
            } else {
                // A run left half-done by an interruption starts again (runs take minutes).
                let _ = std::fs::remove_dir_all(&out);
                let mut command = Command::new(exe);
                command
                    .args(&flags)
                    .args(["--device", &options.device, "--display", "plain"])
                    .args(["--checkpoint-every", "0", "--log-every", "50", "--out"])
                    .arg(&out)
                    .current_dir(root);
                status(command, &format!("{} {}", exe.display(), flags.join(" ")))?;
            }
            let text = std::fs::read_to_string(&summary)
                .map_err(|e| format!("reading {}: {e}", summary.display()))?;
            let json =
                ours_result(cell, &text).map_err(|e| format!("{}: {e}", summary.display()))?;
            write_result(&result, &json)?;
        }
        Implementation::Peft => {
            let script = root.join("benchmarks/reference/glue_peft.py");
            let mut command = Command::new(&options.python);
            command
                .arg(&script)
                .args(&flags)
                .arg("--data-root")
                .arg(data_root(root))
                .args(["--shared", &root.join("../shared").display().to_string()])
                .arg("--out")
                .arg(&result)
                .env("OMP_NUM_THREADS", "2")
                .current_dir(root);
            status(
                command,
                &format!(
                    "{} {} {}",
                    options.python,
                    script.display(),
                    flags.join(" ")
                ),
            )?;
        }
    }
    let main = CellResult::read(&result, cell.budget.main_metric)?;
    println!(
        "<== {}/{}: {} {:.4} in {:.1} min",
        cell.budget.task,
        cell.stem(),
        cell.budget.main_metric,
        main.main,
        start.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// Optimiser steps of a cell of `budget`.
fn expected_steps(root: &Path, budget: &Budget) -> Result<u64, String> {
    let rows = train_rows(root, budget)?;
    let n = budget.samples.map_or(rows, |s| s.min(rows));
    Ok((budget.epochs * n.div_ceil(BATCH_SIZE)) as u64)
}

/// Whether `summary` is that of an uninterrupted run of `steps` steps (a run folder that
/// `glue` finished before its result JSON was written).
fn finished_run(summary: &Path, steps: u64) -> bool {
    std::fs::read_to_string(summary)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["interrupted"] == false && v["steps"].as_u64() == Some(steps))
}

fn status(mut command: Command, line: &str) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("could not start `{line}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

/// The cell's result JSON from our run's summary.json: the keys glue_peft.py writes.
fn ours_result(cell: &Cell, summary: &str) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(summary).map_err(|e| format!("invalid JSON: {e}"))?;
    let last: serde_json::Map<String, serde_json::Value> = v["last_dev"]
        .as_array()
        .ok_or("key `last_dev`: expected [[name, value], ...]")?
        .iter()
        .filter_map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].clone())))
        .collect();
    let (r, alpha) = cell.method.rank();
    let out = serde_json::json!({
        "implementation": "ours",
        "task": cell.budget.task,
        "method": cell.method.name(),
        "r": r,
        "lora_alpha": alpha,
        "lr": cell.lr,
        "seed": cell.seed,
        "epochs": cell.budget.epochs,
        "batch_size": BATCH_SIZE,
        "max_seq_len": cell.budget.max_seq_len,
        "train_examples": v["train_examples"],
        "dev_examples": v["dev_examples"],
        "trainable_params": v["trainable_params"],
        "steps": v["steps"],
        "best_metric": v["best_metric"],
        "last_dev": last,
        "train_seconds": v["train_seconds"],
        "seconds_per_step": v["seconds_per_step"],
        "backend": v["backend"],
    });
    Ok(out.to_string())
}

fn write_result(path: &Path, json: &str) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
        .and_then(|()| std::fs::write(&tmp, format!("{json}\n")))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Rewrites the generated part of benchmarks/glue.md from every result under `results`.
fn write_tables(root: &Path, results: &Path) -> Result<(), String> {
    let budgets: Vec<&'static Budget> = BUDGETS.iter().collect();
    let found = table::collect(results, &budgets)?;
    let cpu = cpu_name();
    let generated = format!(
        "## Results\n\nWritten by `cargo xtask glue-compare` from the {} result file(s) in `benchmarks/glue/` \
         (CPU: {cpu}, 2 threads per run, other builds and runs sharing the machine, so times are noisy). \
         The main metric is the best over the epochs' dev evaluations (both implementations select the same way), ×100; \
         lr is the sweep's winner on seed 42 (ours) once the sweep is finished, else the method's default.\n\n\
         ### Budgets\n\n{}\n### Learning-rate sweep\n\n{}\n### Mean ± std over seeds\n\n{}\n### Per seed\n\n{}",
        found.len(),
        table::budget_table(&budgets, |b| train_rows(root, b).ok()),
        table::sweep_table(&found, &budgets),
        table::results_table(&found, &budgets),
        table::seed_table(&found, &budgets),
    );
    let path = root.join("benchmarks/glue.md");
    let document = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# GLUE: Bone vs LoRA vs Bat vs the head alone, ours and PEFT\n".into()
    });
    std::fs::write(&path, table::splice(&document, &generated))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_implementations_get_the_same_protocol_flags() {
        let cell = Cell {
            budget: &BUDGETS[4],
            method: plan::Method::Lora,
            implementation: Implementation::Peft,
            lr: 5e-4,
            seed: 43,
        };
        let flags = protocol_flags(&cell, Some(Path::new("idx.txt"))).join(" ");
        assert_eq!(
            flags,
            "--task sst2 --method lora --r 32 --lora-alpha 64 --epochs 1 --batch-size 32 --max-seq-len 64 \
             --lr 5e-4 --warmup-ratio 0.06 --weight-decay 0 --max-grad-norm 1 --max-train-samples 0 --seed 43 \
             --train-indices idx.txt"
        );
    }

    #[test]
    fn our_summary_becomes_a_result_the_tables_read() {
        let cell = Cell {
            budget: &BUDGETS[0],
            method: plan::Method::Bone,
            implementation: Implementation::Ours,
            lr: 5e-4,
            seed: 42,
        };
        let summary = r#"{"task":"rte","best_metric":["accuracy",0.61,2],"last_dev":[["accuracy",0.6],["loss",0.7]],
            "train_seconds":90.0,"seconds_per_step":0.4,"steps":234,"trainable_params":1327874,
            "train_examples":2490,"dev_examples":277,"backend":"ndarray"}"#;
        let json = ours_result(&cell, summary).unwrap();
        let r = CellResult::parse(&json, "accuracy").unwrap();
        assert_eq!(r.main, 0.61);
        assert_eq!(r.last.get("accuracy"), Some(&0.6));
        assert_eq!(r.steps, 234);
        assert!(ours_result(&cell, "{}").unwrap_err().contains("last_dev"));
    }
}
