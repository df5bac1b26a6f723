//! What `cargo xtask gpu` measured: step results, the figures read from the runs, and
//! `summary.md` / `summary.json` in the results folder.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::Options;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    TimedOut,
    Skipped,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED OUT",
            Self::Skipped => "skipped",
        }
    }
}

/// One line of the summary.
pub struct StepResult {
    pub name: String,
    pub status: Status,
    pub seconds: f64,
    pub detail: String,
    /// GPU memory used (MiB) at the step's start and at its peak (`nvidia-smi`).
    pub memory: Option<(u64, u64)>,
}

impl StepResult {
    fn new(name: &str, status: Status, seconds: f64, detail: &str) -> Self {
        Self {
            name: name.into(),
            status,
            seconds,
            detail: detail.into(),
            memory: None,
        }
    }
    pub fn ok(name: &str, seconds: f64, detail: &str) -> Self {
        Self::new(name, Status::Ok, seconds, detail)
    }
    pub fn failed(name: &str, seconds: f64, detail: &str) -> Self {
        Self::new(name, Status::Failed, seconds, detail)
    }
    pub fn skipped(name: &str, reason: &str) -> Self {
        Self::new(name, Status::Skipped, 0.0, reason)
    }
}

/// Figures read from the runs, for the summary's tables.
#[derive(Default)]
pub struct Figures {
    pub glue_steps: Vec<GlueRow>,
    pub sst2: Option<GlueRow>,
    pub llama: Vec<LlamaRow>,
}

/// Peak GPU memory over the step's starting level, as text.
fn device_memory(memory: Option<(u64, u64)>) -> String {
    match memory {
        Some((start, peak)) => format!(
            "{:.2} GiB (peak {peak} MiB − {start} MiB at start)",
            peak.saturating_sub(start) as f64 / 1024.0
        ),
        None => "— (no nvidia-smi)".into(),
    }
}

/// A `glue-sst2` run's figures, from its `summary.json`.
pub struct GlueRow {
    pub method: String,
    pub trainable: u64,
    pub steps: u64,
    pub seconds_per_step: f64,
    pub accuracy: f64,
    pub host_peak_gib: f64,
    pub memory: Option<(u64, u64)>,
}

/// Reads `dir/summary.json` of a finished `glue-sst2` run.
pub fn read_glue(dir: &Path, method: &str, memory: Option<(u64, u64)>) -> Result<GlueRow, String> {
    let path = dir.join("summary.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(GlueRow {
        method: v["method"].as_str().unwrap_or(method).to_string(),
        trainable: v["trainable_params"].as_u64().unwrap_or(0),
        steps: v["steps"].as_u64().unwrap_or(0),
        seconds_per_step: v["seconds_per_step"].as_f64().unwrap_or(f64::NAN),
        accuracy: v["best_metric"][1].as_f64().unwrap_or(f64::NAN),
        host_peak_gib: v["peak_memory_bytes"].as_f64().unwrap_or(f64::NAN) / (1u64 << 30) as f64,
        memory,
    })
}

impl GlueRow {
    pub fn describe(&self) -> String {
        format!(
            "{}: dev accuracy {:.2} %, {} steps at {:.3} s/step, device memory {}, host peak {:.2} GiB",
            self.method,
            self.accuracy * 100.0,
            self.steps,
            self.seconds_per_step,
            device_memory(self.memory),
            self.host_peak_gib
        )
    }

    pub fn table_row(&self) -> String {
        format!(
            "| {} | {} | {} | {:.3} | {:.2} % | {} |\n",
            self.method,
            self.trainable,
            self.steps,
            self.seconds_per_step,
            self.accuracy * 100.0,
            device_memory(self.memory)
        )
    }
}

/// One row of the 1B-shaped LLaMA step, parsed from causal_lm_train's output line.
#[derive(Debug)]
pub struct LlamaRow {
    pub method: String,
    pub trainable: u64,
    pub tokens_per_step: f64,
    pub ms_per_step: f64,
    pub tokens_per_second: f64,
    pub memory: Option<(u64, u64)>,
}

impl LlamaRow {
    /// The row in `… params N  T tokens/step  median M ms  S tokens/s …`.
    pub fn parse(stdout: &str, method: &str, memory: Option<(u64, u64)>) -> Result<Self, String> {
        let line = stdout
            .lines()
            .find(|l| l.contains(" tokens/s ") && l.contains(" params "))
            .ok_or("causal_lm_train printed no result row")?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let before = |word: &str| -> Result<f64, String> {
            let i = words
                .iter()
                .position(|w| *w == word)
                .ok_or(format!("no `{word}` in {line:?}"))?;
            words
                .get(i.wrapping_sub(1))
                .and_then(|w| w.parse().ok())
                .ok_or(format!("no number before `{word}` in {line:?}"))
        };
        let after = |word: &str| -> Result<f64, String> {
            let i = words
                .iter()
                .position(|w| *w == word)
                .ok_or(format!("no `{word}` in {line:?}"))?;
            words
                .get(i + 1)
                .and_then(|w| w.parse().ok())
                .ok_or(format!("no number after `{word}` in {line:?}"))
        };
        let label = line[..line.find(" params ").unwrap_or(0)].trim();
        let label = label.split_once(") ").map_or(label, |(_, m)| m.trim());
        Ok(Self {
            method: if label.is_empty() { method } else { label }.to_string(),
            trainable: after("params")? as u64,
            tokens_per_step: before("tokens/step")?,
            ms_per_step: after("median")?,
            tokens_per_second: before("tokens/s")?,
            memory,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{}: {:.0} tokens/s ({:.0} tokens in {:.0} ms), device memory {}",
            self.method,
            self.tokens_per_second,
            self.tokens_per_step,
            self.ms_per_step,
            device_memory(self.memory)
        )
    }
}

/// `N passed, M failed, K ignored` over the harness's `test result:` lines.
pub fn test_counts(stdout: &str) -> String {
    let mut counts = [0u64; 3];
    for line in stdout.lines().filter(|l| l.starts_with("test result:")) {
        for (i, word) in ["passed", "failed", "ignored"].iter().enumerate() {
            let n = line
                .split(';')
                .find(|part| part.trim_end().ends_with(word))
                .and_then(|part| part.split_whitespace().rev().nth(1))
                .and_then(|n| n.parse::<u64>().ok());
            counts[i] += n.unwrap_or(0);
        }
    }
    format!(
        "{} passed, {} failed, {} ignored",
        counts[0], counts[1], counts[2]
    )
}

const BF16_NOTE: &str = "bf16 on the GPU is not covered by the tests: the suites run in f32 on \
the backend their feature selects; their half-precision tests (bone-module `half_precision`, \
models `loading::models_run_in_half_precision_on_flex`) always run on the Flex CPU backend. The \
1B LLaMA step (`train:llama-1b`) trains in bf16.";

/// Writes `summary.md` and `summary.json` into `out`; returns the Markdown.
pub fn write(
    out: &Path,
    mode: &str,
    options: &Options,
    results: &[StepResult],
    figures: &Figures,
    elapsed: Duration,
) -> Result<String, String> {
    let mut md = format!("# GPU check: {mode}\n\n");
    let _ = writeln!(
        md,
        "{} · commit {} · {} · budget {} s, used {:.0} s\n",
        today(),
        git_commit(),
        gpu_name(),
        options.budget.as_secs(),
        elapsed.as_secs_f64()
    );
    md.push_str("| step | result | seconds | details |\n|---|---|---:|---|\n");
    for r in results {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {} |",
            r.name,
            r.status.word(),
            r.seconds,
            r.detail.replace('|', "\\|")
        );
    }
    let _ = writeln!(md, "\n{BF16_NOTE}");
    if !figures.glue_steps.is_empty() {
        md.push_str("\n## GLUE steps (40 steps, all-MiniLM-L6-v2, batch 32)\n\n| method | trainable params | steps | s/step | dev accuracy (64 sentences) | device memory |\n|---|---:|---:|---:|---:|---:|\n");
        for r in &figures.glue_steps {
            md.push_str(&r.table_row());
        }
    }
    if let Some(r) = &figures.sst2 {
        let _ = writeln!(
            md,
            "\n## Default glue-sst2 job ({} sentences)\n\n{}",
            options.sst2_samples,
            r.describe()
        );
    }
    if !figures.llama.is_empty() {
        md.push_str("\n## One bf16 step of a random LLaMA h2048 × 16 layers (MLP 5632, 512 tokens, batch 4, gradient checkpointing)\n\n");
        md.push_str(&llama_table(&figures.llama));
    }
    md.push_str("\nLogs: `logs/`; runs: `runs/`; benchmark files as rewritten: `benchmarks/`.\n");
    let path = out.join("summary.md");
    std::fs::write(&path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    let json = serde_json::json!({
        "mode": mode,
        "budget_secs": options.budget.as_secs(),
        "elapsed_secs": elapsed.as_secs_f64(),
        "steps": results.iter().map(|r| serde_json::json!({
            "name": r.name, "status": r.status.word(), "seconds": r.seconds,
            "detail": r.detail,
            "gpu_mib_start": r.memory.map(|m| m.0), "gpu_mib_peak": r.memory.map(|m| m.1),
        })).collect::<Vec<_>>(),
    });
    let path = out.join("summary.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(md)
}

fn llama_table(rows: &[LlamaRow]) -> String {
    let mut t = String::from("| method | trainable params | tokens/step | ms/step | training tokens/s | peak device memory |\n|---|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {:.0} | {:.1} | {:.0} | {} |",
            r.method,
            r.trainable,
            r.tokens_per_step,
            r.ms_per_step,
            r.tokens_per_second,
            device_memory(r.memory)
        );
    }
    t
}

/// The `cuda-1b` section of `benchmarks/causal_lm.md`.
pub fn write_llama_section(path: &Path, rows: &[LlamaRow]) {
    let table = format!(
        "## cuda, random LLaMA h2048 × 16 layers, bf16, gradient checkpointing\n\n{} · `cargo xtask gpu` \
         (causal_lm_train `--synthetic-1b --precision bf16 --gradient-checkpointing --steps 1`, one \
         process per method; memory from nvidia-smi)\n\n{}",
        today(),
        llama_table(rows)
    );
    if let Err(e) = update_section(path, "cuda-1b", "# Causal-LM training benchmark\n", &table) {
        eprintln!("xtask: {e}");
    }
}

/// `benchmarks/glue_step.md`, section of `backend`: the GLUE-step rows measured so far.
pub fn write_glue_step_section(root: &Path, backend: &str, rows: &[GlueRow]) {
    if rows.is_empty() {
        return;
    }
    let path = root.join("benchmarks/glue_step.md");
    let intro = "# GLUE step benchmark\n\nSeconds per optimiser step of `glue-sst2` (all-MiniLM-L6-v2, \
                 batch 32, max length 64, 40 steps on 1,280 SST-2 sentences, adapters on all 36 encoder \
                 linears plus the head), written by `cargo xtask gpu` per backend. s/step is training time \
                 over steps, so it includes the first steps' kernel compilation and autotuning.\n";
    let mut table = format!(
        "## {backend}\n\n{} · `cargo xtask gpu`\n\n| method | trainable params | steps | s/step | dev accuracy (64 sentences) | peak device memory |\n|---|---:|---:|---:|---:|---:|\n",
        today()
    );
    for r in rows {
        table.push_str(&r.table_row());
    }
    if let Err(e) = update_section(&path, backend, intro, &table) {
        eprintln!("xtask: {e}");
    }
}

/// Replaces (or appends) the part of `path` between `<!-- BEGIN name -->` and
/// `<!-- END name -->` (the markers the benches use); a new file starts with `intro`.
pub fn update_section(path: &Path, name: &str, intro: &str, table: &str) -> Result<(), String> {
    let begin = format!("<!-- BEGIN {name} -->");
    let end = format!("<!-- END {name} -->");
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| intro.to_string());
    let section = format!("{begin}\n{table}{end}");
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if e > b => format!("{}{}{}", &old[..b], section, &old[e + end.len()..]),
        _ => format!("{}\n\n{}\n", old.trim_end(), section),
    };
    std::fs::write(path, new).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(crate::workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn gpu_name() -> String {
    std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,driver_version,memory.total",
            "--format=csv,noheader",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| format!("GPU {}", String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| "no NVIDIA GPU (nvidia-smi absent or failing)".into())
}

/// Today's date (UTC) as `YYYY-MM-DD` (Howard Hinnant's civil-from-days).
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_counts_are_summed_over_binaries() {
        let out = "running 3 tests\ntest result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.1s\n\
                   test result: FAILED. 5 passed; 2 failed; 0 ignored; 0 measured; 4 filtered out\n";
        assert_eq!(test_counts(out), "8 passed, 2 failed, 1 ignored");
        assert_eq!(test_counts("nothing"), "0 passed, 0 failed, 0 ignored");
    }

    #[test]
    fn the_causal_lm_row_is_parsed() {
        let out = "loading\nrandom LLaMA h2048 (16 layers) Bone r=64                              params    4194304     1536 tokens/step  median    812.50 ms       1890 tokens/s  peak heap     12.0 MiB (+3.0 over the base)\n";
        let row = LlamaRow::parse(out, "bone", Some((500, 20980))).unwrap();
        assert_eq!(row.trainable, 4_194_304);
        assert_eq!(row.tokens_per_step, 1536.0);
        assert_eq!(row.ms_per_step, 812.5);
        assert_eq!(row.tokens_per_second, 1890.0);
        assert_eq!(row.method, "Bone r=64");
        assert!(row.describe().contains("20.00 GiB"), "{}", row.describe());
        assert!(LlamaRow::parse("no rows", "bone", None)
            .unwrap_err()
            .contains("no result row"));
    }

    #[test]
    fn a_section_is_replaced_in_place_and_appended_when_new() {
        let path = std::env::temp_dir().join(format!("xtask-section-{}.md", std::process::id()));
        let _ = std::fs::remove_file(&path);
        update_section(&path, "cuda", "# Title\n", "one\n").unwrap();
        update_section(&path, "wgpu", "# Title\n", "two\n").unwrap();
        update_section(&path, "cuda", "# Title\n", "three\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# Title\n\n<!-- BEGIN cuda -->\nthree\n<!-- END cuda -->\n\n<!-- BEGIN wgpu -->\ntwo\n<!-- END wgpu -->\n"
        );
        let _ = std::fs::remove_file(&path);
    }
}
