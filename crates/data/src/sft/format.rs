//! The row shapes a fine-tuning file can have, and detection from a row's keys.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::{DataError, Result};

/// The shape of every row of a fine-tuning file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SftFormat {
    /// Detect from the keys of the file's first row (see [`SftFormat::detect`]); later rows
    /// that do not fit that shape are bad rows.
    #[default]
    Auto,
    /// `{"instruction", "input"?, "output"}`: one user turn (`instruction`, then a blank line
    /// and `input` when it is not empty) and the answer.
    Alpaca,
    /// `{"messages": [{"role", "content"}, …]}` with roles `system`, `user`, `assistant`.
    Chat,
    /// `{"conversations": [{"from", "value"}, …]}` with `from` `system`, `human` (or `user`),
    /// `gpt` (or `assistant`).
    ShareGpt,
    /// `{"prompt", "completion"}`: raw text, no chat template, loss on the completion.
    PromptCompletion,
    /// `{"text"}`: plain text, loss on every token.
    Text,
    /// MetaMathQA `{"query", "response", …}`: one user turn and the answer (other keys such as
    /// `type` are ignored here; [`crate::metamath`] reads them all).
    MetaMath,
}

/// Names accepted by [`SftFormat::from_str`], with the format each stands for.
const NAMES: &[(&str, SftFormat)] = &[
    ("auto", SftFormat::Auto),
    ("alpaca", SftFormat::Alpaca),
    ("chat", SftFormat::Chat),
    ("messages", SftFormat::Chat),
    ("sharegpt", SftFormat::ShareGpt),
    ("prompt-completion", SftFormat::PromptCompletion),
    ("completion", SftFormat::PromptCompletion),
    ("text", SftFormat::Text),
    ("metamath", SftFormat::MetaMath),
    ("metamathqa", SftFormat::MetaMath),
];

impl SftFormat {
    /// Every concrete format, in detection order.
    pub const CONCRETE: [SftFormat; 6] = [
        Self::Chat,
        Self::ShareGpt,
        Self::Alpaca,
        Self::MetaMath,
        Self::PromptCompletion,
        Self::Text,
    ];

    /// The canonical name (`alpaca`, `chat`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Alpaca => "alpaca",
            Self::Chat => "chat",
            Self::ShareGpt => "sharegpt",
            Self::PromptCompletion => "prompt-completion",
            Self::Text => "text",
            Self::MetaMath => "metamath",
        }
    }

    /// The keys a row of this format must have (for messages).
    pub fn required_keys(self) -> &'static [&'static str] {
        match self {
            Self::Auto => &[],
            Self::Alpaca => &["instruction", "output"],
            Self::Chat => &["messages"],
            Self::ShareGpt => &["conversations"],
            Self::PromptCompletion => &["prompt", "completion"],
            Self::Text => &["text"],
            Self::MetaMath => &["query", "response"],
        }
    }

    /// The first concrete format (in [`SftFormat::CONCRETE`] order: `messages`,
    /// `conversations`, `instruction`+`output`, `query`+`response`, `prompt`+`completion`,
    /// `text`) whose required keys the row has, or `None`.
    pub fn detect(row: &Map<String, Value>) -> Option<SftFormat> {
        Self::CONCRETE
            .into_iter()
            .find(|f| f.required_keys().iter().all(|k| row.contains_key(*k)))
    }

    /// The shapes, for messages: `chat {messages}, sharegpt {conversations}, …`.
    pub(crate) fn describe_all() -> String {
        Self::CONCRETE
            .iter()
            .map(|f| format!("{} {{{}}}", f.name(), f.required_keys().join(", ")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for SftFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SftFormat {
    type Err = DataError;

    /// Parses a format name, case-insensitively; `_` may stand for `-`.
    fn from_str(text: &str) -> Result<Self> {
        let wanted = text.trim().to_ascii_lowercase().replace('_', "-");
        NAMES
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<_> = NAMES.iter().map(|(n, _)| *n).collect();
                DataError::config(
                    "format",
                    format!(
                        "unknown format `{text}`; expected one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn detection_by_keys() {
        let cases = [
            (r#"{"messages": [], "text": ""}"#, Some(SftFormat::Chat)),
            (r#"{"conversations": []}"#, Some(SftFormat::ShareGpt)),
            (
                r#"{"instruction": "", "input": "", "output": ""}"#,
                Some(SftFormat::Alpaca),
            ),
            (
                r#"{"query": "", "response": "", "type": ""}"#,
                Some(SftFormat::MetaMath),
            ),
            (
                r#"{"prompt": "", "completion": ""}"#,
                Some(SftFormat::PromptCompletion),
            ),
            (r#"{"text": "", "meta": 1}"#, Some(SftFormat::Text)),
            (r#"{"instruction": "", "answer": ""}"#, None),
        ];
        for (json, want) in cases {
            assert_eq!(SftFormat::detect(&keys(json)), want, "{json}");
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            "ShareGPT".parse::<SftFormat>().unwrap(),
            SftFormat::ShareGpt
        );
        assert_eq!(
            "prompt_completion".parse::<SftFormat>().unwrap(),
            SftFormat::PromptCompletion
        );
        for f in SftFormat::CONCRETE {
            assert_eq!(f.name().parse::<SftFormat>().unwrap(), f);
        }
        assert_eq!(
            "jsonl".parse::<SftFormat>().unwrap_err().to_string(),
            "invalid format: unknown format `jsonl`; expected one of auto, alpaca, chat, \
             messages, sharegpt, prompt-completion, completion, text, metamath, metamathqa"
        );
    }
}
