//! `bone chat`: a conversation with a decoder through its chat template, streaming each reply
//! as it is generated and keeping the history; `--prompt` for one turn.
//!
//! Each turn renders the whole conversation with `add_generation_prompt` (as
//! transformers' `apply_chat_template` does), tokenises it without adding special tokens (the
//! template writes them), and generates until an end-of-sequence token.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};
use burn::tensor::backend::Backend;
use data::sft::{ChatTemplate, Message, Role};
use models::tokenizer::Tokenizer;
use models::{AutoModel, LlamaForCausalLM};

use super::print::TokenPrinter;
use super::ChatArgs;

/// The template of `model`: `--chat-template FILE` when given, else `chat_template` of the
/// folder's `tokenizer_config.json` (or `chat_template.jinja`), else the GGUF file's
/// `tokenizer.chat_template`.
///
/// # Errors
/// An unreadable or invalid template, or a model without one (naming what was looked at).
pub fn load_template(model: &Path, file: Option<&Path>) -> anyhow::Result<ChatTemplate> {
    if let Some(file) = file {
        let source = std::fs::read_to_string(file)
            .with_context(|| format!("--chat-template {}: reading the file", file.display()))?;
        let tokenizer = Tokenizer::from_pretrained(model)?;
        let (bos, eos) = special_strings(&tokenizer);
        return Ok(ChatTemplate::new(
            &source,
            bos,
            eos,
            file.display().to_string(),
        )?);
    }
    if let Some(gguf) = models::gguf::locate(model, "tokenizer_config.json")? {
        let config = models::gguf::GgufTokenizer::open(&gguf)?.tokenizer_config(None);
        let token = |key: &str| config[key].as_str().unwrap_or_default().to_string();
        let Some(source) = config["chat_template"].as_str() else {
            bail!(
                "--model {}: the GGUF file has no tokenizer.chat_template; pass --chat-template FILE",
                gguf.display()
            );
        };
        return Ok(ChatTemplate::new(
            source,
            token("bos_token"),
            token("eos_token"),
            gguf.display().to_string(),
        )?);
    }
    let config = model.join("tokenizer_config.json");
    let found = if config.is_file() {
        ChatTemplate::from_tokenizer_config(&config)?
    } else {
        None
    };
    found.with_context(|| {
        format!(
            "--model {}: no chat template (no `chat_template` in tokenizer_config.json, no \
             chat_template.jinja); a base model has none, pass --chat-template FILE",
            model.display()
        )
    })
}

/// The BOS and EOS strings of `tokenizer` (empty when it has none).
fn special_strings(tokenizer: &Tokenizer) -> (String, String) {
    let special = tokenizer.special_tokens();
    let name = |id: Option<u32>| {
        id.and_then(|id| tokenizer.inner().id_to_token(id))
            .unwrap_or_default()
    };
    (name(special.bos), name(special.eos))
}

/// A conversation: the messages so far and how a turn's prompt is rendered.
pub struct Conversation {
    template: ChatTemplate,
    messages: Vec<Message>,
}

impl Conversation {
    /// An empty conversation, opened by `system` when given.
    pub fn new(template: ChatTemplate, system: Option<&str>) -> Self {
        let messages = system
            .map(|s| vec![Message::new(Role::System, s)])
            .unwrap_or_default();
        Self { template, messages }
    }

    /// Adds the user's `text` and renders the prompt of the reply (the whole conversation
    /// with the template's generation prompt).
    ///
    /// # Errors
    /// The template failed (its own `raise_exception` message included); the message is
    /// not kept then.
    pub fn user(&mut self, text: &str) -> anyhow::Result<String> {
        self.messages.push(Message::new(Role::User, text));
        let rendered = self.template.render(&self.messages, true);
        if rendered.is_err() {
            self.messages.pop();
        }
        Ok(rendered?)
    }

    /// Adds the model's reply.
    pub fn assistant(&mut self, text: &str) {
        self.messages.push(Message::new(Role::Assistant, text));
    }
}

pub fn run<B: Backend>(args: ChatArgs, device: &B::Device) -> anyhow::Result<()> {
    let model_dir = &args.model.model;
    let template = load_template(model_dir, args.chat_template.as_deref())?;
    let tokenizer = Tokenizer::from_pretrained(model_dir)?;
    let loaded = args.model.load::<B>(device)?;
    let AutoModel::CausalLm(model) = loaded.model else {
        bail!(
            "bone chat needs a decoder (llama), but {} holds a {} ({})",
            model_dir.display(),
            loaded.model.family(),
            loaded.model.architecture()
        );
    };
    let config = args.sampling.config(tokenizer.special_tokens().pad)?;
    let mut conversation = Conversation::new(template, args.system.as_deref());
    let chat = Chat {
        model: &model,
        tokenizer: &tokenizer,
        config: &config,
        show_prompt: args.show_prompt,
    };
    if let Some(prompt) = &args.prompt {
        return chat.turn(&mut conversation, prompt);
    }
    let stdin = std::io::stdin();
    let interactive = std::io::IsTerminal::is_terminal(&stdin);
    if interactive {
        eprintln!(
            "chatting with {}; an empty line or Ctrl-D ends, /reset forgets the conversation",
            model_dir.display()
        );
    }
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!("> ");
            std::io::stderr().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin")?;
        let text = line.trim();
        if text.is_empty() && interactive {
            break;
        }
        if text.is_empty() {
            continue;
        }
        if text == "/reset" {
            conversation = Conversation::new(conversation.template, args.system.as_deref());
            continue;
        }
        chat.turn(&mut conversation, text)?;
    }
    Ok(())
}

/// What a turn needs.
struct Chat<'a, B: Backend> {
    model: &'a LlamaForCausalLM<B>,
    tokenizer: &'a Tokenizer,
    config: &'a models::GenerationConfig,
    show_prompt: bool,
}

impl<B: Backend> Chat<'_, B> {
    /// One exchange: renders the prompt, streams the reply to stdout, keeps it.
    fn turn(&self, conversation: &mut Conversation, text: &str) -> anyhow::Result<()> {
        let prompt = conversation.user(text)?;
        if self.show_prompt {
            eprintln!("--- prompt ---\n{prompt}\n--- end of prompt ---");
        }
        let ids = self.tokenizer.encode(&prompt, false)?;
        if ids.is_empty() {
            bail!("the chat template rendered an empty prompt");
        }
        let mut printer = TokenPrinter::new(self.tokenizer.stream(true));
        let output = self
            .model
            .generate_with(&[ids], self.config, |_, token| printer.push(token))?;
        printer.finish()?;
        println!();
        let reply = self.tokenizer.decode(output.new_tokens(0), true)?;
        conversation.assistant(reply.trim());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ChatML template (SmolLM2's shape) with a system default and `raise_exception`.
    const CHATML: &str = "{% for m in messages %}{% if m.role not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown role ' + m.role) }}{% endif %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    #[test]
    fn a_two_turn_conversation_renders_the_history_and_the_generation_prompt() {
        let template = ChatTemplate::new(CHATML, "<s>", "</s>", "test").unwrap();
        let mut chat = Conversation::new(template, Some("Be brief."));
        let first = chat.user("Hi!").unwrap();
        assert_eq!(
            first,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
        );
        chat.assistant("Hello.");
        let second = chat.user("Who are you?").unwrap();
        assert_eq!(
            second,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n\
             <|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        assert_eq!(chat.messages.len(), 4);
    }
}
