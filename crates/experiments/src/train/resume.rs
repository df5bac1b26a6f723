//! The checks a run folder passes before a run starts in it: a new run needs an unused
//! folder; `--resume` needs a run with a checkpoint of the same settings that has not
//! finished. One place for these messages, used by [`Trainer::start`](super::Trainer::start)
//! and by jobs that check before reading any data.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::checkpoint::{CheckpointStore, Found};
use super::run_dir::RunDir;
use super::state::TrainerState;

/// The newest checkpoint of `run`, checked to be one of the configuration with `fingerprint`.
///
/// # Errors
/// No checkpoint yet, or one written with other settings; both name the run folder.
pub fn resumable_checkpoint(
    run: &RunDir,
    fingerprint: &str,
) -> anyhow::Result<(PathBuf, TrainerState)> {
    resumable(run, fingerprint).map(|found| (found.path, found.state))
}

/// As [`resumable_checkpoint`], with the newer incomplete checkpoints it passed over.
///
/// # Errors
/// As [`resumable_checkpoint`].
pub fn resumable(run: &RunDir, fingerprint: &str) -> anyhow::Result<Found> {
    let store = CheckpointStore::new(run.checkpoints(), 1);
    let found = store.latest()?.with_context(|| {
        format!(
            "--resume {}: the run has no checkpoint yet (nothing to resume; start it again without --resume)",
            run.root().display()
        )
    })?;
    let (path, state) = (&found.path, &found.state);
    if state.fingerprint != fingerprint {
        bail!(
            "--resume {}: checkpoint {} was written by a run with other settings \
             (fingerprint {} ≠ {}); the flags must match the run's config.toml",
            run.root().display(),
            path.display(),
            state.fingerprint,
            fingerprint
        );
    }
    Ok(found)
}

/// Fails when `out` cannot take the run: without `resume`, a folder that already holds a run;
/// with it, a missing folder or checkpoint, a checkpoint of other settings, or a run that
/// already finished and wrote its outputs (one killed after its final checkpoint but before
/// `metrics.json` or `summary.json` may resume: it writes them).
///
/// # Errors
/// As above, each naming the folder and what to do.
pub fn check_run_folder(out: &Path, resume: bool, fingerprint: &str) -> anyhow::Result<()> {
    if !resume {
        return RunDir::check_new(out);
    }
    let run = RunDir::open(out)?;
    let (_, state) = resumable_checkpoint(&run, fingerprint)?;
    if state.finished && run.outputs_complete() {
        bail!(
            "--resume {}: the run already finished ({} steps); its adapter is in {}",
            out.display(),
            state.global_step,
            run.best().display()
        );
    }
    Ok(())
}
