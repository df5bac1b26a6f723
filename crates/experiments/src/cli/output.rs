//! Output folders of `bone merge`, `convert` and `convert-adapter`: written in a temporary
//! folder beside `--out` and moved into place once complete, so a failure or a kill leaves
//! no half-written output and never touches what the user had.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Refuses an `out` folder that holds files, unless `force`.
///
/// # Errors
/// `out` is a non-empty folder (named, with `--force` as the way on when `force_flag`), a
/// file, or unreadable.
pub fn check_out(out: &Path, force: bool, force_flag: bool) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        bail!(
            "--out {}: a file is in the way; expected a folder",
            out.display()
        );
    }
    if !out.is_dir() || force {
        return Ok(());
    }
    let non_empty = std::fs::read_dir(out)
        .with_context(|| format!("reading {}", out.display()))?
        .next()
        .is_some();
    if non_empty {
        if force_flag {
            bail!(
                "{} already holds files; pass --force to write into it",
                out.display()
            );
        }
        bail!(
            "--out {}: the folder already holds files; choose a new or empty folder",
            out.display()
        );
    }
    Ok(())
}

/// Runs `write` on a fresh temporary folder beside `out`, then moves the result into place:
/// the folder itself when `out` is missing or empty, else (`force`) each file, replacing those
/// of the same name. On error the temporary folder is removed and `out` is left as it was.
///
/// # Errors
/// An error of `write`, or of creating or moving the folder (naming the paths).
pub fn write_output<T>(
    out: &Path,
    force: bool,
    write: impl FnOnce(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let tmp = temp_beside(out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("removing the stale {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let result = write(&tmp).and_then(|value| place(&tmp, out, force).map(|()| value));
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// `.NAME.tmp-PID` beside `out`.
fn temp_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent.join(format!(".{name}.tmp-{}", std::process::id()))
}

fn place(tmp: &Path, out: &Path, force: bool) -> anyhow::Result<()> {
    let empty = out.is_dir()
        && std::fs::read_dir(out)
            .with_context(|| format!("reading {}", out.display()))?
            .next()
            .is_none();
    if empty {
        std::fs::remove_dir(out).with_context(|| format!("replacing {}", out.display()))?;
    }
    if !out.exists() {
        return std::fs::rename(tmp, out)
            .with_context(|| format!("moving {} to {}", tmp.display(), out.display()));
    }
    if !force {
        bail!(
            "--out {}: the folder gained files while the output was written; it is left in {}",
            out.display(),
            tmp.display()
        );
    }
    for entry in std::fs::read_dir(tmp).with_context(|| format!("reading {}", tmp.display()))? {
        let entry = entry?;
        let target = out.join(entry.file_name());
        if target.is_dir() {
            bail!(
                "--out {}: {} is a folder; not replacing it",
                out.display(),
                target.display()
            );
        }
        std::fs::rename(entry.path(), &target)
            .with_context(|| format!("moving {} into {}", entry.path().display(), out.display()))?;
    }
    Ok(())
}
