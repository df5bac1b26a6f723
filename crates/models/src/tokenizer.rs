//! `tokenizer.json` through the `tokenizers` crate (offline), with padding and truncation
//! switched off so that token ids are exactly those of the text.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::read_json;
use crate::error::{ModelError, Result};

/// The file name of a fast tokenizer.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The file with the special tokens' names.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// Ids of the special tokens a tokenizer defines (from `tokenizer_config.json`,
/// `special_tokens_map.json`, else common names such as `[CLS]` and `</s>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning of sequence (`<s>`).
    pub bos: Option<u32>,
    /// End of sequence (`</s>`).
    pub eos: Option<u32>,
    /// Padding (`[PAD]`, `<pad>`).
    pub pad: Option<u32>,
    /// Unknown token.
    pub unk: Option<u32>,
    /// Classification token (`[CLS]`).
    pub cls: Option<u32>,
    /// Separator (`[SEP]`).
    pub sep: Option<u32>,
}

/// A Hugging Face fast tokenizer loaded from `tokenizer.json`.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    special: SpecialTokens,
}

impl Tokenizer {
    /// Loads `tokenizer.json` (and the special tokens of `tokenizer_config.json` beside it)
    /// from a model folder, or the file itself.
    ///
    /// # Errors
    /// A missing or unparsable file, naming it.
    pub fn from_pretrained(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(file) = crate::gguf::locate(path, TOKENIZER_FILE)? {
            return Ok(crate::gguf::GgufTokenizer::open(&file)?.into_tokenizer(&file));
        }
        let file = if path.is_dir() {
            path.join(TOKENIZER_FILE)
        } else {
            path.to_path_buf()
        };
        if !file.is_file() {
            return Err(match file.parent() {
                Some(dir) if dir.is_dir() => ModelError::MissingFile {
                    folder: dir.to_path_buf(),
                    file: TOKENIZER_FILE.into(),
                    why:
                        "the tokenizer (only fast tokenizers saved as tokenizer.json are supported)"
                            .into(),
                },
                _ => ModelError::MissingFolder {
                    path: file.parent().map(Path::to_path_buf).unwrap_or_default(),
                },
            });
        }
        let mut inner =
            tokenizers::Tokenizer::from_file(&file).map_err(|e| ModelError::Tokenizer {
                file: file.clone(),
                message: e.to_string(),
            })?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer {
                file: file.clone(),
                message: e.to_string(),
            })?;
        let mut tokenizer = Self {
            inner,
            path: file,
            special: SpecialTokens::default(),
        };
        tokenizer.special = tokenizer.find_special_tokens();
        Ok(tokenizer)
    }

    /// A tokenizer built elsewhere (e.g. from GGUF metadata, see [`crate::gguf`]); `path`
    /// names it in errors.
    pub fn from_parts(inner: tokenizers::Tokenizer, path: PathBuf, special: SpecialTokens) -> Self {
        Self {
            inner,
            path,
            special,
        }
    }

    /// The `tokenizer.json` path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The special tokens.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Token ids of `text`, with the special tokens of the post-processor (`<s>`,
    /// `[CLS] … [SEP]`) when `add_special_tokens`.
    ///
    /// # Errors
    /// A failure of the tokenizer, naming the file.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        self.inner
            .encode(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| self.error(e))
    }

    /// Token ids and token-type ids of a sentence pair (`[CLS] a [SEP] b [SEP]`).
    ///
    /// # Errors
    /// A failure of the tokenizer.
    pub fn encode_pair(
        &self,
        a: &str,
        b: &str,
        add_special_tokens: bool,
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        self.inner
            .encode((a, b), add_special_tokens)
            .map(|e| (e.get_ids().to_vec(), e.get_type_ids().to_vec()))
            .map_err(|e| self.error(e))
    }

    /// The text of `ids`, without special tokens when `skip_special_tokens`.
    ///
    /// # Errors
    /// A failure of the decoder.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.error(e))
    }

    /// A streaming decoder: feed it ids one by one and print what it returns; the pieces
    /// concatenate to [`decode`](Self::decode) of all ids (multi-byte characters split over
    /// several tokens come out whole).
    pub fn stream(&self, skip_special_tokens: bool) -> TextStream<'_> {
        TextStream {
            tokenizer: self,
            ids: Vec::new(),
            text: String::new(),
            skip_special_tokens,
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> ModelError {
        ModelError::Tokenizer {
            file: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn find_special_tokens(&self) -> SpecialTokens {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut names: Vec<Value> = Vec::new();
        for file in [TOKENIZER_CONFIG_FILE, "special_tokens_map.json"] {
            let path = dir.join(file);
            if path.is_file() {
                if let Ok(v) = read_json(&path) {
                    names.push(v);
                }
            }
        }
        let lookup = |field: &str, fallbacks: &[&str]| -> Option<u32> {
            for config in &names {
                let name = match config.get(field) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(o)) => {
                        o.get("content").and_then(Value::as_str).map(String::from)
                    }
                    _ => None,
                };
                if let Some(id) = name.and_then(|n| self.inner.token_to_id(&n)) {
                    return Some(id);
                }
            }
            fallbacks.iter().find_map(|n| self.inner.token_to_id(n))
        };
        SpecialTokens {
            bos: lookup("bos_token", &["<s>", "<|begin_of_text|>"]),
            eos: lookup("eos_token", &["</s>", "<|end_of_text|>", "<|endoftext|>"]),
            pad: lookup("pad_token", &["[PAD]", "<pad>"]),
            unk: lookup("unk_token", &["[UNK]", "<unk>"]),
            cls: lookup("cls_token", &["[CLS]"]),
            sep: lookup("sep_token", &["[SEP]"]),
        }
    }
}

/// Incremental detokenisation for streaming (see [`Tokenizer::stream`]).
#[derive(Debug)]
pub struct TextStream<'a> {
    tokenizer: &'a Tokenizer,
    ids: Vec<u32>,
    text: String,
    skip_special_tokens: bool,
}

impl TextStream<'_> {
    /// Adds `id` and returns the new text it completes (possibly empty, while a multi-byte
    /// character is still incomplete).
    ///
    /// # Errors
    /// A failure of the decoder.
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.ids.push(id);
        let text = self.tokenizer.decode(&self.ids, self.skip_special_tokens)?;
        if text.ends_with('\u{FFFD}') {
            // An incomplete UTF-8 sequence: wait for the next byte token.
            return Ok(String::new());
        }
        let new = match text.strip_prefix(self.text.as_str()) {
            Some(rest) => rest.to_string(),
            None => {
                // Decoders that clean up spaces may rewrite earlier text; emit the difference
                // from the first changed character.
                let common = self
                    .text
                    .char_indices()
                    .zip(text.chars())
                    .find(|((_, a), b)| a != b)
                    .map_or(self.text.len().min(text.len()), |((i, _), _)| i);
                text[common..].to_string()
            }
        };
        self.text = text;
        Ok(new)
    }

    /// Everything decoded so far.
    pub fn text(&self) -> &str {
        &self.text
    }
}
