//! `bone generate`: streams the continuation of a prompt.

use std::io::Write;
use std::time::Instant;

use anyhow::bail;
use burn::tensor::backend::Backend;
use models::tokenizer::Tokenizer;
use models::{AutoModel, GenerationConfig};

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
    let prompts = args
        .prompt
        .iter()
        .map(|p| tokenizer.encode(p, true))
        .collect::<models::Result<Vec<_>>>()?;
    let config: GenerationConfig = args.sampling.config(tokenizer.special_tokens().pad)?;
    let stream = !args.no_stream && prompts.len() == 1;
    let stdout = std::io::stdout();
    let mut text = tokenizer.stream(true);
    let mut write_error = None;
    if stream {
        let mut out = stdout.lock();
        for &t in &prompts[0] {
            let piece = text.push(t)?;
            write!(out, "{piece}")?;
        }
        out.flush()?;
    }
    let start = Instant::now();
    let output = model.generate_with(&prompts, &config, |_, token| {
        if stream && write_error.is_none() {
            let result = text
                .push(token)
                .map_err(anyhow::Error::from)
                .and_then(|piece| {
                    let mut out = stdout.lock();
                    write!(out, "{piece}")?;
                    out.flush()?;
                    Ok(())
                });
            if let Err(e) = result {
                write_error = Some(e);
            }
        }
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(e) = write_error {
        return Err(e);
    }
    if stream {
        println!();
    } else {
        for (i, seq) in output.sequences.iter().enumerate() {
            if prompts.len() > 1 {
                println!("[{i}] {}", tokenizer.decode(seq, true)?);
            } else {
                println!("{}", tokenizer.decode(seq, true)?);
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
