//! The run folder: everything a training run leaves behind.
//!
//! ```text
//! <run>/config.toml         the resolved configuration (what `--resume` checks against)
//! <run>/metrics.json        per-epoch results and logged steps
//! <run>/metrics.csv         the same per epoch, one row each
//! <run>/curves.png          training loss and dev metrics
//! <run>/best/               the best adapter so far (PEFT folder, head included)
//! <run>/checkpoints/        step-NNNNNNNN/ checkpoints and the `latest` pointer
//! <run>/experiment.log, train/, valid/   burn-train's logs
//! ```

use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::{bail, Context};

use super::lock::{RunLock, LOCK_FILE};

/// The resolved configuration's file in a run folder.
const CONFIG_FILE: &str = "config.toml";

/// Paths inside a run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
    /// The exclusive lock on the folder, held while any clone lives (see [`RunLock`]).
    lock: Option<Arc<RunLock>>,
}

impl RunDir {
    /// Creates a new run folder; refuses one that already holds a run (use `--resume`).
    ///
    /// # Errors
    /// The folder holds a previous run, or cannot be created.
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        Self::check_new(root)?;
        let run = Self {
            root: root.to_path_buf(),
            lock: None,
        };
        if run.config_path().exists() {
            eprintln!(
                "note: {} holds a run that stopped before its first checkpoint; starting it \
                 again in the same folder",
                root.display()
            );
        }
        std::fs::create_dir_all(run.checkpoints())
            .with_context(|| format!("creating run folder {}", root.display()))?;
        Ok(run)
    }

    /// Fails when `root` already holds a run (a new run must not overwrite it) or other files.
    /// A run that stopped before its first checkpoint has nothing to resume: its folder is
    /// reused (saying so).
    ///
    /// # Errors
    /// `root/config.toml` exists and a checkpoint too (the message suggests `--resume`), or
    /// `root` is a non-empty folder that is not a run folder.
    pub fn check_new(root: &Path) -> anyhow::Result<()> {
        if root.join(CONFIG_FILE).exists() {
            let run = Self {
                root: root.to_path_buf(),
                lock: None,
            };
            if !run.has_checkpoint() {
                return Ok(());
            }
            bail!(
                "{} already holds a run; pass `--resume {}` to continue it, or choose another `--out`",
                root.display(),
                root.display()
            );
        }
        if let Ok(entries) = std::fs::read_dir(root) {
            // The lock file is this run's own (taken before the folder is checked again).
            let mut entries = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name() != LOCK_FILE);
            if entries.next().is_some() {
                bail!(
                    "--out {}: the folder is not empty and holds no run (no config.toml); \
                     choose an empty or new folder",
                    root.display()
                );
            }
        }
        Ok(())
    }

    /// Whether the checkpoint folder holds any checkpoint (or a `latest` pointer).
    fn has_checkpoint(&self) -> bool {
        std::fs::read_dir(self.checkpoints()).is_ok_and(|entries| {
            entries.filter_map(|e| e.ok()).any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("step-") || name == "latest"
            })
        })
    }

    /// Opens the folder of an earlier run.
    ///
    /// # Errors
    /// The folder or its `config.toml` is missing.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let run = Self {
            root: root.to_path_buf(),
            lock: None,
        };
        if !root.is_dir() {
            bail!("--resume {}: no such folder", root.display());
        }
        if !run.config_path().is_file() {
            bail!(
                "--resume {}: not a run folder (no config.toml); expected the --out folder of an earlier run",
                root.display()
            );
        }
        Ok(run)
    }

    /// This folder holding `lock` (kept until the last clone is dropped).
    pub fn with_lock(mut self, lock: Arc<RunLock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Removes the temporary files and folders killed processes left (checkpoints being
    /// written, `latest` being replaced, `best/` being replaced), saying so for each. Call it
    /// holding the lock: no other process can be writing them then.
    pub fn remove_stale_temps(&self) {
        for dir in [self.root.clone(), self.checkpoints()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(|e| e.ok()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(owner) = temp_owner(&name) else {
                    continue;
                };
                let path = entry.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match removed {
                    Ok(()) => eprintln!(
                        "note: removed {} (left by {owner}, which stopped while writing it)",
                        path.display()
                    ),
                    Err(e) => eprintln!("warning: cannot remove {}: {e}", path.display()),
                }
            }
        }
    }

    /// Whether a finished run wrote its final outputs (`metrics.json`, `summary.json`).
    pub fn outputs_complete(&self) -> bool {
        self.metrics_json().is_file() && self.summary_json().is_file()
    }

    /// `summary.json`.
    pub fn summary_json(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// `metrics.json`.
    pub fn metrics_json(&self) -> PathBuf {
        self.root.join("metrics.json")
    }

    /// `metrics.csv`.
    pub fn metrics_csv(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }

    /// `curves.png`.
    pub fn plot(&self) -> PathBuf {
        self.root.join("curves.png")
    }

    /// `best/`: the best adapter so far.
    pub fn best(&self) -> PathBuf {
        self.root.join("best")
    }

    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
}

/// The writer of a temporary name (`.step-N.tmp-PID`, `.latest.tmp-PID`, `.best.tmp-PID`,
/// `.best.old-PID`, or the PID-less `.best.tmp`/`.best.old` of earlier versions): "process
/// PID" or "an earlier process"; `None` for any other name.
fn temp_owner(name: &str) -> Option<String> {
    let rest = name.strip_prefix('.')?;
    if rest == "best.tmp" || rest == "best.old" {
        return Some("an earlier process".into());
    }
    let (_, pid) = rest
        .rsplit_once(".tmp-")
        .or_else(|| rest.rsplit_once(".old-"))?;
    let pid: u32 = pid.parse().ok()?;
    let state = if super::lock::pid_alive(pid) {
        ""
    } else {
        ", no longer running"
    };
    Some(format!("process {pid}{state}"))
}
