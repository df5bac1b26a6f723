//! Loading Hugging Face `tokenizer.json` files for the batchers.

use std::path::Path;

pub use tokenizers::Tokenizer;

use crate::error::{DataError, Result};

/// Loads a `tokenizer.json` with its own padding and truncation switched off (the batchers pad
/// each batch to its longest sequence and truncate to their own `max_len`; all-MiniLM-L6-v2's
/// file, for one, pads and truncates every input to 128).
///
/// # Errors
/// [`DataError::Missing`] when the file does not exist, [`DataError::Tokenizer`] naming the
/// file when it does not parse.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    if !path.is_file() {
        return Err(DataError::Missing {
            what: format!("tokenizer `{}`", path.display()),
            looked: vec![(path.to_path_buf(), "path given".into())],
            hint: "Pass the tokenizer.json of the model's Hugging Face folder (for example \
                   ../shared/models/all-MiniLM-L6-v2/tokenizer.json)."
                .into(),
        });
    }
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| DataError::Tokenizer {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| DataError::Tokenizer {
            path: path.to_path_buf(),
            reason: format!("cannot turn truncation off: {e}"),
        })?;
    Ok(tokenizer)
}

/// The id of a token (for example `"[PAD]"` or `"</s>"`), or an error naming it.
pub fn token_id(tokenizer: &Tokenizer, token: &str) -> Result<u32> {
    tokenizer
        .token_to_id(token)
        .ok_or_else(|| DataError::config("token", format!("`{token}` is not in the vocabulary")))
}
