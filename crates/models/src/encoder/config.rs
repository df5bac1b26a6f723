//! `EncoderConfig`: the fields of a BERT or RoBERTa `config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{invalid_field, parse_fields, ModelFamily};
use crate::error::Result;
use crate::nn::Activation;

/// The configuration of a BERT or RoBERTa encoder, with Hugging Face's field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    /// `bert` or `roberta` (from `model_type`).
    #[serde(skip, default = "default_family")]
    pub family: ModelFamily,
    /// `architectures` (e.g. `["BertModel"]`, `["RobertaForSequenceClassification"]`).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Feed-forward activation (`gelu`).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Dropout after embeddings and sub-layers (training only).
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (training only).
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Size of the position table.
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (2 for BERT, 1 for RoBERTa).
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_ln_eps")]
    pub layer_norm_eps: f64,
    /// Padding id (RoBERTa numbers positions from `pad_token_id + 1`).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Only `absolute` is supported.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// Dropout before the classifier; `hidden_dropout_prob` when absent.
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    /// Label names of a classification head (`{"0": "NEGATIVE", …}`).
    #[serde(default)]
    pub id2label: Option<BTreeMap<String, String>>,
    /// Number of labels, when given explicitly.
    #[serde(default)]
    pub num_labels: Option<usize>,
    /// `regression`, `single_label_classification`, …
    #[serde(default)]
    pub problem_type: Option<String>,
    /// Standard deviation of fresh weights (heads not in the checkpoint).
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
}

fn default_family() -> ModelFamily {
    ModelFamily::Bert
}
fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_max_positions() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_ln_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}

impl EncoderConfig {
    /// Parses and validates a `config.json` value of `family`; `file` names it in errors.
    ///
    /// # Errors
    /// Missing or invalid fields, heads that do not divide the width, an unsupported
    /// activation or position embedding type.
    pub fn from_value(value: &Value, file: &Path, family: ModelFamily) -> Result<Self> {
        let mut config: Self = parse_fields(value, file)?;
        config.family = family;
        config.validate(file)?;
        Ok(config)
    }

    fn validate(&self, file: &Path) -> Result<()> {
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return Err(invalid_field(file, field, "a positive integer", 0));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(invalid_field(
                file,
                "num_attention_heads",
                &format!("a divisor of hidden_size {}", self.hidden_size),
                self.num_attention_heads,
            ));
        }
        if let Some(kind) = &self.position_embedding_type {
            if kind != "absolute" {
                return Err(invalid_field(
                    file,
                    "position_embedding_type",
                    "\"absolute\" (relative position embeddings are not supported)",
                    format!("{kind:?}"),
                ));
            }
        }
        Activation::from_hf(&self.hidden_act, file)?;
        for (field, p) in [
            ("hidden_dropout_prob", Some(self.hidden_dropout_prob)),
            (
                "attention_probs_dropout_prob",
                Some(self.attention_probs_dropout_prob),
            ),
            ("classifier_dropout", self.classifier_dropout),
        ] {
            if let Some(p) = p {
                if !(0.0..1.0).contains(&p) {
                    return Err(invalid_field(file, field, "a probability in [0, 1)", p));
                }
            }
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The padding id (0 when the config names none).
    pub fn pad_id(&self) -> u32 {
        self.pad_token_id.unwrap_or(0)
    }

    /// The activation of the feed-forward block.
    pub fn activation(&self) -> Activation {
        Activation::from_hf(&self.hidden_act, Path::new("<config>")).unwrap_or(Activation::Gelu)
    }

    /// Labels of the classification head in the config: `num_labels`, else the size of
    /// `id2label`, else `None`.
    pub fn config_num_labels(&self) -> Option<usize> {
        self.num_labels
            .or_else(|| self.id2label.as_ref().map(BTreeMap::len))
            .filter(|&n| n > 0)
    }

    /// The dropout before the classifier.
    pub fn classifier_dropout_prob(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    /// Whether `architectures` names a sequence-classification model.
    pub fn is_sequence_classifier(&self) -> bool {
        self.architectures
            .iter()
            .any(|a| a.ends_with("ForSequenceClassification"))
    }

    /// Parameters of the bare encoder (embeddings, layers, and the pooler when `pooler`).
    pub fn num_params(&self, pooler: bool) -> usize {
        let h = self.hidden_size;
        let i = self.intermediate_size;
        let embeddings =
            (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let attention = 4 * (h * h + h) + 2 * h;
        let ffn = h * i + i + i * h + h + 2 * h;
        let pooler = if pooler { h * h + h } else { 0 };
        embeddings + self.num_hidden_layers * (attention + ffn) + pooler
    }
}
