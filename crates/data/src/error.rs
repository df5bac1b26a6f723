//! Typed errors for locating, verifying, parsing and tokenising data.
//!
//! Every variant that comes from a file names the file, and where it applies the 1-based line,
//! the column or JSON key, and the expected and the found value, so that the message alone is
//! enough to find and fix the input.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::metrics::MetricError;

/// Result alias used throughout the crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A data file (or folder) is not where any of the candidate roots say it should be.
    #[error("{}", MissingMessage { what, looked, hint })]
    Missing {
        /// What was wanted, for example `GLUE SST-2 train (glue/SST-2/train.tsv)`.
        what: String,
        /// Every path that was tried, with where that candidate came from.
        looked: Vec<(PathBuf, String)>,
        /// How to get the data.
        hint: String,
    },

    /// The operating system refused to read a file.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file has no rows at all (zero bytes, only blank lines, a header only or `[]`).
    #[error("{path}: {detail}; expected {expected}")]
    EmptyFile {
        /// The file.
        path: PathBuf,
        /// What was found instead of rows.
        detail: String,
        /// The layout that was expected.
        expected: String,
    },

    /// The header line does not have the columns the task needs.
    #[error(
        "{path}:{line}: wrong header for {task}: expected columns [{}], found [{}]",
        join_quoted(expected),
        join_quoted(found)
    )]
    WrongHeader {
        /// The file.
        path: PathBuf,
        /// 1-based line of the header.
        line: usize,
        /// The task (or format) whose layout was expected.
        task: &'static str,
        /// The expected column names.
        expected: Vec<String>,
        /// The column names that were found.
        found: Vec<String>,
    },

    /// One row is malformed (and `skip_bad_rows` was off).
    #[error("{path}:{line}: {issue}")]
    BadRow {
        /// The file.
        path: PathBuf,
        /// 1-based line of the row.
        line: usize,
        /// What is wrong with it.
        issue: Box<RowIssue>,
    },

    /// Every row of a file was malformed and skipped, so nothing is left.
    #[error(
        "{path}: all {skipped} rows were malformed and skipped (first, line {first_line}: \
         {first_issue}); is this the right file for the task?"
    )]
    NoValidRows {
        /// The file.
        path: PathBuf,
        /// How many rows were skipped.
        skipped: usize,
        /// Line of the first bad row.
        first_line: usize,
        /// Issue of the first bad row.
        first_issue: Box<RowIssue>,
    },

    /// A whole JSON document (not a single JSONL row) does not parse.
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },

    /// A file's sha256 differs from the manifest.
    #[error(
        "{path}: sha256 mismatch against {manifest}: expected {expected}, found {found}; the \
         file is corrupt or a different version"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The manifest.
        manifest: Arc<str>,
        /// Hash in the manifest.
        expected: String,
        /// Hash of the file.
        found: String,
    },

    /// Checksums were asked for but the manifest has no entry for this file.
    #[error(
        "{entry}: no entry in manifest {manifest}; add `<sha256>  {entry}` to it or turn \
         checksum verification off"
    )]
    NotInManifest {
        /// The manifest.
        manifest: String,
        /// The path relative to the data root.
        entry: String,
    },

    /// A manifest line is not `<64 hex digits>  <relative path>`.
    #[error("{manifest}:{line}: malformed manifest line: {reason}")]
    Manifest {
        /// The manifest.
        manifest: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// A `tokenizer.json` could not be loaded or configured.
    #[error("tokenizer {path}: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The tokenizer failed on an input.
    #[error("tokenising {what} failed: {reason}")]
    Encode {
        /// Which input (example index and a prefix of the text).
        what: String,
        /// The tokenizer's message.
        reason: String,
    },

    /// A GLUE task name that is not one of the nine.
    #[error("unknown GLUE task `{found}`; expected one of {expected}")]
    UnknownTask {
        /// The name given.
        found: String,
        /// The accepted names.
        expected: String,
    },

    /// A split that the task does not have (for example `dev_mismatched` for SST-2).
    #[error("GLUE {task} has no {split} split; it has {available}")]
    NoSuchSplit {
        /// The task.
        task: String,
        /// The split asked for.
        split: String,
        /// The splits it has.
        available: String,
    },

    /// An option value that cannot work (for example `max_len` shorter than the special tokens).
    #[error("invalid {option}: {reason}")]
    Config {
        /// The option.
        option: String,
        /// Why.
        reason: String,
    },

    /// A metric could not be computed.
    #[error(transparent)]
    Metric(#[from] MetricError),

    /// A chat template does not compile, raised an exception, or cannot be used for loss
    /// masks.
    #[error("chat template ({origin}): {reason}")]
    ChatTemplate {
        /// Where the template came from (a file, or `given`).
        origin: String,
        /// What went wrong (a template's own `raise_exception` message verbatim).
        reason: String,
    },

    /// Encoding one example failed; names the file and line the example was read from.
    #[error("{path}:{line}: {source}")]
    Example {
        /// The file.
        path: PathBuf,
        /// 1-based line of the example's row.
        line: usize,
        /// What went wrong.
        #[source]
        source: Box<DataError>,
    },
}

/// What is wrong with one row; carried by [`DataError::BadRow`] and by
/// [`crate::LoadReport::skipped`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowIssue {
    /// The row has the wrong number of tab-separated fields.
    #[error("expected {expected} tab-separated columns{}, found {found}", layout.as_deref().map(|l| format!(" ({l})")).unwrap_or_default())]
    ColumnCount {
        /// Expected number of fields.
        expected: usize,
        /// Found number of fields.
        found: usize,
        /// The expected column names, when known.
        layout: Option<String>,
    },
    /// A field has a value outside what the column allows.
    #[error("column `{column}` (#{index}): expected {expected}, found {found:?}")]
    BadValue {
        /// Column name (or a description for headerless files).
        column: String,
        /// 1-based column number.
        index: usize,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// A JSON object lacks a key.
    #[error("missing key `{key}`")]
    MissingKey {
        /// The key.
        key: String,
    },
    /// A JSON key holds the wrong kind of value.
    #[error("key `{key}`: expected {expected}, found {found}")]
    BadKey {
        /// The key.
        key: String,
        /// What was expected.
        expected: String,
        /// What was found (a short rendering).
        found: String,
    },
    /// A JSONL line is not valid JSON.
    #[error("invalid JSON at column {column}: {message}")]
    InvalidJson {
        /// 1-based column within the line.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The line is not valid UTF-8.
    #[error("invalid UTF-8 at byte {byte} of the line")]
    InvalidUtf8 {
        /// 0-based byte offset of the first invalid byte within the line.
        byte: usize,
    },
    /// A fine-tuning row whose keys fit none of the known shapes.
    #[error(
        "no known row shape fits keys [{}]; expected {expected} (rename columns with a field \
         map such as `instruction=question,output=answer`)",
        join_quoted(found)
    )]
    UnknownShape {
        /// The row's keys.
        found: Vec<String>,
        /// The shapes and their required keys.
        expected: String,
    },
    /// A fine-tuning row that does not fit the shape of its file.
    #[error(
        "row does not fit the {format} shape: {reason}; keys found [{}]",
        join_quoted(found)
    )]
    WrongShape {
        /// The file's shape (and where it was detected).
        format: String,
        /// What is missing.
        reason: String,
        /// The row's keys.
        found: Vec<String>,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds a [`DataError::Config`].
    pub fn config(option: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            option: option.into(),
            reason: reason.into(),
        }
    }
}

fn join_quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct MissingMessage<'a> {
    what: &'a str,
    looked: &'a [(PathBuf, String)],
    hint: &'a str,
}

impl fmt::Display for MissingMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} not found; looked in:", self.what)?;
        for (path, origin) in self.looked {
            writeln!(f, "  - {} ({origin})", path.display())?;
        }
        write!(f, "{}", self.hint)
    }
}

/// Shortens a text for error messages: the first `max` characters, with `…` when cut.
pub(crate) fn preview(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small_enough_to_return_and_wrap() {
        // clippy's result_large_err fires at 128 bytes; leave room for wrapping enums.
        assert!(std::mem::size_of::<DataError>() <= 104);
    }
}
