//! Scoring a LLaMA checkpoint (and an adapter) on GSM8K: batched greedy generation with the
//! KV cache, answer extraction, accuracy, and a JSONL file of every problem.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use bone_module::AdapterHostExt;
use burn::tensor::backend::{AutodiffBackend, Backend};
use data::batcher::PaddingSide;
use data::gsm8k::{extract_predicted_answer, load_gsm8k, Gsm8kExample, Gsm8kSplit};
use data::metrics::{gsm8k_answers_match, gsm8k_exact_match};
use data::prompt::alpaca_prompt;
use data::sft::{Conversation, LossOn, Message, Role, SftEncoder, SftEncoderConfig};
use data::{DataRoot, LoadOptions};
use models::llama::FinishReason;
use models::{GenerationConfig, LlamaForCausalLM};
use serde::Serialize;

use super::Gsm8kEvalArgs;
use crate::device::{BackendJob, BackendKind};
use crate::llama::{
    chat_template, check_llama_folder, lm_batcher, resolve_adapter_arg, resolve_model_arg,
    Precision,
};

/// One problem's line in the JSONL file.
#[derive(Debug, Clone, Serialize)]
pub struct Gsm8kRecord {
    /// 0-based position in the split's file.
    pub index: usize,
    /// The problem.
    pub question: String,
    /// Tokens of the prompt (`[BOS]` + the Alpaca prompt).
    pub prompt_tokens: usize,
    /// The generated text (special tokens removed).
    pub generation: String,
    /// The number extracted from the generation (`extract_predicted_answer`), if any.
    pub predicted: Option<f64>,
    /// The reference answer (after `####`).
    pub gold: f64,
    /// The reference as written (e.g. `1,080`).
    pub gold_text: String,
    /// Whether `predicted` matches `gold`.
    pub correct: bool,
    /// Tokens generated.
    pub new_tokens: usize,
    /// `eos` or `length`.
    pub finish: &'static str,
}

/// What an evaluation reports; also written next to the JSONL file as `<name>.summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Gsm8kSummary {
    /// The model folder.
    pub model: PathBuf,
    /// The adapter folder, if any.
    pub adapter: Option<PathBuf>,
    /// `test` or `train`.
    pub split: String,
    /// Problems scored.
    pub problems: usize,
    /// Problems answered correctly.
    pub correct: usize,
    /// `correct / problems`.
    pub accuracy: f64,
    /// Generations with no number to extract.
    pub no_answer: usize,
    /// Generations cut at `max_new_tokens`.
    pub hit_length_limit: usize,
    /// Tokens generated in total.
    pub new_tokens: usize,
    /// Seconds of generation (model loading excluded).
    pub seconds: f64,
    /// `new_tokens / seconds`.
    pub tokens_per_second: f64,
    /// The backend.
    pub backend: BackendKind,
    /// Float type of the base weights.
    pub precision: String,
    /// Prompts per generation batch.
    pub batch_size: usize,
    /// Most tokens generated per problem.
    pub max_new_tokens: usize,
    /// Whether the adapter was merged into the weights for generation.
    pub merged: bool,
    /// The JSONL file.
    pub predictions: PathBuf,
}

/// A GSM8K evaluation on some backend (inference only).
pub struct Gsm8kEvalJob {
    /// The flags.
    pub args: Gsm8kEvalArgs,
}

impl BackendJob for Gsm8kEvalJob {
    type Output = Gsm8kSummary;

    fn run<B: AutodiffBackend>(
        self,
        device: B::Device,
        backend: BackendKind,
    ) -> anyhow::Result<Gsm8kSummary> {
        evaluate::<B::InnerBackend>(self.args, device, backend)
    }
}

/// The default JSONL path: `runs/gsm8k-eval/<model>[+<adapter>]-<split>.jsonl`, the adapter
/// named by its last two path components.
pub fn default_out(args: &Gsm8kEvalArgs) -> PathBuf {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    };
    let mut stem = name(&args.model);
    if let Some(adapter) = &args.adapter {
        stem.push('+');
        if let Some(parent) = adapter.parent().filter(|p| p.file_name().is_some()) {
            stem.push_str(&name(parent));
            stem.push('-');
        }
        stem.push_str(&name(adapter));
    }
    if args.chat_template {
        stem.push_str("-chat");
    }
    PathBuf::from("runs")
        .join("gsm8k-eval")
        .join(format!("{stem}-{}.jsonl", args.split.name()))
}

/// `<dir>/<stem>.summary.json` for `<dir>/<stem>.jsonl`.
pub fn summary_path(jsonl: &Path) -> PathBuf {
    let stem = jsonl
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gsm8k".into());
    jsonl.with_file_name(format!("{stem}.summary.json"))
}

fn validate(args: &Gsm8kEvalArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size 0: expected a positive number");
    }
    if args.max_new_tokens == 0 {
        bail!("--max-new-tokens 0: expected a positive number");
    }
    if args.limit == Some(0) {
        bail!("--limit 0: expected a positive number of problems");
    }
    if let Some(adapter) = &args.adapter {
        if !adapter.join("adapter_config.json").is_file() {
            bail!(
                "--adapter {}: not a PEFT adapter folder (no adapter_config.json); expected e.g. \
                 the best/ folder of a metamath run",
                adapter.display()
            );
        }
    }
    Ok(())
}

fn evaluate<B: Backend>(
    mut args: Gsm8kEvalArgs,
    device: B::Device,
    backend: BackendKind,
) -> anyhow::Result<Gsm8kSummary> {
    args.model = resolve_model_arg(&args.model, args.revision.as_deref(), "--model")?;
    if let Some(adapter) = &args.adapter {
        args.adapter = Some(resolve_adapter_arg(adapter, "--adapter")?);
    }
    validate(&args)?;
    let llama = check_llama_folder(&args.model, "--model")?;
    args.precision.check::<B>(&device, backend)?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&args));

    let root = DataRoot::resolve(args.data_root.as_deref());
    let split = args.split.split();
    let set = load_gsm8k(&root, split, &LoadOptions::default())?;
    let mut problems: Vec<Gsm8kExample> = set.examples().to_vec();
    if let Some(n) = args.limit {
        problems.truncate(n);
    }

    let batcher = lm_batcher(
        &args.model,
        &llama,
        llama.max_position_embeddings.max(8),
        PaddingSide::Left,
    )?;
    let prompts = encode_prompts(&args, &llama, &batcher, &problems)?;

    let options = models::LoadOptions {
        dtype: (args.precision != Precision::F32).then(|| args.precision.dtype()),
    };
    let mut model = LlamaForCausalLM::<B>::from_pretrained(&args.model, &options, &device)
        .with_context(|| format!("loading --model {}", args.model.display()))?;
    let mut merged = false;
    if let Some(adapter) = &args.adapter {
        model
            .load_adapter(adapter, "default", &device)
            .with_context(|| format!("loading --adapter {}", adapter.display()))?;
        // Merging into a half-precision base would round the (small) update to the base's
        // precision; there the adapter stays separate, in f32.
        if !args.no_merge && args.precision == Precision::F32 {
            model
                .merge_adapters(None, true)
                .with_context(|| format!("merging --adapter {}", adapter.display()))?;
            merged = true;
        }
    }
    let generation = GenerationConfig {
        pad_token_id: Some(batcher.config().pad_id),
        ..GenerationConfig::greedy(args.max_new_tokens)
    };

    println!(
        "GSM8K {}: {} problems · {}{} · greedy, at most {} new tokens, batches of {} · {backend} {}",
        args.split.name(),
        problems.len(),
        args.model.display(),
        args.adapter
            .as_ref()
            .map(|a| format!(" + {}{}", a.display(), if merged { " (merged)" } else { "" }))
            .unwrap_or_default(),
        args.max_new_tokens,
        args.batch_size,
        args.precision.name()
    );

    // Longest prompts first: similar lengths share a batch (less padding), and a memory
    // problem shows in the first batch.
    let mut order: Vec<usize> = (0..problems.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(prompts[i].len()));
    let tokenizer = batcher.tokenizer();
    let mut records: Vec<Option<Gsm8kRecord>> = vec![None; problems.len()];
    let started = Instant::now();
    let (mut done, mut correct, mut new_tokens) = (0usize, 0usize, 0usize);
    for chunk in order.chunks(args.batch_size) {
        let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| prompts[i].clone()).collect();
        let output = model.generate(&batch, &generation)?;
        for (row, &i) in chunk.iter().enumerate() {
            let tokens = output.new_tokens(row);
            let text = tokenizer
                .decode(tokens, true)
                .map_err(|e| anyhow::anyhow!("decoding the generation of problem {i}: {e}"))?;
            let gold = problems[i].final_answer;
            let (predicted, ok) = score(&text, gold);
            correct += usize::from(ok);
            new_tokens += tokens.len();
            records[i] = Some(Gsm8kRecord {
                index: i,
                question: problems[i].question.clone(),
                prompt_tokens: prompts[i].len(),
                generation: text,
                predicted,
                gold,
                gold_text: problems[i].final_answer_text.clone(),
                correct: ok,
                new_tokens: tokens.len(),
                finish: match output.finish_reasons[row] {
                    FinishReason::Eos => "eos",
                    FinishReason::MaxTokens => "length",
                },
            });
        }
        done += chunk.len();
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "[{done:>5}/{}] {seconds:.1} s · {correct} correct so far · {:.0} tokens/s",
            problems.len(),
            new_tokens as f64 / seconds.max(1e-9)
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let records: Vec<Gsm8kRecord> = records.into_iter().flatten().collect();

    let predictions: Vec<Option<f64>> = records.iter().map(|r| r.predicted).collect();
    let golds: Vec<f64> = records.iter().map(|r| r.gold).collect();
    let accuracy = gsm8k_exact_match(&predictions, &golds)?;
    let mut jsonl = String::new();
    for r in &records {
        jsonl.push_str(&serde_json::to_string(r)?);
        jsonl.push('\n');
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    bone_io::fs::write_atomic(&out, jsonl.as_bytes())
        .with_context(|| format!("writing --out {}", out.display()))?;
    let summary = Gsm8kSummary {
        model: args.model.clone(),
        adapter: args.adapter.clone(),
        split: args.split.name().into(),
        problems: records.len(),
        correct,
        accuracy,
        no_answer: records.iter().filter(|r| r.predicted.is_none()).count(),
        hit_length_limit: records.iter().filter(|r| r.finish == "length").count(),
        new_tokens,
        seconds,
        tokens_per_second: new_tokens as f64 / seconds.max(1e-9),
        backend,
        precision: args.precision.name().into(),
        batch_size: args.batch_size,
        max_new_tokens: args.max_new_tokens,
        merged,
        predictions: out.clone(),
    };
    bone_io::fs::write_atomic(
        &summary_path(&out),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(summary)
}

/// The prompt of every problem: `[BOS]` + the Alpaca prompt, or (`--chat-template`) the
/// model's chat template rendered with the question as the user turn and the generation
/// prompt, tokenised without added special tokens (as `apply_chat_template` does).
fn encode_prompts(
    args: &Gsm8kEvalArgs,
    llama: &models::LlamaConfig,
    batcher: &data::batcher::CausalLmBatcher,
    problems: &[Gsm8kExample],
) -> anyhow::Result<Vec<Vec<u32>>> {
    if !args.chat_template {
        return Ok(problems
            .iter()
            .map(|p| {
                batcher
                    .encode_prompt(&alpaca_prompt(&p.question))
                    .map(|e| e.input_ids)
            })
            .collect::<data::Result<_>>()?);
    }
    let Some(template) = chat_template(&args.model)? else {
        bail!(
            "--chat-template: {} has no chat template (no `chat_template` in \
             tokenizer_config.json, no `tokenizer.chat_template` in the GGUF file); drop the \
             flag to use the Alpaca prompt",
            args.model.display()
        );
    };
    let encoder = SftEncoder::new(
        batcher.tokenizer().clone(),
        Some(template),
        SftEncoderConfig {
            max_len: batcher.config().max_len,
            loss_on: LossOn::Assistant,
            bos_id: llama.bos_token_id,
            eos_id: llama.eos_token_ids().first().copied(),
        },
    )?;
    Ok(problems
        .iter()
        .map(|p| {
            let conversation = Conversation::new(vec![Message::new(Role::User, &p.question)]);
            encoder.encode_prompt(&conversation).map(|e| e.input_ids)
        })
        .collect::<data::Result<_>>()?)
}

/// The number a generation answers with and whether it matches `gold`.
pub fn score(generation: &str, gold: f64) -> (Option<f64>, bool) {
    let predicted = extract_predicted_answer(generation);
    (
        predicted,
        predicted.is_some_and(|p| gsm8k_answers_match(p, gold)),
    )
}

impl super::SplitChoice {
    /// The data crate's split.
    pub fn split(self) -> Gsm8kSplit {
        match self {
            Self::Test => Gsm8kSplit::Test,
            Self::Train => Gsm8kSplit::Train,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_scored_like_the_metamath_scripts() {
        assert_eq!(
            score("So 16 - 3 - 4 = 9 and 9 * 2 = 18.\nThe answer is: 18", 18.0),
            (Some(18.0), true)
        );
        assert_eq!(score("The answer is: 1,080.", 1080.0), (Some(1080.0), true));
        assert_eq!(score("It is 18, not 20", 18.0), (Some(20.0), false));
        assert_eq!(score("Once upon a time", 3.0), (None, false));
        assert_eq!(score("The answer is: -5", -5.0), (Some(-5.0), true));
    }

    #[test]
    fn output_paths() {
        let args = Gsm8kEvalArgs {
            model: "m/Llama-2-7b-hf".into(),
            revision: None,
            chat_template: false,
            adapter: Some("runs/metamath-bone-r64-seed42/best".into()),
            data_root: None,
            split: super::super::SplitChoice::Test,
            limit: None,
            batch_size: 1,
            max_new_tokens: 1,
            out: None,
            no_merge: false,
            precision: Precision::F32,
            device: crate::device::DeviceChoice::Auto,
        };
        let out = default_out(&args);
        assert_eq!(
            out,
            PathBuf::from("runs/gsm8k-eval/Llama-2-7b-hf+metamath-bone-r64-seed42-best-test.jsonl")
        );
        assert_eq!(
            summary_path(&out),
            PathBuf::from(
                "runs/gsm8k-eval/Llama-2-7b-hf+metamath-bone-r64-seed42-best-test.summary.json"
            )
        );
    }
}
