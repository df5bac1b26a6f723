//! llama.cpp's GGUF files (versions 2 and 3) as Hugging Face checkpoints.
//!
//! - [`reader`]: the container, memory-mapped, every length checked against the file.
//! - [`quants`]: F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K and Q6_K decoded to `f32`.
//! - [`llama`]: `llama.*` metadata → `config.json`, tensor names → Hugging Face names,
//!   llama.cpp's q/k row permutation undone.
//! - [`weights`]: [`GgufWeights`], the file as a Hugging Face state dict; a
//!   [`Checkpoint`](crate::Checkpoint) opened on a `.gguf` file reads through it.
//! - [`tokenizer`]: the `tokenizer.ggml.*` metadata as a `tokenizers` tokenizer.
//! - [`convert`]: a GGUF file written out as a Hugging Face folder.
//!
//! A model path names a GGUF model when it is a `.gguf` file, or a folder without
//! `config.json` that holds exactly one `.gguf` file ([`locate`]).

pub mod convert;
pub mod llama;
pub mod quants;
pub mod reader;
pub mod tokenizer;
pub mod value;
pub mod weights;

use std::path::{Path, PathBuf};

pub use quants::GgmlType;
pub use reader::{GgufFile, GgufTensorInfo};
pub use tokenizer::GgufTokenizer;
pub use value::MetaValue;
pub use weights::GgufWeights;

use crate::error::{ModelError, Result};

/// The extension of GGUF files.
pub const GGUF_EXTENSION: &str = "gguf";

/// The GGUF file `path` names: `path` itself when it is a `.gguf` file; the one `.gguf`
/// file of a folder that lacks `unless` (e.g. `config.json`); else `None`.
///
/// # Errors
/// A folder lacking `unless` with more than one `.gguf` file (naming them), or an
/// unreadable folder.
pub fn locate(path: &Path, unless: &str) -> Result<Option<PathBuf>> {
    if path.is_file() {
        let is_gguf = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(GGUF_EXTENSION));
        return Ok(is_gguf.then(|| path.to_path_buf()));
    }
    if !path.is_dir() || path.join(unless).is_file() {
        return Ok(None);
    }
    let entries = std::fs::read_dir(path).map_err(|e| ModelError::io("reading", path, e))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case(GGUF_EXTENSION))
        })
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(ModelError::MissingFile {
            folder: path.to_path_buf(),
            file: unless.into(),
            why: format!(
                "or exactly one .gguf file; found {}: name the file",
                found
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}
