//! Atomic file writes: a file is written next to its destination and renamed over it, so a
//! crash never leaves a half-written adapter or checkpoint behind.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{FileError, Result};

/// Writes `bytes` to `path` atomically (temporary file in the same folder, fsync, rename).
/// Creates the parent folder when missing.
///
/// # Errors
/// Any I/O error, with the path it happened on.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| FileError::io("creating folder", &parent, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| FileError::io("creating", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| FileError::io("writing", &tmp, e))?;
        file.sync_all()
            .map_err(|e| FileError::io("syncing", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| FileError::io("renaming into place", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a whole file, with the path in the error.
///
/// # Errors
/// Any I/O error (a missing file names the path).
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| FileError::io("reading", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("bone-fs-test-{}", std::process::id()));
        let path = dir.join("nested").join("a.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("a.json")]);
        fs::remove_dir_all(dir).unwrap();
    }
}
