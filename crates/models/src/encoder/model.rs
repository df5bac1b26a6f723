//! `EncoderModel`: a BERT or RoBERTa encoder (`BertModel`, `RobertaModel`).

use std::path::{Path, PathBuf};

use bone_module::{AdaptedLinear, AdapterHost, AdapterHostExt};
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

use super::config::EncoderConfig;
use super::embeddings::EncoderEmbeddings;
use super::layer::EncoderLayer;
use super::packing::TokenPacking;
use super::pooling::{mean_pool, Pooler};
use crate::checkpoint::{Checkpoint, LoadOptions};
use crate::config::{ModelConfig, ModelFamily};
use crate::error::{ModelError, Result};
use crate::train::set_all_trainable;
use crate::weights::{HfModule, HfModules, WeightLoader};

/// A BERT or RoBERTa encoder loaded from a Hugging Face checkpoint.
///
/// Every linear projection is an [`AdaptedLinear`] whose path is the transformers module
/// path: `encoder.layer.0.attention.self.query` for a bare model, or with the base-model
/// prefix (`bert.encoder.layer.0…`, `roberta.encoder.layer.0…`) inside a task model, so
/// that saved adapters load in PEFT on the same transformers class. Checkpoints are read
/// with or without the `bert.`/`roberta.` prefix.
#[derive(Module, Debug)]
pub struct EncoderModel<B: Backend> {
    /// Word, position and token-type embeddings.
    pub embeddings: EncoderEmbeddings<B>,
    /// The encoder layers (`encoder.layer.N`).
    pub layers: Vec<EncoderLayer<B>>,
    /// The pooler, when the checkpoint has one (or a task model needs one).
    pub pooler: Option<Pooler<B>>,
    config: EncoderConfig,
    path_prefix: String,
    checkpoint_prefix: String,
    origin: Option<PathBuf>,
    full_finetune: bool,
}

impl<B: Backend> EncoderModel<B> {
    /// Loads a bare encoder (module paths without prefix) from a folder whose `config.json`
    /// has `model_type` `bert` or `roberta`.
    ///
    /// # Errors
    /// A missing folder or file, another `model_type`, an invalid config, or a missing or
    /// misshaped tensor.
    pub fn from_pretrained(
        dir: impl AsRef<Path>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let checkpoint = Checkpoint::open(dir)?;
        let config = encoder_config(&checkpoint, "EncoderModel::from_pretrained")?;
        Self::load(&checkpoint, config, None, options, device)
    }

    /// Builds the encoder from an opened checkpoint. `base_prefix` is the module-path prefix
    /// (`Some("bert")` inside `BertForSequenceClassification`, `None` for a bare model).
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn load(
        checkpoint: &Checkpoint,
        config: EncoderConfig,
        base_prefix: Option<&str>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let stored = format!("{}.", config.family.base_model_prefix());
        let checkpoint_prefix =
            if checkpoint.contains(&format!("{stored}embeddings.word_embeddings.weight")) {
                stored
            } else {
                String::new()
            };
        let pooler = checkpoint.contains(&format!("{checkpoint_prefix}pooler.dense.weight"));
        let mut model = Self::init(config, base_prefix, pooler, device);
        let loader = WeightLoader::<B>::new(checkpoint, options.dtype, device)
            .with_prefix(checkpoint_prefix.clone());
        // The table lists module paths (`bert.encoder…` in a task model); the checkpoint may
        // store them with or without the base model's prefix.
        let path_prefix = model.path_prefix.clone();
        model.visit_hf_modules(&mut |name, module| {
            loader.fill(name.strip_prefix(&path_prefix).unwrap_or(name), module)
        })?;
        model.checkpoint_prefix = checkpoint_prefix;
        model.origin = Some(checkpoint.dir().to_path_buf());
        Ok(model)
    }

    /// An encoder with random, frozen weights (created lazily); `base_prefix` as in
    /// [`load`](Self::load), `pooler` whether it has one.
    pub fn init(
        config: EncoderConfig,
        base_prefix: Option<&str>,
        pooler: bool,
        device: &B::Device,
    ) -> Self {
        let path_prefix = base_prefix.map(|p| format!("{p}.")).unwrap_or_default();
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                EncoderLayer::init(&config, &format!("encoder.layer.{i}"), &path_prefix, device)
            })
            .collect();
        Self {
            embeddings: EncoderEmbeddings::init(&config, device),
            layers,
            pooler: pooler.then(|| Pooler::init(&path_prefix, config.hidden_size, device)),
            config,
            path_prefix,
            checkpoint_prefix: String::new(),
            origin: None,
            full_finetune: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The family (`bert` or `roberta`).
    pub fn family(&self) -> ModelFamily {
        self.config.family
    }

    /// The folder the model was loaded from.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    /// The longest input the position table allows: `max_position_embeddings` for BERT;
    /// for RoBERTa, whose positions start at `pad_token_id + 1`, that many fewer.
    pub fn max_input_len(&self) -> usize {
        match self.config.family {
            ModelFamily::Roberta => self
                .config
                .max_position_embeddings
                .saturating_sub(self.config.pad_id() as usize + 1),
            _ => self.config.max_position_embeddings,
        }
    }

    /// Checks token rows before [`forward`](Self::forward), which would panic on ids outside
    /// the vocabulary or inputs longer than the position table.
    ///
    /// # Errors
    /// An id ≥ `vocab_size`, or a row longer than [`max_input_len`](Self::max_input_len).
    pub fn check_input(&self, rows: &[Vec<u32>]) -> Result<()> {
        let vocab = self.config.vocab_size;
        let max = self.max_input_len();
        for (i, row) in rows.iter().enumerate() {
            if row.len() > max {
                return Err(ModelError::invalid(
                    "input",
                    format!(
                        "row {i} has {} tokens; this model takes at most {max}",
                        row.len()
                    ),
                ));
            }
            if let Some(bad) = row.iter().find(|&&t| t as usize >= vocab) {
                return Err(ModelError::invalid(
                    "input",
                    format!("row {i} holds token id {bad}, outside the vocabulary of {vocab}"),
                ));
            }
        }
        Ok(())
    }

    /// The module-path prefix of every layer (`""`, `"bert."` or `"roberta."`).
    pub fn path_prefix(&self) -> &str {
        &self.path_prefix
    }

    /// The prefix the checkpoint stores the encoder's tensors under (`""` or `"bert."`).
    pub fn checkpoint_prefix(&self) -> &str {
        &self.checkpoint_prefix
    }

    /// Renames every module path under a new base-model prefix (`Some("bert")`, or `None`
    /// for bare paths). Adapters keep their tensors.
    pub fn set_base_prefix(&mut self, base_prefix: Option<&str>) {
        let new = base_prefix.map(|p| format!("{p}.")).unwrap_or_default();
        let old = std::mem::replace(&mut self.path_prefix, new.clone());
        self.visit_linears_mut(&mut |l| {
            let bare = l.path().strip_prefix(&old).unwrap_or(l.path()).to_string();
            l.set_path(format!("{new}{bare}"));
        });
    }

    /// Adds a freshly initialised pooler when the checkpoint had none (BERT classifiers need
    /// one; transformers initialises it the same way).
    pub fn ensure_pooler(&mut self, device: &B::Device) {
        if self.pooler.is_none() {
            self.pooler = Some(Pooler::fresh(
                &self.path_prefix,
                self.config.hidden_size,
                self.config.initializer_range,
                device,
            ));
        }
    }

    /// The last hidden state.
    ///
    /// # Shapes
    /// - input_ids: `[b, s]`
    /// - attention_mask: `[b, s]`, 1 = real token (`None`: all real)
    /// - token_type_ids: `[b, s]` (`None`: all 0)
    /// - output: `[b, s, hidden]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 3> {
        let s = input_ids.dims()[1];
        let masked: Option<Tensor<B, 4, Bool>> =
            attention_mask.map(|m| crate::nn::padding_mask(m, s));
        let mut x = self.embeddings.forward(input_ids, token_type_ids);
        for layer in &self.layers {
            x = layer.forward(x, masked.clone());
        }
        x
    }

    /// The last hidden state of the real tokens, computed without the padding: linear
    /// layers, adapters, norms, activations and dropout run on the packed real tokens and
    /// only attention sees the padded layout (see [`TokenPacking`]). Every real position
    /// equals [`forward`](Self::forward)'s (up to rounding); padding positions are zero where
    /// `forward` leaves what transformers leaves there. A batch padded to three times its real
    /// length costs about a third as much. A batch without padding takes `forward`'s path.
    ///
    /// # Shapes
    /// - input_ids, attention_mask (1 = real token): `[b, s]`
    /// - token_type_ids: `[b, s]` (`None`: all 0)
    /// - output: `[b, s, hidden]`
    pub fn forward_unpadded(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 3> {
        let packing = TokenPacking::from_mask(&attention_mask);
        if packing.is_dense() {
            return self.forward(input_ids, Some(attention_mask), token_type_ids);
        }
        let s = input_ids.dims()[1];
        let masked = crate::nn::padding_mask(attention_mask, s);
        let mut x = self
            .embeddings
            .forward_packed(input_ids, token_type_ids, &packing);
        for layer in &self.layers {
            x = layer.forward_packed(x, &packing, Some(masked.clone()));
        }
        packing.unpack(x)
    }

    /// The pooler output `tanh(dense(h[:, 0]))`, `[b, hidden]`; `None` without a pooler.
    pub fn pool(&self, hidden: Tensor<B, 3>) -> Option<Tensor<B, 2>> {
        self.pooler.as_ref().map(|p| p.forward(hidden))
    }

    /// Mean pooling over the real tokens, `[b, hidden]` (see [`mean_pool`]).
    pub fn mean_pool(
        &self,
        hidden: Tensor<B, 3>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        mean_pool(hidden, attention_mask)
    }

    /// Unfreezes every parameter for full fine-tuning, or freezes them all again; adapters
    /// keep their own state.
    pub fn set_full_finetune(mut self, full: bool) -> Self {
        self.embeddings = set_all_trainable(self.embeddings, full);
        for layer in &mut self.layers {
            layer.attention.output.layer_norm =
                set_all_trainable(layer.attention.output.layer_norm.clone(), full);
            layer.output.layer_norm = set_all_trainable(layer.output.layer_norm.clone(), full);
        }
        self.visit_linears_mut(&mut |l| l.set_base_trainable(full));
        self.full_finetune = full;
        self
    }

    /// Whether every parameter is trained.
    pub fn is_full_finetune(&self) -> bool {
        self.full_finetune
    }

    /// Parameters an optimiser trains: everything under full fine-tuning, else the active
    /// adapters.
    pub fn trainable_params(&self) -> usize {
        if self.full_finetune {
            self.num_params()
        } else {
            self.adapter_trainable_params()
        }
    }
}

/// The encoder configuration of `checkpoint`, or an error naming `operation`.
pub(crate) fn encoder_config(checkpoint: &Checkpoint, operation: &str) -> Result<EncoderConfig> {
    match checkpoint.model_config().clone() {
        ModelConfig::Encoder(config) => Ok(config),
        other => Err(ModelError::WrongModelKind {
            operation: operation.into(),
            needs: "a bert or roberta checkpoint".into(),
            found: format!("a {} model", other.family()),
            folder: checkpoint.dir().display().to_string(),
        }),
    }
}

impl<B: Backend> HfModules<B> for EncoderModel<B> {
    /// Module paths: the Hugging Face names under the task model's prefix (`bert.`,
    /// `roberta.`) when there is one.
    fn visit_hf_modules(
        &mut self,
        f: &mut dyn FnMut(&str, HfModule<'_, B>) -> Result<()>,
    ) -> Result<()> {
        let p = self.path_prefix.clone();
        let e = &mut self.embeddings;
        for (name, embedding) in [
            ("word_embeddings", &mut e.word_embeddings),
            ("position_embeddings", &mut e.position_embeddings),
            ("token_type_embeddings", &mut e.token_type_embeddings),
        ] {
            f(
                &format!("{p}embeddings.{name}"),
                HfModule::Embedding(embedding),
            )?;
        }
        f(
            &format!("{p}embeddings.LayerNorm"),
            HfModule::LayerNorm(&mut e.layer_norm),
        )?;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let a = &mut layer.attention;
            let linears = [
                &mut a.self_attn.query,
                &mut a.self_attn.key,
                &mut a.self_attn.value,
                &mut a.output.dense,
            ];
            for l in linears {
                adapted(f, l)?;
            }
            f(
                &format!("{p}encoder.layer.{i}.attention.output.LayerNorm"),
                HfModule::LayerNorm(&mut a.output.layer_norm),
            )?;
            adapted(f, &mut layer.intermediate.dense)?;
            adapted(f, &mut layer.output.dense)?;
            f(
                &format!("{p}encoder.layer.{i}.output.LayerNorm"),
                HfModule::LayerNorm(&mut layer.output.layer_norm),
            )?;
        }
        if let Some(pooler) = &mut self.pooler {
            adapted(f, &mut pooler.dense)?;
        }
        Ok(())
    }
}

/// Lists the base linear of `l` under its module path.
pub(crate) fn adapted<B: Backend>(
    f: &mut dyn FnMut(&str, HfModule<'_, B>) -> Result<()>,
    l: &mut AdaptedLinear<B>,
) -> Result<()> {
    let path = l.path().to_string();
    f(&path, HfModule::Linear(&mut l.base))
}

impl<B: Backend> AdapterHost<B> for EncoderModel<B> {
    fn visit_linears(&self, f: &mut dyn FnMut(&AdaptedLinear<B>)) {
        for layer in &self.layers {
            let a = &layer.attention;
            for l in [
                &a.self_attn.query,
                &a.self_attn.key,
                &a.self_attn.value,
                &a.output.dense,
                &layer.intermediate.dense,
                &layer.output.dense,
            ] {
                f(l);
            }
        }
        if let Some(p) = &self.pooler {
            f(&p.dense);
        }
    }

    fn visit_linears_mut(&mut self, f: &mut dyn FnMut(&mut AdaptedLinear<B>)) {
        for layer in &mut self.layers {
            let a = &mut layer.attention;
            f(&mut a.self_attn.query);
            f(&mut a.self_attn.key);
            f(&mut a.self_attn.value);
            f(&mut a.output.dense);
            f(&mut layer.intermediate.dense);
            f(&mut layer.output.dense);
        }
        if let Some(p) = &mut self.pooler {
            f(&mut p.dense);
        }
    }
}
