//! The results of `cargo xtask glue-compare`: one small JSON per finished cell, and the
//! markdown tables of benchmarks/glue.md built from them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::plan::{chosen_lr, lr_name, Budget, Cell, Implementation, Method, BATCH_SIZE};
use super::plan::{sweep_cells, WARMUP_RATIO};

/// What a finished cell reports (both implementations write the same keys).
#[derive(Debug, Clone, PartialEq)]
pub struct CellResult {
    /// The task's main metric at its best epoch.
    pub main: f64,
    /// The dev metrics of the last epoch (loss left out).
    pub last: BTreeMap<String, f64>,
    /// Training seconds (evaluations excluded).
    pub train_seconds: f64,
    /// Training seconds per optimiser step.
    pub seconds_per_step: f64,
    /// Optimiser steps.
    pub steps: u64,
    /// Trainable parameters.
    pub trainable: u64,
}

impl CellResult {
    /// Reads a result JSON; `main_metric` must be its `best_metric`'s name.
    ///
    /// # Errors
    /// An unreadable file, invalid JSON, or a missing or mistyped key, naming the file.
    pub fn read(path: &Path, main_metric: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::parse(&text, main_metric).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// [`read`](Self::read) on the file's text.
    pub fn parse(text: &str, main_metric: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let best = &v["best_metric"];
        if best[0].as_str() != Some(main_metric) {
            return Err(format!(
                "best_metric is {}, expected [\"{main_metric}\", value, epoch]",
                best
            ));
        }
        let number = |key: &str| {
            v[key]
                .as_f64()
                .ok_or_else(|| format!("key `{key}`: expected a number"))
        };
        let last = v["last_dev"]
            .as_object()
            .ok_or("key `last_dev`: expected an object of metrics")?
            .iter()
            .filter(|(k, _)| k.as_str() != "loss")
            .filter_map(|(k, x)| x.as_f64().map(|x| (k.clone(), x)))
            .collect();
        Ok(Self {
            main: best[1]
                .as_f64()
                .ok_or("key `best_metric`: expected a value")?,
            last,
            train_seconds: number("train_seconds")?,
            seconds_per_step: number("seconds_per_step")?,
            steps: number("steps")? as u64,
            trainable: number("trainable_params")? as u64,
        })
    }
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// The finished cells, keyed by task then stem.
pub type Results = BTreeMap<(&'static str, String), CellResult>;

/// Reads every finished cell of `budgets` × methods × implementations under `dir` (files named
/// as [`Cell::stem`]; anything else is ignored).
///
/// # Errors
/// A result file that cannot be read.
pub fn collect(dir: &Path, budgets: &[&'static Budget]) -> Result<Results, String> {
    let mut out = Results::new();
    for &budget in budgets {
        let Ok(entries) = std::fs::read_dir(dir.join(budget.task)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".json").map(String::from))
            .collect();
        names.sort();
        for stem in names {
            let path = dir.join(budget.task).join(format!("{stem}.json"));
            out.insert(
                (budget.task, stem),
                CellResult::read(&path, budget.main_metric)?,
            );
        }
    }
    Ok(out)
}

fn get<'a>(results: &'a Results, cell: &Cell) -> Option<&'a CellResult> {
    results.get(&(cell.budget.task, cell.stem()))
}

/// The finished seeds of a task, method, implementation and lr, in seed order.
fn group<'a>(
    results: &'a Results,
    budget: &'static Budget,
    method: Method,
    implementation: Implementation,
    lr: f64,
) -> Vec<(u64, &'a CellResult)> {
    let prefix = format!(
        "{}-{}-lr{}-seed",
        implementation.name(),
        method.name(),
        lr_name(lr)
    );
    let mut out: Vec<(u64, &CellResult)> = results
        .iter()
        .filter(|((task, _), _)| *task == budget.task)
        .filter_map(|((_, stem), r)| {
            stem.strip_prefix(&prefix)
                .and_then(|s| s.parse().ok())
                .map(|seed| (seed, r))
        })
        .collect();
    out.sort_by_key(|(seed, _)| *seed);
    out
}

/// The learning rate the tables report for a task and method: the sweep's winner when the
/// sweep is finished, else the default.
pub fn table_lr(results: &Results, budget: &'static Budget, method: Method) -> (f64, bool) {
    match chosen_lr(budget, method, true, |c| get(results, c).map(|r| r.main)) {
        Some(lr) => (lr, true),
        None => (method.default_lr(), false),
    }
}

fn percent(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

fn summary(runs: &[(u64, &CellResult)]) -> String {
    if runs.is_empty() {
        return "—".into();
    }
    let values: Vec<f64> = runs.iter().map(|(_, r)| r.main).collect();
    let (mean, std) = mean_std(&values);
    format!("{} ± {} (n={})", percent(mean), percent(std), values.len())
}

fn others(runs: &[(u64, &CellResult)], main: &str) -> String {
    let Some((_, first)) = runs.first() else {
        return "—".into();
    };
    let keys: Vec<&String> = first.last.keys().filter(|k| k.as_str() != main).collect();
    if keys.is_empty() {
        return "—".into();
    }
    keys.iter()
        .map(|k| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|(_, r)| r.last.get(*k))
                .copied()
                .collect();
            let (mean, std) = mean_std(&values);
            format!("{k} {} ± {}", percent(mean), percent(std))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn timing(runs: &[(u64, &CellResult)]) -> String {
    if runs.is_empty() {
        return "—".into();
    }
    let secs: Vec<f64> = runs.iter().map(|(_, r)| r.train_seconds).collect();
    let sps: Vec<f64> = runs.iter().map(|(_, r)| r.seconds_per_step).collect();
    format!(
        "{:.1} min, {:.3} s/step",
        mean_std(&secs).0 / 60.0,
        mean_std(&sps).0
    )
}

/// The budgets table.
pub fn budget_table(
    budgets: &[&'static Budget],
    train_rows: impl Fn(&Budget) -> Option<usize>,
) -> String {
    let mut out = String::from(
        "| task | train examples | epochs | steps per run | max length | batch | warm-up | main metric |\n|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for &b in budgets {
        let rows = train_rows(b);
        let n = match (b.samples, rows) {
            (Some(s), Some(r)) => s.min(r),
            (Some(s), None) => s,
            (None, Some(r)) => r,
            (None, None) => 0,
        };
        let examples = match (b.samples, rows) {
            (Some(_), Some(r)) => format!("{n} of {r} (same draw for both)"),
            _ => format!("{n} (all)"),
        };
        out.push_str(&format!(
            "| {} | {examples} | {} | {} | {} | {BATCH_SIZE} | {:.0} % | {} |\n",
            b.task,
            b.epochs,
            b.epochs * n.div_ceil(BATCH_SIZE),
            b.max_seq_len,
            WARMUP_RATIO * 100.0,
            b.main_metric
        ));
    }
    out
}

/// The sweep table: the main metric of each lr on the sweep seed (ours), and the choice, for
/// every task and method with a finished cell.
pub fn sweep_table(results: &Results, budgets: &[&'static Budget]) -> String {
    let mut out = String::from(
        "| task | method | lr: main metric (ours, seed 42) | chosen lr |\n|---|---|---|---|\n",
    );
    for &b in budgets {
        for method in Method::ALL {
            let prefix = format!("-{}-lr", method.name());
            if !results
                .keys()
                .any(|(task, stem)| *task == b.task && stem.contains(&prefix))
            {
                continue;
            }
            let cells = sweep_cells(b, method);
            let entries: Vec<String> = cells
                .iter()
                .map(|c| match get(results, c) {
                    Some(r) => format!("{}: {}", lr_name(c.lr), percent(r.main)),
                    None => format!("{}: —", lr_name(c.lr)),
                })
                .collect();
            let (lr, swept) = table_lr(results, b, method);
            let choice = if swept {
                lr_name(lr)
            } else {
                format!("{} (default; sweep not finished)", lr_name(lr))
            };
            out.push_str(&format!(
                "| {} | {} | {} | {choice} |\n",
                b.task,
                method.label(),
                entries.join(" · ")
            ));
        }
    }
    out
}

/// The main table: mean ± std of the main metric (×100) per task × method × implementation at
/// the table's lr, the other metrics at the last epoch, and the time per run.
pub fn results_table(results: &Results, budgets: &[&'static Budget]) -> String {
    let mut out = String::from(
        "| task (main metric ×100) | method | lr | ours | PEFT | ours, other metrics (last epoch) | PEFT, other metrics (last epoch) | ours, time per run | PEFT, time per run |\n|---|---|---:|---:|---:|---|---|---:|---:|\n",
    );
    for &b in budgets {
        for method in Method::ALL {
            let (lr, swept) = table_lr(results, b, method);
            let ours = group(results, b, method, Implementation::Ours, lr);
            let peft = group(results, b, method, Implementation::Peft, lr);
            if ours.is_empty() && peft.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "| {} ({}) | {} | {}{} | {} | {} | {} | {} | {} | {} |\n",
                b.task,
                b.main_metric,
                method.label(),
                lr_name(lr),
                if swept { "" } else { " (default)" },
                summary(&ours),
                summary(&peft),
                others(&ours, b.main_metric),
                others(&peft, b.main_metric),
                timing(&ours),
                timing(&peft),
            ));
        }
    }
    out
}

/// Every finished matrix cell's main metric, one row per task × method × implementation.
pub fn seed_table(results: &Results, budgets: &[&'static Budget]) -> String {
    let mut out = String::from("| task | method | implementation | lr | main metric ×100 by seed |\n|---|---|---|---:|---|\n");
    for &b in budgets {
        for method in Method::ALL {
            let (lr, _) = table_lr(results, b, method);
            for implementation in [Implementation::Ours, Implementation::Peft] {
                let runs = group(results, b, method, implementation, lr);
                if runs.is_empty() {
                    continue;
                }
                let seeds: Vec<String> = runs
                    .iter()
                    .map(|(s, r)| format!("{s}: {}", percent(r.main)))
                    .collect();
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    b.task,
                    method.label(),
                    implementation.name(),
                    lr_name(lr),
                    seeds.join(" · ")
                ));
            }
        }
    }
    out
}

/// Markers of the generated part of benchmarks/glue.md.
pub const BEGIN: &str = "<!-- glue-compare: generated, do not edit below -->";
/// End marker.
pub const END: &str = "<!-- glue-compare: end of generated part -->";

/// `document` with its generated part (between [`BEGIN`] and [`END`]) replaced by `generated`,
/// or `generated` appended when it has none.
pub fn splice(document: &str, generated: &str) -> String {
    let block = format!("{BEGIN}\n{generated}{END}\n");
    match (document.find(BEGIN), document.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!(
                "{}{block}{}",
                &document[..b],
                &document[e + END.len()..].trim_start_matches('\n')
            )
        }
        _ => format!("{}\n{block}", document.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::BUDGETS;
    use super::*;

    fn result(main: f64, spearman: f64) -> String {
        format!(
            r#"{{"best_metric": ["accuracy", {main}, 2], "last_dev": {{"accuracy": {main}, "f1": {spearman}, "loss": 0.6}},
               "train_seconds": 120.0, "seconds_per_step": 0.5, "steps": 240, "trainable_params": 1327874}}"#
        )
    }

    fn fake(dir: &Path, stem: &str, main: f64) {
        std::fs::create_dir_all(dir.join("rte")).unwrap();
        std::fs::write(
            dir.join("rte").join(format!("{stem}.json")),
            result(main, 0.5),
        )
        .unwrap();
    }

    #[test]
    fn a_result_names_what_is_missing() {
        let r = CellResult::parse(&result(0.625, 0.5), "accuracy").unwrap();
        assert_eq!(r.main, 0.625);
        assert_eq!(r.last.keys().collect::<Vec<_>>(), ["accuracy", "f1"]);
        assert_eq!(
            CellResult::parse(&result(0.6, 0.5), "matthews").unwrap_err(),
            "best_metric is [\"accuracy\",0.6,2], expected [\"matthews\", value, epoch]"
        );
        let e = CellResult::parse(
            r#"{"best_metric": ["accuracy", 0.5, 1], "last_dev": {}}"#,
            "accuracy",
        )
        .unwrap_err();
        assert_eq!(e, "key `train_seconds`: expected a number");
    }

    #[test]
    fn tables_use_the_sweep_winner_and_aggregate_seeds() {
        let dir = std::env::temp_dir().join(format!("glue-compare-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (lr, v) in [("2e-4", 0.55), ("5e-4", 0.60), ("1e-3", 0.58)] {
            fake(&dir, &format!("ours-bone-lr{lr}-seed42"), v);
        }
        fake(&dir, "ours-bone-lr5e-4-seed43", 0.62);
        fake(&dir, "peft-bone-lr5e-4-seed42", 0.64);
        fake(&dir, "ours-lora-lr5e-4-seed42", 0.5);
        std::fs::write(dir.join("rte/notes.txt"), "ignored").unwrap();
        let results = collect(&dir, &[&BUDGETS[0]]).unwrap();
        assert_eq!(results.len(), 6);
        let table = results_table(&results, &[&BUDGETS[0]]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert_eq!(
            lines[2],
            "| rte (accuracy) | bone r=64 | 5e-4 | 61.00 ± 1.41 (n=2) | 64.00 ± 0.00 (n=1) | f1 50.00 ± 0.00 | f1 50.00 ± 0.00 | 2.0 min, 0.500 s/step | 2.0 min, 0.500 s/step |"
        );
        assert!(lines[3].starts_with(
            "| rte (accuracy) | lora r=32 α=64 | 5e-4 (default) | 50.00 ± 0.00 (n=1) | — |"
        ));
        let sweep = sweep_table(&results, &[&BUDGETS[0]]);
        assert!(
            sweep.contains("| rte | bone r=64 | 2e-4: 55.00 · 5e-4: 60.00 · 1e-3: 58.00 | 5e-4 |"),
            "{sweep}"
        );
        assert!(sweep.contains("| rte | lora r=32 α=64 | 2e-4: — · 5e-4: 50.00 · 1e-3: — | 5e-4 (default; sweep not finished) |"), "{sweep}");
        assert!(!sweep.contains("head only"), "no head cell ran: {sweep}");
        let seeds = seed_table(&results, &[&BUDGETS[0]]);
        assert!(seeds.contains("| rte | bone r=64 | ours | 5e-4 | 42: 60.00 · 43: 62.00 |"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn splice_replaces_only_the_generated_part() {
        let doc = format!("# title\n\nhand text\n\n{BEGIN}\nold\n{END}\n\nafter\n");
        let new = splice(&doc, "new\n");
        assert_eq!(
            new,
            format!("# title\n\nhand text\n\n{BEGIN}\nnew\n{END}\nafter\n")
        );
        assert_eq!(splice("# t\n", "x\n"), format!("# t\n{BEGIN}\nx\n{END}\n"));
    }

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }
}
