//! Checkpoints of what training changes, written atomically.
//!
//! A checkpoint is a folder `checkpoints/step-NNNNNNNN/` with the trainable tensors in the
//! task's format (`trainable/`, a PEFT adapter folder for adapter runs), the optimiser state
//! (`optimizer.mpk`) and the trainer's progress (`trainer_state.json`). It is filled in a
//! hidden temporary folder and renamed into place; only then does `checkpoints/latest` name it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bone_io::fs::write_atomic;

use super::state::TrainerState;

/// File of the trainer's progress inside a checkpoint.
pub const STATE_FILE: &str = "trainer_state.json";
/// File of the optimiser state inside a checkpoint (Burn's named MessagePack record).
pub const OPTIMIZER_FILE: &str = "optimizer";
/// Folder of the trainable tensors inside a checkpoint.
pub const TRAINABLE_DIR: &str = "trainable";

/// The checkpoints of one run.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
    keep: usize,
}

impl CheckpointStore {
    /// Checkpoints in `dir`, keeping the newest `keep` (at least 1).
    pub fn new(dir: PathBuf, keep: usize) -> Self {
        Self {
            dir,
            keep: keep.max(1),
        }
    }

    /// Writes a checkpoint for `state`: `fill` writes the tensors and optimiser state into the
    /// folder it is given; the state file is added, the folder renamed into place and `latest`
    /// updated. Older checkpoints beyond `keep` are removed. Returns the checkpoint's path.
    ///
    /// # Errors
    /// Any I/O error or an error of `fill`; the previous checkpoints stay intact.
    pub fn save(
        &self,
        state: &TrainerState,
        fill: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<PathBuf> {
        let name = format!("step-{:08}", state.global_step);
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let result = (|| {
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp)?;
            }
            std::fs::create_dir_all(&tmp)?;
            fill(&tmp)?;
            let json = serde_json::to_vec_pretty(state)?;
            write_atomic(&tmp.join(STATE_FILE), &json)?;
            let target = self.dir.join(&name);
            if target.exists() {
                // A checkpoint of the same step (e.g. the end-of-epoch one after a step one):
                // replace it, keeping the old one until the new one is in place.
                let old = self.dir.join(format!(".{name}.old-{}", std::process::id()));
                std::fs::rename(&target, &old)?;
                std::fs::rename(&tmp, &target)?;
                std::fs::remove_dir_all(&old)?;
            } else {
                std::fs::rename(&tmp, &target)?;
            }
            write_atomic(&self.dir.join("latest"), name.as_bytes())?;
            anyhow::Ok(target)
        })();
        match result {
            Ok(target) => {
                self.prune(&name);
                Ok(target)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
                    .with_context(|| format!("writing checkpoint {name} in {}", self.dir.display()))
            }
        }
    }

    /// The newest complete checkpoint and its state, if any.
    ///
    /// # Errors
    /// A `latest` pointer to a missing folder, or an unreadable state file.
    pub fn latest(&self) -> anyhow::Result<Option<(PathBuf, TrainerState)>> {
        let pointer = self.dir.join("latest");
        if !pointer.exists() {
            return Ok(None);
        }
        let name = std::fs::read_to_string(&pointer)
            .with_context(|| format!("reading {}", pointer.display()))?;
        let path = self.dir.join(name.trim());
        let state_path = path.join(STATE_FILE);
        let bytes = std::fs::read(&state_path).with_context(|| {
            format!(
                "{} names checkpoint {}, but {} cannot be read",
                pointer.display(),
                name.trim(),
                state_path.display()
            )
        })?;
        let state: TrainerState = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: invalid trainer state", state_path.display()))?;
        Ok(Some((path, state)))
    }

    /// Removes all but the newest `keep` checkpoints (never `current`).
    fn prune(&self, current: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect();
        names.sort();
        let excess = names.len().saturating_sub(self.keep);
        for name in names.into_iter().take(excess) {
            if name != current {
                let _ = std::fs::remove_dir_all(self.dir.join(name));
            }
        }
    }
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
        let (path, latest) = store.latest().unwrap().unwrap();
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
        assert_eq!(store.latest().unwrap().unwrap().1.global_step, 30);
        // Saving the same step again replaces it.
        state.global_step = 30;
        state.epoch = 7;
        store.save(&state, |_| Ok(())).unwrap();
        assert_eq!(store.latest().unwrap().unwrap().1.epoch, 7);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
