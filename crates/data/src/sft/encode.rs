//! Tokenising [`SftRecord`]s with loss masks: labels only on assistant turns (by default).

use std::ops::Range;
use std::sync::Arc;

use tokenizers::Tokenizer;

use super::{ChatTemplate, Conversation, Role, Sample, SftRecord};
use crate::batcher::{EncodedSequence, IGNORE_INDEX};
use crate::error::{preview, DataError, Result};
use crate::prompt::alpaca_prompt;

/// Which tokens of a conversation carry the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LossOn {
    /// Only the assistant turns (and their end-of-turn tokens); the usual SFT choice.
    #[default]
    Assistant,
    /// Every token (prompt and response).
    All,
}

/// Options of an [`SftEncoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftEncoderConfig {
    /// Longest sequence; longer ones are cut at the end and flagged
    /// [`EncodedSequence::truncated`]. Default 2048.
    pub max_len: usize,
    /// Which tokens carry the loss. Default [`LossOn::Assistant`].
    pub loss_on: LossOn,
    /// Prepended to Alpaca-prompted, prompt/completion and text samples (a chat template
    /// writes its own `bos_token`). Default `Some(1)` (LLaMA `<s>`).
    pub bos_id: Option<u32>,
    /// Appended after every Alpaca response, completion and text (a chat template writes its
    /// own end-of-turn token). Default `Some(2)` (LLaMA `</s>`).
    pub eos_id: Option<u32>,
}

impl Default for SftEncoderConfig {
    fn default() -> Self {
        Self {
            max_len: 2048,
            loss_on: LossOn::Assistant,
            bos_id: Some(1),
            eos_id: Some(2),
        }
    }
}

impl SftEncoderConfig {
    /// Sets `max_len`.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Sets `loss_on`.
    pub fn with_loss_on(mut self, loss_on: LossOn) -> Self {
        self.loss_on = loss_on;
        self
    }
}

/// Tokenises fine-tuning records into [`EncodedSequence`]s (labels aligned with the ids, not
/// shifted; [`IGNORE_INDEX`] where no loss is taken).
///
/// - **Chat samples with a [`ChatTemplate`]**: the template renders the whole conversation;
///   [`ChatTemplate::render_with_targets`] finds each assistant turn's byte span by rendering
///   prefixes (the conversation up to each turn, with and without the generation prompt);
///   the text is tokenised once (no added special tokens, as `apply_chat_template` does) and
///   a token is a target when its byte offsets overlap an assistant span. Tokenising the
///   whole text once keeps the ids those a model sees at inference.
/// - **Chat samples without a template** (base models): today's Alpaca prompt, exactly as
///   [`crate::batcher::CausalLmBatcher::encode`] builds it: `[BOS] prompt response [EOS]`,
///   prompt and response tokenised separately; a multi-turn conversation repeats
///   `prompt response [EOS]` per user/assistant pair, and a leading system message replaces
///   the Alpaca preamble line.
/// - **Prompt/completion**: `[BOS] prompt completion [EOS]`, tokenised separately, loss on
///   the completion and EOS. **Text**: `[BOS] text [EOS]`, loss on every token but BOS.
///
/// With [`LossOn::All`] every label is the token id.
#[derive(Clone)]
pub struct SftEncoder {
    tokenizer: Arc<Tokenizer>,
    template: Option<ChatTemplate>,
    config: SftEncoderConfig,
}

impl std::fmt::Debug for SftEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftEncoder")
            .field("template", &self.template)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Token ids and per-token "carries loss" flags, built piece by piece.
#[derive(Default)]
struct Builder {
    ids: Vec<u32>,
    target: Vec<bool>,
}

impl Builder {
    fn push(&mut self, ids: impl IntoIterator<Item = u32>, target: bool) {
        for id in ids {
            self.ids.push(id);
            self.target.push(target);
        }
    }
}

impl SftEncoder {
    /// An encoder; `template` `None` means the Alpaca prompt. The tokenizer's own padding and
    /// truncation are switched off.
    ///
    /// # Errors
    /// [`DataError::Config`] when `max_len` is 0.
    pub fn new(
        mut tokenizer: Tokenizer,
        template: Option<ChatTemplate>,
        config: SftEncoderConfig,
    ) -> Result<Self> {
        if config.max_len == 0 {
            return Err(DataError::config("max_len", "expected at least 1, found 0"));
        }
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| DataError::config("truncation", e.to_string()))?;
        Ok(Self {
            tokenizer: Arc::new(tokenizer),
            template,
            config,
        })
    }

    /// The options.
    pub fn config(&self) -> &SftEncoderConfig {
        &self.config
    }

    /// The chat template, when the model has one.
    pub fn template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Tokenises one record; errors name its file and line ([`DataError::Example`]).
    pub fn encode(&self, record: &SftRecord) -> Result<EncodedSequence> {
        self.encode_sample(&record.sample)
            .map_err(|e| DataError::Example {
                path: record.path.to_path_buf(),
                line: record.line,
                source: Box::new(e),
            })
    }

    /// Tokenises every record, in order.
    pub fn encode_all(&self, records: &[SftRecord]) -> Result<Vec<EncodedSequence>> {
        records.iter().map(|r| self.encode(r)).collect()
    }

    /// Tokenises one sample (see the type's documentation for the layouts).
    pub fn encode_sample(&self, sample: &Sample) -> Result<EncodedSequence> {
        let c = &self.config;
        let mut b = Builder::default();
        match sample {
            Sample::Chat(conv) => match &self.template {
                Some(template) => return self.encode_templated(template, conv),
                None => self.alpaca(conv, &mut b)?,
            },
            Sample::Completion { prompt, completion } => {
                b.push(c.bos_id, false);
                b.push(self.tokens(prompt, "prompt")?, false);
                b.push(self.tokens(completion, "completion")?, true);
                b.push(c.eos_id, true);
            }
            Sample::Text(text) => {
                b.push(c.bos_id, false);
                b.push(self.tokens(text, "text")?, true);
                b.push(c.eos_id, true);
            }
        }
        Ok(self.finish(b))
    }

    /// Renders a conversation for generation (template with the generation prompt, or the
    /// Alpaca prompt of its last user turn after BOS) and tokenises it, keeping the last
    /// `max_len` tokens; every label is [`IGNORE_INDEX`].
    pub fn encode_prompt(&self, conversation: &Conversation) -> Result<EncodedSequence> {
        let mut ids = match &self.template {
            Some(t) => {
                let text = t.render(&conversation.messages, true)?;
                self.tokens(&text, "rendered conversation")?
            }
            None => {
                let last = conversation
                    .messages
                    .iter()
                    .rev()
                    .find(|m| m.role == Role::User)
                    .ok_or_else(|| {
                        DataError::config("conversation", "no user turn to prompt with")
                    })?;
                let system = conversation
                    .messages
                    .first()
                    .filter(|m| m.role == Role::System);
                let prompt = alpaca_block(system.map(|m| m.content.as_str()), &last.content);
                let mut ids: Vec<u32> = self.config.bos_id.into_iter().collect();
                ids.extend(self.tokens(&prompt, "prompt")?);
                ids
            }
        };
        let truncated = ids.len() > self.config.max_len;
        if truncated {
            ids.drain(..ids.len() - self.config.max_len);
        }
        Ok(EncodedSequence {
            labels: vec![IGNORE_INDEX; ids.len()],
            input_ids: ids,
            truncated,
        })
    }

    fn encode_templated(
        &self,
        template: &ChatTemplate,
        conv: &Conversation,
    ) -> Result<EncodedSequence> {
        let rendered = template.render_with_targets(conv)?;
        let encoding = self
            .tokenizer
            .encode(rendered.text.as_str(), false)
            .map_err(|e| DataError::Encode {
                what: format!("rendered conversation {:?}", preview(&rendered.text, 40)),
                reason: e.to_string(),
            })?;
        let mut b = Builder::default();
        for (&id, &(start, end)) in encoding.get_ids().iter().zip(encoding.get_offsets()) {
            b.push([id], overlaps(start..end, &rendered.targets));
        }
        Ok(self.finish(b))
    }

    /// `[BOS] (prompt response [EOS])+` for `[system] (user assistant)+`.
    fn alpaca(&self, conv: &Conversation, b: &mut Builder) -> Result<()> {
        let mut messages = conv.messages.as_slice();
        let mut system = None;
        if let Some((first, rest)) = messages.split_first() {
            if first.role == Role::System {
                system = Some(first.content.as_str());
                messages = rest;
            }
        }
        b.push(self.config.bos_id, false);
        for (i, pair) in messages.chunks(2).enumerate() {
            let roles: Vec<Role> = pair.iter().map(|m| m.role).collect();
            if roles != [Role::User, Role::Assistant] {
                let found: Vec<&str> = conv.messages.iter().map(|m| m.role.as_str()).collect();
                return Err(DataError::config(
                    "conversation",
                    format!(
                        "the Alpaca prompt (the model has no chat template) needs [system] \
                         user assistant [user assistant …]; turn pair {} breaks it in [{}]",
                        i + 1,
                        found.join(", ")
                    ),
                ));
            }
            let prompt = alpaca_block(system, &pair[0].content);
            b.push(self.tokens(&prompt, "prompt")?, false);
            b.push(self.tokens(&pair[1].content, "response")?, true);
            b.push(self.config.eos_id, true);
        }
        Ok(())
    }

    fn finish(&self, b: Builder) -> EncodedSequence {
        let Builder { mut ids, target } = b;
        let all = self.config.loss_on == LossOn::All;
        let mut labels: Vec<i64> = ids
            .iter()
            .zip(&target)
            .map(|(&id, &t)| if t || all { id as i64 } else { IGNORE_INDEX })
            .collect();
        let truncated = ids.len() > self.config.max_len;
        ids.truncate(self.config.max_len);
        labels.truncate(self.config.max_len);
        EncodedSequence {
            input_ids: ids,
            labels,
            truncated,
        }
    }

    fn tokens(&self, text: &str, what: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| DataError::Encode {
                what: format!("{what} {:?}", preview(text, 40)),
                reason: e.to_string(),
            })
    }
}

/// The Alpaca prompt of `query`, a system message replacing its preamble line.
fn alpaca_block(system: Option<&str>, query: &str) -> String {
    match system {
        None => alpaca_prompt(query),
        Some(system) => format!("{system}\n\n### Instruction:\n{query}\n\n### Response:"),
    }
}

/// True when the token's byte range `[start, end)` shares a byte with a target span (an
/// empty range counts when its start lies inside one).
fn overlaps(token: Range<usize>, targets: &[Range<usize>]) -> bool {
    targets.iter().any(|t| {
        if token.is_empty() {
            t.contains(&token.start)
        } else {
            token.start < t.end && t.start < token.end
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_rule() {
        let t = [5..10, 20..22];
        assert!(!overlaps(0..5, &t));
        assert!(
            overlaps(4..6, &t),
            "a token straddling the start is a target"
        );
        assert!(overlaps(9..12, &t));
        assert!(!overlaps(10..20, &t));
        assert!(overlaps(7..7, &t));
        assert!(!overlaps(10..10, &t));
    }

    #[test]
    fn system_replaces_the_preamble() {
        assert_eq!(
            alpaca_block(Some("Be brief."), "Hi"),
            "Be brief.\n\n### Instruction:\nHi\n\n### Response:"
        );
        assert_eq!(alpaca_block(None, "Hi"), alpaca_prompt("Hi"));
    }
}
