//! The `sft` preset's data: a fine-tuning file (any [`SftFormat`]), its eval split, the model's
//! chat template (or the Alpaca prompt), tokenised with loss masks.

use std::path::Path;

use anyhow::{bail, Context};
use data::batcher::{EncodedSequence, PaddingSide};
use data::sft::{
    load_sft, ChatTemplate, EvalSplit, FieldMap, LossOn, SftEncoder, SftEncoderConfig, SftFormat,
};
use models::LlamaConfig;

use super::config::{LmConfig, TrainOn};
use super::data::{DataSource, EncodeReport};
use super::run::PreparedData;
use crate::llama::lm_batcher;

/// The chat template of `model_dir` (`tokenizer_config.json`'s `chat_template`, or a GGUF
/// file's `tokenizer.chat_template`), `None` when it has none (then the Alpaca prompt); see
/// [`crate::llama::chat_template`].
///
/// # Errors
/// An unreadable `tokenizer_config.json` or a template that does not compile.
pub fn model_template(model_dir: &Path) -> anyhow::Result<Option<ChatTemplate>> {
    crate::llama::chat_template(model_dir)
}

/// Reads `config.data` (and the eval file or fraction), renders and tokenises it.
///
/// # Errors
/// No `--data`, a bad format or field map, a bad row (file:line), or no example with a
/// response token left after `max_seq_len`.
pub(crate) fn prepare_sft(config: &LmConfig, llama: &LlamaConfig) -> anyhow::Result<PreparedData> {
    let Some(path) = config.data.as_deref() else {
        bail!("--data FILE is required: a JSON or JSON Lines file of examples (see --help for the formats)");
    };
    let format: SftFormat = config
        .format
        .as_deref()
        .unwrap_or("auto")
        .parse()
        .context("--format")?;
    let fields: FieldMap = config
        .field_map
        .as_deref()
        .unwrap_or("")
        .parse()
        .context("--field-map")?;
    let split = match &config.eval_data {
        Some(file) => EvalSplit::File(file.clone()),
        None => EvalSplit::Fraction {
            fraction: config.eval_fraction,
            seed: config.seed,
        },
    };
    let opts = data::LoadOptions {
        skip_bad_rows: config.skip_bad_rows.unwrap_or(false),
        max_rows: None,
    };
    let splits = load_sft(path, &split, format, &fields, &opts)?;
    let Some(eval) = splits.eval else {
        bail!("no eval set: give --eval-data FILE or --eval-fraction in (0, 1)");
    };
    let template = model_template(&config.model)?;
    let template_name = if template.is_some() {
        if crate::llama::gguf_file(&config.model)?.is_some() {
            "the model's chat template (the GGUF file's tokenizer.chat_template)"
        } else {
            "the model's chat template (tokenizer_config.json)"
        }
    } else {
        "the Alpaca prompt (the model has no chat template)"
    };
    println!("prompt: {template_name}");
    let skipped = splits.train.report().skipped.len();
    let source = DataSource::Sft(format!(
        "{} ({} rows, format {}{}), {template_name}",
        path.display(),
        splits.train.len() + eval.len(),
        splits.train.format().name(),
        if skipped > 0 {
            format!(", {skipped} bad rows skipped")
        } else {
            String::new()
        }
    ));
    let total_rows = splits.train.len() + eval.len();
    let tokenizer = crate::llama::decoder_tokenizer(&config.model)?;
    let encoder = SftEncoder::new(
        tokenizer,
        template,
        SftEncoderConfig {
            max_len: config.max_seq_len,
            loss_on: match config.train_on.unwrap_or_default() {
                TrainOn::Response => LossOn::Assistant,
                TrainOn::PromptResponse => LossOn::All,
            },
            bos_id: llama.bos_token_id,
            eos_id: llama.eos_token_ids().first().copied(),
        },
    )?;
    let mut train = encoder.encode_all(splits.train.examples())?;
    if let Some(cap) = config.max_train_samples {
        train.truncate(cap);
    }
    let mut dev = encoder.encode_all(eval.examples())?;
    dev.truncate(config.max_eval_samples);
    let (train, train_report) = keep_trainable(train);
    let (dev, dev_report) = keep_trainable(dev);
    PreparedData {
        source,
        total_rows,
        batcher: lm_batcher(&config.model, llama, config.max_seq_len, PaddingSide::Right)?,
        train,
        dev,
        train_report,
        dev_report,
    }
    .checked(config.max_seq_len)
}

/// The sequences with at least one scored token, and what was cut or dropped.
fn keep_trainable(sequences: Vec<EncodedSequence>) -> (Vec<EncodedSequence>, EncodeReport) {
    let mut report = EncodeReport::default();
    let kept: Vec<EncodedSequence> = sequences
        .into_iter()
        .filter(|s| {
            let keep = s.has_targets();
            report.dropped += usize::from(!keep);
            keep
        })
        .collect();
    report.truncated = kept.iter().filter(|s| s.truncated).count();
    report.tokens = kept.iter().map(|s| s.input_ids.len()).sum();
    report.kept = kept.len();
    (kept, report)
}
