//! `bone generate`: streams the continuation of a prompt, or the answer to a chat message.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use burn::tensor::backend::Backend;
use data::sft::{Message, Role};
use models::tokenizer::Tokenizer;
use models::{AutoModel, GenerationConfig};

use super::print::TokenPrinter;
use super::GenerateArgs;

pub fn run<B: Backend>(args: GenerateArgs, device: &B::Device) -> anyhow::Result<()> {
    let tokenizer = Tokenizer::from_pretrained(&args.model.model)?;
    let loaded = args.model.load::<B>(device)?;
    let AutoModel::CausalLm(model) = loaded.model else {
        bail!(
            "bone generate needs a decoder (llama), but {} holds a {} ({}); use `bone forward`",
            args.model.model.display(),
            loaded.model.family(),
            loaded.model.architecture()
        );
    };
    let chat = !args.chat.is_empty();
    let prompts = if chat {
        chat_prompts(&args.model.model, &args.chat, &tokenizer)?
    } else {
        args.prompt
            .iter()
            .map(|p| tokenizer.encode(p, true))
            .collect::<models::Result<Vec<_>>>()?
    };
    let config: GenerationConfig = args.sampling.config(tokenizer.special_tokens().pad)?;
    let stream = !args.no_stream && prompts.len() == 1;
    let mut printer = TokenPrinter::new(tokenizer.stream(true));
    if stream && !chat {
        for &t in &prompts[0] {
            printer.push(t);
        }
    }
    let start = Instant::now();
    let output = model.generate_with(&prompts, &config, |_, token| {
        if stream {
            printer.push(token);
        }
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    printer.finish()?;
    if stream {
        println!();
    } else {
        for (i, seq) in output.sequences.iter().enumerate() {
            // A chat prints the answer only, not the rendered template.
            let shown = if chat { output.new_tokens(i) } else { seq };
            if prompts.len() > 1 {
                println!("[{i}] {}", tokenizer.decode(shown, true)?);
            } else {
                println!("{}", tokenizer.decode(shown, true)?);
            }
        }
    }
    let generated: usize = (0..prompts.len()).map(|i| output.new_tokens(i).len()).sum();
    eprintln!(
        "{generated} tokens in {elapsed:.2} s ({:.1} tokens/s, {}, {})",
        generated as f64 / elapsed.max(1e-9),
        if config.use_cache {
            "KV cache"
        } else {
            "no cache"
        },
        if config.temperature == 0.0 {
            "greedy".to_string()
        } else {
            format!("temperature {}", config.temperature)
        }
    );
    Ok(())
}

/// `--chat`: each message as the one user turn of a conversation, rendered with the model's
/// chat template ([`crate::llama::chat_template`], the one `sft` trains with) and the
/// generation prompt, tokenised without added special tokens (as transformers'
/// `apply_chat_template` does: the template writes its own).
fn chat_prompts(
    model: &Path,
    messages: &[String],
    tokenizer: &Tokenizer,
) -> anyhow::Result<Vec<Vec<u32>>> {
    let Some(template) = crate::llama::chat_template(model)? else {
        bail!(
            "--chat: {} has no chat template (no `chat_template` in tokenizer_config.json, no \
             `tokenizer.chat_template` in the GGUF file); use --prompt",
            model.display()
        );
    };
    messages
        .iter()
        .map(|m| {
            let text = template
                .render(&[Message::new(Role::User, m.as_str())], true)
                .context("--chat: rendering the chat template")?;
            Ok(tokenizer.encode(&text, false)?)
        })
        .collect()
}
