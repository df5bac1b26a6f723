//! Fingerprints of the files a run reads (the model's config.json, tokenizer and weights, the
//! data files), recorded in `<run>/inputs.json` when the run starts and checked by
//! `--resume`: another model folder under the same name, or a data file edited meanwhile, is
//! refused, naming the file, instead of training on silently.
//!
//! A file up to [`FULL_HASH_LIMIT`] bytes is hashed whole (SHA-256); a larger one (weights) by
//! its size and the hash of its first [`HEAD_BYTES`] (a safetensors or GGUF header and the
//! first tensors).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::run_dir::RunDir;

/// Files up to this size are hashed whole.
pub const FULL_HASH_LIMIT: u64 = 64 << 20;
/// Bytes hashed of a larger file.
pub const HEAD_BYTES: u64 = 4 << 20;
/// The record in a run folder.
pub const INPUTS_FILE: &str = "inputs.json";

/// One file's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// Its file name (the key a resumed run matches it by: folders may move).
    pub name: String,
    /// Where it was when recorded.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of the whole file, or `head:` and that of its first [`HEAD_BYTES`].
    pub sha256: String,
}

impl FileFingerprint {
    /// The fingerprint of `path`.
    ///
    /// # Errors
    /// The file cannot be read (naming it).
    pub fn of(path: &Path) -> anyhow::Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let size = file.metadata()?.len();
        let limit = if size <= FULL_HASH_LIMIT {
            size
        } else {
            HEAD_BYTES
        };
        let mut hasher = Sha256::new();
        let mut reader = file.take(limit);
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = reader
                .read(&mut buffer)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        let digest: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            name: path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            path: path.to_path_buf(),
            size,
            sha256: if size <= FULL_HASH_LIMIT {
                digest
            } else {
                format!("head:{digest}")
            },
        })
    }
}

/// The files of a model a run reads: `model` itself when it is a file (a GGUF), else those of
/// the folder among `config.json`, `tokenizer.json` and `tokenizer_config.json`, then its
/// weight files (`*.safetensors`, `*.bin`, `*.gguf`) in name order.
///
/// # Errors
/// The folder cannot be listed (naming it).
pub fn model_files(model: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if model.is_file() {
        return Ok(vec![model.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = ["config.json", "tokenizer.json", "tokenizer_config.json"]
        .iter()
        .map(|name| model.join(name))
        .filter(|path| path.is_file())
        .collect();
    let mut weights: Vec<PathBuf> = std::fs::read_dir(model)
        .with_context(|| format!("listing {}", model.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|x| x == "safetensors" || x == "bin" || x == "gguf")
        })
        .collect();
    weights.sort();
    files.extend(weights);
    Ok(files)
}

/// Records the fingerprints of `files` in `<run>/inputs.json`.
///
/// # Errors
/// A file cannot be read, or the record cannot be written.
pub fn record(run: &RunDir, files: &[PathBuf]) -> anyhow::Result<()> {
    let prints = files
        .iter()
        .map(|f| FileFingerprint::of(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let path = run.root().join(INPUTS_FILE);
    bone_io::fs::write_atomic(&path, serde_json::to_string_pretty(&prints)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Checks `files` against the fingerprints recorded when the run started (runs of earlier
/// versions recorded none: nothing is checked).
///
/// # Errors
/// A recorded file that is missing from `files` or differs, naming it, what changed and how
/// to proceed.
pub fn verify(run: &RunDir, files: &[PathBuf]) -> anyhow::Result<()> {
    let path = run.root().join(INPUTS_FILE);
    if !path.is_file() {
        return Ok(());
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let recorded: Vec<FileFingerprint> = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: invalid record of the run's inputs", path.display()))?;
    for old in &recorded {
        let Some(file) = files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| *n == *old.name))
        else {
            continue;
        };
        let now = FileFingerprint::of(file)?;
        let what = if now.size != old.size {
            format!("{} bytes then, {} now", old.size, now.size)
        } else if now.sha256 != old.sha256 {
            format!(
                "same size, SHA-256 {} then, {} now",
                short(&old.sha256),
                short(&now.sha256)
            )
        } else {
            continue;
        };
        bail!(
            "--resume {}: {} is not the file the run started with ({what}; recorded in {}); \
             resume with the same model and data, or start a new run",
            run.root().display(),
            file.display(),
            path.display()
        );
    }
    Ok(())
}

fn short(hash: &str) -> &str {
    let hash = hash.strip_prefix("head:").unwrap_or(hash);
    &hash[..hash.len().min(12)]
}
