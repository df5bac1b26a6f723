//! `LlamaForCausalLM`: the decoder stack, the language-model head, and the training loss.

use std::path::{Path, PathBuf};

use bone_module::peft::{load_adapter, save_adapter, LoadedAdapter};
use bone_module::{AdaptedLinear, AdapterConfig, AdapterHost, AdapterHostExt};
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{Bool, FloatDType, Int, Tensor};

use super::cache::KvCache;
use super::config::{DecoderKind, LlamaConfig};
use super::layer::LlamaDecoderLayer;
use super::rope::RotaryEmbedding;
use crate::checkpoint::{Checkpoint, LoadOptions};
use crate::config::{ModelConfig, ModelFamily};
use crate::error::{ModelError, Result};
use crate::train::frozen;
use crate::train::set_all_trainable;
use crate::weights::{HfModule, HfModules, TensorSource, WeightLoader};

/// The decoder stack without the language-model head (`LlamaModel`, module path `model`).
#[derive(Module, Debug)]
pub struct LlamaModel<B: Backend> {
    /// Token embeddings `[vocab, hidden]`.
    pub embed_tokens: Embedding<B>,
    /// The decoder layers.
    pub layers: Vec<LlamaDecoderLayer<B>>,
    /// The final RMSNorm.
    pub norm: RmsNorm<B>,
    rope: RotaryEmbedding,
    /// The attention window (`mistral`'s `sliding_window`).
    window: Option<usize>,
}

/// A LLaMA-architecture causal language model (`LlamaForCausalLM`, and through
/// [`DecoderKind`] `MistralForCausalLM`, `Qwen2ForCausalLM`, `Qwen3ForCausalLM`), loaded from
/// a Hugging Face checkpoint, with every attention and MLP projection an [`AdaptedLinear`] whose path is
/// the transformers module path (`model.layers.0.self_attn.q_proj`).
///
/// After loading every parameter is frozen; adapters added through [`AdapterHostExt`] are
/// trainable, and [`set_full_finetune`](Self::set_full_finetune) unfreezes everything.
#[derive(Module, Debug)]
pub struct LlamaForCausalLM<B: Backend> {
    /// The decoder stack.
    pub model: LlamaModel<B>,
    /// The output projection `[hidden, vocab]`; `None` when tied to the token embeddings.
    pub lm_head: Option<Linear<B>>,
    config: LlamaConfig,
    origin: Option<PathBuf>,
    full_finetune: bool,
}

/// What [`LlamaForCausalLM::forward_lm`] returns: the mean loss over labelled tokens and the
/// shifted logits and labels it was computed from.
#[derive(Debug, Clone)]
pub struct CausalLmOutput<B: Backend> {
    /// Mean cross-entropy over the tokens whose label is not `-100`, `[1]`.
    pub loss: Tensor<B, 1>,
    /// Logits predicting token `t + 1` from tokens `..= t`, `[b, s - 1, vocab]`.
    pub logits: Tensor<B, 3>,
    /// The labels they are scored against (`labels[:, 1:]`, `-100` = ignored), `[b, s - 1]`.
    pub labels: Tensor<B, 2, Int>,
}

/// The label value that excludes a token from the loss (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

impl<B: Backend> LlamaForCausalLM<B> {
    /// Loads a checkpoint folder whose `config.json` has `model_type: "llama"`.
    ///
    /// # Errors
    /// A missing folder or file, another `model_type`, an invalid config, or a missing or
    /// misshaped tensor (naming it with both shapes).
    pub fn from_pretrained(
        dir: impl AsRef<Path>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let checkpoint = Checkpoint::open(dir)?;
        match checkpoint.model_config().clone() {
            ModelConfig::Llama(config) => Self::load(&checkpoint, config, options, device),
            other => Err(ModelError::WrongModelKind {
                operation: "LlamaForCausalLM::from_pretrained".into(),
                needs: "a llama checkpoint".into(),
                found: format!("a {} model", other.family()),
                folder: dir.display().to_string(),
            }),
        }
    }

    /// Builds the model from an opened checkpoint and its parsed configuration.
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn load(
        checkpoint: &Checkpoint,
        config: LlamaConfig,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let mut model = Self::from_tensors(checkpoint, config, options, device)?;
        model.origin = Some(checkpoint.dir().to_path_buf());
        Ok(model)
    }

    /// Builds the model from tensors under Hugging Face names (a checkpoint, a
    /// [`TensorMap`](crate::weights::TensorMap) dequantised from a GGUF file, …) and a
    /// configuration. Every tensor the configuration implies must be there, in its shape;
    /// others are ignored (a tied checkpoint's `lm_head.weight`, as transformers does). The
    /// model has no [`origin`](Self::origin).
    ///
    /// # Errors
    /// A missing or misshaped tensor, naming the source and the tensor.
    pub fn from_tensors(
        source: &dyn TensorSource,
        config: LlamaConfig,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let mut model = Self::init(config, device);
        WeightLoader::<B>::new(source, options.dtype, device).fill_all(&mut model)?;
        Ok(model)
    }

    /// A model with random weights (Burn's default initialisers, created lazily), frozen as a
    /// loaded one is; for tests and training from scratch. See also [`LlamaConfig::init`].
    pub fn init(config: LlamaConfig, device: &B::Device) -> Self {
        let (h, v) = (config.hidden_size, config.vocab_size);
        let norm = frozen(
            RmsNormConfig::new(h)
                .with_epsilon(config.rms_norm_eps)
                .init(device),
        );
        let layers = (0..config.num_hidden_layers)
            .map(|i| LlamaDecoderLayer::init(&config, &format!("model.layers.{i}"), device))
            .collect();
        let lm_head = (!config.tie_word_embeddings)
            .then(|| frozen(LinearConfig::new(h, v).with_bias(false).init(device)));
        Self {
            model: LlamaModel {
                embed_tokens: frozen(EmbeddingConfig::new(v, h).init(device)),
                layers,
                norm,
                rope: RotaryEmbedding::new(&config),
                window: config.attention_window(),
            },
            lm_head,
            config,
            origin: None,
            full_finetune: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The folder the model was loaded from.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    /// The decoder kind (`llama`, `mistral`, `qwen2`, `qwen3`).
    pub fn kind(&self) -> DecoderKind {
        self.config.model_type
    }

    /// The family (`llama` for every LLaMA-architecture decoder; see [`kind`](Self::kind)).
    pub fn family(&self) -> ModelFamily {
        ModelFamily::Llama
    }

    /// A fresh KV cache for this model, bounded by its sliding window (Mistral) if it has one.
    pub fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.model.layers.len()).with_window(self.model.window)
    }

    /// Logits for every position.
    ///
    /// `attention_mask` (1 = real token, 0 = padding) covers either the new tokens (`[b, s]`)
    /// or, with a non-empty cache, the cached and the new ones (`[b, past + s]`). Positions
    /// follow the mask (left padding shifts them), else they continue from the cache. With a
    /// `cache`, the new keys and values are appended to it.
    ///
    /// # Shapes
    /// - input_ids: `[b, s]`
    /// - output: `[b, s, vocab]`
    ///
    /// # Panics
    /// When the shapes disagree with each other or with the cache (as Burn does for any
    /// tensor shape error).
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let hidden = self.forward_hidden(input_ids, attention_mask, None, cache);
        self.lm_logits(hidden)
    }

    /// Logits of the last position only, `[b, vocab]` (what generation needs; it skips the
    /// vocabulary projection of every other position).
    pub fn forward_last(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 2> {
        let hidden = self.forward_hidden(input_ids, attention_mask, None, cache);
        let [b, s, _] = hidden.dims();
        let logits = self.lm_logits(hidden.narrow(1, s - 1, 1));
        let vocab = logits.dims()[2];
        logits.reshape([b, vocab])
    }

    /// The final hidden states (after the last RMSNorm), `[b, s, hidden]`.
    ///
    /// `position_ids` `[b, s]` override the positions derived from the mask and the cache.
    pub fn forward_hidden(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        position_ids: Option<Tensor<B, 2, Int>>,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let device = input_ids.device();
        let [b, s] = input_ids.dims();
        let past = cache.as_ref().map_or(0, |c| c.len());
        let t = past + s;
        // Tokens a windowed cache dropped (absolute positions 0..offset), and how many of them
        // were real per row (positions continue after them).
        let offset = cache.as_ref().map_or(0, |c| c.dropped());
        let mut dropped_real = cache.as_ref().and_then(|c| c.dropped_real().cloned());
        let stored = past - offset;

        // The mask of the new tokens, and of the stored and new ones (keys offset..t).
        let (new_mask, full_mask) = match attention_mask {
            Some(mask) if mask.dims()[1] == t && past > 0 => {
                if offset > 0 {
                    dropped_real = Some(mask.clone().narrow(1, 0, offset).sum_dim(1));
                }
                (
                    Some(mask.clone().narrow(1, past, s)),
                    Some(mask.narrow(1, offset, t - offset)),
                )
            }
            Some(mask) => {
                let full = match cache.as_ref().and_then(|c| c.mask().cloned()) {
                    Some(p) => Tensor::cat(vec![p, mask.clone()], 1),
                    None if stored > 0 => {
                        Tensor::cat(vec![Tensor::ones([b, stored], &device), mask.clone()], 1)
                    }
                    None => mask.clone(),
                };
                (Some(mask), Some(full))
            }
            None => {
                let full = cache
                    .as_ref()
                    .and_then(|c| c.mask().cloned())
                    .map(|p| Tensor::cat(vec![p, Tensor::ones([b, s], &device)], 1));
                (None, full)
            }
        };

        let positions = match (position_ids, &full_mask) {
            (Some(p), _) => p,
            (None, Some(mask)) => {
                let counted = mask.clone().cumsum(1);
                let counted = match &dropped_real {
                    Some(d) => counted + d.clone().expand([b, t - offset]),
                    None => counted,
                };
                counted.sub_scalar(1).clamp_min(0).narrow(1, stored, s)
            }
            (None, None) => Tensor::<B, 1, Int>::arange(past as i64..t as i64, &device)
                .reshape([1, s])
                .expand([b, s]),
        };

        let masked = attention_mask_4d::<B>(
            b,
            s,
            past,
            offset,
            full_mask.as_ref(),
            self.model.window,
            &device,
        );

        let mut x = self.model.embed_tokens.forward(input_ids);
        let (cos, sin) = self.model.rope.cos_sin(positions, x.dtype());
        for (i, layer) in self.model.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| (c, i));
            x = layer.forward(x, &cos, &sin, masked.clone(), layer_cache);
        }
        if let Some(cache) = cache {
            cache.advance(b, s, new_mask);
        }
        self.model.norm.forward(x)
    }

    /// Logits of packed rows: several examples concatenated in one row, each with its own
    /// positions (restarting at 0) and segment id, attending only within itself: token `i`
    /// sees token `j` iff `j ≤ i` and `seg[i] == seg[j]` (padding, segment 0, sees only
    /// padding, so no real token sees it). Each example gets the logits it has alone.
    ///
    /// # Shapes
    /// - input_ids, position_ids, segment_ids: `[b, s]`
    /// - output: `[b, s, vocab]`
    pub fn forward_packed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        position_ids: Tensor<B, 2, Int>,
        segment_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let masked = packed_mask_4d(segment_ids, self.model.window);
        let mut x = self.model.embed_tokens.forward(input_ids);
        let (cos, sin) = self.model.rope.cos_sin(position_ids, x.dtype());
        for layer in &self.model.layers {
            x = layer.forward(x, &cos, &sin, Some(masked.clone()), None);
        }
        self.lm_logits(self.model.norm.forward(x))
    }

    /// Projects hidden states to the vocabulary: `lm_head`, or the transposed token
    /// embeddings when they are tied.
    ///
    /// # Shapes
    /// - hidden: `[b, s, hidden]`
    /// - output: `[b, s, vocab]`
    pub fn lm_logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => linear(
                hidden,
                self.model.embed_tokens.weight.val().transpose(),
                None,
            ),
        }
    }

    /// The training objective of a causal LM: logits for `input_ids` and the mean
    /// cross-entropy of predicting `labels[:, t + 1]` from tokens `..= t`, over the labels
    /// that are not [`IGNORE_INDEX`] (`-100`), as transformers computes it.
    ///
    /// # Shapes
    /// - input_ids, attention_mask, labels: `[b, s]` with `s ≥ 2`
    pub fn forward_lm(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        labels: Tensor<B, 2, Int>,
    ) -> CausalLmOutput<B> {
        let logits = self.forward(input_ids, attention_mask, None);
        causal_lm_loss(logits, labels)
    }

    /// Unfreezes every parameter (embeddings, norms, projections, head) for full
    /// fine-tuning, or freezes them all again; adapters keep their own state.
    pub fn set_full_finetune(mut self, full: bool) -> Self {
        let model = &mut self.model;
        model.embed_tokens = set_all_trainable(model.embed_tokens.clone(), full);
        model.norm = set_all_trainable(model.norm.clone(), full);
        for layer in &mut model.layers {
            layer.input_layernorm = set_all_trainable(layer.input_layernorm.clone(), full);
            layer.post_attention_layernorm =
                set_all_trainable(layer.post_attention_layernorm.clone(), full);
            let attn = &mut layer.self_attn;
            attn.q_norm = attn.q_norm.take().map(|n| set_all_trainable(n, full));
            attn.k_norm = attn.k_norm.take().map(|n| set_all_trainable(n, full));
        }
        self.lm_head = self.lm_head.map(|h| set_all_trainable(h, full));
        self.visit_linears_mut(&mut |l| l.set_base_trainable(full));
        self.full_finetune = full;
        self
    }

    /// Whether every parameter is trained.
    pub fn is_full_finetune(&self) -> bool {
        self.full_finetune
    }

    /// Loads a PEFT adapter folder under `name` (see [`bone_module::peft::load_adapter`]).
    ///
    /// # Errors
    /// A missing or malformed file, a missing or misshaped tensor, a duplicate name.
    pub fn load_adapter(
        &mut self,
        dir: &Path,
        name: &str,
        device: &B::Device,
    ) -> Result<LoadedAdapter> {
        Ok(load_adapter(self, dir, name, device)?)
    }

    /// Saves adapter `name` as a PEFT folder loadable on `AutoModelForCausalLM`
    /// (`task_type = "CAUSAL_LM"`; `base_model_name_or_path` is the source folder unless
    /// `config` names one).
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
        config.task_type = Some("CAUSAL_LM".into());
        if config.base_model_name_or_path.is_none() {
            config.base_model_name_or_path = self.origin.as_ref().map(|p| p.display().to_string());
        }
        Ok(save_adapter(self, name, &config, dir, &Default::default())?)
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

/// The shifted causal-LM loss of `logits` `[b, s, vocab]` against `labels` `[b, s]`
/// (`-100` = ignored), averaged over labelled tokens (zero when there are none).
pub fn causal_lm_loss<B: Backend>(
    logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
) -> CausalLmOutput<B> {
    let [b, s, v] = logits.dims();
    let n = s.saturating_sub(1);
    let logits = logits.narrow(1, 0, n);
    let labels = labels.narrow(1, 1, n);
    let logp = log_softmax(logits.clone().cast(FloatDType::F32), 2);
    let valid = labels.clone().greater_equal_elem(0);
    let index = labels.clone().clamp(0, v as i64 - 1).reshape([b, n, 1]);
    let picked = logp.gather(2, index).reshape([b, n]);
    let weight = valid.float().cast(FloatDType::F32);
    let count = weight.clone().sum().clamp_min(1.0);
    let loss = (picked * weight).sum().neg() / count;
    CausalLmOutput {
        loss,
        logits,
        labels,
    }
}

/// `[b, 1, s, past + s - offset]`, true where query `i` (absolute position `past + i`) may
/// not attend key `j` (absolute position `offset + j`; a windowed cache dropped the first
/// `offset`): `j > past + i` (causal), `j ≤ past + i - window` (outside the sliding window),
/// or key `j` is padding. `None` when nothing is masked (one new token, no key outside the
/// window and no padding mask).
fn attention_mask_4d<B: Backend>(
    b: usize,
    s: usize,
    past: usize,
    offset: usize,
    full_mask: Option<&Tensor<B, 2, Int>>,
    window: Option<usize>,
    device: &B::Device,
) -> Option<Tensor<B, 4, Bool>> {
    let t = past + s;
    let keys_len = t - offset;
    let window = window.filter(|&w| w < keys_len);
    let causal = (s > 1 || window.is_some()).then(|| {
        let keys = Tensor::<B, 1, Int>::arange(offset as i64..t as i64, device)
            .reshape([1, keys_len])
            .expand([s, keys_len]);
        let queries = Tensor::<B, 1, Int>::arange(past as i64..t as i64, device)
            .reshape([s, 1])
            .expand([s, keys_len]);
        let mut masked = keys.clone().greater(queries.clone());
        if let Some(w) = window {
            // Query position q sees keys q - w < j ≤ q (transformers' sliding-window mask).
            masked = masked.bool_or(keys.lower_equal(queries.sub_scalar(w as i64)));
        }
        masked
            .reshape([1, 1, s, keys_len])
            .expand([b, 1, s, keys_len])
    });
    let padding = full_mask.map(|m| crate::nn::padding_mask(m.clone(), s));
    match (causal, padding) {
        (Some(c), Some(p)) => Some(c.bool_or(p)),
        (c, p) => c.or(p),
    }
}

/// `[b, 1, s, s]`, true where query `i` may not attend key `j` of a packed row: `j > i`, a
/// different segment, or (with a sliding window `w`) `j ≤ i - w`.
fn packed_mask_4d<B: Backend>(
    segment_ids: Tensor<B, 2, Int>,
    window: Option<usize>,
) -> Tensor<B, 4, Bool> {
    let device = segment_ids.device();
    let [b, s] = segment_ids.dims();
    let keys = Tensor::<B, 1, Int>::arange(0..s as i64, &device)
        .reshape([1, s])
        .expand([s, s]);
    let queries = Tensor::<B, 1, Int>::arange(0..s as i64, &device)
        .reshape([s, 1])
        .expand([s, s]);
    let mut causal = keys.clone().greater(queries.clone());
    if let Some(w) = window.filter(|&w| w < s) {
        causal = causal.bool_or(keys.lower_equal(queries.sub_scalar(w as i64)));
    }
    let other_segment = segment_ids
        .clone()
        .reshape([b, 1, s, 1])
        .expand([b, 1, s, s])
        .not_equal(segment_ids.reshape([b, 1, 1, s]).expand([b, 1, s, s]));
    causal
        .reshape([1, 1, s, s])
        .expand([b, 1, s, s])
        .bool_or(other_segment)
}

impl<B: Backend> HfModules<B> for LlamaForCausalLM<B> {
    fn visit_hf_modules(
        &mut self,
        f: &mut dyn FnMut(&str, HfModule<'_, B>) -> Result<()>,
    ) -> Result<()> {
        f(
            "model.embed_tokens",
            HfModule::Embedding(&mut self.model.embed_tokens),
        )?;
        for layer in &mut self.model.layers {
            layer.visit_hf_modules(f)?;
        }
        f("model.norm", HfModule::RmsNorm(&mut self.model.norm))?;
        if let Some(head) = &mut self.lm_head {
            f("lm_head", HfModule::Linear(head))?;
        }
        Ok(())
    }
}

impl<B: Backend> AdapterHost<B> for LlamaForCausalLM<B> {
    fn visit_linears(&self, f: &mut dyn FnMut(&AdaptedLinear<B>)) {
        for layer in &self.model.layers {
            let a = &layer.self_attn;
            let m = &layer.mlp;
            for l in [
                &a.q_proj,
                &a.k_proj,
                &a.v_proj,
                &a.o_proj,
                &m.gate_proj,
                &m.up_proj,
                &m.down_proj,
            ] {
                f(l);
            }
        }
    }

    fn visit_linears_mut(&mut self, f: &mut dyn FnMut(&mut AdaptedLinear<B>)) {
        for layer in &mut self.model.layers {
            let a = &mut layer.self_attn;
            f(&mut a.q_proj);
            f(&mut a.k_proj);
            f(&mut a.v_proj);
            f(&mut a.o_proj);
            let m = &mut layer.mlp;
            f(&mut m.gate_proj);
            f(&mut m.up_proj);
            f(&mut m.down_proj);
        }
    }
}
