//! Reading one JSON row of a given [`SftFormat`] into a [`Sample`].

use serde_json::{Map, Value};

use super::{Conversation, FieldMap, Message, Role, Sample, SftFormat};
use crate::error::RowIssue;
use crate::json::{describe, take_string};

type Row = Map<String, Value>;
type RowResult<T> = std::result::Result<T, RowIssue>;

/// The sorted keys of a row, for messages.
pub(crate) fn keys_of(row: &Row) -> Vec<String> {
    let mut keys: Vec<String> = row.keys().cloned().collect();
    keys.sort();
    keys
}

/// Reads `row` (field map already applied) as `format` (`Auto`: detected from this row);
/// `origin` says where the file's format was decided, for messages.
pub(crate) fn parse_row(
    mut row: Row,
    format: SftFormat,
    fields: &FieldMap,
    origin: &str,
) -> RowResult<Sample> {
    let format = match format {
        SftFormat::Auto => SftFormat::detect(&row).ok_or_else(|| RowIssue::UnknownShape {
            found: keys_of(&row),
            expected: SftFormat::describe_all(),
        })?,
        concrete => concrete,
    };
    if let Some(missing) = format
        .required_keys()
        .iter()
        .find(|k| !row.contains_key(**k))
    {
        return Err(RowIssue::WrongShape {
            format: format!("{format}{origin}"),
            reason: format!("missing key `{missing}`"),
            found: keys_of(&row),
        });
    }
    match format {
        // (Auto was resolved above.)
        SftFormat::Alpaca | SftFormat::Auto => {
            let instruction = take_string(&mut row, "instruction")?;
            let input = match row.remove("input") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s,
                Some(other) => return Err(not_a_string("input", &other)),
            };
            let output = take_string(&mut row, "output")?;
            let user = if input.trim().is_empty() {
                instruction
            } else {
                format!("{instruction}\n\n{input}")
            };
            Ok(Sample::Chat(Conversation::single_turn(user, output)))
        }
        SftFormat::MetaMath => {
            let query = take_string(&mut row, "query")?;
            let response = take_string(&mut row, "response")?;
            Ok(Sample::Chat(Conversation::single_turn(query, response)))
        }
        SftFormat::Chat => messages(row, "messages", "role", "content", fields, chat_role),
        SftFormat::ShareGpt => {
            messages(row, "conversations", "from", "value", fields, sharegpt_role)
        }
        SftFormat::PromptCompletion => Ok(Sample::Completion {
            prompt: take_string(&mut row, "prompt")?,
            completion: take_string(&mut row, "completion")?,
        }),
        SftFormat::Text => {
            let text = take_string(&mut row, "text")?;
            if text.is_empty() {
                return Err(RowIssue::BadKey {
                    key: "text".into(),
                    expected: "a non-empty string".into(),
                    found: "an empty string".into(),
                });
            }
            Ok(Sample::Text(text))
        }
    }
}

fn not_a_string(key: &str, found: &Value) -> RowIssue {
    RowIssue::BadKey {
        key: key.into(),
        expected: "a string".into(),
        found: describe(found),
    }
}

const CHAT_ROLES: &str = "one of \"system\", \"user\", \"assistant\"";
const SHAREGPT_ROLES: &str = "one of \"system\", \"human\", \"gpt\" (or \"user\", \"assistant\")";

fn chat_role(name: &str) -> Result<Role, &'static str> {
    match name {
        "system" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        _ => Err(CHAT_ROLES),
    }
}

fn sharegpt_role(name: &str) -> Result<Role, &'static str> {
    match name {
        "system" => Ok(Role::System),
        "human" | "user" => Ok(Role::User),
        "gpt" | "assistant" => Ok(Role::Assistant),
        _ => Err(SHAREGPT_ROLES),
    }
}

/// Reads the message list under `list` with per-message keys `role_key` / `content_key`.
fn messages(
    mut row: Row,
    list: &str,
    role_key: &str,
    content_key: &str,
    fields: &FieldMap,
    role_of: fn(&str) -> Result<Role, &'static str>,
) -> RowResult<Sample> {
    let items = match row.remove(list) {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(RowIssue::BadKey {
                key: list.into(),
                expected: "an array of message objects".into(),
                found: describe(&other),
            })
        }
        None => return Err(RowIssue::MissingKey { key: list.into() }),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = |key: &str| format!("{list}[{i}].{key}");
        let mut obj = match item {
            Value::Object(obj) => obj,
            other => {
                return Err(RowIssue::BadKey {
                    key: format!("{list}[{i}]"),
                    expected: format!("an object with `{role_key}` and `{content_key}`"),
                    found: describe(&other),
                })
            }
        };
        fields.apply_message(&mut obj);
        let role_name = take_string(&mut obj, role_key).map_err(|issue| rekey(issue, at))?;
        let role = role_of(&role_name).map_err(|expected| RowIssue::BadKey {
            key: at(role_key),
            expected: expected.into(),
            found: format!("{role_name:?}"),
        })?;
        let content = take_string(&mut obj, content_key).map_err(|issue| rekey(issue, at))?;
        out.push(Message { role, content });
    }
    if !out.iter().any(|m| m.role == Role::Assistant) {
        let roles: Vec<&str> = out.iter().map(|m| m.role.as_str()).collect();
        return Err(RowIssue::BadKey {
            key: list.into(),
            expected: "at least one assistant turn".into(),
            found: format!("{} messages [{}]", out.len(), roles.join(", ")),
        });
    }
    Ok(Sample::Chat(Conversation::new(out)))
}

/// Puts the message path (`messages[2].content`) into a key issue.
fn rekey(issue: RowIssue, at: impl Fn(&str) -> String) -> RowIssue {
    match issue {
        RowIssue::MissingKey { key } => RowIssue::MissingKey { key: at(&key) },
        RowIssue::BadKey {
            key,
            expected,
            found,
        } => RowIssue::BadKey {
            key: at(&key),
            expected,
            found,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, format: SftFormat) -> RowResult<Sample> {
        let row: Row = serde_json::from_str(json).unwrap();
        parse_row(row, format, &FieldMap::new(), "")
    }

    #[test]
    fn alpaca_joins_instruction_and_input() {
        let s = parse(
            r#"{"instruction": "Add.", "input": "2 and 3", "output": "5"}"#,
            SftFormat::Alpaca,
        )
        .unwrap();
        assert_eq!(
            s,
            Sample::Chat(Conversation::single_turn("Add.\n\n2 and 3", "5"))
        );
        let s = parse(
            r#"{"instruction": "Hi", "output": "Yo"}"#,
            SftFormat::Alpaca,
        )
        .unwrap();
        assert_eq!(s, Sample::Chat(Conversation::single_turn("Hi", "Yo")));
    }

    #[test]
    fn message_errors_name_the_message() {
        let e = parse(
            r#"{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}"#,
            SftFormat::Chat,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "key `messages[1].role`: expected one of \"system\", \"user\", \"assistant\", \
             found \"bot\""
        );
        let e = parse(
            r#"{"conversations": [{"from": "human"}]}"#,
            SftFormat::ShareGpt,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "missing key `conversations[0].value`");
        let e = parse(
            r#"{"messages": [{"role": "user", "content": "a"}]}"#,
            SftFormat::Chat,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "key `messages`: expected at least one assistant turn, found 1 messages [user]"
        );
        let e = parse(r#"{"text": 3}"#, SftFormat::Alpaca).unwrap_err();
        assert_eq!(
            e.to_string(),
            "row does not fit the alpaca shape: missing key `instruction`; keys found [\"text\"]"
        );
    }
}
