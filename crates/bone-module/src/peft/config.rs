//! `adapter_config.json`: PEFT's adapter configuration, for MiSS/Bone/Bat and LoRA.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde_json::{json, Map, Value};

use super::targets::{layer_index, TargetMatcher, TargetModules};
use crate::adapter::AdapterKind;
use crate::bone::BlockInit;
use crate::error::{AdapterError, Result};
use crate::spec::AdapterSpec;
use bone_io::{read, write_atomic, FileError};

/// The file name PEFT gives the configuration.
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";

/// The PEFT tuner type (`peft_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeftType {
    /// `MISS` (PEFT ≥ 0.17): Bone, or Bat with `init_weights="bat"`; key suffix `miss_block`.
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
}

/// PEFT's adapter configuration for the methods of this crate.
///
/// Fields this crate does not interpret are kept in `extra` and written back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterConfig {
    /// `peft_type`.
    pub peft_type: PeftType,
    /// Bone, Bat or LoRA (from `peft_type` and `init_weights`).
    pub method: AdapterKind,
    /// `r`: rank (LoRA, Bone) or block size (Bat).
    pub r: usize,
    /// `lora_alpha` (LoRA only).
    pub lora_alpha: f64,
    /// `use_rslora` (LoRA only).
    pub use_rslora: bool,
    /// `miss_dropout` / `bone_dropout` / `lora_dropout`.
    pub dropout: f64,
    /// Random instead of zero trainable init (`init_weights=false`, `init_lora_weights=false`).
    pub random_init: bool,
    /// `target_modules`.
    pub target_modules: TargetModules,
    /// `exclude_modules`.
    pub exclude_modules: Option<TargetModules>,
    /// `layers_to_transform`.
    pub layers_to_transform: Option<Vec<usize>>,
    /// `layers_pattern`.
    pub layers_pattern: Option<Vec<String>>,
    /// `rank_pattern` (LoRA): module-name pattern → rank.
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
    /// A configuration for `spec` on the modules named by `targets`.
    pub fn from_spec(spec: &AdapterSpec, target_modules: TargetModules) -> Self {
        let (peft_type, method, r, alpha, rslora, dropout, random) = match spec {
            AdapterSpec::Bone { r, init, dropout } => (
                PeftType::Miss,
                AdapterKind::Bone,
                *r,
                8.0,
                false,
                *dropout,
                *init != BlockInit::Zeros,
            ),
            AdapterSpec::Bat { r, init } => (
                PeftType::Miss,
                AdapterKind::Bat,
                *r,
                8.0,
                false,
                0.0,
                *init != BlockInit::Zeros,
            ),
            AdapterSpec::Lora {
                r,
                alpha,
                use_rslora,
                init_b,
                dropout,
            } => (
                PeftType::Lora,
                AdapterKind::Lora,
                *r,
                *alpha,
                *use_rslora,
                *dropout,
                *init_b != BlockInit::Zeros,
            ),
        };
        Self {
            peft_type,
            method,
            r,
            lora_alpha: alpha,
            use_rslora: rslora,
            dropout,
            random_init: random,
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

    /// The adapter to build on the layer at `path`, with `rank_pattern` and `alpha_pattern`
    /// applied.
    pub fn spec_for(&self, path: &str) -> AdapterSpec {
        let r = pattern_value(&self.rank_pattern, path).unwrap_or(self.r);
        let alpha = pattern_value(&self.alpha_pattern, path).unwrap_or(self.lora_alpha);
        let init = if self.random_init {
            BlockInit::KaimingUniform
        } else {
            BlockInit::Zeros
        };
        match self.method {
            AdapterKind::Bone => AdapterSpec::Bone {
                r,
                init,
                dropout: self.dropout,
            },
            AdapterKind::Bat => AdapterSpec::Bat { r, init },
            AdapterKind::Lora => AdapterSpec::Lora {
                r,
                alpha,
                use_rslora: self.use_rslora,
                init_b: init,
                dropout: self.dropout,
            },
        }
    }

    /// A matcher that says whether a module path gets this adapter (`target_modules`,
    /// `exclude_modules`, `layers_to_transform`).
    ///
    /// # Errors
    /// An invalid regular expression.
    pub fn selector(&self) -> Result<LayerSelector> {
        Ok(LayerSelector {
            targets: self
                .target_modules
                .matcher(ADAPTER_CONFIG_FILE, "target_modules")?,
            exclude: self
                .exclude_modules
                .as_ref()
                .map(|e| e.matcher(ADAPTER_CONFIG_FILE, "exclude_modules"))
                .transpose()?,
            layers: self.layers_to_transform.clone(),
            layers_pattern: self.layers_pattern.clone().unwrap_or_default(),
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
        let value: Value = serde_json::from_str(text).map_err(|e| FileError::ConfigSyntax {
            file: file.into(),
            what: "adapter config",
            message: e.to_string(),
        })?;
        let Value::Object(mut map) = value else {
            return Err(FileError::ConfigSyntax {
                file: file.into(),
                what: "adapter config",
                message: "expected a JSON object at the top level".into(),
            }
            .into());
        };
        let mut fields = Fields {
            file,
            map: &mut map,
        };

        let peft_type = match fields.take_str("peft_type")?.as_deref() {
            Some("MISS") => PeftType::Miss,
            Some("BONE") => PeftType::Bone,
            Some("LORA") => PeftType::Lora,
            Some(other) => {
                return Err(fields.invalid(
                    "peft_type",
                    "one of MISS, BONE, LORA",
                    &format!("{other:?}"),
                ))
            }
            None => return Err(fields.invalid("peft_type", "one of MISS, BONE, LORA", "nothing")),
        };
        let r = fields
            .take_usize("r")?
            .ok_or_else(|| fields.invalid("r", "a positive integer", "nothing"))?;
        if r == 0 {
            return Err(fields.invalid("r", "a positive integer", "0"));
        }
        let (method, random_init, dropout_field) = match peft_type {
            PeftType::Lora => {
                let init = fields.take("init_lora_weights");
                let random = match init {
                    None | Some(Value::Bool(true)) => false,
                    Some(Value::Bool(false)) => true,
                    Some(other) => {
                        return Err(fields.invalid(
                            "init_lora_weights",
                            "true or false (other LoRA initialisations are not supported)",
                            &other.to_string(),
                        ))
                    }
                };
                (AdapterKind::Lora, random, "lora_dropout")
            }
            PeftType::Miss | PeftType::Bone => {
                let dropout_field = if peft_type == PeftType::Miss {
                    "miss_dropout"
                } else {
                    "bone_dropout"
                };
                match fields.take("init_weights") {
                    None | Some(Value::Bool(true)) => (AdapterKind::Bone, false, dropout_field),
                    Some(Value::Bool(false)) => (AdapterKind::Bone, true, dropout_field),
                    Some(Value::String(s)) if s == "bat" => {
                        (AdapterKind::Bat, false, dropout_field)
                    }
                    Some(other) => {
                        return Err(fields.invalid(
                            "init_weights",
                            "true, false or \"bat\" (MiSS \"mini\" is not supported)",
                            &other.to_string(),
                        ))
                    }
                }
            }
        };
        let dropout = fields.take_f64(dropout_field)?.unwrap_or(0.0);
        let lora_alpha = fields.take_f64("lora_alpha")?.unwrap_or(8.0);
        let use_rslora = fields.take_bool("use_rslora")?.unwrap_or(false);
        if peft_type == PeftType::Lora {
            for (field, expected) in [
                ("use_dora", Value::Bool(false)),
                ("fan_in_fan_out", Value::Bool(false)),
            ] {
                if let Some(v) = fields.map.get(field) {
                    if !v.is_null() && *v != expected {
                        return Err(fields.invalid(
                            field,
                            &format!("{expected} (not supported otherwise)"),
                            &v.to_string(),
                        ));
                    }
                }
            }
        }
        if let Some(bias) = fields.map.get("bias") {
            if bias != "none" {
                return Err(fields.invalid(
                    "bias",
                    "\"none\" (adapter biases are not supported)",
                    &bias.to_string(),
                ));
            }
        }
        let target_modules = match fields.take("target_modules") {
            Some(v) if !v.is_null() => TargetModules::from_json(&v, file, "target_modules")?,
            _ => {
                return Err(fields.invalid(
                    "target_modules",
                    "a list of module names or a regex",
                    "nothing",
                ))
            }
        };
        let exclude_modules = match fields.take("exclude_modules") {
            Some(v) if !v.is_null() => Some(TargetModules::from_json(&v, file, "exclude_modules")?),
            _ => None,
        };
        let layers_to_transform = match fields.take("layers_to_transform") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(vec![n.as_u64().unwrap_or(u64::MAX) as usize]),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|i| {
                        i.as_u64().map(|v| v as usize).ok_or_else(|| {
                            fields.invalid(
                                "layers_to_transform",
                                "a list of layer indices",
                                &i.to_string(),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(other) => {
                return Err(fields.invalid(
                    "layers_to_transform",
                    "a list of layer indices",
                    &other.to_string(),
                ))
            }
        };
        let layers_pattern = match fields.take("layers_pattern") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(vec![s]),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|i| {
                        i.as_str().map(String::from).ok_or_else(|| {
                            fields.invalid(
                                "layers_pattern",
                                "a string or a list of strings",
                                &i.to_string(),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(other) => {
                return Err(fields.invalid(
                    "layers_pattern",
                    "a string or a list of strings",
                    &other.to_string(),
                ))
            }
        };
        let rank_pattern =
            fields.take_pattern("rank_pattern", |v| v.as_u64().map(|r| r as usize))?;
        let alpha_pattern = fields.take_pattern("alpha_pattern", Value::as_f64)?;
        let modules_to_save = match fields.take("modules_to_save") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|i| {
                        i.as_str().map(String::from).ok_or_else(|| {
                            fields.invalid(
                                "modules_to_save",
                                "a list of module names",
                                &i.to_string(),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(other) => {
                return Err(fields.invalid(
                    "modules_to_save",
                    "a list of module names",
                    &other.to_string(),
                ))
            }
        };
        let task_type = fields.take_str("task_type")?;
        let base_model_name_or_path = fields.take_str("base_model_name_or_path")?;
        let inference_mode = fields.take_bool("inference_mode")?.unwrap_or(false);
        let auto_mapping = fields.take("auto_mapping").filter(|v| !v.is_null());
        Ok(Self {
            peft_type,
            method,
            r,
            lora_alpha,
            use_rslora,
            dropout,
            random_init,
            target_modules,
            exclude_modules,
            layers_to_transform,
            layers_pattern,
            rank_pattern,
            alpha_pattern,
            modules_to_save,
            task_type,
            base_model_name_or_path,
            inference_mode,
            auto_mapping,
            extra: map,
        })
    }

    /// The JSON PEFT 0.21 writes for this configuration: every field its config class has,
    /// with PEFT's defaults for those this crate does not use, then `extra`.
    pub fn to_json(&self) -> Value {
        let mut map = match self.peft_type {
            PeftType::Lora => lora_defaults(),
            PeftType::Miss => miss_defaults("miss_dropout"),
            PeftType::Bone => miss_defaults("bone_dropout"),
        };
        let set = |map: &mut Map<String, Value>, k: &str, v: Value| {
            map.insert(k.to_string(), v);
        };
        set(&mut map, "peft_type", json!(self.peft_type.as_str()));
        set(&mut map, "r", json!(self.r));
        set(&mut map, "target_modules", self.target_modules.to_json());
        set(
            &mut map,
            "exclude_modules",
            self.exclude_modules
                .as_ref()
                .map_or(Value::Null, TargetModules::to_json),
        );
        set(
            &mut map,
            "layers_to_transform",
            json!(self.layers_to_transform),
        );
        set(
            &mut map,
            "layers_pattern",
            match &self.layers_pattern {
                Some(p) if p.len() == 1 => json!(p[0]),
                other => json!(other),
            },
        );
        set(&mut map, "modules_to_save", json!(self.modules_to_save));
        set(&mut map, "task_type", json!(self.task_type));
        set(
            &mut map,
            "base_model_name_or_path",
            json!(self.base_model_name_or_path),
        );
        set(&mut map, "inference_mode", json!(self.inference_mode));
        if let Some(auto) = &self.auto_mapping {
            set(&mut map, "auto_mapping", auto.clone());
        }
        match self.peft_type {
            PeftType::Lora => {
                set(&mut map, "lora_alpha", number(self.lora_alpha));
                set(&mut map, "use_rslora", json!(self.use_rslora));
                set(&mut map, "lora_dropout", json!(self.dropout));
                set(&mut map, "init_lora_weights", json!(!self.random_init));
                set(&mut map, "rank_pattern", json!(self.rank_pattern));
                let alpha: Map<String, Value> = self
                    .alpha_pattern
                    .iter()
                    .map(|(k, v)| (k.clone(), number(*v)))
                    .collect();
                set(&mut map, "alpha_pattern", Value::Object(alpha));
            }
            PeftType::Miss | PeftType::Bone => {
                let init = match (self.method, self.random_init) {
                    (AdapterKind::Bat, _) => json!("bat"),
                    (_, random) => json!(!random),
                };
                set(&mut map, "init_weights", init);
                let field = if self.peft_type == PeftType::Miss {
                    "miss_dropout"
                } else {
                    "bone_dropout"
                };
                set(&mut map, field, json!(self.dropout));
            }
        }
        for (k, v) in &self.extra {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map)
    }

    /// Writes `adapter_config.json` into `dir`, atomically, formatted as PEFT does
    /// (two-space indent, sorted keys).
    ///
    /// # Errors
    /// An I/O error naming the path.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        Ok(write_atomic(
            &dir.join(ADAPTER_CONFIG_FILE),
            format!("{text}\n").as_bytes(),
        )?)
    }
}

/// Decides which module paths get an adapter; see [`AdapterConfig::selector`].
#[derive(Debug, Clone)]
pub struct LayerSelector {
    targets: TargetMatcher,
    exclude: Option<TargetMatcher>,
    layers: Option<Vec<usize>>,
    layers_pattern: Vec<String>,
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
}

/// PEFT's `rank_pattern` / `alpha_pattern` lookup: the first key `k` such that the path
/// matches `(.*\.)?(k)$`.
fn pattern_value<T: Copy>(patterns: &BTreeMap<String, T>, path: &str) -> Option<T> {
    patterns.iter().find_map(|(key, value)| {
        Regex::new(&format!(r"^(?:.*\.)?(?:{key})$"))
            .ok()
            .filter(|re| re.is_match(path))
            .map(|_| *value)
    })
}

/// Writes integral floats as integers, as Python's json does for `int` values.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn miss_defaults(dropout_field: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in [
        ("bias", json!("none")),
        ("mini_r", json!(1)),
        ("peft_version", json!(PEFT_VERSION)),
        ("revision", Value::Null),
    ] {
        map.insert(k.into(), v);
    }
    map.insert(dropout_field.into(), json!(0.0));
    map
}

fn lora_defaults() -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in [
        ("alora_invocation_tokens", Value::Null),
        ("arrow_config", Value::Null),
        ("bias", json!("none")),
        ("corda_config", Value::Null),
        ("ensure_weight_tying", json!(false)),
        ("eva_config", Value::Null),
        ("fan_in_fan_out", json!(false)),
        ("kasa_config", Value::Null),
        ("layer_replication", Value::Null),
        ("loftq_config", json!({})),
        ("lora_bias", json!(false)),
        ("lora_ga_config", Value::Null),
        ("megatron_config", Value::Null),
        ("megatron_core", json!("megatron.core")),
        ("monteclora_config", Value::Null),
        ("peft_version", json!(PEFT_VERSION)),
        ("qalora_group_size", json!(16)),
        ("revision", Value::Null),
        ("target_parameters", Value::Null),
        ("trainable_token_indices", Value::Null),
        ("use_bdlora", Value::Null),
        ("use_dora", json!(false)),
        ("use_qalora", json!(false)),
        ("velora_config", Value::Null),
    ] {
        map.insert(k.into(), v);
    }
    map
}

/// The PEFT release whose file format this crate writes.
const PEFT_VERSION: &str = "0.21.2";

/// Typed access to the fields of a JSON object, removing each as it is read.
struct Fields<'a> {
    file: &'a str,
    map: &'a mut Map<String, Value>,
}

impl Fields<'_> {
    fn invalid(&self, field: &str, expected: &str, found: &str) -> AdapterError {
        FileError::field(self.file, field, expected, found).into()
    }

    fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field)
    }

    fn take_str(&mut self, field: &str) -> Result<Option<String>> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.invalid(field, "a string", &other.to_string())),
        }
    }

    fn take_bool(&mut self, field: &str) -> Result<Option<bool>> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.invalid(field, "true or false", &other.to_string())),
        }
    }

    fn take_f64(&mut self, field: &str) -> Result<Option<f64>> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(self.invalid(field, "a number", &other.to_string())),
        }
    }

    fn take_usize(&mut self, field: &str) -> Result<Option<usize>> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().map(|v| v as usize)),
            Some(other) => Err(self.invalid(field, "a positive integer", &other.to_string())),
        }
    }

    fn take_pattern<T>(
        &mut self,
        field: &str,
        convert: impl Fn(&Value) -> Option<T>,
    ) -> Result<BTreeMap<String, T>> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| {
                    convert(&v).map(|t| (k.clone(), t)).ok_or_else(|| {
                        self.invalid(&format!("{field}.{k}"), "a number", &v.to_string())
                    })
                })
                .collect(),
            Some(other) => Err(self.invalid(field, "an object", &other.to_string())),
        }
    }
}
