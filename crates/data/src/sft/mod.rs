//! Supervised fine-tuning on your own data: JSON / JSONL loaders for the common row shapes, a
//! train/eval split, chat templates, and tokenisation with loss masks.
//!
//! The pipeline, each step usable on its own:
//!
//! 1. [`load_sft_file`] reads a JSON array or JSON Lines file in one [`SftFormat`] (or
//!    [`SftFormat::Auto`], detected from the keys of the first row), after renaming columns with
//!    a [`FieldMap`], into [`SftRecord`]s: a [`Sample`] (a [`Conversation`], a prompt/completion
//!    pair or plain text) with the file and line it came from.
//! 2. [`EvalSplit`] gives the eval set: another file, or a seeded fraction of the training file
//!    ([`split_fraction`]); [`load_sft`] does 1 and 2 together.
//! 3. [`ChatTemplate`] renders conversations with the model's own Jinja `chat_template`
//!    (from `tokenizer_config.json`); models without one get the Alpaca prompt.
//! 4. [`SftEncoder`] tokenises records into [`crate::batcher::EncodedSequence`]s whose labels
//!    are [`crate::batcher::IGNORE_INDEX`] except on assistant turns (or on everything, with
//!    [`LossOn::All`]); these go to [`crate::batcher::CausalLmBatcher`] (padding) or
//!    [`crate::batcher::PackedBatcher`] (packing).
//!
//! ```no_run
//! use data::sft::{load_sft, ChatTemplate, EvalSplit, FieldMap, SftEncoder, SftEncoderConfig, SftFormat};
//! use data::batcher::{PackedBatcher, PackingConfig};
//! use data::{load_tokenizer, LoadOptions};
//!
//! let fields: FieldMap = "instruction=question,output=answer".parse()?;
//! let data = load_sft(
//!     "my_data.jsonl".as_ref(),
//!     &EvalSplit::Fraction { fraction: 0.02, seed: 42 },
//!     SftFormat::Auto,
//!     &fields,
//!     &LoadOptions::default(),
//! )?;
//! let model = std::path::Path::new("my_model");
//! let template = ChatTemplate::from_tokenizer_config(&model.join("tokenizer_config.json"))?;
//! let tokenizer = load_tokenizer(&model.join("tokenizer.json"))?;
//! let encoder = SftEncoder::new(tokenizer, template, SftEncoderConfig::default())?;
//! let train = encoder.encode_all(data.train.examples())?;
//! let packer = PackedBatcher::new(PackingConfig::new(2048))?;
//! let packed = packer.pack(&train);
//! println!("{} rows, {} examples truncated", packed.rows.len(), packed.report.truncated);
//! # Ok::<(), data::DataError>(())
//! ```

mod encode;
mod fields;
mod format;
mod load;
mod rows;
mod split;
mod template;
mod tojson;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use encode::{LossOn, SftEncoder, SftEncoderConfig};
pub use fields::FieldMap;
pub use format::SftFormat;
pub use load::{load_sft, load_sft_file, SftDataset, SftSplits};
pub use split::{split_fraction, EvalSplit};
pub use template::{ChatTemplate, RenderedChat};

/// Who speaks a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions for the whole conversation (`system`).
    System,
    /// The user (`user`; ShareGPT `human`).
    User,
    /// The model (`assistant`; ShareGPT `gpt`): the turns that carry the loss.
    Assistant,
}

impl Role {
    /// The name chat templates see (`system`, `user`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// Messages in order; a loaded conversation has at least one [`Role::Assistant`] turn.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conversation {
    /// The turns.
    pub messages: Vec<Message>,
}

impl Conversation {
    /// A conversation of `messages`.
    pub fn new(messages: Vec<Message>) -> Self {
        Self { messages }
    }

    /// One user turn and the assistant's answer.
    pub fn single_turn(user: impl Into<String>, assistant: impl Into<String>) -> Self {
        Self::new(vec![
            Message::new(Role::User, user),
            Message::new(Role::Assistant, assistant),
        ])
    }
}

/// One training example, whatever the file's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// A conversation (chat, ShareGPT, Alpaca and MetaMathQA rows): rendered with the chat
    /// template (or the Alpaca prompt), loss on the assistant turns.
    Chat(Conversation),
    /// A raw prompt/completion pair: no template, `[BOS] prompt completion [EOS]`, loss on the
    /// completion (as TRL does for string prompt/completion rows).
    Completion {
        /// Text the model is given.
        prompt: String,
        /// Text the model learns to continue with.
        completion: String,
    },
    /// Plain text (continued pre-training): `[BOS] text [EOS]`, loss on every token.
    Text(String),
}

/// A [`Sample`] and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftRecord {
    /// The example.
    pub sample: Sample,
    /// The file it was read from (empty for records made in memory).
    pub path: Arc<Path>,
    /// 1-based line where its row starts (0 for records made in memory).
    pub line: usize,
}

impl SftRecord {
    /// A record made in memory (no file, line 0).
    pub fn new(sample: Sample) -> Self {
        Self {
            sample,
            path: Arc::from(Path::new("")),
            line: 0,
        }
    }

    /// `file:line`, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.path.display(), self.line)
    }
}
