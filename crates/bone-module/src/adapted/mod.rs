//! A frozen Burn `Linear` with named adapters on top.

mod forward;
mod manage;
mod merge;

pub use merge::MergeReport;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::backend::Backend;

use crate::adapter::Adapter;

/// A linear layer whose base weights are frozen and which holds any number of named adapters
/// (Bone, Bat, LoRA), of which a chosen set is active.
///
/// - Active Bone and LoRA adapters add their outputs; active Bat adapters transform the weight
///   one after another (each sees the weight the previous one produced), before the additive
///   ones are applied. Merging follows the same order, so merged and unmerged forwards agree.
/// - The base weight never requires a gradient (unless [`set_base_trainable`] says so), so an
///   optimiser neither updates it nor keeps state for it.
///
/// [`set_base_trainable`]: AdaptedLinear::set_base_trainable
#[derive(Module, Debug)]
pub struct AdaptedLinear<B: Backend> {
    /// The base layer: `weight [d_input, d_output]` (Burn's layout), optional `bias [d_output]`.
    pub base: Linear<B>,
    /// The adapters, in the order they were added; names are in `state`.
    adapters: Vec<Adapter<B>>,
    #[module(skip)]
    state: LayerState,
}

/// Names and switches of an [`AdaptedLinear`]; not part of the module's record.
#[derive(Debug, Clone, Default)]
struct LayerState {
    /// Module path used in messages and adapter files (`model.layers.0.self_attn.q_proj`).
    path: String,
    /// Adapter names, parallel to `adapters`.
    names: Vec<String>,
    /// Active adapter names, in order of application.
    active: Vec<String>,
    /// Merged adapter names, in merge order.
    merged: Vec<String>,
    /// `true` while adapters are disabled by [`AdaptedLinear::disable_adapters`] (the layer
    /// then computes the base output); `false` by default and after
    /// [`AdaptedLinear::enable_adapters`].
    disabled: bool,
    /// Whether the base weights are trained too (full fine-tuning).
    base_trainable: bool,
}

impl<B: Backend> AdaptedLinear<B> {
    /// Wraps `base` and freezes its parameters. `path` is the layer's module path, as PEFT
    /// names it (e.g. `model.layers.0.self_attn.q_proj`): it appears in errors and in the keys
    /// of saved adapters.
    pub fn new(base: Linear<B>, path: impl Into<String>) -> Self {
        Self {
            base: base.no_grad(),
            adapters: Vec::new(),
            state: LayerState {
                path: path.into(),
                ..LayerState::default()
            },
        }
    }

    /// The layer's module path.
    pub fn path(&self) -> &str {
        &self.state.path
    }

    /// Renames the layer's module path (used when a model is built before its paths are known).
    pub fn set_path(&mut self, path: impl Into<String>) {
        self.state.path = path.into();
    }

    /// Input features.
    pub fn d_input(&self) -> usize {
        self.base.weight.shape().dims::<2>()[0]
    }

    /// Output features.
    pub fn d_output(&self) -> usize {
        self.base.weight.shape().dims::<2>()[1]
    }

    /// Names of all adapters on this layer, in the order they were added.
    pub fn adapter_names(&self) -> &[String] {
        &self.state.names
    }

    /// Names of the active adapters, in order of application.
    pub fn active_adapters(&self) -> &[String] {
        &self.state.active
    }

    /// Names of the adapters merged into the base weight, in merge order.
    pub fn merged_adapters(&self) -> &[String] {
        &self.state.merged
    }

    /// Whether any adapter is merged into the base weight.
    pub fn is_merged(&self) -> bool {
        !self.state.merged.is_empty()
    }

    /// Whether adapters are enabled (see [`disable_adapters`](Self::disable_adapters)).
    pub fn adapters_enabled(&self) -> bool {
        !self.state.disabled
    }

    /// The adapter called `name`, if the layer holds one.
    pub fn adapter(&self, name: &str) -> Option<&Adapter<B>> {
        self.index_of(name).map(|i| &self.adapters[i])
    }

    /// All adapters with their names.
    pub fn adapters(&self) -> impl Iterator<Item = (&str, &Adapter<B>)> {
        self.state
            .names
            .iter()
            .map(String::as_str)
            .zip(self.adapters.iter())
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.state.names.iter().position(|n| n == name)
    }
}
