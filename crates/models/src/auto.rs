//! `AutoModel`: any supported checkpoint behind one type, chosen from `config.json` (and
//! from an adapter's task, when one is given).

use std::path::Path;

use bone_module::peft::{load_adapter, LoadedAdapter, ADAPTER_WEIGHTS_FILE, PEFT_KEY_PREFIX};
use bone_module::{AdaptedLinear, AdapterConfig, AdapterHost};
use burn::module::Module;
use burn::tensor::backend::Backend;
use serde_json::Value;

use crate::checkpoint::{Checkpoint, LoadOptions};
use crate::config::{ModelConfig, ModelFamily};
use crate::encoder::{
    peek_head_labels, ClassifierOptions, EncoderModel, SequenceClassificationModel,
};
use crate::error::Result;
use crate::export::{HfExport, StateDict};
use crate::llama::LlamaForCausalLM;

/// A loaded model of any supported kind.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // Burn modules cannot be boxed
pub enum AutoModel<B: Backend> {
    /// A LLaMA causal LM.
    CausalLm(LlamaForCausalLM<B>),
    /// A bare BERT/RoBERTa encoder (`architectures` names no task head).
    Encoder(EncoderModel<B>),
    /// A BERT/RoBERTa sequence classifier.
    Classifier(SequenceClassificationModel<B>),
}

impl<B: Backend> AutoModel<B> {
    /// Loads the checkpoint in `dir`: LLaMA as a causal LM; BERT/RoBERTa as a classifier
    /// when `architectures` names `*ForSequenceClassification`, else as a bare encoder.
    ///
    /// # Errors
    /// A missing folder or file, an unsupported `model_type`, an invalid config, or a
    /// missing or misshaped tensor.
    pub fn from_pretrained(
        dir: impl AsRef<Path>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        Self::for_adapter(dir, None, options, device)
    }

    /// Loads the checkpoint in `dir` as the kind of model the PEFT adapter in `adapter`
    /// was saved from: a classifier when the adapter's task is `SEQ_CLS` or its keys use the
    /// task model's paths (`bert.…`, `roberta.…`), with as many labels as its saved head.
    /// The adapter itself is not loaded (see [`load_adapter`](Self::load_adapter)).
    ///
    /// # Errors
    /// See [`from_pretrained`](Self::from_pretrained); an unreadable adapter config.
    pub fn for_adapter(
        dir: impl AsRef<Path>,
        adapter: Option<&Path>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let checkpoint = Checkpoint::open(dir)?;
        match checkpoint.model_config().clone() {
            ModelConfig::Llama(config) => Ok(Self::CausalLm(LlamaForCausalLM::load(
                &checkpoint,
                config,
                options,
                device,
            )?)),
            ModelConfig::Encoder(config) => {
                let family = config.family;
                let mut num_labels = None;
                let mut classifier = config.is_sequence_classifier();
                if let Some(adapter) = adapter {
                    let adapter_config = AdapterConfig::load(adapter)?;
                    if adapter_config.task_type.as_deref() == Some("SEQ_CLS")
                        || adapter_uses_prefix(adapter, family)?
                    {
                        classifier = true;
                        num_labels = peek_head_labels(adapter, family)?;
                    }
                }
                if classifier {
                    let options = ClassifierOptions {
                        load: options.clone(),
                        num_labels,
                        ..ClassifierOptions::default()
                    };
                    Ok(Self::Classifier(SequenceClassificationModel::load(
                        &checkpoint,
                        &options,
                        device,
                    )?))
                } else {
                    Ok(Self::Encoder(EncoderModel::load(
                        &checkpoint,
                        config,
                        None,
                        options,
                        device,
                    )?))
                }
            }
        }
    }

    /// The family.
    pub fn family(&self) -> ModelFamily {
        match self {
            Self::CausalLm(m) => m.family(),
            Self::Encoder(m) => m.family(),
            Self::Classifier(m) => m.family(),
        }
    }

    /// The `model_type` of its config (`llama`, `mistral`, `qwen2`, `qwen3`, `bert`,
    /// `roberta`).
    pub fn model_type(&self) -> &'static str {
        match self {
            Self::CausalLm(m) => m.kind().model_type(),
            other => other.family().model_type(),
        }
    }

    /// The transformers class this model corresponds to.
    pub fn architecture(&self) -> &'static str {
        match (self, self.family()) {
            (Self::CausalLm(m), _) => m.kind().architecture(),
            (Self::Encoder(_), ModelFamily::Roberta) => "RobertaModel",
            (Self::Encoder(_), _) => "BertModel",
            (Self::Classifier(_), ModelFamily::Roberta) => "RobertaForSequenceClassification",
            (Self::Classifier(_), _) => "BertForSequenceClassification",
        }
    }

    /// Loads a PEFT adapter folder under `name` (with its saved head, for classifiers).
    ///
    /// # Errors
    /// See [`bone_module::peft::load_adapter`].
    pub fn load_adapter(
        &mut self,
        dir: &Path,
        name: &str,
        device: &B::Device,
    ) -> Result<LoadedAdapter> {
        match self {
            Self::Classifier(m) => m.load_adapter(dir, name, device),
            Self::CausalLm(m) => Ok(load_adapter(m, dir, name, device)?),
            Self::Encoder(m) => Ok(load_adapter(m, dir, name, device)?),
        }
    }

    /// Parameters an optimiser would train (active adapters, trainable heads).
    pub fn trainable_params(&self) -> usize {
        match self {
            Self::CausalLm(m) => m.trainable_params(),
            Self::Encoder(m) => m.trainable_params(),
            Self::Classifier(m) => m.trainable_params(),
        }
    }
}

/// Whether the adapter's keys use a task model's paths (`base_model.model.bert.…`).
fn adapter_uses_prefix(adapter: &Path, family: ModelFamily) -> Result<bool> {
    let path = adapter.join(ADAPTER_WEIGHTS_FILE);
    if !path.is_file() {
        return Ok(false);
    }
    let prefix = format!("{PEFT_KEY_PREFIX}{}.", family.base_model_prefix());
    let bytes = std::fs::read(&path).map_err(|e| crate::ModelError::io("reading", &path, e))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        bone_io::FileError::Safetensors {
            file: path.clone(),
            message: e.to_string(),
        }
    })?;
    Ok(metadata.tensors().keys().any(|k| k.starts_with(&prefix)))
}

impl<B: Backend> AdapterHost<B> for AutoModel<B> {
    fn visit_linears(&self, f: &mut dyn FnMut(&AdaptedLinear<B>)) {
        match self {
            Self::CausalLm(m) => m.visit_linears(f),
            Self::Encoder(m) => m.visit_linears(f),
            Self::Classifier(m) => m.visit_linears(f),
        }
    }

    fn visit_linears_mut(&mut self, f: &mut dyn FnMut(&mut AdaptedLinear<B>)) {
        match self {
            Self::CausalLm(m) => m.visit_linears_mut(f),
            Self::Encoder(m) => m.visit_linears_mut(f),
            Self::Classifier(m) => m.visit_linears_mut(f),
        }
    }
}

impl<B: Backend> HfExport for AutoModel<B> {
    fn hf_state_dict(&self) -> StateDict {
        match self {
            Self::CausalLm(m) => m.hf_state_dict(),
            Self::Encoder(m) => m.hf_state_dict(),
            Self::Classifier(m) => m.hf_state_dict(),
        }
    }

    fn source_dir(&self) -> Option<&Path> {
        match self {
            Self::CausalLm(m) => m.source_dir(),
            Self::Encoder(m) => m.source_dir(),
            Self::Classifier(m) => m.source_dir(),
        }
    }

    fn hf_config(&self, source: &Value) -> Value {
        match self {
            Self::CausalLm(m) => m.hf_config(source),
            Self::Encoder(m) => m.hf_config(source),
            Self::Classifier(m) => m.hf_config(source),
        }
    }

    fn copied_prefix(&self) -> Option<(String, String)> {
        match self {
            Self::CausalLm(m) => m.copied_prefix(),
            Self::Encoder(m) => m.copied_prefix(),
            Self::Classifier(m) => m.copied_prefix(),
        }
    }
}
