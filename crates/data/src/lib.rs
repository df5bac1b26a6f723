//! Data for the Bone/Bat/LoRA experiments: GLUE, GSM8K and MetaMathQA loaders, the Alpaca
//! prompt, tokenising Burn batchers, and evaluation metrics.
//!
//! - [`DataRoot`] finds the data: an explicit path, else `$BONE_DATA_ROOT`, else
//!   `../shared/datasets`; a [`Manifest`] can check every file's sha256.
//! - [`glue`]: the nine GLUE tasks in their released TSV layouts ([`glue::GlueTask::load`]).
//! - [`gsm8k`]: GSM8K JSONL, final answers, and [`gsm8k::extract_predicted_answer`].
//! - [`metamath`]: MetaMathQA JSON, and GSM8K rendered in its shape.
//! - [`prompt`]: the Alpaca template and prompt/response pairs.
//! - [`sft`]: fine-tuning on your own data: Alpaca, chat, ShareGPT, prompt/completion, text
//!   and MetaMathQA files, eval splits, chat templates and loss masks.
//! - [`batcher`]: [`batcher::ClassificationBatcher`], [`batcher::CausalLmBatcher`] and
//!   [`batcher::PackedBatcher`], Burn `Batcher`s producing `[batch, seq]` tensors.
//! - [`metrics`]: accuracy, F1, Matthews, Pearson, Spearman, GSM8K exact match.
//!
//! Loaders never panic on bad input: a malformed row is a [`DataError::BadRow`] naming file,
//! line and reason, or, with [`LoadOptions::skip_bad_rows`], a counted entry of
//! [`LoadReport::skipped`].

#![warn(missing_docs)]

pub mod batcher;
mod error;
pub mod glue;
pub mod gsm8k;
mod json;
mod load;
pub mod manifest;
pub mod metamath;
pub mod metrics;
pub mod paths;
pub mod prompt;
pub mod sft;
mod tokenizer;

pub use error::{DataError, Result, RowIssue};
pub use load::{ExampleSet, LoadOptions, LoadReport, SkippedRow};
pub use manifest::{sha256_file, Manifest};
pub use paths::{DataRoot, RootOrigin, DATA_ROOT_ENV, DEFAULT_DATA_ROOT, MODELS_ROOT_ENV};
pub use tokenizer::{load_tokenizer, token_id, Tokenizer};
