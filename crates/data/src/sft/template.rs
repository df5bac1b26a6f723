//! Hugging Face chat templates (Jinja, from `tokenizer_config.json`) rendered with
//! `minijinja`, and the byte spans of the assistant turns in the rendered text.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::Value as Json;

use super::{Conversation, Message, Role};
use crate::error::{preview, DataError, Result};

/// Name of the template inside its environment (shows in minijinja's messages).
const NAME: &str = "chat_template";
/// Prefix of the errors `raise_exception` makes, to tell them from other render errors.
const RAISED: &str = "\u{1}raise_exception\u{1}";

/// A model's chat template, compiled.
///
/// Rendered as `transformers` does (`apply_chat_template`): Jinja with `trim_blocks` and
/// `lstrip_blocks`, the variables `messages` (`[{role, content}]`), `add_generation_prompt`,
/// `bos_token` and `eos_token`, the function `raise_exception(message)`, and Python's string
/// and dict methods (`.strip()`, `.startswith()`, `.items()`, … from `minijinja-contrib`'s
/// pycompat), and transformers' `tojson` (Python `json.dumps`, no HTML escaping). `{% generation %}` / `{% endgeneration %}` markers (transformers' assistant
/// masks) are removed before compiling; the masks come from [`ChatTemplate::render_with_targets`].
#[derive(Clone)]
pub struct ChatTemplate {
    env: Arc<Environment<'static>>,
    source: Arc<str>,
    origin: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .field("source", &preview(&self.source, 60))
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

/// A rendered conversation and where its assistant turns are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedChat {
    /// The whole conversation as the template renders it (no generation prompt).
    pub text: String,
    /// Byte ranges of `text` that carry the loss, one per assistant turn: from the end of the
    /// generation prompt before the turn to the end of the turn (its content and the
    /// template's end-of-turn text, such as `<|im_end|>`), trailing whitespace excluded.
    pub targets: Vec<Range<usize>>,
}

impl ChatTemplate {
    /// Compiles `source` with the given special-token strings; `origin` names it in errors.
    ///
    /// # Errors
    /// [`DataError::ChatTemplate`] with minijinja's message (and line) when it does not
    /// compile.
    pub fn new(
        source: &str,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
        origin: impl Into<String>,
    ) -> Result<Self> {
        let origin = origin.into();
        let fail = |e: Error| DataError::ChatTemplate {
            origin: origin.clone(),
            reason: format!("does not compile: {e}"),
        };
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(fail)?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<Value, Error> {
                Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{RAISED}{message}"),
                ))
            },
        );
        env.add_filter("tojson", super::tojson::tojson);
        let source = strip_generation_tags(source);
        env.add_template_owned(NAME, source.clone()).map_err(fail)?;
        Ok(Self {
            env: Arc::new(env),
            source: source.into(),
            origin,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// The template of a Hugging Face `tokenizer_config.json`: its `chat_template` (a string,
    /// or a list of `{name, template}` from which `default` is taken), else a
    /// `chat_template.jinja` beside it; `bos_token` / `eos_token` from the same file (strings
    /// or `{"content": …}` objects; empty when absent). `Ok(None)` when the model has no
    /// template (a base model: use the Alpaca prompt).
    ///
    /// # Errors
    /// [`DataError::Missing`] / [`DataError::Io`] for the file, [`DataError::Json`] when it
    /// does not parse, [`DataError::ChatTemplate`] when `chat_template` has another type, the
    /// list has no `default`, or the template does not compile.
    pub fn from_tokenizer_config(path: &Path) -> Result<Option<Self>> {
        let text = crate::load::read_bytes(path)?;
        let config: Json = serde_json::from_slice(&text).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let origin = path.display().to_string();
        let bad = |reason: String| DataError::ChatTemplate {
            origin: origin.clone(),
            reason,
        };
        let token = |key: &str| match config.get(key) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Object(o)) => o
                .get("content")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        let (bos, eos) = (token("bos_token"), token("eos_token"));
        let source = match config.get("chat_template") {
            None | Some(Json::Null) => {
                let beside = path.with_file_name("chat_template.jinja");
                if !beside.is_file() {
                    return Ok(None);
                }
                let bytes = crate::load::read_bytes(&beside)?;
                let source = String::from_utf8(bytes)
                    .map_err(|_| bad(format!("{} is not UTF-8", beside.display())))?;
                return Self::new(&source, bos, eos, beside.display().to_string()).map(Some);
            }
            Some(Json::String(s)) => s.clone(),
            Some(Json::Array(list)) => named_default(list).map_err(bad)?,
            Some(other) => {
                return Err(bad(format!(
                    "`chat_template`: expected a string or a list of {{name, template}}, found {}",
                    crate::json::describe(other)
                )))
            }
        };
        Self::new(&source, bos, eos, origin).map(Some)
    }

    /// The template text (after removing `{% generation %}` markers).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The `bos_token` string the template sees.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The `eos_token` string the template sees.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders `messages`, with the assistant header at the end when `add_generation_prompt`.
    ///
    /// # Errors
    /// [`DataError::ChatTemplate`]: the template's own `raise_exception` message (`the
    /// template raised: …`), or minijinja's render error.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let list: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut map = BTreeMap::new();
                map.insert("role", Value::from(m.role.as_str()));
                map.insert("content", Value::from(m.content.as_str()));
                Value::from(map)
            })
            .collect();
        let ctx = minijinja::context! {
            messages => list,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        };
        let template = self.env.get_template(NAME).map_err(|e| self.error(e))?;
        template.render(ctx).map_err(|e| self.error(e))
    }

    /// Renders the conversation and locates its assistant turns by rendering prefixes: turn
    /// `k` starts where `render(messages[..k], add_generation_prompt = true)` ends and ends
    /// where `render(messages[..=k])` ends (trailing whitespace excluded). Both must be
    /// prefixes of the whole rendering.
    ///
    /// # Errors
    /// The render errors of [`ChatTemplate::render`], and [`DataError::ChatTemplate`] when a
    /// prefix rendering is not a prefix of the whole (a template that rewrites earlier turns,
    /// such as one dropping past reasoning): its turns cannot be located.
    pub fn render_with_targets(&self, conversation: &Conversation) -> Result<RenderedChat> {
        let messages = &conversation.messages;
        let text = self.render(messages, false)?;
        let mut targets = Vec::new();
        for (k, message) in messages.iter().enumerate() {
            if message.role != Role::Assistant {
                continue;
            }
            let before = self.render(&messages[..k], true)?;
            let through = self.render(&messages[..=k], false)?;
            self.check_prefix(&before, &text, k, " and the generation prompt")?;
            self.check_prefix(&through, &text, k + 1, "")?;
            let start = before.len();
            let end = through.trim_end().len().max(start);
            targets.push(start..end);
        }
        Ok(RenderedChat { text, targets })
    }

    fn check_prefix(&self, part: &str, whole: &str, k: usize, what: &str) -> Result<()> {
        if whole.starts_with(part) {
            return Ok(());
        }
        let at = part
            .bytes()
            .zip(whole.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let at = (0..=at)
            .rev()
            .find(|&i| part.is_char_boundary(i) && whole.is_char_boundary(i))
            .unwrap_or(0);
        Err(DataError::ChatTemplate {
            origin: self.origin.clone(),
            reason: format!(
                "rendering the first {k} messages{what} is not a prefix of rendering the whole \
                 conversation (they differ from byte {at}: {:?} vs {:?}), so the assistant \
                 turns cannot be located for the loss mask",
                preview(&part[at..], 30),
                preview(&whole[at..], 30)
            ),
        })
    }

    fn error(&self, e: Error) -> DataError {
        let reason = match e.detail().and_then(|d| d.strip_prefix(RAISED)) {
            Some(message) => format!("the template raised: {message}"),
            None => format!("rendering failed: {e}"),
        };
        DataError::ChatTemplate {
            origin: self.origin.clone(),
            reason,
        }
    }
}

/// The `default` entry of the list form `[{"name": …, "template": …}]`.
fn named_default(list: &[Json]) -> std::result::Result<String, String> {
    let mut names = Vec::new();
    for entry in list {
        let name = entry.get("name").and_then(Json::as_str);
        let template = entry.get("template").and_then(Json::as_str);
        match (name, template) {
            (Some("default"), Some(t)) => return Ok(t.to_string()),
            (Some(n), Some(_)) => names.push(format!("`{n}`")),
            _ => {
                return Err(format!(
                    "`chat_template` list entry: expected {{\"name\": string, \"template\": \
                     string}}, found {}",
                    crate::json::describe(entry)
                ))
            }
        }
    }
    Err(format!(
        "`chat_template` lists no template named `default` (found {})",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    ))
}

/// Removes transformers' `{% generation %}` / `{% endgeneration %}` tags (with any `-`/`+`
/// whitespace control), which plain Jinja does not know.
fn strip_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(open) = rest.find("{%") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("%}") else { break };
        let inner =
            after[..close].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        out.push_str(&rest[..open]);
        if inner != "generation" && inner != "endgeneration" {
            out.push_str(&rest[open..open + 2 + close + 2]);
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_tags_are_removed() {
        assert_eq!(
            strip_generation_tags("a{% if x %}b{%- generation %}c{% endgeneration -%}{% endif %}"),
            "a{% if x %}bc{% endif %}"
        );
    }

    #[test]
    fn pycompat_and_trim_blocks() {
        let t = ChatTemplate::new(
            "{% for m in messages %}\n  {{ m['content'].strip().upper() }}{% if m.content.startswith(' h') %}!{% endif %}\n{% endfor %}",
            "",
            "",
            "given",
        )
        .unwrap();
        let got = t
            .render(&[Message::new(Role::User, " hi ")], false)
            .unwrap();
        // Python jinja2 (trim_blocks, lstrip_blocks) renders '  HI!'.
        assert_eq!(got, "  HI!");
        // Indented block tags vanish with their line ends; jinja2 gives '[a]\n'.
        let t = ChatTemplate::new(
            "{% for m in messages %}\n    {% if m.role == 'user' %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}",
            "",
            "",
            "given",
        )
        .unwrap();
        let two = [
            Message::new(Role::User, "a"),
            Message::new(Role::System, "b"),
        ];
        assert_eq!(t.render(&two, false).unwrap(), "[a]\n");
    }

    #[test]
    fn named_list_takes_default() {
        let list: Vec<Json> = serde_json::from_str(
            r#"[{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]"#,
        )
        .unwrap();
        assert_eq!(named_default(&list).unwrap(), "D");
        assert_eq!(
            named_default(&list[..1]).unwrap_err(),
            "`chat_template` lists no template named `default` (found `tool_use`)"
        );
    }
}
