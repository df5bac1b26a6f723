//! `SequenceClassificationModel`: an encoder with a classification or regression head
//! (`BertForSequenceClassification`, `RobertaForSequenceClassification`).

use std::collections::BTreeMap;
use std::path::Path;

use bone_io::FileError;
use bone_module::peft::{load_adapter, save_adapter, LoadedAdapter, ADAPTER_WEIGHTS_FILE};
use bone_module::{AdaptedLinear, AdapterConfig, AdapterHost};
use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Int, Tensor, TensorData};

use super::head::{head_num_labels, ClassificationHead};
use super::model::{encoder_config, EncoderModel};
use crate::checkpoint::{Checkpoint, LoadOptions};
use crate::config::ModelFamily;
use crate::error::{ModelError, Result};
use crate::train::set_all_trainable;
use crate::weights::{HfModule, HfModules, WeightLoader};

/// Where the classification head comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeadInit {
    /// The checkpoint's head when it has one with the right number of labels, else a fresh
    /// one (transformers' behaviour for a base checkpoint).
    #[default]
    CheckpointOrFresh,
    /// Always a fresh head.
    Fresh,
}

/// How to build a [`SequenceClassificationModel`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassifierOptions {
    /// Dtype of the parameters.
    pub load: LoadOptions,
    /// Number of labels (1 = regression); from the config's `id2label`/`num_labels` or the
    /// stored head when `None`, else 2.
    pub num_labels: Option<usize>,
    /// Where the head comes from.
    pub head: HeadInit,
    /// Seeds the backend's generator before a fresh head is drawn.
    pub seed: Option<u64>,
}

impl ClassifierOptions {
    /// `num_labels` labels (1 = regression), the other options at their defaults.
    pub fn with_num_labels(num_labels: usize) -> Self {
        Self {
            num_labels: Some(num_labels),
            ..Self::default()
        }
    }
}

/// An encoder with a sequence-classification head.
///
/// Module paths are those of the transformers task model (`bert.encoder.layer.0…`,
/// `roberta.encoder.layer.0…`), so adapters saved from it load in PEFT on
/// `AutoModelForSequenceClassification`. After loading, the encoder is frozen and the head
/// is trainable (PEFT's `modules_to_save = ["classifier"]`).
#[derive(Module, Debug)]
pub struct SequenceClassificationModel<B: Backend> {
    /// The encoder (with a pooler for BERT).
    pub encoder: EncoderModel<B>,
    /// The head.
    pub head: ClassificationHead<B>,
    head_trainable: bool,
}

impl<B: Backend> SequenceClassificationModel<B> {
    /// Loads a BERT or RoBERTa checkpoint as a sequence classifier.
    ///
    /// # Errors
    /// A missing folder or file, another `model_type`, an invalid config, zero labels, or a
    /// missing or misshaped tensor.
    pub fn from_pretrained(
        dir: impl AsRef<Path>,
        options: &ClassifierOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir.as_ref())?;
        Self::load(&checkpoint, options, device)
    }

    /// Builds the classifier from an opened checkpoint.
    ///
    /// # Errors
    /// See [`from_pretrained`](Self::from_pretrained).
    pub fn load(
        checkpoint: &Checkpoint,
        options: &ClassifierOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let config = encoder_config(checkpoint, "SequenceClassificationModel::from_pretrained")?;
        let family = config.family;
        let mut encoder = EncoderModel::load(
            checkpoint,
            config.clone(),
            Some(family.base_model_prefix()),
            &options.load,
            device,
        )?;
        let head_loader =
            WeightLoader::<B>::new(checkpoint, options.load.dtype, device).with_prefix("");
        let stored = ClassificationHead::<B>::stored_num_labels(&head_loader, family);
        let num_labels = options
            .num_labels
            .or(config.config_num_labels())
            .or(stored)
            .unwrap_or(2);
        if num_labels == 0 {
            return Err(ModelError::invalid(
                "num_labels",
                "expected at least 1 (1 = regression)",
            ));
        }
        if let Some(seed) = options.seed {
            B::seed(device, seed);
        }
        if family == ModelFamily::Bert {
            encoder.ensure_pooler(device);
        }
        let head = match options.head {
            HeadInit::CheckpointOrFresh if stored == Some(num_labels) => {
                ClassificationHead::load(&head_loader, &config, num_labels)?
            }
            HeadInit::CheckpointOrFresh if stored.is_some() => {
                log::warn!(
                    "{}: the stored classification head has {} labels, {num_labels} were asked for; \
                     using a fresh head",
                    checkpoint.dir().display(),
                    stored.unwrap_or(0)
                );
                None
            }
            _ => None,
        };
        let head = head.unwrap_or_else(|| {
            ClassificationHead::fresh(&config, num_labels, options.load.dtype, device)
        });
        Ok(Self {
            encoder,
            head,
            head_trainable: true,
        })
    }

    /// Wraps an encoder (renamed under the task model's prefix) and a head.
    pub fn new(
        mut encoder: EncoderModel<B>,
        head: ClassificationHead<B>,
        device: &B::Device,
    ) -> Self {
        let family = encoder.family();
        encoder.set_base_prefix(Some(family.base_model_prefix()));
        if family == ModelFamily::Bert {
            encoder.ensure_pooler(device);
        }
        Self {
            encoder,
            head,
            head_trainable: true,
        }
    }

    /// The family (`bert` or `roberta`).
    pub fn family(&self) -> ModelFamily {
        self.encoder.family()
    }

    /// The number of outputs.
    pub fn num_labels(&self) -> usize {
        self.head.num_labels()
    }

    /// Whether the head is a regression head (one output).
    pub fn is_regression(&self) -> bool {
        self.num_labels() == 1
    }

    /// Logits `[b, num_labels]`. With an attention mask the encoder runs on the real tokens
    /// only ([`EncoderModel::forward_unpadded`]); the logits are the same.
    ///
    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[b, s]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 2> {
        let hidden = match attention_mask {
            Some(mask) => self
                .encoder
                .forward_unpadded(input_ids, mask, token_type_ids),
            None => self.encoder.forward(input_ids, None, token_type_ids),
        };
        let pooled = match &self.head {
            ClassificationHead::Bert(_) => self.encoder.pool(hidden.clone()),
            ClassificationHead::Roberta(_) => None,
        };
        self.head.forward(hidden, pooled)
    }

    /// Mean cross-entropy of `logits` `[b, n]` against class ids `labels` `[b]`.
    pub fn classification_loss(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        let [b, n] = logits.dims();
        let logp = log_softmax(logits.cast(FloatDType::F32), 1);
        let picked = logp.gather(1, labels.clamp(0, n as i64 - 1).reshape([b, 1]));
        picked.mean().neg()
    }

    /// Mean squared error of `logits` `[b, 1]` against `targets` `[b]` (regression).
    pub fn regression_loss(logits: Tensor<B, 2>, targets: Tensor<B, 1>) -> Tensor<B, 1> {
        let [b, _] = logits.dims();
        let diff = logits.cast(FloatDType::F32).reshape([b]) - targets.cast(FloatDType::F32);
        diff.square().mean()
    }

    /// The head tensors in PyTorch layout under PEFT's `modules_to_save` names (see
    /// [`ClassificationHead::tensors`]).
    pub fn head_tensors(&self) -> BTreeMap<String, TensorData> {
        self.head.tensors()
    }

    /// Replaces the head by `tensors` (PyTorch layout, PEFT names); `source` names the file.
    ///
    /// # Errors
    /// A missing or misshaped tensor; nothing changes then.
    pub fn load_head_tensors(
        &mut self,
        tensors: &BTreeMap<String, TensorData>,
        source: &Path,
    ) -> Result<()> {
        self.head.load_tensors(tensors, source)
    }

    /// Whether the head is trained (the default).
    pub fn is_head_trainable(&self) -> bool {
        self.head_trainable
    }

    /// Trains or freezes the head.
    pub fn set_head_trainable(mut self, trainable: bool) -> Self {
        self.head = set_all_trainable(self.head, trainable);
        self.head_trainable = trainable;
        self
    }

    /// Unfreezes every parameter (encoder, pooler, head) for full fine-tuning, or freezes
    /// the encoder again (the head keeps its setting).
    pub fn set_full_finetune(mut self, full: bool) -> Self {
        self.encoder = self.encoder.set_full_finetune(full);
        if full {
            self = self.set_head_trainable(true);
        }
        self
    }

    /// Parameters an optimiser trains: the active adapters plus the head (or everything
    /// under full fine-tuning).
    pub fn trainable_params(&self) -> usize {
        let head = if self.head_trainable {
            self.head.num_params()
        } else {
            0
        };
        self.encoder.trainable_params() + head
    }

    /// Saves adapter `name` as a PEFT folder loadable on `AutoModelForSequenceClassification`:
    /// `task_type = "SEQ_CLS"`, `modules_to_save = ["classifier"]` and the head's tensors
    /// when the head is trainable.
    ///
    /// # Errors
    /// An unknown adapter, a method that differs from `config`'s, or an I/O error.
    pub fn save_adapter(
        &self,
        name: &str,
        config: &AdapterConfig,
        dir: &Path,
    ) -> Result<Vec<String>> {
        let mut config = config.clone();
        config.task_type = Some("SEQ_CLS".into());
        if config.base_model_name_or_path.is_none() {
            config.base_model_name_or_path = self.encoder.origin().map(|p| p.display().to_string());
        }
        let extra = if self.head_trainable {
            let mut modules = config.modules_to_save.clone().unwrap_or_default();
            if !modules.iter().any(|m| m == "classifier") {
                modules.push("classifier".into());
            }
            config.modules_to_save = Some(modules);
            self.head_tensors()
        } else {
            BTreeMap::new()
        };
        Ok(save_adapter(self, name, &config, dir, &extra)?)
    }

    /// Loads a PEFT adapter folder under `name`, and the head it saved in `modules_to_save`
    /// (if any).
    ///
    /// # Errors
    /// See [`bone_module::peft::load_adapter`]; a saved head of another shape.
    pub fn load_adapter(
        &mut self,
        dir: &Path,
        name: &str,
        device: &B::Device,
    ) -> Result<LoadedAdapter> {
        if let Some(n) = peek_head_labels(dir, self.family())? {
            if n != self.num_labels() {
                return Err(FileError::ShapeMismatch {
                    file: dir.join(ADAPTER_WEIGHTS_FILE),
                    layer: None,
                    key: match self.family() {
                        ModelFamily::Roberta => "classifier.out_proj.weight".into(),
                        _ => "classifier.weight".into(),
                    },
                    expected: vec![self.num_labels(), self.encoder.config().hidden_size],
                    found: vec![n, self.encoder.config().hidden_size],
                }
                .into());
            }
        }
        let loaded = load_adapter(self, dir, name, device)?;
        let head: BTreeMap<String, TensorData> = loaded
            .extra_tensors
            .iter()
            .filter(|(k, _)| k.starts_with("classifier."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !head.is_empty() {
            self.load_head_tensors(&head, &dir.join(ADAPTER_WEIGHTS_FILE))?;
        }
        Ok(loaded)
    }
}

/// The number of labels of the head saved in a PEFT adapter folder, if it saved one.
///
/// # Errors
/// An unreadable adapter file.
pub fn peek_head_labels(dir: &Path, family: ModelFamily) -> Result<Option<usize>> {
    let path = dir.join(ADAPTER_WEIGHTS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let tensors = bone_io::read_safetensors(&path)?;
    let stripped: BTreeMap<String, TensorData> = tensors
        .into_iter()
        .map(|(k, v)| {
            (
                k.strip_prefix(bone_module::peft::PEFT_KEY_PREFIX)
                    .unwrap_or(&k)
                    .to_string(),
                v,
            )
        })
        .collect();
    Ok(head_num_labels(&stripped, family))
}

impl<B: Backend> AdapterHost<B> for SequenceClassificationModel<B> {
    fn visit_linears(&self, f: &mut dyn FnMut(&AdaptedLinear<B>)) {
        self.encoder.visit_linears(f);
    }

    fn visit_linears_mut(&mut self, f: &mut dyn FnMut(&mut AdaptedLinear<B>)) {
        self.encoder.visit_linears_mut(f);
    }
}

impl<B: Backend> HfModules<B> for SequenceClassificationModel<B> {
    fn visit_hf_modules(
        &mut self,
        f: &mut dyn FnMut(&str, HfModule<'_, B>) -> Result<()>,
    ) -> Result<()> {
        self.encoder.visit_hf_modules(f)?;
        self.head.visit_hf_modules(f)
    }
}
