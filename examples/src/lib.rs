//! Runnable examples of the workspace's libraries; see the `*.rs` files beside this crate's
//! `Cargo.toml` and the README's "Examples" section. Shared helpers live here.

use std::path::PathBuf;

/// `../shared` beside the checkout (or `$BONE_SHARED_DIR`), where the examples find real
/// weights and PEFT's reference adapters.
///
/// # Errors
/// The folder is missing: the message says where it looked and how to point elsewhere.
pub fn shared_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("BONE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    anyhow::ensure!(
        dir.join("models").is_dir(),
        "the shared weights are missing: looked for {}/models (set BONE_SHARED_DIR to the folder \
         that holds models/ and golden/, or run `cargo xtask assets --download`)",
        dir.display()
    );
    Ok(dir.canonicalize()?)
}

/// The folder an example writes to, ready to be written: its first argument (which must be
/// missing or empty: nothing a user had is overwritten), else `target/examples-out/<name>`,
/// which belongs to the build and is cleared first.
///
/// # Errors
/// A given folder that already holds files, or an I/O error.
pub fn out_dir(name: &str) -> anyhow::Result<PathBuf> {
    if let Some(given) = std::env::args_os().nth(1).map(PathBuf::from) {
        let holds_files = given.is_dir() && std::fs::read_dir(&given)?.next().is_some();
        anyhow::ensure!(
            !holds_files && !given.is_file(),
            "{} already exists and is not an empty folder; pass a new folder",
            given.display()
        );
        return Ok(given);
    }
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), |root| root.join("target"))
        .join("examples-out")
        .join(name);
    if default.exists() {
        std::fs::remove_dir_all(&default)?;
    }
    Ok(default)
}
