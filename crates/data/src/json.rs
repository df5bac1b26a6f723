//! Small helpers to read typed fields out of JSON objects with row-level errors.

use serde_json::{Map, Value};

use crate::error::{preview, RowIssue};

/// Parses one JSONL line into an object.
pub(crate) fn parse_object(line: &str) -> Result<Map<String, Value>, RowIssue> {
    let value: Value = serde_json::from_str(line).map_err(|e| RowIssue::InvalidJson {
        column: e.column(),
        message: e.to_string(),
    })?;
    into_object(value)
}

/// The object inside `value`, or an issue naming what was found instead.
pub(crate) fn into_object(value: Value) -> Result<Map<String, Value>, RowIssue> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(RowIssue::BadKey {
            key: "<row>".into(),
            expected: "a JSON object".into(),
            found: describe(&other),
        }),
    }
}

/// Takes the string under `key`.
pub(crate) fn take_string(map: &mut Map<String, Value>, key: &str) -> Result<String, RowIssue> {
    match map.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(RowIssue::BadKey {
            key: key.into(),
            expected: "a string".into(),
            found: describe(&other),
        }),
        None => Err(RowIssue::MissingKey { key: key.into() }),
    }
}

/// A short rendering of a JSON value for messages (`number 3`, `null`, …).
pub(crate) fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    format!("{kind} {}", preview(&value.to_string(), 40))
}
