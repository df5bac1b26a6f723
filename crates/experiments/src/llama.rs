//! What the decoder jobs (`metamath`, `sft`, `gsm8k-eval`, `bone generate`) share: resolving
//! `--model` (a folder, a GGUF file or a Hub id), its config, tokenizer, chat template and
//! causal-LM batcher, and `--precision`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use burn::tensor::FloatDType;
use clap::ValueEnum;
use data::batcher::{CausalLmBatcher, CausalLmBatcherConfig, PaddingSide};
use data::sft::ChatTemplate;
use models::{LlamaConfig, ModelConfig};
use serde::{Deserialize, Serialize};

use crate::device::BackendKind;

/// `--precision`: the float type the base weights are loaded in (adapters stay f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (every backend).
    #[default]
    F32,
    /// 16-bit floats (Flex, WGPU, CUDA; not NdArray).
    F16,
    /// bfloat16 (Flex, CUDA; not NdArray).
    Bf16,
}

impl Precision {
    /// The Burn float type.
    pub fn dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::F16 => FloatDType::F16,
            Self::Bf16 => FloatDType::BF16,
        }
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        }
    }

    /// Fails when backend `B` cannot hold this float type on `device`.
    ///
    /// # Errors
    /// The backend lacks the type, naming the flag and the backends that have it.
    pub fn check<B: burn::tensor::backend::Backend>(
        self,
        device: &B::Device,
        backend: BackendKind,
    ) -> anyhow::Result<()> {
        if self != Self::F32 && !B::supports_dtype(device, burn::tensor::DType::from(self.dtype()))
        {
            bail!(
                "--precision {}: the {backend} backend has no {} tensors; use --device flex \
                 (CPU), wgpu or cuda, or --precision f32",
                self.name(),
                self.name()
            );
        }
        Ok(())
    }
}

/// `--model` (or `--adapter`) as a local path: a Hub id `org/name` (not an existing path)
/// becomes its snapshot folder in the Hugging Face cache at `revision` (default `main`),
/// downloading missing files unless `HF_HUB_OFFLINE` is set; a path is returned unchanged.
///
/// # Errors
/// A Hub id absent offline, a revision that does not exist, a failed download; naming the flag.
pub fn resolve_model_arg(
    model: &Path,
    revision: Option<&str>,
    flag: &str,
) -> anyhow::Result<PathBuf> {
    models::hub::resolve_model(model, revision)
        .with_context(|| format!("{flag} {}", model.display()))
}

/// [`resolve_model_arg`] for a PEFT adapter (`--adapter DIR|ORG/NAME`).
///
/// # Errors
/// As [`resolve_model_arg`].
pub fn resolve_adapter_arg(adapter: &Path, flag: &str) -> anyhow::Result<PathBuf> {
    models::hub::resolve_adapter(adapter, None)
        .with_context(|| format!("{flag} {}", adapter.display()))
}

/// The GGUF file `--model` names (a `.gguf` file, or a folder without `config.json` holding
/// exactly one), if any.
///
/// # Errors
/// A folder with several `.gguf` files, naming them.
pub fn gguf_file(model: &Path) -> anyhow::Result<Option<PathBuf>> {
    Ok(models::gguf::locate(model, "config.json")?)
}

/// Reads the config of `dir` (`config.json`, or the metadata of a GGUF file) and checks that
/// it is a LLaMA-architecture decoder.
///
/// # Errors
/// A missing folder, an unreadable config, or another architecture, naming the flag.
pub fn check_llama_folder(dir: &Path, flag: &str) -> anyhow::Result<LlamaConfig> {
    if let Some(file) = gguf_file(dir).with_context(|| format!("{flag} {}", dir.display()))? {
        let weights = models::gguf::GgufWeights::open(&file)
            .with_context(|| format!("{flag} {}", file.display()))?;
        let config = ModelConfig::from_value(weights.config(), &file)
            .with_context(|| format!("{flag} {}", file.display()))?;
        return match config {
            ModelConfig::Llama(llama) => Ok(llama),
            other => bail!(
                "{flag} {}: the GGUF file describes a {} model, but this needs a decoder",
                file.display(),
                other.family()
            ),
        };
    }
    if !dir.is_dir() {
        bail!(
            "{flag} {}: no such folder; expected a Hugging Face LLaMA checkpoint folder \
             (config.json, model.safetensors or shards, tokenizer.json), a llama.cpp .gguf \
             file or a Hub id org/name, e.g. ../shared/models/stories260K or Llama-2-7b-hf\n{}",
            dir.display(),
            crate::train::job::default_hint(&models::hub::DECODER)
        );
    }
    let config = ModelConfig::load(dir).with_context(|| format!("{flag} {}", dir.display()))?;
    match config {
        ModelConfig::Llama(llama) => Ok(llama),
        other => bail!(
            "{flag} {}: config.json describes a {} model ({}), but this needs a LLaMA-architecture \
             decoder (model_type \"llama\", LlamaForCausalLM)",
            dir.display(),
            other.family(),
            other.architecture().unwrap_or("no architectures field")
        ),
    }
}

/// The tokenizer of a decoder: `tokenizer.json` of its folder, or the one a GGUF file's
/// `tokenizer.ggml.*` metadata describes; padding and truncation off.
///
/// # Errors
/// A missing or unreadable tokenizer, naming the file.
pub fn decoder_tokenizer(model: &Path) -> anyhow::Result<tokenizers::Tokenizer> {
    match gguf_file(model)? {
        Some(file) => {
            let mut tokenizer = models::gguf::GgufTokenizer::open(&file)
                .with_context(|| format!("the tokenizer of {}", file.display()))?
                .tokenizer;
            tokenizer.with_padding(None);
            tokenizer
                .with_truncation(None)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            Ok(tokenizer)
        }
        None => Ok(data::load_tokenizer(&model.join("tokenizer.json"))?),
    }
}

/// The chat template of a decoder: `tokenizer_config.json`'s `chat_template` (or
/// `chat_template.jinja`) in its folder, or a GGUF file's `tokenizer.chat_template` with its
/// BOS/EOS token texts; `None` when it has none (a base model).
///
/// # Errors
/// An unreadable file, or a template that does not compile.
pub fn chat_template(model: &Path) -> anyhow::Result<Option<ChatTemplate>> {
    if let Some(file) = gguf_file(model)? {
        let tokenizer = models::gguf::GgufTokenizer::open(&file)
            .with_context(|| format!("the chat template of {}", file.display()))?;
        let Some(source) = &tokenizer.chat_template else {
            return Ok(None);
        };
        let special = &tokenizer.special;
        return Ok(Some(ChatTemplate::new(
            source,
            tokenizer.token(special.bos).unwrap_or_default(),
            tokenizer.token(special.eos).unwrap_or_default(),
            format!("{} (tokenizer.chat_template)", file.display()),
        )?));
    }
    let path = model.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(None);
    }
    Ok(ChatTemplate::from_tokenizer_config(&path)?)
}

/// The causal-LM batcher of a LLaMA checkpoint: its BOS, first EOS and pad ids (pad 0 when it
/// has none, masked anyway), right padding for training, left for generation.
///
/// # Errors
/// A missing or unreadable `tokenizer.json`, a tokenizer with ids beyond the model's
/// `vocab_size` (they would index past the embedding table), or a `max_len` too short.
pub fn lm_batcher(
    model_dir: &Path,
    llama: &LlamaConfig,
    max_len: usize,
    side: PaddingSide,
) -> anyhow::Result<CausalLmBatcher> {
    let tokenizer = decoder_tokenizer(model_dir)?;
    let tokenizer_file = if model_dir.is_file() {
        model_dir.to_path_buf()
    } else {
        model_dir.join("tokenizer.json")
    };
    crate::train::limits::check_tokenizer_vocab(
        tokenizer.get_vocab_size(true),
        &tokenizer_file,
        llama.vocab_size,
        model_dir,
    )?;
    let config = CausalLmBatcherConfig {
        max_len,
        pad_id: llama.pad_token_id.unwrap_or(0),
        bos_id: llama.bos_token_id,
        eos_id: llama.eos_token_ids().first().copied(),
        padding_side: side,
        pad_to_multiple_of: None,
    };
    Ok(CausalLmBatcher::new(tokenizer, config)?)
}
