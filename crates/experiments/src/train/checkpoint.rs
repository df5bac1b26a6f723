//! Checkpoints of what training changes, written without a window.
//!
//! A checkpoint is a folder `checkpoints/step-NNNNNNNN/` (`step-NNNNNNNN-KKK/` when a step is
//! checkpointed again, e.g. at the end of an epoch after a step checkpoint) with the trainable
//! tensors in the task's format (`trainable/`, a PEFT adapter folder for adapter runs), the
//! optimiser state (`optimizer.mpk`), the trainer's progress (`trainer_state.json`) and a
//! manifest of every file and its size (`manifest.json`). It is filled in a hidden temporary
//! folder and renamed to a name no other checkpoint has; only then is `checkpoints/latest`
//! replaced (written to a temporary file and renamed over it), and only after that is an
//! older checkpoint removed. A kill at any point leaves `latest` naming a complete checkpoint.
//!
//! Reading falls back: when the checkpoint `latest` names is missing or incomplete (a file of
//! its manifest missing, short or unreadable), the newest complete one is used and the one
//! skipped is named, with why.
//!
//! Fault injection (tests only): with `BONE_FAULT_AFTER_RENAMES=N` in the environment the
//! writer exits (status 86) right after its Nth rename, as a kill there would leave things.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::state::TrainerState;

/// File of the trainer's progress inside a checkpoint.
pub const STATE_FILE: &str = "trainer_state.json";
/// File of the optimiser state inside a checkpoint (Burn's named MessagePack record).
pub const OPTIMIZER_FILE: &str = "optimizer";
/// Folder of the trainable tensors inside a checkpoint.
pub const TRAINABLE_DIR: &str = "trainable";
/// The list of a checkpoint's files and sizes, written last.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The pointer to the newest checkpoint.
const LATEST: &str = "latest";
/// The environment variable of fault injection (see the module documentation).
pub const FAULT_ENV: &str = "BONE_FAULT_AFTER_RENAMES";
/// Exit status of a writer stopped by [`FAULT_ENV`].
pub const FAULT_EXIT: i32 = 86;

/// Every file of a checkpoint, relative to it, with its size in bytes.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    files: Vec<(String, u64)>,
}

/// Where an injected fault stops the writer.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Exit the process after this many renames (from [`FAULT_ENV`]).
    Exit(usize),
    /// Return an error after this many renames, cleaning nothing up, as a kill would.
    Fail(usize),
}

/// A checkpoint found by [`CheckpointStore::latest`].
#[derive(Debug, Clone)]
pub struct Found {
    /// Its folder.
    pub path: PathBuf,
    /// Its trainer state.
    pub state: TrainerState,
    /// The newer checkpoints passed over, each with why (empty when `latest` was complete).
    pub skipped: Vec<String>,
}

/// The checkpoints of one run.
#[derive(Debug)]
pub struct CheckpointStore {
    dir: PathBuf,
    keep: usize,
    fault: Option<Fault>,
    renames: AtomicUsize,
}

impl Clone for CheckpointStore {
    fn clone(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            keep: self.keep,
            fault: self.fault,
            renames: AtomicUsize::new(self.renames.load(Ordering::SeqCst)),
        }
    }
}

/// The error of a [`Fault::Fail`]: the writer stops as a kill would, without cleaning up.
#[derive(Debug)]
struct InjectedFault(usize);

impl std::fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "injected fault after rename {}", self.0)
    }
}

impl std::error::Error for InjectedFault {}

fn injected(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<InjectedFault>())
}

impl CheckpointStore {
    /// Checkpoints in `dir`, keeping the newest `keep` (at least 1). Reads [`FAULT_ENV`].
    pub fn new(dir: PathBuf, keep: usize) -> Self {
        let fault = std::env::var(FAULT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map(Fault::Exit);
        Self {
            dir,
            keep: keep.max(1),
            fault,
            renames: AtomicUsize::new(0),
        }
    }

    /// For tests: the writer fails after its `n`th rename (counted over every save of this
    /// store) and cleans nothing up, leaving the folder as a kill at that point would.
    pub fn with_fault_after_renames(mut self, n: usize) -> Self {
        self.fault = Some(Fault::Fail(n));
        self
    }

    /// Writes a checkpoint for `state`: `fill` writes the tensors and optimiser state into the
    /// folder it is given; the state file and the manifest are added, the folder renamed to a
    /// new name and `latest` switched to it. Then an older checkpoint of the same step and
    /// those beyond `keep` are removed. Returns the checkpoint's path.
    ///
    /// # Errors
    /// Any I/O error or an error of `fill`; `latest` keeps naming a complete checkpoint.
    pub fn save(
        &self,
        state: &TrainerState,
        fill: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<PathBuf> {
        let name = self.free_name(state.global_step);
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let target = self.dir.join(&name);
        let result = (|| {
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp)?;
            }
            std::fs::create_dir_all(&tmp)?;
            fill(&tmp)?;
            write_synced(&tmp.join(STATE_FILE), &serde_json::to_vec_pretty(state)?)?;
            let manifest = Manifest {
                files: list_files(&tmp, Path::new(""))?,
            };
            write_synced(
                &tmp.join(MANIFEST_FILE),
                &serde_json::to_vec_pretty(&manifest)?,
            )?;
            self.rename(&tmp, &target)
        })();
        if let Err(e) = result {
            if !injected(&e) {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            return Err(e)
                .with_context(|| format!("writing checkpoint {name} in {}", self.dir.display()));
        }
        // The new checkpoint is complete under its own name: switching `latest` is the commit.
        self.write_latest(&name)
            .with_context(|| format!("writing checkpoint {name} in {}", self.dir.display()))?;
        self.remove_replaced(state.global_step, &name);
        self.prune(&name);
        Ok(target)
    }

    /// The newest complete checkpoint and its state, if any: the one `latest` names when it
    /// is complete, else the newest complete one (the ones passed over are in
    /// [`Found::skipped`]).
    ///
    /// # Errors
    /// A `latest` that names something other than a checkpoint of this folder (a path, `..`),
    /// or checkpoints none of which is complete.
    pub fn latest(&self) -> anyhow::Result<Option<Found>> {
        let pointer = self.dir.join(LATEST);
        let mut skipped = Vec::new();
        let mut named = None;
        if pointer.exists() {
            let text = std::fs::read_to_string(&pointer)
                .with_context(|| format!("reading {}", pointer.display()))?;
            let name = text.trim().to_string();
            if !is_checkpoint_name(&name) {
                bail!(
                    "{} names `{name}`, which is not a checkpoint of this run (expected a folder \
                     name like step-00000200 inside {}); refusing to follow it",
                    pointer.display(),
                    self.dir.display()
                );
            }
            match self.check(&name) {
                Ok(state) => {
                    return Ok(Some(Found {
                        path: self.dir.join(&name),
                        state,
                        skipped,
                    }))
                }
                Err(why) => skipped.push(format!("{name} (named by latest): {why}")),
            }
            named = Some(name);
        }
        let mut names = self.step_names();
        names.reverse();
        for name in names.into_iter().filter(|n| Some(n) != named.as_ref()) {
            match self.check(&name) {
                Ok(state) => {
                    return Ok(Some(Found {
                        path: self.dir.join(&name),
                        state,
                        skipped,
                    }))
                }
                Err(why) => skipped.push(format!("{name}: {why}")),
            }
        }
        if skipped.is_empty() {
            Ok(None)
        } else {
            bail!(
                "no complete checkpoint in {}: {}",
                self.dir.display(),
                skipped.join("; ")
            )
        }
    }

    /// The state of checkpoint `name` when every file of its manifest is present, of its size
    /// and readable; else why not.
    fn check(&self, name: &str) -> Result<TrainerState, String> {
        let path = self.dir.join(name);
        if !path.is_dir() {
            return Err(format!("{} does not exist", path.display()));
        }
        let manifest_path = path.join(MANIFEST_FILE);
        // Checkpoints of earlier versions have no manifest: their state file must still read.
        if manifest_path.exists() {
            let manifest: Manifest = std::fs::read(&manifest_path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                .map_err(|e| format!("{} is unreadable: {e}", manifest_path.display()))?;
            for (file, size) in &manifest.files {
                let file_path = path.join(file);
                let actual = std::fs::File::open(&file_path)
                    .and_then(|f| f.metadata())
                    .map_err(|e| format!("{} cannot be read: {e}", file_path.display()))?
                    .len();
                if actual != *size {
                    return Err(format!(
                        "{} has {actual} bytes, the manifest says {size}",
                        file_path.display()
                    ));
                }
            }
        }
        let state_path = path.join(STATE_FILE);
        let bytes = std::fs::read(&state_path)
            .map_err(|e| format!("{} cannot be read: {e}", state_path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: invalid trainer state: {e}", state_path.display()))
    }

    /// A name for a checkpoint of `step` that no checkpoint has: `step-NNNNNNNN`, or, when
    /// that step already has one, `step-NNNNNNNN-KKK` above every suffix in use.
    fn free_name(&self, step: usize) -> String {
        let base = format!("step-{step:08}");
        let used: Vec<String> = self
            .step_names()
            .into_iter()
            .filter(|n| n == &base || n.starts_with(&format!("{base}-")))
            .collect();
        if used.is_empty() {
            return base;
        }
        let next = used
            .iter()
            .filter_map(|n| n.strip_prefix(&format!("{base}-"))?.parse::<usize>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        format!("{base}-{next:03}")
    }

    /// Replaces `latest` by a file naming `name`: written to a temporary file, then renamed.
    fn write_latest(&self, name: &str) -> anyhow::Result<()> {
        let tmp = self
            .dir
            .join(format!(".{LATEST}.tmp-{}", std::process::id()));
        let result = write_synced(&tmp, name.as_bytes())
            .and_then(|()| self.rename(&tmp, &self.dir.join(LATEST)));
        if let Err(e) = &result {
            if !injected(e) {
                let _ = std::fs::remove_file(&tmp);
            }
        }
        result
    }

    /// `std::fs::rename`, counted for fault injection.
    fn rename(&self, from: &Path, to: &Path) -> anyhow::Result<()> {
        std::fs::rename(from, to)
            .with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
        let n = self.renames.fetch_add(1, Ordering::SeqCst) + 1;
        match self.fault {
            Some(Fault::Exit(k)) if n == k => {
                eprintln!(
                    "{FAULT_ENV}={k}: stopping after rename {k} ({})",
                    to.display()
                );
                std::process::exit(FAULT_EXIT);
            }
            Some(Fault::Fail(k)) if n == k => Err(InjectedFault(k).into()),
            _ => Ok(()),
        }
    }

    /// The checkpoint folders, oldest first.
    fn step_names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_checkpoint_name(n))
            .collect();
        names.sort();
        names
    }

    /// Removes the older checkpoints of `step` once `current` replaced them.
    fn remove_replaced(&self, step: usize, current: &str) {
        let base = format!("step-{step:08}");
        for name in self.step_names() {
            if name != current && (name == base || name.starts_with(&format!("{base}-"))) {
                let _ = std::fs::remove_dir_all(self.dir.join(name));
            }
        }
    }

    /// Removes all but the newest `keep` checkpoints (never `current`).
    fn prune(&self, current: &str) {
        let names = self.step_names();
        let excess = names.len().saturating_sub(self.keep);
        for name in names.into_iter().take(excess) {
            if name != current {
                let _ = std::fs::remove_dir_all(self.dir.join(name));
            }
        }
    }
}

/// Whether `name` is a checkpoint folder's name: `step-` and digits, optionally `-` and
/// digits (no separators, no `..`).
fn is_checkpoint_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("step-") else {
        return false;
    };
    let mut parts = rest.splitn(2, '-');
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    parts.next().is_some_and(digits) && parts.next().is_none_or(digits)
}

/// Writes `bytes` to `path` and syncs it; an I/O error (a full disk: "No space left on
/// device") names the file.
///
/// # Errors
/// The OS error of creating, writing or syncing the file.
pub fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The files under `root/relative`, recursively, with their sizes, sorted.
fn list_files(root: &Path, relative: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    let dir = root.join(relative);
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let rel = relative.join(entry.file_name());
        let meta = entry.metadata()?;
        if meta.is_dir() {
            files.extend(list_files(root, &rel)?);
        } else {
            files.push((rel.to_string_lossy().into_owned(), meta.len()));
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_keeps_the_newest_and_finds_the_latest() {
        let dir = std::env::temp_dir().join(format!("bone-ckpt-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CheckpointStore::new(dir.clone(), 2);
        assert!(store.latest().unwrap().is_none());
        let mut state = TrainerState::new("fp".into(), 100);
        for step in [10, 20, 30] {
            state.global_step = step;
            store
                .save(&state, |d| {
                    Ok(std::fs::write(d.join("x"), step.to_string())?)
                })
                .unwrap();
        }
        let Found {
            path,
            state: latest,
            skipped,
        } = store.latest().unwrap().unwrap();
        assert!(skipped.is_empty());
        assert_eq!(latest.global_step, 30);
        assert_eq!(std::fs::read_to_string(path.join("x")).unwrap(), "30");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["latest", "step-00000020", "step-00000030"]);

        // A failing writer leaves the previous checkpoint as the latest.
        state.global_step = 40;
        assert!(store.save(&state, |_| anyhow::bail!("disk full")).is_err());
        assert_eq!(store.latest().unwrap().unwrap().state.global_step, 30);
        // Saving the same step again replaces it, under a new name.
        state.global_step = 30;
        state.epoch = 7;
        store.save(&state, |_| Ok(())).unwrap();
        let found = store.latest().unwrap().unwrap();
        assert_eq!(found.state.epoch, 7);
        assert_eq!(found.path, dir.join("step-00000030-001"));
        assert!(!dir.join("step-00000030").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bone-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Saves steps 10, 20, 20 again (an epoch end after a step checkpoint), 30 with `store`;
    /// returns the steps completed (the saves that returned Ok) and the epoch of each.
    fn save_sequence(store: &CheckpointStore) -> Vec<(usize, usize)> {
        let mut done = Vec::new();
        let mut state = TrainerState::new("fp".into(), 100);
        for (step, epoch) in [(10, 1), (20, 1), (20, 2), (30, 2)] {
            state.global_step = step;
            state.epoch = epoch;
            let fill = |d: &Path| Ok(std::fs::write(d.join("x"), format!("{step}/{epoch}"))?);
            if store.save(&state, fill).is_err() {
                break;
            }
            done.push((step, epoch));
        }
        done
    }

    #[test]
    fn a_kill_after_any_rename_leaves_a_complete_checkpoint_to_resume() {
        // Two renames per save (the folder into place, `latest`): 8 kill points.
        for kill_after in 1..=8 {
            let dir = scratch(&format!("kill{kill_after}"));
            let store = CheckpointStore::new(dir.clone(), 2).with_fault_after_renames(kill_after);
            let done = save_sequence(&store);
            // The save in progress when killed is the one after the completed ones.
            let sequence = [(10, 1), (20, 1), (20, 2), (30, 2)];
            assert_eq!(done.len(), (kill_after - 1) / 2, "kill after {kill_after}");
            let in_progress = sequence[done.len()];
            let found = CheckpointStore::new(dir.clone(), 2)
                .latest()
                .unwrap()
                .unwrap_or_else(|| panic!("kill after {kill_after}: no checkpoint found"));
            let got = (found.state.global_step, found.state.epoch);
            assert!(
                got == in_progress || Some(&got) == done.last(),
                "kill after {kill_after}: found {got:?}, done {done:?}"
            );
            // Its files are the ones of its own state.
            assert_eq!(
                std::fs::read_to_string(found.path.join("x")).unwrap(),
                format!("{}/{}", got.0, got.1)
            );
            // A run continuing from there saves and finds its new checkpoint.
            let mut state = found.state.clone();
            state.global_step = 40;
            let store = CheckpointStore::new(dir.clone(), 2);
            store.save(&state, |_| Ok(())).unwrap();
            assert_eq!(store.latest().unwrap().unwrap().state.global_step, 40);
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn an_incomplete_latest_falls_back_to_the_newest_complete_checkpoint() {
        let dir = scratch("fallback");
        let store = CheckpointStore::new(dir.clone(), 3);
        assert_eq!(save_sequence(&store).len(), 4);
        // A file of the newest checkpoint truncated: it is skipped, naming the file.
        std::fs::write(dir.join("step-00000030/x"), "").unwrap();
        let found = store.latest().unwrap().unwrap();
        assert_eq!(found.state.global_step, 20);
        assert_eq!(found.skipped.len(), 1);
        assert!(
            found.skipped[0].starts_with("step-00000030 (named by latest): ")
                && found.skipped[0].ends_with("x has 0 bytes, the manifest says 4"),
            "{:?}",
            found.skipped
        );
        // `latest` naming a folder that does not exist.
        std::fs::write(dir.join("latest"), "step-00000099").unwrap();
        let found = store.latest().unwrap().unwrap();
        assert_eq!(found.state.global_step, 20);
        assert!(
            found.skipped[0].contains("does not exist"),
            "{:?}",
            found.skipped
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_latest_that_leaves_the_folder_is_refused() {
        let dir = scratch("escape");
        let store = CheckpointStore::new(dir.clone(), 2);
        assert_eq!(save_sequence(&store).len(), 4);
        let elsewhere = scratch("escape-target");
        CheckpointStore::new(elsewhere.clone(), 2)
            .save(&TrainerState::new("other".into(), 1), |_| Ok(()))
            .unwrap();
        for pointer in [
            "../../escape-target/step-00000000".to_string(),
            elsewhere.join("step-00000000").display().to_string(),
            "step-1/../../x".to_string(),
        ] {
            std::fs::write(dir.join("latest"), &pointer).unwrap();
            let err = store.latest().unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "{} names `{pointer}`, which is not a checkpoint of this run (expected a \
                     folder name like step-00000200 inside {}); refusing to follow it",
                    dir.join("latest").display(),
                    dir.display()
                )
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(elsewhere).unwrap();
    }
}
