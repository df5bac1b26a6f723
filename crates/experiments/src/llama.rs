//! What the LLaMA jobs (`metamath`, `gsm8k-eval`) share: checking a checkpoint folder, its
//! causal-LM batcher, and `--precision`.

use std::path::Path;

use anyhow::{bail, Context};
use burn::tensor::FloatDType;
use clap::ValueEnum;
use data::batcher::{CausalLmBatcher, CausalLmBatcherConfig, PaddingSide};
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

/// Reads `config.json` of `dir` and checks that it is a LLaMA-architecture decoder.
///
/// # Errors
/// A missing folder, an unreadable config, or another architecture, naming the flag.
pub fn check_llama_folder(dir: &Path, flag: &str) -> anyhow::Result<LlamaConfig> {
    if !dir.is_dir() {
        bail!(
            "{flag} {}: no such folder; expected a Hugging Face LLaMA checkpoint folder \
             (config.json, model.safetensors or shards, tokenizer.json), e.g. \
             ../shared/models/stories260K or Llama-2-7b-hf\n{}",
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

/// The causal-LM batcher of a LLaMA checkpoint: its BOS, first EOS and pad ids (pad 0 when it
/// has none, masked anyway), right padding for training, left for generation.
///
/// # Errors
/// A missing or unreadable `tokenizer.json`, or a `max_len` too short.
pub fn lm_batcher(
    model_dir: &Path,
    llama: &LlamaConfig,
    max_len: usize,
    side: PaddingSide,
) -> anyhow::Result<CausalLmBatcher> {
    let tokenizer = data::load_tokenizer(&model_dir.join("tokenizer.json"))?;
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
