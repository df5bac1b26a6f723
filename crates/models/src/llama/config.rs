//! `LlamaConfig`: the fields of a Hugging Face `config.json` of the LLaMA-architecture
//! decoders (`model_type` `llama`, `mistral`, `qwen2`, `qwen3`), and their switches.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::LlamaForCausalLM;
use crate::config::{invalid_field, parse_fields, token_ids};
use crate::error::Result;
use crate::nn::Activation;
use burn::tensor::backend::Backend;

/// Which LLaMA-architecture decoder a config describes (`model_type`). They share one
/// implementation; the kind switches its differences on:
///
/// | kind      | q/k/v bias       | o bias           | q/k RMSNorm per head | window           |
/// |-----------|------------------|------------------|----------------------|------------------|
/// | `llama`   | `attention_bias` | `attention_bias` | no                   | no               |
/// | `mistral` | no               | no               | no                   | `sliding_window` |
/// | `qwen2`   | yes              | no               | no                   | no               |
/// | `qwen3`   | `attention_bias` | `attention_bias` | `q_norm`, `k_norm`   | no               |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// `llama` (LLaMA 1–3, TinyLlama, SmolLM, stories260K, …).
    #[default]
    Llama,
    /// `mistral`: sliding-window attention.
    Mistral,
    /// `qwen2`: biases on the q, k and v projections.
    Qwen2,
    /// `qwen3`: RMSNorm over each query and key head before RoPE, explicit `head_dim`.
    Qwen3,
}

impl DecoderKind {
    /// The `model_type` string.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Mistral => "mistral",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
        }
    }

    /// The transformers causal-LM class (`LlamaForCausalLM`, `Qwen2ForCausalLM`, …).
    pub fn architecture(self) -> &'static str {
        match self {
            Self::Llama => "LlamaForCausalLM",
            Self::Mistral => "MistralForCausalLM",
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Qwen3 => "Qwen3ForCausalLM",
        }
    }
}

impl std::fmt::Display for DecoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model_type())
    }
}

/// The configuration of a LLaMA-architecture decoder, with Hugging Face's field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// `model_type`: `llama`, `mistral`, `qwen2` or `qwen3`.
    #[serde(default)]
    pub model_type: DecoderKind,
    /// `architectures` (e.g. `["LlamaForCausalLM"]`).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); the query heads when absent.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Width of one head; when absent `hidden_size / num_attention_heads` (128 for `qwen3`,
    /// as transformers' `Qwen3Config`).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence the model was trained for.
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base (transformers < 5 puts it here; 5 puts it in `rope_parameters`).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// RoPE scaling (`{"rope_type": "linear" | "llama3", "factor": …}`), transformers < 5.
    #[serde(default)]
    pub rope_scaling: Option<Value>,
    /// RoPE parameters (transformers ≥ 5): `rope_theta`, `rope_type` and scaling fields.
    #[serde(default)]
    pub rope_parameters: Option<Value>,
    /// MLP activation (`silu`).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Whether `lm_head` shares the token embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence id.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id(s): one id or a list.
    #[serde(default)]
    pub eos_token_id: Option<Value>,
    /// Padding id.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Whether q/k/v/o projections have biases.
    #[serde(default)]
    pub attention_bias: bool,
    /// Whether the MLP projections have biases.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Dropout on attention probabilities (training only).
    #[serde(default)]
    pub attention_dropout: f64,
    /// `mistral`: each token attends to itself and the `sliding_window - 1` tokens before it
    /// (`None`: no window). Ignored by `qwen2`/`qwen3` unless `use_sliding_window`.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// `qwen2`/`qwen3`: whether some layers use sliding-window attention (not supported).
    #[serde(default)]
    pub use_sliding_window: bool,
    /// Per-layer attention kind (`full_attention`; transformers ≥ 5).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
}

fn default_max_positions() -> usize {
    2048
}
fn default_rms_eps() -> f64 {
    1e-6
}
fn default_act() -> String {
    "silu".into()
}

/// How rotary frequencies are scaled for long contexts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// No scaling.
    None,
    /// Positions divided by `factor`.
    Linear {
        /// The factor.
        factor: f64,
    },
    /// Llama 3's frequency-dependent scaling.
    Llama3 {
        /// Scaling factor.
        factor: f64,
        /// Wavelengths longer than `original / low_freq_factor` are divided by `factor`.
        low_freq_factor: f64,
        /// Wavelengths shorter than `original / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The context length of pre-training.
        original_max_position_embeddings: f64,
    },
}

impl LlamaConfig {
    /// Parses and validates a `config.json` value; `file` names it in errors.
    ///
    /// # Errors
    /// Missing or invalid fields, heads that do not divide the width or each other, or an
    /// unsupported activation or RoPE scaling, each naming the field.
    pub fn from_value(value: &Value, file: &Path) -> Result<Self> {
        let config: Self = parse_fields(value, file)?;
        config.validate(file)?;
        Ok(config)
    }

    fn validate(&self, file: &Path) -> Result<()> {
        for (field, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
            ("num_hidden_layers", self.num_hidden_layers),
            ("vocab_size", self.vocab_size),
        ] {
            if v == 0 {
                return Err(invalid_field(file, field, "a positive integer", 0));
            }
        }
        if self.head_dim.is_none()
            && self.model_type != DecoderKind::Qwen3
            && !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(invalid_field(
                file,
                "num_attention_heads",
                &format!("a divisor of hidden_size {}", self.hidden_size),
                self.num_attention_heads,
            ));
        }
        let kv = self.num_kv_heads();
        if kv == 0 || !self.num_attention_heads.is_multiple_of(kv) {
            return Err(invalid_field(
                file,
                "num_key_value_heads",
                &format!(
                    "a divisor of num_attention_heads {}",
                    self.num_attention_heads
                ),
                kv,
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(invalid_field(
                file,
                "head_dim",
                "an even number (RoPE)",
                self.head_dim(),
            ));
        }
        Activation::from_hf(&self.hidden_act, file)?;
        self.rope_scaling_kind(file)?;
        self.validate_attention_kinds(file)?;
        if !(0.0..1.0).contains(&self.attention_dropout) {
            return Err(invalid_field(
                file,
                "attention_dropout",
                "a probability in [0, 1)",
                self.attention_dropout,
            ));
        }
        Ok(())
    }

    fn validate_attention_kinds(&self, file: &Path) -> Result<()> {
        let mistral = self.model_type == DecoderKind::Mistral;
        if self.use_sliding_window && !mistral {
            return Err(invalid_field(
                file,
                "use_sliding_window",
                &format!(
                    "false (sliding-window attention is supported for mistral, not {})",
                    self.model_type
                ),
                true,
            ));
        }
        if mistral && self.sliding_window == Some(0) {
            return Err(invalid_field(
                file,
                "sliding_window",
                "a positive number of tokens or null",
                0,
            ));
        }
        let allowed: &[&str] = if mistral {
            &["full_attention", "sliding_attention"]
        } else {
            &["full_attention"]
        };
        for (i, kind) in self.layer_types.iter().flatten().enumerate() {
            if !allowed.contains(&kind.as_str()) {
                return Err(invalid_field(
                    file,
                    &format!("layer_types[{i}]"),
                    &allowed.join(" or "),
                    format!("{kind:?}"),
                ));
            }
        }
        if let Some(types) = &self.layer_types {
            if types.len() != self.num_hidden_layers {
                return Err(invalid_field(
                    file,
                    "layer_types",
                    &format!("one entry per layer ({})", self.num_hidden_layers),
                    types.len(),
                ));
            }
        }
        Ok(())
    }

    /// Whether the q, k and v projections have biases (`qwen2`: always; `mistral`: never).
    pub fn qkv_bias(&self) -> bool {
        match self.model_type {
            DecoderKind::Qwen2 => true,
            DecoderKind::Mistral => false,
            _ => self.attention_bias,
        }
    }

    /// Whether `o_proj` has a bias (`qwen2`, `mistral`: never).
    pub fn o_bias(&self) -> bool {
        match self.model_type {
            DecoderKind::Qwen2 | DecoderKind::Mistral => false,
            _ => self.attention_bias,
        }
    }

    /// Whether queries and keys go through a per-head RMSNorm (`q_norm`, `k_norm`) before
    /// RoPE (`qwen3`).
    pub fn qk_norm(&self) -> bool {
        self.model_type == DecoderKind::Qwen3
    }

    /// The attention window: `sliding_window` for `mistral` (a query at position `i` sees
    /// keys `i - window < j ≤ i`), else `None`.
    pub fn attention_window(&self) -> Option<usize> {
        match self.model_type {
            DecoderKind::Mistral => self.sliding_window,
            _ => None,
        }
    }

    /// Key/value heads.
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(match self.model_type {
            DecoderKind::Qwen3 => 128,
            _ => self.hidden_size / self.num_attention_heads.max(1),
        })
    }

    /// The RoPE base: `rope_parameters.rope_theta`, else `rope_theta`, else 10000.
    pub fn rope_base(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.get("rope_theta"))
            .and_then(Value::as_f64)
            .or(self.rope_theta)
            .unwrap_or(10_000.0)
    }

    /// The end-of-sequence ids (empty when the config names none).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        token_ids(self.eos_token_id.as_ref())
    }

    /// The activation of the MLP.
    pub fn activation(&self) -> Activation {
        Activation::from_hf(&self.hidden_act, Path::new("<config>")).unwrap_or(Activation::Silu)
    }

    /// The RoPE scaling, from `rope_parameters` or `rope_scaling`.
    ///
    /// # Errors
    /// A scaling type other than default, linear or llama3, or missing factors.
    pub fn rope_scaling_kind(&self, file: &Path) -> Result<RopeScaling> {
        let Some(params) = self.rope_parameters.as_ref().or(self.rope_scaling.as_ref()) else {
            return Ok(RopeScaling::None);
        };
        let field = if self.rope_parameters.is_some() {
            "rope_parameters"
        } else {
            "rope_scaling"
        };
        if params.is_null() {
            return Ok(RopeScaling::None);
        }
        let kind = params
            .get("rope_type")
            .or_else(|| params.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let number = |key: &str| -> Result<f64> {
            params.get(key).and_then(Value::as_f64).ok_or_else(|| {
                invalid_field(
                    file,
                    &format!("{field}.{key}"),
                    "a number",
                    params
                        .get(key)
                        .map(Value::to_string)
                        .unwrap_or_else(|| "nothing".into()),
                )
            })
        };
        Ok(match kind {
            "default" => RopeScaling::None,
            "linear" => RopeScaling::Linear {
                factor: number("factor")?,
            },
            "llama3" => RopeScaling::Llama3 {
                factor: number("factor")?,
                low_freq_factor: number("low_freq_factor")?,
                high_freq_factor: number("high_freq_factor")?,
                original_max_position_embeddings: number("original_max_position_embeddings")?,
            },
            other => {
                return Err(invalid_field(
                    file,
                    &format!("{field}.rope_type"),
                    "default, linear or llama3",
                    format!("{other:?}"),
                ))
            }
        })
    }

    /// A causal LM with random weights (see [`LlamaForCausalLM::init`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> LlamaForCausalLM<B> {
        LlamaForCausalLM::init(self.clone(), device)
    }

    /// Parameters of the whole causal LM (embeddings, layers, final norm, and `lm_head` when
    /// it is not tied).
    pub fn num_params(&self) -> usize {
        let h = self.hidden_size;
        let d = self.head_dim();
        let q = self.num_attention_heads * d;
        let kv = self.num_kv_heads() * d;
        let attn_bias = if self.qkv_bias() { q + 2 * kv } else { 0 }
            + if self.o_bias() { h } else { 0 }
            + if self.qk_norm() { 2 * d } else { 0 };
        let mlp_bias = if self.mlp_bias {
            2 * self.intermediate_size + h
        } else {
            0
        };
        let attention = h * q + 2 * h * kv + q * h + attn_bias;
        let mlp = 3 * h * self.intermediate_size + mlp_bias;
        let layer = attention + mlp + 2 * h;
        let embed = self.vocab_size * h;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed + self.num_hidden_layers * layer + h + head
    }
}
