//! [`FileError`]: what can be wrong with a file, whichever crate reads it.

use std::path::PathBuf;

/// A file that cannot be read, written or understood: I/O, safetensors, JSON configs, and
/// tensors missing from a file or of the wrong shape or dtype.
///
/// Every variant names the file (or folder) and, where it applies, the key or field and the
/// expected and the found value, so that a message alone is enough to fix the input.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A file-system error, with the path involved.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "writing", "creating folder").
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A safetensors file (or shard index) that cannot be parsed or written.
    #[error("{}: invalid safetensors file: {message}", file.display())]
    Safetensors {
        /// The file.
        file: PathBuf,
        /// What the parser said.
        message: String,
    },

    /// A tensor stored in a data type that cannot be read (or written) here.
    #[error(
        "{}: tensor `{key}` has dtype {dtype}; expected F32, F16, BF16 or F64",
        file.display()
    )]
    UnsupportedDtype {
        /// The file.
        file: PathBuf,
        /// The tensor key.
        key: String,
        /// The dtype found.
        dtype: String,
    },

    /// A JSON file that is not valid JSON, or not of the expected overall form.
    #[error("{}: invalid {what}: {message}", file.display())]
    ConfigSyntax {
        /// The file.
        file: PathBuf,
        /// What the file should hold (`JSON`, `adapter config`).
        what: &'static str,
        /// The parser's message (with line and column).
        message: String,
    },

    /// A field of a JSON configuration with a missing, mistyped or unsupported value.
    #[error("{}: field `{field}`: expected {expected}, found {found}", file.display())]
    ConfigField {
        /// The file (or `<config>` when built in code).
        file: PathBuf,
        /// The JSON field.
        field: String,
        /// What would be accepted.
        expected: String,
        /// What was there (`nothing` when absent).
        found: String,
    },

    /// A tensor that is in no file it should be in.
    #[error("{}: missing tensor `{key}`{}", file.display(), for_layer(layer))]
    MissingTensor {
        /// The file, or the checkpoint folder when the tensor may be in any of its shards.
        file: PathBuf,
        /// The missing key.
        key: String,
        /// Module path of the layer that needs it, when one does.
        layer: Option<String>,
    },

    /// A tensor whose shape does not match what the model (or one of its layers) needs.
    #[error(
        "{}: tensor `{key}` has shape {found:?}, {}",
        file.display(),
        expectation(layer, expected)
    )]
    ShapeMismatch {
        /// The file (or source) the tensor came from.
        file: PathBuf,
        /// The tensor key.
        key: String,
        /// Module path of the layer it is for, when one is.
        layer: Option<String>,
        /// The shape needed.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
}

/// Shorthand result type of this crate.
pub type Result<T, E = FileError> = std::result::Result<T, E>;

impl FileError {
    /// Wraps an I/O error with the action and path it happened on.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A [`ConfigField`](Self::ConfigField) error.
    pub fn field(
        file: impl Into<PathBuf>,
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self::ConfigField {
            file: file.into(),
            field: field.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }
}

fn for_layer(layer: &Option<String>) -> String {
    layer
        .as_ref()
        .map(|l| format!(" for layer `{l}`"))
        .unwrap_or_default()
}

fn expectation(layer: &Option<String>, expected: &[usize]) -> String {
    match layer {
        Some(l) => format!("but layer `{l}` expects {expected:?}"),
        None => format!("expected {expected:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_messages_name_the_layer_only_when_there_is_one() {
        let shape = |layer: Option<&str>| {
            FileError::ShapeMismatch {
                file: "a.safetensors".into(),
                key: "w".into(),
                layer: layer.map(String::from),
                expected: vec![2, 3],
                found: vec![3, 2],
            }
            .to_string()
        };
        assert_eq!(
            shape(None),
            "a.safetensors: tensor `w` has shape [3, 2], expected [2, 3]"
        );
        assert_eq!(
            shape(Some("q_proj")),
            "a.safetensors: tensor `w` has shape [3, 2], but layer `q_proj` expects [2, 3]"
        );
        let missing = |layer: Option<&str>| {
            FileError::MissingTensor {
                file: "dir".into(),
                key: "w".into(),
                layer: layer.map(String::from),
            }
            .to_string()
        };
        assert_eq!(missing(None), "dir: missing tensor `w`");
        assert_eq!(
            missing(Some("q_proj")),
            "dir: missing tensor `w` for layer `q_proj`"
        );
    }
}
