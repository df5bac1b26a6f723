//! `config.json` of a Hugging Face checkpoint: `model_type` dispatch to the configurations of
//! the supported families.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::encoder::EncoderConfig;
use bone_io::FileError;

use crate::error::{ModelError, Result};
use crate::llama::LlamaConfig;

/// The configuration file of a checkpoint folder.
pub const CONFIG_FILE: &str = "config.json";

/// The `model_type`s this crate can load (`llama`, `mistral`, `qwen2` and `qwen3` all run
/// on the one LLaMA decoder, see [`DecoderKind`](crate::llama::DecoderKind)).
pub const SUPPORTED_MODEL_TYPES: [&str; 6] =
    ["llama", "mistral", "qwen2", "qwen3", "bert", "roberta"];

/// A model family, from `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFamily {
    /// The LLaMA-architecture decoders: `llama` (LLaMA, TinyLlama, SmolLM, stories260K, …),
    /// `mistral`, `qwen2` and `qwen3`; [`DecoderKind`](crate::llama::DecoderKind) tells them
    /// apart.
    Llama,
    /// `bert`: BERT encoders (all-MiniLM-L6-v2, bert-base, …).
    Bert,
    /// `roberta`: RoBERTa encoders (positions start at `pad_token_id + 1`).
    Roberta,
}

impl ModelFamily {
    /// The `model_type` string.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Bert => "bert",
            Self::Roberta => "roberta",
        }
    }

    /// Whether the family is an encoder (BERT, RoBERTa).
    pub fn is_encoder(self) -> bool {
        !matches!(self, Self::Llama)
    }

    /// The attribute name of the base model inside a task model (`model`, `bert`,
    /// `roberta`): the first component of module paths in `*ForSequenceClassification` and
    /// `*ForCausalLM`.
    pub fn base_model_prefix(self) -> &'static str {
        match self {
            Self::Llama => "model",
            Self::Bert => "bert",
            Self::Roberta => "roberta",
        }
    }
}

impl std::fmt::Display for ModelFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model_type())
    }
}

/// The configuration of any supported model, dispatched on `model_type`.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// `llama`.
    Llama(LlamaConfig),
    /// `bert` or `roberta` (see [`EncoderConfig::family`]).
    Encoder(EncoderConfig),
}

impl ModelConfig {
    /// Reads `config.json` from a checkpoint folder.
    ///
    /// # Errors
    /// A missing folder or file, invalid JSON, an unsupported `model_type` (naming it and
    /// the supported ones), or a missing or invalid field (naming it).
    pub fn load(dir: &Path) -> Result<Self> {
        let (value, file) = read_config_value(dir)?;
        Self::from_value(&value, &file)
    }

    /// Parses an already-read `config.json`; `file` names it in errors.
    ///
    /// # Errors
    /// See [`load`](Self::load).
    pub fn from_value(value: &Value, file: &Path) -> Result<Self> {
        match model_family(value, file)? {
            ModelFamily::Llama => LlamaConfig::from_value(value, file).map(Self::Llama),
            family => EncoderConfig::from_value(value, file, family).map(Self::Encoder),
        }
    }

    /// The family.
    pub fn family(&self) -> ModelFamily {
        match self {
            Self::Llama(_) => ModelFamily::Llama,
            Self::Encoder(c) => c.family,
        }
    }

    /// `architectures[0]` of `config.json`, if any.
    pub fn architecture(&self) -> Option<&str> {
        match self {
            Self::Llama(c) => c.architectures.first().map(String::as_str),
            Self::Encoder(c) => c.architectures.first().map(String::as_str),
        }
    }
}

/// Reads `config.json` of `dir` as JSON, with the path of the file.
///
/// # Errors
/// A missing folder or file, or invalid JSON.
pub fn read_config_value(dir: &Path) -> Result<(Value, PathBuf)> {
    let value = read_config(dir)?;
    Ok((value, dir.join(CONFIG_FILE)))
}

/// Reads and parses `config.json` of `dir`.
///
/// # Errors
/// A missing folder, a missing file, or invalid JSON.
pub fn read_config(dir: &Path) -> Result<Value> {
    if !dir.is_dir() {
        return Err(ModelError::MissingFolder {
            path: dir.to_path_buf(),
        });
    }
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(ModelError::MissingFile {
            folder: dir.to_path_buf(),
            file: CONFIG_FILE.into(),
            why: "the Hugging Face model configuration".into(),
        });
    }
    read_json(&path)
}

/// Reads and parses a JSON file.
///
/// # Errors
/// An unreadable file or invalid JSON, naming the path.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io("reading", path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        FileError::ConfigSyntax {
            file: path.to_path_buf(),
            what: "JSON",
            message: e.to_string(),
        }
        .into()
    })
}

/// The family named by `model_type`.
///
/// # Errors
/// A missing `model_type`, or one this crate does not support.
pub fn model_family(value: &Value, file: &Path) -> Result<ModelFamily> {
    match value.get("model_type") {
        Some(Value::String(t)) => match t.as_str() {
            "llama" | "mistral" | "qwen2" | "qwen3" => Ok(ModelFamily::Llama),
            "bert" => Ok(ModelFamily::Bert),
            "roberta" => Ok(ModelFamily::Roberta),
            other => Err(ModelError::UnsupportedModelType {
                file: file.to_path_buf(),
                model_type: other.to_string(),
                supported: SUPPORTED_MODEL_TYPES.to_vec(),
            }),
        },
        other => Err(FileError::field(
            file,
            "model_type",
            format!("one of {}", SUPPORTED_MODEL_TYPES.join(", ")),
            other
                .map(Value::to_string)
                .unwrap_or_else(|| "nothing".into()),
        )
        .into()),
    }
}

/// Deserialises a config struct, turning serde's message into a [`FileError::ConfigField`]
/// that names the field where serde knows it.
pub(crate) fn parse_fields<T: DeserializeOwned>(value: &Value, file: &Path) -> Result<T> {
    serde_json::from_value(value.clone()).map_err(|e| {
        let message = e.to_string();
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("missing field"))
            .unwrap_or("<config>")
            .to_string();
        FileError::field(file, field, "a valid Hugging Face configuration", message).into()
    })
}

/// A [`FileError::ConfigField`] for a value that parsed but is unusable.
pub(crate) fn invalid_field(
    file: &Path,
    field: &str,
    expected: &str,
    found: impl ToString,
) -> ModelError {
    FileError::field(file, field, expected, found.to_string()).into()
}

/// `eos_token_id`, which Hugging Face allows to be one id or a list.
pub(crate) fn token_ids(value: Option<&Value>) -> Vec<u32> {
    match value {
        Some(Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_u64)
            .map(|v| v as u32)
            .collect(),
        _ => Vec::new(),
    }
}
