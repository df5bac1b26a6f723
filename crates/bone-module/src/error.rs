//! Typed errors for adapter construction, management, merging and files.

use std::path::PathBuf;

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

    /// A tensor whose shape does not match the layer it belongs to.
    #[error(
        "{file}: tensor `{key}` has shape {found:?}, but layer `{layer}` expects {expected:?}"
    )]
    ShapeMismatch {
        /// The file (or source) the tensor came from.
        file: String,
        /// The tensor key.
        key: String,
        /// Module path of the layer.
        layer: String,
        /// The shape the layer needs.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },

    /// A tensor the adapter needs is not in the file.
    #[error("{file}: missing tensor `{key}` for layer `{layer}`")]
    MissingTensor {
        /// The file the tensor should be in.
        file: String,
        /// The missing key.
        key: String,
        /// Module path of the layer.
        layer: String,
    },

    /// A tensor in the file that belongs to no adapted layer of the model.
    #[error(
        "{file}: tensor `{key}` does not belong to any layer targeted in this model \
         (no layer `{layer}` matched target_modules)"
    )]
    UnexpectedTensor {
        /// The file the tensor is in.
        file: String,
        /// The key.
        key: String,
        /// The module path the key names.
        layer: String,
    },

    /// A tensor stored in a data type adapters cannot be read from.
    #[error("{file}: tensor `{key}` has dtype {dtype}; expected F32, F16, BF16 or F64")]
    UnsupportedDtype {
        /// The file.
        file: String,
        /// The key.
        key: String,
        /// The dtype found.
        dtype: String,
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

    /// A field of `adapter_config.json` with an invalid or unsupported value.
    #[error("{file}: field `{field}`: expected {expected}, found {found}")]
    ConfigField {
        /// The config file (or `<config>` when built in code).
        file: String,
        /// The JSON field.
        field: String,
        /// What would be accepted.
        expected: String,
        /// What was there.
        found: String,
    },

    /// `adapter_config.json` is not valid JSON or not an object.
    #[error("{file}: invalid adapter config: {message}")]
    ConfigSyntax {
        /// The file.
        file: String,
        /// The parser's message (with line and column).
        message: String,
    },

    /// A safetensors file that cannot be parsed.
    #[error("{file}: invalid safetensors file: {message}")]
    Safetensors {
        /// The file.
        file: String,
        /// What the parser said.
        message: String,
    },

    /// A file-system error, with the path involved.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "writing", "creating folder").
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Shorthand result type of this crate.
pub type Result<T, E = AdapterError> = std::result::Result<T, E>;

impl AdapterError {
    /// Wraps an I/O error with the action and path it happened on.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl AdapterError {
    /// Fills in the layer (and adapter) name of errors raised below the layer level, where the
    /// name is not known yet.
    pub(crate) fn at(mut self, layer_path: &str, adapter: &str) -> Self {
        match &mut self {
            Self::InvalidRank { layer, .. }
            | Self::BatDivisibility { layer, .. }
            | Self::InvalidAlpha { layer, .. }
            | Self::InvalidDropout { layer, .. } => fill(layer, layer_path),
            Self::SingularBatBlock { name, layer, .. } => {
                fill(layer, layer_path);
                fill(name, adapter);
            }
            _ => {}
        }
        self
    }
}

fn fill(slot: &mut String, value: &str) {
    if slot.is_empty() {
        *slot = value.to_string();
    }
}
