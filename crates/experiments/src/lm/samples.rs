//! Sample generations: at each evaluation, greedy continuations of a few held-out prompts
//! written to `<run>/samples/step-N.jsonl`, so a run shows what the model says, not only its
//! loss.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::backend::Backend;
use data::batcher::{EncodedSequence, IGNORE_INDEX};
use data::Tokenizer;
use models::{GenerationConfig, LlamaForCausalLM};

/// New tokens per sample at most.
pub const SAMPLE_TOKENS: usize = 64;

/// The folder of the sample files inside a run folder.
pub const SAMPLES_DIR: &str = "samples";

/// The held-out prompts sampled at every evaluation, with their references.
#[derive(Debug, Clone)]
pub struct SampleSet {
    prompts: Vec<Vec<u32>>,
    references: Vec<Vec<u32>>,
    tokenizer: Tokenizer,
    max_new_tokens: usize,
}

impl SampleSet {
    /// The first `n` held-out sequences that have a prompt, split where the loss starts:
    /// the tokens before the first scored label are the prompt, the scored ones the
    /// reference.
    pub fn from_dev(dev: &[EncodedSequence], n: usize, tokenizer: Tokenizer) -> Self {
        let (prompts, references) = dev
            .iter()
            .filter_map(|s| {
                let start = s.labels.iter().position(|&l| l != IGNORE_INDEX)?;
                (start > 0).then(|| (s.input_ids[..start].to_vec(), s.input_ids[start..].to_vec()))
            })
            .take(n)
            .unzip();
        Self {
            prompts,
            references,
            tokenizer,
            max_new_tokens: SAMPLE_TOKENS,
        }
    }

    /// Prompts sampled.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether there is nothing to sample.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// Generates greedily from every prompt with `model` and writes one JSON line per prompt
    /// (`step`, `epoch`, `prompt`, `output`, `reference`) to `<run>/samples/step-<step>.jsonl`.
    /// Returns the file written.
    ///
    /// # Errors
    /// Generation, decoding or writing the file failed.
    pub fn write<B: Backend>(
        &self,
        model: &LlamaForCausalLM<B>,
        run: &Path,
        step: usize,
        epoch: usize,
    ) -> anyhow::Result<PathBuf> {
        let config = GenerationConfig {
            max_new_tokens: self.max_new_tokens,
            temperature: 0.0,
            ..GenerationConfig::default()
        };
        let mut lines = String::new();
        for (prompt, reference) in self.prompts.iter().zip(&self.references) {
            let output = model.generate(std::slice::from_ref(prompt), &config)?;
            let row = serde_json::json!({
                "step": step,
                "epoch": epoch,
                "prompt": self.decode(prompt)?,
                "output": self.decode(output.new_tokens(0))?,
                "reference": self.decode(reference)?,
            });
            let _ = writeln!(lines, "{row}");
        }
        let dir = run.join(SAMPLES_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("step-{step}.jsonl"));
        bone_io::fs::write_atomic(&path, lines.as_bytes())?;
        Ok(path)
    }

    fn decode(&self, ids: &[u32]) -> anyhow::Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| anyhow::anyhow!("decoding a sample: {e}"))
    }
}
