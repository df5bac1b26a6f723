//! Which layers an adapter goes on: PEFT's `target_modules`, `exclude_modules` and
//! `layers_to_transform` rules.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use bone_io::FileError;

use crate::error::{AdapterError, Result};

/// PEFT's `target_modules`: module names matched as path suffixes, or one regular expression
/// that must match the whole module path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    /// A module matches when its path equals a name or ends with `.name`
    /// (`q_proj` matches `model.layers.0.self_attn.q_proj`).
    Names(Vec<String>),
    /// A module matches when the expression matches its whole path
    /// (`.*\.(q_proj|v_proj)`). `all-linear` means every adaptable linear layer.
    Regex(String),
}

impl TargetModules {
    /// Suffix names (`["q_proj", "v_proj"]`).
    pub fn names<S: AsRef<str>>(names: &[S]) -> Self {
        Self::Names(names.iter().map(|n| n.as_ref().to_string()).collect())
    }

    /// Parses a comma-separated list (`q_proj,v_proj`), or a regex when it starts with `re:`.
    pub fn parse_cli(text: &str) -> Self {
        match text.strip_prefix("re:") {
            Some(regex) => Self::Regex(regex.to_string()),
            None if text == "all-linear" => Self::Regex(text.to_string()),
            None => Self::Names(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            ),
        }
    }

    /// A matcher for module paths.
    ///
    /// # Errors
    /// An invalid regular expression, naming `field` in `file`.
    pub fn matcher(&self, file: &str, field: &str) -> Result<TargetMatcher> {
        Ok(match self {
            Self::Names(names) => TargetMatcher::Names(names.clone()),
            Self::Regex(r) if r == "all-linear" => TargetMatcher::All,
            Self::Regex(r) => {
                TargetMatcher::Regex(Regex::new(&format!("^(?:{r})$")).map_err(|e| {
                    AdapterError::from(FileError::field(
                        file,
                        field,
                        "a valid regular expression",
                        format!("{r:?} ({e})"),
                    ))
                })?)
            }
        })
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            Self::Names(names) => {
                Value::Array(names.iter().map(|n| Value::String(n.clone())).collect())
            }
            Self::Regex(r) => Value::String(r.clone()),
        }
    }
}

impl std::fmt::Display for TargetModules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Names(names) => write!(f, "[{}]", names.join(", ")),
            Self::Regex(r) => write!(f, "regex {r:?}"),
        }
    }
}

/// A compiled [`TargetModules`].
#[derive(Debug, Clone)]
pub enum TargetMatcher {
    /// Suffix names.
    Names(Vec<String>),
    /// Whole-path regular expression.
    Regex(Regex),
    /// Every candidate (`all-linear`).
    All,
}

impl TargetMatcher {
    /// Whether `path` is selected.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Names(names) => names
                .iter()
                .any(|n| path == n || path.ends_with(&format!(".{n}"))),
            Self::Regex(regex) => regex.is_match(path),
            Self::All => true,
        }
    }

    /// Whether the matcher is a list of names (PEFT applies `layers_to_transform` only then).
    pub fn is_names(&self) -> bool {
        matches!(self, Self::Names(_))
    }
}

/// The index of the transformer layer a module path belongs to: the number after
/// `<pattern>.` (any path component when `patterns` is empty), as PEFT finds it.
pub fn layer_index(path: &str, patterns: &[String]) -> Option<usize> {
    let components: Vec<&str> = path.split('.').collect();
    // The index must be followed by at least one more component, as in PEFT's regex.
    for i in 1..components.len().saturating_sub(1) {
        if let Ok(index) = components[i].parse::<usize>() {
            if patterns.is_empty() || patterns.iter().any(|p| p == components[i - 1]) {
                return Some(index);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_whole_components_only() {
        let m = TargetModules::names(&["q_proj", "dense"])
            .matcher("<test>", "target_modules")
            .unwrap();
        assert!(m.matches("model.layers.0.self_attn.q_proj"));
        assert!(m.matches("q_proj"));
        assert!(!m.matches("model.layers.0.self_attn.qq_proj"));
        assert!(m.matches("encoder.layer.0.attention.output.dense"));
        assert!(!m.matches("encoder.layer.0.attention.output.dense_x"));
    }

    #[test]
    fn regex_must_match_the_whole_path() {
        let m = TargetModules::Regex(r".*\.(q|v)_proj".into())
            .matcher("<test>", "target_modules")
            .unwrap();
        assert!(m.matches("model.layers.3.self_attn.v_proj"));
        assert!(!m.matches("model.layers.3.self_attn.v_proj.extra"));
        assert!(!m.matches("model.layers.3.self_attn.k_proj"));
    }

    #[test]
    fn bad_regex_names_the_field() {
        let err = TargetModules::Regex("(".into())
            .matcher("cfg.json", "target_modules")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cfg.json: field `target_modules`: expected a valid regular expression, found \"(\""), "{err}");
    }

    #[test]
    fn layer_index_follows_the_pattern() {
        assert_eq!(layer_index("model.layers.12.mlp.up_proj", &[]), Some(12));
        assert_eq!(
            layer_index("encoder.layer.3.attention.self.query", &["layer".into()]),
            Some(3)
        );
        assert_eq!(
            layer_index("model.layers.12.mlp.up_proj", &["h".into()]),
            None
        );
        assert_eq!(layer_index("lm_head", &[]), None);
    }

    #[test]
    fn cli_lists_and_regexes() {
        assert_eq!(
            TargetModules::parse_cli("q_proj, v_proj"),
            TargetModules::names(&["q_proj", "v_proj"])
        );
        assert_eq!(
            TargetModules::parse_cli(r"re:.*\.query"),
            TargetModules::Regex(r".*\.query".into())
        );
    }
}
