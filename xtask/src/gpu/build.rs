//! Step 1 of `cargo xtask gpu`: the binaries. Cargo builds them (a no-op when `target/` is
//! fresh) and names them from its JSON messages; `--prebuilt DIR` takes them from a bundle
//! that `--bundle DIR` made on another machine (no cargo, no registry needed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::report::StepResult;
use super::{BinaryMap, Options};
use crate::child::run_with_deadline;

/// The binaries the steps run, by logical name.
#[derive(Default)]
pub struct Binaries(BinaryMap);

impl Binaries {
    pub fn get(&self, name: &str) -> Option<&PathBuf> {
        self.0.get(name)
    }
}

/// The cargo invocations of a mode.
fn commands(dry_run: bool) -> Vec<Vec<&'static str>> {
    let json = "--message-format=json-render-diagnostics";
    if dry_run {
        vec![
            // The same as `cargo xtask ci`'s cuda step (fresh after it): the CUDA build
            // type-checks, tests and benches included.
            vec![
                "check",
                "--workspace",
                "--all-targets",
                "--features",
                "bone-module/cuda,models/cuda,experiments/cuda",
            ],
            // The same units as ci's test step (WGPU suite included).
            vec![
                "test",
                "--no-run",
                "--workspace",
                "--features",
                "bone-module/wgpu",
                json,
            ],
        ]
    } else {
        vec![
            vec![
                "test",
                "--no-run",
                "-p",
                "bone-module",
                "-p",
                "models",
                "--features",
                "bone-module/cuda,models/cuda",
                json,
            ],
            vec![
                "bench",
                "--no-run",
                "-p",
                "bone-module",
                "--bench",
                "adapter_layer",
                "--features",
                "cuda",
                json,
            ],
            vec![
                "bench",
                "--no-run",
                "-p",
                "experiments",
                "--bench",
                "causal_lm_train",
                "--features",
                "cuda",
                json,
            ],
            vec![
                "build",
                "--release",
                "-p",
                "experiments",
                "--bin",
                "glue-sst2",
                "--features",
                "cuda",
                json,
            ],
        ]
    }
}

/// One line for the plan.
pub fn describe(options: &Options) -> String {
    match &options.prebuilt {
        Some(dir) => format!("binaries from {}/manifest.json (no cargo)", dir.display()),
        None => commands(options.dry_run)
            .iter()
            .map(|c| format!("cargo {}", c.join(" ")))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The CUDA run's cargo commands, for the dry run's plan.
pub fn describe_cuda() -> String {
    commands(false)
        .iter()
        .map(|c| format!("cargo {}", c.join(" ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Builds (or finds) the binaries within `budget`; the result names the time it took.
pub fn run(options: &Options, root: &Path, out: &Path, budget: Duration) -> (StepResult, Binaries) {
    let start = Instant::now();
    if let Some(dir) = &options.prebuilt {
        return match read_manifest(dir) {
            Ok(map) => (
                StepResult::ok(
                    "build",
                    start.elapsed().as_secs_f64(),
                    &format!("{} prebuilt binaries from {}", map.len(), dir.display()),
                ),
                Binaries(map),
            ),
            Err(e) => (StepResult::failed("build", 0.0, &e), Binaries::default()),
        };
    }
    match cargo_build(options.dry_run, root, out, budget) {
        Ok(map) => {
            let secs = start.elapsed().as_secs_f64();
            println!("build took {secs:.1} s ({} binaries)", map.len());
            let _ = std::fs::write(
                out.join("binaries.json"),
                serde_json::to_string_pretty(&map).unwrap_or_default(),
            );
            let detail = format!("build took {secs:.1} s; {} binaries", map.len());
            (StepResult::ok("build", secs, &detail), Binaries(map))
        }
        Err((e, timed_out)) => {
            let mut r = StepResult::failed("build", start.elapsed().as_secs_f64(), &e);
            if timed_out {
                r.status = super::report::Status::TimedOut;
            }
            (r, Binaries::default())
        }
    }
}

/// Runs the mode's cargo commands; the executables they report, by logical name.
fn cargo_build(
    dry_run: bool,
    root: &Path,
    out: &Path,
    budget: Duration,
) -> Result<BinaryMap, (String, bool)> {
    let start = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut map = BinaryMap::new();
    for (i, args) in commands(dry_run).iter().enumerate() {
        let line = format!("cargo {}", args.join(" "));
        println!("\n==> {line}");
        let mut command = Command::new(&cargo);
        command.args(args).current_dir(root);
        let log = out.join("logs").join(format!("build-{}.log", i + 1));
        let left = budget.saturating_sub(start.elapsed());
        let outcome = run_with_deadline(command, &log, left, false).map_err(|e| (e, false))?;
        println!("<== {line}: {:.1} s", outcome.elapsed.as_secs_f64());
        if outcome.timed_out {
            return Err((
                format!("`{line}` killed at the budget ({} s)", left.as_secs()),
                true,
            ));
        }
        if !outcome.success() {
            return Err((format!("`{line}` failed; see {}", log.display()), false));
        }
        map.extend(executables(&outcome.stdout));
    }
    Ok(map)
}

/// `test:PACKAGE/TARGET`, `bench:PACKAGE/TARGET` and `bin:NAME` executables in cargo's JSON
/// messages (lib unit-test binaries are left out).
fn executables(json_lines: &str) -> BinaryMap {
    let mut map = BinaryMap::new();
    for line in json_lines.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some("compiler-artifact"), Some(exe)) =
            (v["reason"].as_str(), v["executable"].as_str())
        else {
            continue;
        };
        let target = v["target"]["name"].as_str().unwrap_or_default();
        let package = Path::new(v["manifest_path"].as_str().unwrap_or_default())
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = v["target"]["kind"][0].as_str().unwrap_or_default();
        let name = match kind {
            "test" | "bench" => format!("{kind}:{package}/{target}"),
            "bin" => format!("bin:{target}"),
            _ => continue,
        };
        map.insert(name, PathBuf::from(exe));
    }
    map
}

/// `DIR/manifest.json`: logical name → file name in DIR.
fn read_manifest(dir: &Path) -> Result<BinaryMap, String> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; make the bundle with `cargo xtask gpu --bundle {}` on a machine with cargo",
            path.display(),
            dir.display()
        )
    })?;
    let files: BinaryMap = serde_json::from_str(&text)
        .map_err(|e| format!("{}: {e}; expected {{\"name\": \"file\"}}", path.display()))?;
    let mut map = BinaryMap::new();
    for (name, file) in files {
        let exe = dir.join(&file);
        if !exe.is_file() {
            return Err(format!(
                "{}: `{name}` names {}, which is missing",
                path.display(),
                exe.display()
            ));
        }
        map.insert(name, exe);
    }
    Ok(map)
}

/// `--bundle DIR`: builds the CUDA binaries and copies them, this xtask and a manifest into
/// DIR, so that `DIR/xtask gpu --prebuilt DIR` runs the check where cargo cannot build.
pub fn bundle(root: &Path, dir: &Path, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out.join("logs")).map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let start = Instant::now();
    let map = cargo_build(false, root, out, Duration::from_secs(6 * 3600)).map_err(|(e, _)| e)?;
    println!("build took {:.1} s", start.elapsed().as_secs_f64());
    let mut files = BinaryMap::new();
    let mut bytes = 0u64;
    let xtask = std::env::current_exe().map_err(|e| format!("this xtask's path: {e}"))?;
    for (name, exe) in map.iter().chain([(&"xtask".to_string(), &xtask)]) {
        let file = name.replace([':', '/'], "-");
        let to = dir.join(&file);
        bytes += std::fs::copy(exe, &to)
            .map_err(|e| format!("copying {} to {}: {e}", exe.display(), to.display()))?;
        if name != "xtask" {
            files.insert(name.clone(), PathBuf::from(file));
        }
    }
    let manifest = dir.join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::to_string_pretty(&files).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", manifest.display()))?;
    println!(
        "bundled {} binaries ({:.0} MiB) in {}; run `{}/xtask gpu --prebuilt {}` in a checkout",
        files.len(),
        bytes as f64 / (1u64 << 20) as f64,
        dir.display(),
        dir.display(),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_named_by_kind_package_and_target() {
        let lines = [
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/bone-module/Cargo.toml","target":{"kind":["test"],"name":"suite"},"executable":"/t/debug/deps/suite-1"}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/models/Cargo.toml","target":{"kind":["lib"],"name":"models"},"executable":"/t/debug/deps/models-2"}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/experiments/Cargo.toml","target":{"kind":["bench"],"name":"causal_lm_train"},"executable":"/t/release/deps/causal_lm_train-3"}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/experiments/Cargo.toml","target":{"kind":["bin"],"name":"glue-sst2"},"executable":"/t/release/glue-sst2"}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/data/Cargo.toml","target":{"kind":["lib"],"name":"data"},"executable":null}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "not json",
        ]
        .join("\n");
        let map = executables(&lines);
        let names: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "bench:experiments/causal_lm_train",
                "bin:glue-sst2",
                "test:bone-module/suite"
            ]
        );
        assert_eq!(map["bin:glue-sst2"], PathBuf::from("/t/release/glue-sst2"));
    }

    #[test]
    fn a_manifest_naming_a_missing_file_is_an_error_naming_both() {
        let dir = std::env::temp_dir().join(format!("xtask-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            r#"{"bin:glue-sst2": "bin-glue-sst2"}"#,
        )
        .unwrap();
        let err = read_manifest(&dir).unwrap_err();
        assert!(
            err.contains("`bin:glue-sst2`") && err.contains("bin-glue-sst2"),
            "{err}"
        );
        std::fs::write(dir.join("bin-glue-sst2"), "").unwrap();
        let map = read_manifest(&dir).unwrap();
        assert_eq!(map["bin:glue-sst2"], dir.join("bin-glue-sst2"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
