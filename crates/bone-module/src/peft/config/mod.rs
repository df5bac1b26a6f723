//! `adapter_config.json`: PEFT's adapter configuration, for MiSS/Bone/Bat and LoRA.
//!
//! - [`file`]: the file's fields as a serde struct, then validated into an [`AdapterConfig`].
//! - [`write`]: the JSON PEFT 0.21 writes, with its defaults for the fields this crate does
//!   not use.

mod file;
mod write;

use std::collections::BTreeMap;
use std::path::Path;

use bone_io::{read, write_atomic, FileError};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::targets::{layer_index, TargetMatcher, TargetModules};
use crate::adapter::AdapterKind;
use crate::error::Result;
use crate::spec::AdapterSpec;

/// The file name PEFT gives the configuration.
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";

/// The PEFT tuner type (`peft_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PeftType {
    /// `MISS` (PEFT ≥ 0.17): Bone, Bat with `init_weights="bat"` or MiSS "mini" with
    /// `init_weights="mini"`; key suffix `miss_block`.
    Miss,
    /// `BONE` (PEFT ≤ 0.18, same maths): key suffix `bone_block`.
    Bone,
    /// `LORA`.
    Lora,
}

impl PeftType {
    /// The name in `adapter_config.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Miss => "MISS",
            Self::Bone => "BONE",
            Self::Lora => "LORA",
        }
    }

    /// The key suffix of the block tensor (MiSS and Bone).
    pub(crate) fn block_suffix(self) -> &'static str {
        match self {
            Self::Bone => "bone_block",
            _ => "miss_block",
        }
    }

    /// The field holding the adapter's input dropout.
    pub(crate) fn dropout_field(self) -> &'static str {
        match self {
            Self::Miss => "miss_dropout",
            Self::Bone => "bone_dropout",
            Self::Lora => "lora_dropout",
        }
    }
}

/// PEFT's adapter configuration for the methods of this crate.
///
/// Fields this crate does not interpret are kept in `extra` and written back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterConfig {
    /// `peft_type`.
    pub peft_type: PeftType,
    /// The method and its hyper-parameters: `r`, `lora_alpha`, `use_rslora`, the dropout field
    /// (`miss_dropout`, `bone_dropout`, `lora_dropout`) and `init_weights` /
    /// `init_lora_weights` (`false` is a random instead of a zero trainable init).
    pub spec: AdapterSpec,
    /// `target_modules`.
    pub target_modules: TargetModules,
    /// `exclude_modules`.
    pub exclude_modules: Option<TargetModules>,
    /// `layers_to_transform`.
    pub layers_to_transform: Option<Vec<usize>>,
    /// `layers_pattern`.
    pub layers_pattern: Option<Vec<String>>,
    /// `rank_pattern`: module-name pattern → rank.
    pub rank_pattern: BTreeMap<String, usize>,
    /// `alpha_pattern` (LoRA): module-name pattern → alpha.
    pub alpha_pattern: BTreeMap<String, f64>,
    /// `modules_to_save`: modules trained fully and stored whole (e.g. `["classifier"]`).
    pub modules_to_save: Option<Vec<String>>,
    /// `task_type` (`SEQ_CLS`, `CAUSAL_LM`, or none).
    pub task_type: Option<String>,
    /// `base_model_name_or_path`.
    pub base_model_name_or_path: Option<String>,
    /// `inference_mode` (PEFT sets it to true on save).
    pub inference_mode: bool,
    /// `auto_mapping` (written by PEFT when `task_type` is none).
    pub auto_mapping: Option<Value>,
    /// Every other field, kept as read.
    pub extra: Map<String, Value>,
}

impl AdapterConfig {
    /// A configuration for `spec` on the modules named by `target_modules` (`peft_type`
    /// `LORA` for LoRA, `MISS` for Bone and Bat).
    pub fn from_spec(spec: &AdapterSpec, target_modules: TargetModules) -> Self {
        let peft_type = match spec.kind() {
            AdapterKind::Lora => PeftType::Lora,
            AdapterKind::Bone | AdapterKind::Mini | AdapterKind::Bat => PeftType::Miss,
        };
        Self {
            peft_type,
            spec: spec.clone(),
            target_modules,
            exclude_modules: None,
            layers_to_transform: None,
            layers_pattern: None,
            rank_pattern: BTreeMap::new(),
            alpha_pattern: BTreeMap::new(),
            modules_to_save: None,
            task_type: None,
            base_model_name_or_path: None,
            inference_mode: false,
            auto_mapping: None,
            extra: Map::new(),
        }
    }

    /// Bone, MiSS "mini", Bat or LoRA.
    pub fn method(&self) -> AdapterKind {
        self.spec.kind()
    }

    /// `r`: the rank (LoRA, Bone) or block size (Bat) of layers no `rank_pattern` names.
    pub fn r(&self) -> usize {
        self.spec.rank()
    }

    /// Which module paths get this adapter (`target_modules`, `exclude_modules`,
    /// `layers_to_transform`), and with which spec (`rank_pattern`, `alpha_pattern`).
    ///
    /// # Errors
    /// An invalid regular expression in `target_modules`, `exclude_modules`, `rank_pattern`
    /// or `alpha_pattern`.
    pub fn selector(&self) -> Result<LayerSelector> {
        self.selector_in(ADAPTER_CONFIG_FILE)
    }

    /// [`selector`](Self::selector), naming `file` in errors.
    fn selector_in(&self, file: &str) -> Result<LayerSelector> {
        Ok(LayerSelector {
            targets: self.target_modules.matcher(file, "target_modules")?,
            exclude: self
                .exclude_modules
                .as_ref()
                .map(|e| e.matcher(file, "exclude_modules"))
                .transpose()?,
            layers: self.layers_to_transform.clone(),
            layers_pattern: self.layers_pattern.clone().unwrap_or_default(),
            spec: self.spec.clone(),
            rank_pattern: compile_patterns(&self.rank_pattern, file, "rank_pattern")?,
            alpha_pattern: compile_patterns(&self.alpha_pattern, file, "alpha_pattern")?,
        })
    }

    /// Reads `adapter_config.json` from an adapter folder (or the file itself).
    ///
    /// # Errors
    /// A missing file, invalid JSON, an unknown `peft_type`, or a field with a wrong type or
    /// an unsupported value; the message names the file and the field.
    pub fn load(path: &Path) -> Result<Self> {
        let path = if path.is_dir() {
            path.join(ADAPTER_CONFIG_FILE)
        } else {
            path.to_path_buf()
        };
        let bytes = read(&path)?;
        let text = String::from_utf8_lossy(&bytes);
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Parses the JSON text of an adapter config; `file` names it in errors.
    ///
    /// # Errors
    /// See [`load`](Self::load).
    pub fn from_json_str(text: &str, file: &str) -> Result<Self> {
        let config = file::parse(text, file)?;
        config.selector_in(file)?;
        Ok(config)
    }

    /// The JSON PEFT 0.21 writes for this configuration: every field its config class has,
    /// with PEFT's defaults for those this crate does not use, then `extra`.
    pub fn to_json(&self) -> Value {
        write::to_json(self)
    }

    /// Writes `adapter_config.json` into `dir`, atomically, formatted as PEFT does
    /// (two-space indent, sorted keys).
    ///
    /// # Errors
    /// An I/O error naming the path.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        let path = dir.join(ADAPTER_CONFIG_FILE);
        Ok(write_atomic(&path, format!("{text}\n").as_bytes())?)
    }
}

/// Decides which module paths get an adapter and with which spec; see
/// [`AdapterConfig::selector`].
#[derive(Debug, Clone)]
pub struct LayerSelector {
    targets: TargetMatcher,
    exclude: Option<TargetMatcher>,
    layers: Option<Vec<usize>>,
    layers_pattern: Vec<String>,
    spec: AdapterSpec,
    rank_pattern: Vec<(Regex, usize)>,
    alpha_pattern: Vec<(Regex, f64)>,
}

impl LayerSelector {
    /// Whether the module at `path` is targeted.
    pub fn selects(&self, path: &str) -> bool {
        if !self.targets.matches(path) {
            return false;
        }
        if self.exclude.as_ref().is_some_and(|e| e.matches(path)) {
            return false;
        }
        match (&self.layers, self.targets.is_names()) {
            (Some(layers), true) => {
                layer_index(path, &self.layers_pattern).is_some_and(|index| layers.contains(&index))
            }
            _ => true,
        }
    }

    /// The adapter to build on the layer at `path`: the config's spec with `rank_pattern`
    /// and `alpha_pattern` applied.
    pub fn spec_for(&self, path: &str) -> AdapterSpec {
        let mut spec = self.spec.clone();
        if let Some(r) = pattern_value(&self.rank_pattern, path) {
            spec = spec.with_rank(r);
        }
        if let Some(alpha) = pattern_value(&self.alpha_pattern, path) {
            spec = spec.with_alpha(alpha);
        }
        spec
    }
}

/// PEFT's `rank_pattern` / `alpha_pattern` keys as expressions: key `k` matches a path that
/// matches `(.*\.)?(k)$`.
///
/// # Errors
/// A key that is not a valid regular expression, naming `field` in `file`.
fn compile_patterns<T: Copy>(
    patterns: &BTreeMap<String, T>,
    file: &str,
    field: &str,
) -> Result<Vec<(Regex, T)>> {
    patterns
        .iter()
        .map(|(key, value)| {
            // The key alone first, so that a syntax error points into the key as written.
            Regex::new(key)
                .and_then(|_| Regex::new(&format!(r"^(?:.*\.)?(?:{key})$")))
                .map(|re| (re, *value))
                .map_err(|e| {
                    FileError::field(
                        file,
                        field,
                        "module-name patterns that are valid regular expressions",
                        format!("{key:?} ({e})"),
                    )
                    .into()
                })
        })
        .collect()
}

/// The value of the first pattern (in key order) that matches `path`.
fn pattern_value<T: Copy>(patterns: &[(Regex, T)], path: &str) -> Option<T> {
    patterns
        .iter()
        .find(|(re, _)| re.is_match(path))
        .map(|(_, value)| *value)
}
