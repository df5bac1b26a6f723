//! Typed errors for adapter construction, management, merging and files (the file errors
//! themselves are [`FileError`], shared with the model crate).

use std::path::PathBuf;

use bone_io::FileError;

/// Everything that can go wrong when building, managing, merging, saving or loading adapters.
///
/// Every variant names the layer, adapter, tensor key or file involved and, where it applies,
/// the expected and the found value, so that a message alone is enough to fix the input.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The rank is zero (or otherwise unusable) for this layer.
    #[error("invalid rank r={r} for layer `{layer}`: r must be at least 1")]
    InvalidRank {
        /// Module path of the layer.
        layer: String,
        /// The rank that was asked for.
        r: usize,
    },

    /// Bat needs both dimensions of the layer to be multiples of r.
    #[error(
        "Bat needs in and out to be multiples of r, but layer `{layer}` has in={in_features}, \
         out={out_features}, r={r} (in % r = {}, out % r = {}); choose an r that divides both \
         or use Bone, which supports any r",
        in_features % r,
        out_features % r
    )]
    BatDivisibility {
        /// Module path of the layer.
        layer: String,
        /// Input features of the layer.
        in_features: usize,
        /// Output features of the layer.
        out_features: usize,
        /// The rank that was asked for.
        r: usize,
    },

    /// MiSS "mini" needs `mini_r ≥ 1` dividing the layer's output features.
    #[error(
        "MiSS mini needs mini_r to divide out, but layer `{layer}` has out={out_features}, \
         mini_r={mini_r}; choose a mini_r ≥ 1 that divides out"
    )]
    MiniDivisibility {
        /// Module path of the layer.
        layer: String,
        /// Output features of the layer.
        out_features: usize,
        /// The `mini_r` that was asked for.
        mini_r: usize,
    },

    /// An adapter that cannot be converted to LoRA as asked.
    #[error("cannot convert to LoRA on layer `{layer}`: {message}")]
    Conversion {
        /// Module path of the layer.
        layer: String,
        /// What is wrong.
        message: String,
    },

    /// A LoRA scaling factor that is not finite or is zero.
    #[error("invalid lora_alpha={alpha} for layer `{layer}`: expected a finite, non-zero number")]
    InvalidAlpha {
        /// Module path of the layer.
        layer: String,
        /// The alpha that was asked for.
        alpha: f64,
    },

    /// A dropout probability outside `[0, 1)`.
    #[error("invalid dropout {prob} for layer `{layer}`: expected a probability in [0, 1)")]
    InvalidDropout {
        /// Module path of the layer.
        layer: String,
        /// The probability that was asked for.
        prob: f64,
    },

    /// An adapter name that the layer does not hold.
    #[error("unknown adapter `{name}` on layer `{layer}`; adapters present: [{available}]")]
    UnknownAdapter {
        /// The name asked for.
        name: String,
        /// Module path of the layer.
        layer: String,
        /// Comma-separated names the layer holds.
        available: String,
    },

    /// An adapter name that is already taken on this layer.
    #[error(
        "adapter `{name}` already exists on layer `{layer}`; delete it first or pick another name"
    )]
    DuplicateAdapter {
        /// The name asked for.
        name: String,
        /// Module path of the layer.
        layer: String,
    },

    /// An operation that needs the adapter unmerged (delete, training) met a merged one.
    #[error("adapter `{name}` on layer `{layer}` is merged into the base weight; unmerge first")]
    AdapterMerged {
        /// The adapter name.
        name: String,
        /// Module path of the layer.
        layer: String,
    },

    /// A safe merge found NaN or infinity in the merged weight; nothing was changed.
    #[error(
        "refusing to merge adapter `{name}` into layer `{layer}`: the merged weight would hold \
         {count} non-finite value(s) (NaN or inf); the base weight is left untouched"
    )]
    NonFiniteMerge {
        /// The adapter name.
        name: String,
        /// Module path of the layer.
        layer: String,
        /// How many entries were NaN or infinite.
        count: usize,
    },

    /// Bat unmerge met a singular `I + B_a`.
    #[error(
        "cannot unmerge Bat adapter `{name}` from layer `{layer}`: I + B[{block}] is singular \
         (pivot {pivot:e}); the base weight is left merged"
    )]
    SingularBatBlock {
        /// The adapter name.
        name: String,
        /// Module path of the layer.
        layer: String,
        /// Index `a` of the output block.
        block: usize,
        /// The smallest pivot met.
        pivot: f64,
    },

    /// A tensor in the file that belongs to no adapted layer of the model.
    #[error(
        "{}: tensor `{key}` does not belong to any layer targeted in this model \
         (no layer `{layer}` matched target_modules)",
        file.display()
    )]
    UnexpectedTensor {
        /// The file the tensor is in.
        file: PathBuf,
        /// The key.
        key: String,
        /// The module path the key names.
        layer: String,
    },

    /// `target_modules` matched no layer of the model.
    #[error("target_modules {targets} matched none of the model's {candidates} linear layers (e.g. {example})")]
    NoTargetMatched {
        /// The targets as written.
        targets: String,
        /// How many candidate layers the model has.
        candidates: usize,
        /// One candidate path, to show the naming.
        example: String,
    },

    /// A file (or a field or tensor in it) that cannot be read, written or used: I/O,
    /// safetensors, `adapter_config.json` fields, missing tensors or tensors of the wrong
    /// shape for a layer.
    ///
    /// Boxed: a [`FileError`] is larger than every other variant, and errors are cold.
    #[error(transparent)]
    File(Box<FileError>),
}

impl From<FileError> for AdapterError {
    fn from(error: FileError) -> Self {
        Self::File(Box::new(error))
    }
}

/// Shorthand result type of this crate.
pub type Result<T, E = AdapterError> = std::result::Result<T, E>;
