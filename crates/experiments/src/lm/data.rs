//! The training data: MetaMathQA rows (or GSM8K train in their shape), the held-out split,
//! tokenising with the Alpaca prompt, and batches split into micro-batches for gradient
//! accumulation.

use std::path::PathBuf;

use anyhow::bail;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::transform::ShuffledDataset;
use burn::data::dataset::{Dataset, InMemDataset};
use burn::tensor::backend::Backend;
use data::batcher::{
    CausalLmBatch, CausalLmBatcher, EncodedSequence, PackedBatch, PackedBatcher, IGNORE_INDEX,
};
use data::gsm8k::{load_gsm8k, Gsm8kSplit};
use data::metamath::{gsm8k_as_metamath, load_metamathqa_file, MathQaExample};
use data::prompt::SftExample;
use data::{DataRoot, LoadOptions};

/// Where the examples came from, for the output and `summary.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A MetaMathQA file.
    MetaMathQa(PathBuf),
    /// GSM8K train rendered as MetaMathQA rows (no `--data` given).
    Gsm8kTrain(PathBuf),
    /// A fine-tuning file read by `sft`: its path, format and chat template, in words.
    Sft(String),
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MetaMathQa(p) => write!(f, "MetaMathQA {}", p.display()),
            Self::Gsm8kTrain(p) => write!(
                f,
                "GSM8K train {} rendered as MetaMathQA rows (no --data given)",
                p.display()
            ),
            Self::Sft(text) => f.write_str(text),
        }
    }
}

/// Loads the rows of `data`, or GSM8K train from the data root when `data` is `None`.
///
/// # Errors
/// A missing or malformed file, naming it (and, for the data root, every place looked).
pub fn load_examples(
    data: Option<&std::path::Path>,
    data_root: Option<&std::path::Path>,
) -> anyhow::Result<(Vec<MathQaExample>, DataSource)> {
    match data {
        Some(path) => {
            if !path.is_file() {
                bail!(
                    "--data {}: no such file; expected MetaMathQA JSON (an array of {{\"query\", \
                     \"response\", \"type\", \"original_question\"}} objects, e.g. \
                     MetaMathQA-395K.json), or leave --data out to train on GSM8K train",
                    path.display()
                );
            }
            let set = load_metamathqa_file(path, &LoadOptions::default())?;
            Ok((
                set.examples().to_vec(),
                DataSource::MetaMathQa(path.to_path_buf()),
            ))
        }
        None => {
            let root = DataRoot::resolve(data_root);
            let file = root.file(Gsm8kSplit::Train.relative_path())?;
            let set = load_gsm8k(&root, Gsm8kSplit::Train, &LoadOptions::default())?;
            Ok((
                gsm8k_as_metamath(set.examples()),
                DataSource::Gsm8kTrain(file),
            ))
        }
    }
}

/// Splits `examples` (shuffled with `seed`) into a held-out dev set of
/// `min(max(1, ⌈fraction·n⌉), max_eval)` rows and the training rest, capped at `max_train`.
///
/// # Errors
/// Fewer than two examples (nothing left to train on after holding one out).
pub fn split<T: Clone + Send + Sync>(
    examples: Vec<T>,
    fraction: f64,
    max_eval: usize,
    max_train: Option<usize>,
    seed: u64,
) -> anyhow::Result<(Vec<T>, Vec<T>)> {
    let n = examples.len();
    if n < 2 {
        bail!(
            "the data has {n} example(s); at least 2 are needed (one is held out for the dev loss)"
        );
    }
    let shuffled = ShuffledDataset::new(InMemDataset::new(examples), seed);
    let held_out = ((fraction * n as f64).ceil() as usize)
        .max(1)
        .min(max_eval.max(1))
        .min(n - 1);
    let all: Vec<T> = (0..n).filter_map(|i| shuffled.get(i)).collect();
    let dev = all[..held_out].to_vec();
    let mut train = all[held_out..].to_vec();
    if let Some(cap) = max_train {
        train.truncate(cap);
    }
    Ok((train, dev))
}

/// What tokenising a set did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeReport {
    /// Sequences kept.
    pub kept: usize,
    /// Sequences cut at `max_seq_len` (kept when some response tokens remain).
    pub truncated: usize,
    /// Sequences dropped because no response token fit in `max_seq_len`.
    pub dropped: usize,
    /// Tokens of the kept sequences.
    pub tokens: usize,
}

/// Tokenises rows with the Alpaca prompt (loss on the response only), dropping those whose
/// response does not fit at all.
///
/// # Errors
/// A tokenizer failure, naming the text.
pub fn encode(
    batcher: &CausalLmBatcher,
    rows: &[MathQaExample],
) -> anyhow::Result<(Vec<EncodedSequence>, EncodeReport)> {
    let mut report = EncodeReport::default();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let encoded = batcher.encode(&SftExample::from_metamath(row))?;
        if !encoded.has_targets() {
            report.dropped += 1;
            continue;
        }
        report.truncated += usize::from(encoded.truncated);
        report.tokens += encoded.input_ids.len();
        out.push(encoded);
    }
    report.kept = out.len();
    Ok((out, report))
}

/// Tokens scored by the shifted loss in `sequence`: labels after the first position that are
/// not [`IGNORE_INDEX`].
pub fn target_tokens(sequence: &EncodedSequence) -> usize {
    sequence
        .labels
        .iter()
        .skip(1)
        .filter(|&&l| l != IGNORE_INDEX)
        .count()
}

/// A micro-batch: padded sequences, or packed rows of whole examples.
#[derive(Debug, Clone)]
pub enum LmPart<B: Backend> {
    /// One sequence per row, padded to the longest, `[micro, S]`.
    Padded(CausalLmBatch<B>),
    /// Several examples per row with per-example positions and segment ids (a block-diagonal
    /// causal mask), `[rows, S]`.
    Packed(PackedBatch<B>),
}

impl<B: Backend> LmPart<B> {
    /// `[rows, S]` of the input ids.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Self::Padded(p) => p.input_ids.dims(),
            Self::Packed(p) => p.input_ids.dims(),
        }
    }
}

/// Tokens scored by the shifted loss in a packed row: labels after its first position that
/// are not [`IGNORE_INDEX`] (each example's first label is ignored by the packer).
fn row_target_tokens(row: &data::batcher::PackedRow) -> usize {
    row.labels
        .iter()
        .skip(1)
        .filter(|&&l| l != IGNORE_INDEX)
        .count()
}

/// One optimiser step's examples, as micro-batches processed one after another.
#[derive(Debug, Clone)]
pub struct LmBatch<B: Backend> {
    /// The micro-batches.
    pub parts: Vec<LmPart<B>>,
    /// Tokens scored by the loss in each part.
    pub target_tokens: Vec<usize>,
    /// Non-padding tokens in the whole batch.
    pub input_tokens: usize,
}

/// Pads an effective batch into micro-batches of `micro` sequences, grouping sequences of
/// similar length (the loss is token-weighted over the whole batch, so grouping changes only
/// the padding, not the gradient); or, [`packed`](Self::packed), packs its whole examples
/// into rows of `max_seq_len` tokens, `micro` rows per micro-batch.
#[derive(Debug, Clone)]
pub struct LmBatcher {
    inner: CausalLmBatcher,
    packer: Option<PackedBatcher>,
    micro: usize,
}

impl LmBatcher {
    /// Micro-batches of `micro` sequences (at least 1).
    pub fn new(inner: CausalLmBatcher, micro: usize) -> Self {
        Self {
            inner,
            packer: None,
            micro: micro.max(1),
        }
    }

    /// Micro-batches of `micro` packed rows (at least 1): each effective batch's examples
    /// are packed (in order) into rows by `packer`, so no example of one step shares a row
    /// with another step's.
    pub fn packed(inner: CausalLmBatcher, packer: PackedBatcher, micro: usize) -> Self {
        Self {
            packer: Some(packer),
            ..Self::new(inner, micro)
        }
    }

    /// Whether batches are packed.
    pub fn is_packed(&self) -> bool {
        self.packer.is_some()
    }

    /// The tokenising batcher.
    pub fn inner(&self) -> &CausalLmBatcher {
        &self.inner
    }
}

impl<B: Backend> Batcher<B, EncodedSequence, LmBatch<B>> for LmBatcher {
    fn batch(&self, mut items: Vec<EncodedSequence>, device: &B::Device) -> LmBatch<B> {
        let mut parts = Vec::new();
        let mut target = Vec::new();
        if let Some(packer) = &self.packer {
            let packed = packer.pack(&items);
            for rows in packed.rows.chunks(self.micro) {
                target.push(rows.iter().map(row_target_tokens).sum());
                parts.push(LmPart::Packed(packer.collate(rows, device)));
            }
        } else {
            items.sort_by_key(|s| s.input_ids.len());
            for chunk in items.chunks(self.micro) {
                parts.push(LmPart::Padded(self.inner.collate(chunk, device)));
                target.push(chunk.iter().map(target_tokens).sum());
            }
        }
        LmBatch {
            parts,
            target_tokens: target,
            input_tokens: items.iter().map(|s| s.input_ids.len()).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_seeded_disjoint_and_capped() {
        let rows: Vec<usize> = (0..100).collect();
        let (train, dev) = split(rows.clone(), 0.05, 3, Some(10), 7).unwrap();
        assert_eq!(dev.len(), 3);
        assert_eq!(train.len(), 10);
        assert!(dev.iter().all(|d| !train.contains(d)));
        assert_eq!(
            split(rows.clone(), 0.05, 3, Some(10), 7).unwrap(),
            (train, dev)
        );
        let (train, dev) = split(rows, 0.0, 100, None, 1).unwrap();
        assert_eq!((train.len(), dev.len()), (99, 1));
        assert!(split(vec![1], 0.5, 1, None, 1).is_err());
    }

    #[test]
    fn target_tokens_skip_the_first_position_and_ignored_labels() {
        let s = EncodedSequence {
            input_ids: vec![1, 5, 6, 7, 2],
            labels: vec![IGNORE_INDEX, IGNORE_INDEX, 6, 7, 2],
            truncated: false,
        };
        assert_eq!(target_tokens(&s), 3);
    }
}
