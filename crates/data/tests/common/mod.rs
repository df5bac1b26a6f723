//! Shared helpers for the integration tests: where `../shared` is, and small temp files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use data::DataRoot;

/// `<workspace>/../shared`, found from this crate's manifest dir. Panics with a clear message
/// when it is missing: these tests check the real data and must not pass silently without it.
pub fn shared() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        dir.join("datasets").is_dir() && dir.join("models").is_dir(),
        "these tests need the read-only inputs in {} (datasets/ and models/, see \
         datasets/README.md); it is missing",
        dir.display()
    );
    dir
}

/// The real dataset root.
pub fn data_root() -> DataRoot {
    DataRoot::at(shared().join("datasets"))
}

/// A model's `tokenizer.json` in `../shared/models/<name>/`.
pub fn tokenizer_path(model: &str) -> PathBuf {
    shared().join("models").join(model).join("tokenizer.json")
}

/// Writes `contents` to `name` in a fresh temp dir; keep the dir alive while using the path.
pub fn write_temp(name: &str, contents: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write temp file");
    (dir, path)
}
