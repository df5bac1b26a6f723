//! Column renaming for files whose keys differ from the standard shapes
//! (`instruction=question,output=answer`).

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::{DataError, Result};

/// Keys of a row that a field map can point elsewhere.
const ROW_KEYS: &[&str] = &[
    "instruction",
    "input",
    "output",
    "messages",
    "conversations",
    "prompt",
    "completion",
    "text",
    "query",
    "response",
];

/// Keys inside a message object (`messages[i]` / `conversations[i]`).
const MESSAGE_KEYS: &[&str] = &["role", "content", "from", "value"];

/// Renames columns before a row is read: each entry `key=column` makes the loader read the
/// standard `key` (for example `instruction`) from the file's `column` (for example
/// `question`). Row keys are renamed on the row, message keys (`role`, `content`, `from`,
/// `value`) inside every message of `messages` / `conversations`.
///
/// ```
/// use data::sft::FieldMap;
/// let map: FieldMap = "instruction=question, output=answer".parse()?;
/// assert_eq!(map.column("output"), Some("answer"));
/// assert_eq!(map.to_string(), "instruction=question,output=answer");
/// let err = "instruction=question,outptu=answer".parse::<FieldMap>().unwrap_err();
/// assert!(err.to_string().contains("entry 2 `outptu=answer`: unknown key `outptu`"));
/// # Ok::<(), data::DataError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap {
    /// `(standard key, column in the file)`, in the order given.
    entries: Vec<(&'static str, String)>,
}

impl FieldMap {
    /// The identity map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key=column`.
    ///
    /// # Errors
    /// [`DataError::Config`] when `key` is not a standard key, `column` is empty, or either is
    /// already mapped.
    pub fn with(mut self, key: &str, column: &str) -> Result<Self> {
        let entry = format!("{key}={column}");
        self.push(key, column)
            .map_err(|reason| bad(format!("entry `{entry}`: {reason}")))?;
        Ok(self)
    }

    /// The file column read as `key`, when remapped.
    pub fn column(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, c)| c.as_str())
    }

    /// True when nothing is renamed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn push(&mut self, key: &str, column: &str) -> std::result::Result<(), String> {
        let Some(&known) = ROW_KEYS.iter().chain(MESSAGE_KEYS).find(|k| **k == key) else {
            return Err(format!(
                "unknown key `{key}`; expected one of {}",
                ROW_KEYS
                    .iter()
                    .chain(MESSAGE_KEYS)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if column.is_empty() {
            return Err(format!("no column after `{key}=`"));
        }
        if column.contains('=') {
            return Err(format!(
                "column `{column}` contains `=`; separate entries with `,`"
            ));
        }
        if let Some((_, c)) = self.entries.iter().find(|(k, _)| *k == known) {
            return Err(format!("key `{key}` is already mapped to `{c}`"));
        }
        if let Some((k, _)) = self.entries.iter().find(|(_, c)| c == column) {
            return Err(format!("column `{column}` is already mapped to `{k}`"));
        }
        self.entries.push((known, column.to_string()));
        Ok(())
    }

    /// Renames the row-level columns of `row` in place (a mapped column replaces the key).
    pub(crate) fn apply_row(&self, row: &mut Map<String, Value>) {
        self.apply(row, ROW_KEYS);
    }

    /// Renames the message-level keys of one message object in place.
    pub(crate) fn apply_message(&self, message: &mut Map<String, Value>) {
        self.apply(message, MESSAGE_KEYS);
    }

    fn apply(&self, obj: &mut Map<String, Value>, level: &[&str]) {
        for (key, column) in &self.entries {
            if level.contains(key) {
                if let Some(value) = obj.remove(column.as_str()) {
                    obj.insert((*key).to_string(), value);
                }
            }
        }
    }
}

fn bad(reason: String) -> DataError {
    DataError::config("field map", reason)
}

impl FromStr for FieldMap {
    type Err = DataError;

    /// Parses `key=column[,key=column…]`; spaces around entries, keys and columns are
    /// ignored; an empty string is the identity map.
    ///
    /// # Errors
    /// [`DataError::Config`] naming the entry (1-based) and what is wrong with it.
    fn from_str(text: &str) -> Result<Self> {
        let mut map = Self::new();
        if text.trim().is_empty() {
            return Ok(map);
        }
        for (i, entry) in text.split(',').enumerate() {
            let entry = entry.trim();
            let at = |reason: String| bad(format!("entry {} `{entry}`: {reason}", i + 1));
            let Some((key, column)) = entry.split_once('=') else {
                return Err(at("expected `key=column`".into()));
            };
            map.push(key.trim(), column.trim()).map_err(at)?;
        }
        Ok(map)
    }
}

impl fmt::Display for FieldMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, column)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={column}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        text.parse::<FieldMap>().unwrap_err().to_string()
    }

    #[test]
    fn parses_and_reports_the_bad_entry() {
        let map: FieldMap = " instruction = question ,output=answer,role=speaker"
            .parse()
            .unwrap();
        assert_eq!(map.column("instruction"), Some("question"));
        assert_eq!(map.column("role"), Some("speaker"));
        assert_eq!(map.column("input"), None);
        assert!("".parse::<FieldMap>().unwrap().is_empty());
        assert_eq!(
            err("instruction=q,output"),
            "invalid field map: entry 2 `output`: expected `key=column`"
        );
        assert_eq!(
            err("output="),
            "invalid field map: entry 1 `output=`: no column after `output=`"
        );
        assert_eq!(
            err("output=a,output=b"),
            "invalid field map: entry 2 `output=b`: key `output` is already mapped to `a`"
        );
        assert_eq!(
            err("output=a,input=a"),
            "invalid field map: entry 2 `input=a`: column `a` is already mapped to `output`"
        );
        assert!(err("answer=x").starts_with(
            "invalid field map: entry 1 `answer=x`: unknown key `answer`; expected one of \
             instruction, input, output,"
        ));
        assert!(err("a=b,").contains("entry 1 `a=b`"));
        assert_eq!(
            err("output=b,"),
            "invalid field map: entry 2 ``: expected `key=column`"
        );
    }

    #[test]
    fn renames_rows_and_messages() {
        let map: FieldMap = "output=answer,content=text".parse().unwrap();
        let mut row: Map<String, Value> =
            serde_json::from_str(r#"{"answer": "4", "text": "kept"}"#).unwrap();
        map.apply_row(&mut row);
        assert_eq!(row["output"], "4");
        assert_eq!(row["text"], "kept", "message keys do not touch the row");
        let mut msg: Map<String, Value> = serde_json::from_str(r#"{"text": "hi"}"#).unwrap();
        map.apply_message(&mut msg);
        assert_eq!(msg["content"], "hi");
    }
}
