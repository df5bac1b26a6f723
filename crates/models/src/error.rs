//! Typed errors for checkpoints, configurations, tokenizers, models and generation.

use std::path::PathBuf;

use bone_io::FileError;
use bone_module::AdapterError;

/// Everything that can go wrong when loading, running or saving a model.
///
/// Every variant names the file, folder, tensor or field involved and, where it applies, the
/// expected and the found value.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model folder does not exist (or is not a folder).
    #[error("model folder {} does not exist", path.display())]
    MissingFolder {
        /// The folder asked for.
        path: PathBuf,
    },

    /// A file the model needs is not in its folder.
    #[error("{}: missing {file} ({why})", folder.display())]
    MissingFile {
        /// The model folder.
        folder: PathBuf,
        /// The file name that is missing.
        file: String,
        /// What the file is needed for.
        why: String,
    },

    /// A `model_type` this crate has no implementation of.
    #[error(
        "{}: unsupported model_type \"{model_type}\" (supported: {})",
        file.display(),
        supported.join(", ")
    )]
    UnsupportedModelType {
        /// The config file.
        file: PathBuf,
        /// The `model_type` found.
        model_type: String,
        /// The types this crate can load.
        supported: Vec<&'static str>,
    },

    /// A GGUF file that cannot be read: a bad header, a length or offset beyond the file, an
    /// unsupported tensor type or architecture, a missing or mistyped metadata key.
    #[error("{}: {message}", file.display())]
    Gguf {
        /// The GGUF file.
        file: PathBuf,
        /// What is wrong, naming the key or tensor and what was expected.
        message: String,
    },

    /// `tokenizer.json` could not be loaded, or encoding/decoding failed.
    #[error("{}: {message}", file.display())]
    Tokenizer {
        /// The tokenizer file.
        file: PathBuf,
        /// What the tokenizers crate said.
        message: String,
    },

    /// An argument outside its valid range (generation settings, token ids, batch shapes).
    #[error("invalid {what}: {message}")]
    InvalidArgument {
        /// The argument.
        what: String,
        /// What is wrong with it.
        message: String,
    },

    /// An operation that needs another kind of model (e.g. generation on an encoder).
    #[error("{operation} needs {needs}, but {folder} holds {found}")]
    WrongModelKind {
        /// What was attempted.
        operation: String,
        /// The kind of model it needs.
        needs: String,
        /// What the model is.
        found: String,
        /// The model folder (or `<model>`).
        folder: String,
    },

    /// An adapter error (building, loading, saving or merging adapters).
    #[error(transparent)]
    Adapter(#[from] AdapterError),

    /// A file that cannot be read or used: I/O, safetensors, `config.json` syntax and fields,
    /// missing tensors, tensors of the wrong shape or dtype.
    ///
    /// Boxed: a [`FileError`] is larger than every other variant, and errors are cold.
    #[error(transparent)]
    File(Box<FileError>),
}

impl From<FileError> for ModelError {
    fn from(error: FileError) -> Self {
        Self::File(Box::new(error))
    }
}

/// Shorthand result type of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    /// Wraps an I/O error with the action and path it happened on.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError::io(action, path, source).into()
    }

    /// An [`InvalidArgument`](Self::InvalidArgument) error.
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            what: what.into(),
            message: message.into(),
        }
    }
}
