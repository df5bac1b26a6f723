//! sha256 manifests in `sha256sum` format (`<64 hex digits>  <path relative to the data root>`).
//!
//! The project's manifest is `datasets/SHA256SUMS` in the workspace; it is compiled into the
//! crate ([`Manifest::bundled`]) so binaries run from any directory can verify the data.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// The text of the workspace's `datasets/SHA256SUMS`.
const BUNDLED: &str = include_str!("../../../datasets/SHA256SUMS");

/// A set of `relative path → sha256` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    name: String,
    entries: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest kept in the workspace at `datasets/SHA256SUMS` (compiled in).
    pub fn bundled() -> Result<Self> {
        Self::parse(BUNDLED, "datasets/SHA256SUMS")
    }

    /// Reads a manifest file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses `sha256sum` output. Blank lines and lines starting with `#` are ignored; a `*`
    /// (binary mode) before the path is accepted. `name` is used in messages.
    pub fn parse(text: &str, name: &str) -> Result<Self> {
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| DataError::Manifest {
                manifest: name.to_string(),
                line: i + 1,
                reason,
            };
            let (hash, rest) = line.split_once(' ').ok_or_else(|| {
                bad(format!(
                    "expected `<sha256>  <path>`, found {line:?} (no space)"
                ))
            })?;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "expected 64 hex digits, found {hash:?} ({} characters)",
                    hash.len()
                )));
            }
            let path = rest.trim_start_matches(' ').trim_start_matches('*');
            if path.is_empty() {
                return Err(bad("expected a path after the hash, found nothing".into()));
            }
            if let Some(old) = entries.insert(path.to_string(), hash.to_ascii_lowercase()) {
                if old != hash.to_ascii_lowercase() {
                    return Err(bad(format!(
                        "`{path}` is listed twice with different hashes"
                    )));
                }
            }
        }
        Ok(Self {
            name: name.to_string(),
            entries,
        })
    }

    /// Name used in messages (the file it came from).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the manifest has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The expected hash of `rel`, lower-case hex.
    pub fn expected(&self, rel: &str) -> Option<&str> {
        self.entries.get(rel).map(String::as_str)
    }

    /// The `(relative path, hash)` entries, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(p, h)| (p.as_str(), h.as_str()))
    }

    /// Checks that the file at `path` (entry `rel`) has the listed hash.
    pub fn verify(&self, path: &Path, rel: &str) -> Result<()> {
        let expected = self.expected(rel).ok_or_else(|| DataError::NotInManifest {
            manifest: self.name.clone(),
            entry: rel.to_string(),
        })?;
        let found = sha256_file(path)?;
        if found != expected {
            return Err(DataError::Checksum {
                path: path.to_path_buf(),
                manifest: Arc::from(self.name.as_str()),
                expected: expected.to_string(),
                found,
            });
        }
        Ok(())
    }
}

/// The sha256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_manifest_parses_and_lists_the_shared_files() {
        let m = Manifest::bundled().unwrap();
        assert_eq!(m.len(), 19);
        assert_eq!(
            m.expected("glue/SST-2/train.tsv"),
            Some("48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1")
        );
    }

    #[test]
    fn malformed_lines_are_errors_with_line_numbers() {
        let err = Manifest::parse("# c\n\nabc  x\n", "M").unwrap_err();
        assert_eq!(
            err.to_string(),
            "M:3: malformed manifest line: expected 64 hex digits, found \"abc\" (3 characters)"
        );
        let h = "a".repeat(64);
        let m = Manifest::parse(&format!("{h} *bin/x\n{h}  y\n"), "M").unwrap();
        assert_eq!(m.expected("bin/x"), Some(h.as_str()));
        assert_eq!(m.len(), 2);
        assert!(Manifest::parse(&format!("{h}  y\n{}  y\n", "b".repeat(64)), "M").is_err());
    }

    #[test]
    fn verify_detects_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "abc").unwrap();
        // sha256("abc") is the FIPS 180-2 test vector.
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&path).unwrap(), good);
        let m = Manifest::parse(&format!("{good}  f.txt\n"), "M").unwrap();
        m.verify(&path, "f.txt").unwrap();
        std::fs::write(&path, "abd").unwrap();
        let err = m.verify(&path, "f.txt").unwrap_err().to_string();
        assert!(err.contains("sha256 mismatch"), "{err}");
        assert!(matches!(
            m.verify(&path, "other.txt"),
            Err(DataError::NotInManifest { .. })
        ));
    }
}
