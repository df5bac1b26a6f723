//! Reading `adapter_config.json`: serde reads the fields into [`ConfigFile`], then
//! [`ConfigFile::validate`] checks what serde cannot (required fields, `r ≥ 1`, unsupported
//! PEFT options) and builds the [`AdapterConfig`].
//!
//! A field of the wrong type is reported with its name, what it should hold and the JSON
//! value found. `null` counts as absent, as in PEFT.

use std::collections::BTreeMap;

use bone_io::FileError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{AdapterConfig, PeftType};
use crate::bone::BlockInit;
use crate::error::{AdapterError, Result};
use crate::peft::TargetModules;
use crate::spec::AdapterSpec;

/// What `adapter_config.json` says a broken file should read.
const SYNTAX: &str = "adapter config";

/// The fields of `adapter_config.json` that every PEFT type shares (and that this crate
/// reads), typed; everything else stays in `rest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigFile {
    peft_type: Option<PeftType>,
    r: Option<usize>,
    lora_alpha: Option<f64>,
    use_rslora: Option<bool>,
    target_modules: Option<TargetModules>,
    exclude_modules: Option<TargetModules>,
    layers_to_transform: Option<OneOrMany<usize>>,
    layers_pattern: Option<OneOrMany<String>>,
    rank_pattern: Option<BTreeMap<String, usize>>,
    alpha_pattern: Option<BTreeMap<String, f64>>,
    modules_to_save: Option<Vec<String>>,
    task_type: Option<String>,
    base_model_name_or_path: Option<String>,
    inference_mode: Option<bool>,
    auto_mapping: Option<Value>,
    /// The fields of one PEFT type only (`init_weights`, `lora_dropout`, …) and those this
    /// crate does not interpret.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// One value or a list of them (`layers_to_transform: 3`, `layers_pattern: "layers"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(v) => vec![v],
            Self::Many(v) => v,
        }
    }
}

/// MiSS's `init_weights`: `true` (zeros), `false` (random), `"bat"` or `"mini"`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum MissInit {
    /// `true` or `false`: Bone, zero or random block.
    Bone(bool),
    /// `"bat"` or `"mini"`.
    Named(MissVariant),
}

/// The strings `"bat"` and `"mini"`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MissVariant {
    /// Bat.
    Bat,
    /// MiSS "mini": a `[r, mini_r]` block repeated along the outputs.
    Mini,
}

/// What a field holds, for the message when it holds something else.
fn expected(field: &str) -> &'static str {
    match field {
        "peft_type" => "one of MISS, BONE, LORA",
        "r" | "mini_r" => "a positive integer",
        "lora_alpha" | "miss_dropout" | "bone_dropout" | "lora_dropout" => "a number",
        "use_rslora" | "inference_mode" => "true or false",
        "target_modules" | "exclude_modules" => {
            "a list of module names or a regular expression string"
        }
        "layers_to_transform" => "a layer index or a list of layer indices",
        "layers_pattern" => "a string or a list of strings",
        "rank_pattern" => "an object mapping module-name patterns to positive integers",
        "alpha_pattern" => "an object mapping module-name patterns to numbers",
        "modules_to_save" => "a list of module names",
        "task_type" | "base_model_name_or_path" => "a string",
        "init_weights" => "true, false, \"bat\" or \"mini\"",
        "init_lora_weights" => "true or false (other LoRA initialisations are not supported)",
        _ => "a valid value",
    }
}

/// Parses and validates the JSON text of an adapter config; `file` names it in errors.
pub(super) fn parse(text: &str, file: &str) -> Result<AdapterConfig> {
    let syntax = |message: String| FileError::ConfigSyntax {
        file: file.into(),
        what: SYNTAX,
        message,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(syntax("expected a JSON object at the top level".into()).into());
    };
    let fields: ConfigFile = serde_json::from_value(value.clone())
        .map_err(|e| mistyped_field(map, file).unwrap_or_else(|| syntax(e.to_string())))?;
    fields.validate(file)
}

/// The first field of `map` whose value alone does not deserialise (every field of
/// [`ConfigFile`] is optional, so a one-field object fails exactly when that field does).
fn mistyped_field(map: &Map<String, Value>, file: &str) -> Option<FileError> {
    map.iter().find_map(|(field, value)| {
        let alone = Value::Object(Map::from_iter([(field.clone(), value.clone())]));
        serde_json::from_value::<ConfigFile>(alone)
            .is_err()
            .then(|| FileError::field(file, field, expected(field), value.to_string()))
    })
}

/// Removes `field` from `rest` and deserialises it (`None` when absent or null).
fn take<T: DeserializeOwned>(
    rest: &mut Map<String, Value>,
    field: &str,
    file: &str,
) -> Result<Option<T>> {
    let Some(value) = rest.remove(field) else {
        return Ok(None);
    };
    serde_json::from_value::<Option<T>>(value.clone())
        .map_err(|_| FileError::field(file, field, expected(field), value.to_string()).into())
}

/// The trainable init for PEFT's `init_weights=false` / `init_lora_weights=false`.
fn init(random: bool) -> BlockInit {
    if random {
        BlockInit::KaimingUniform
    } else {
        BlockInit::Zeros
    }
}

impl ConfigFile {
    fn validate(self, file: &str) -> Result<AdapterConfig> {
        let invalid = |field: &str, expected: &str, found: &str| -> AdapterError {
            FileError::field(file, field, expected, found).into()
        };
        let peft_type = self
            .peft_type
            .ok_or_else(|| invalid("peft_type", expected("peft_type"), "nothing"))?;
        let r = match self.r {
            None => return Err(invalid("r", expected("r"), "nothing")),
            Some(0) => return Err(invalid("r", expected("r"), "0")),
            Some(r) => r,
        };
        let mut rest = self.rest;
        let dropout_field = peft_type.dropout_field();
        let spec = match peft_type {
            PeftType::Lora => {
                let random = !take::<bool>(&mut rest, "init_lora_weights", file)?.unwrap_or(true);
                AdapterSpec::Lora {
                    r,
                    alpha: self.lora_alpha.unwrap_or(8.0),
                    use_rslora: self.use_rslora.unwrap_or(false),
                    init_b: init(random),
                    dropout: take(&mut rest, dropout_field, file)?.unwrap_or(0.0),
                }
            }
            PeftType::Miss | PeftType::Bone => {
                match take(&mut rest, "init_weights", file)?.unwrap_or(MissInit::Bone(true)) {
                    MissInit::Bone(zeros) => AdapterSpec::Bone {
                        r,
                        init: init(!zeros),
                        dropout: take(&mut rest, dropout_field, file)?.unwrap_or(0.0),
                    },
                    // Bat has no dropout: the field stays in `rest`, written back as read.
                    MissInit::Named(MissVariant::Bat) => AdapterSpec::bat(r),
                    // PEFT's default `mini_r` is 1.
                    MissInit::Named(MissVariant::Mini) => AdapterSpec::Mini {
                        r,
                        mini_r: match take::<usize>(&mut rest, "mini_r", file)? {
                            Some(0) => return Err(invalid("mini_r", expected("mini_r"), "0")),
                            other => other.unwrap_or(1),
                        },
                        init: BlockInit::Zeros,
                        dropout: take(&mut rest, dropout_field, file)?.unwrap_or(0.0),
                    },
                }
            }
        };
        if peft_type == PeftType::Lora {
            for field in ["use_dora", "fan_in_fan_out"] {
                match rest.get(field) {
                    None | Some(Value::Null) | Some(Value::Bool(false)) => {}
                    Some(other) => {
                        return Err(invalid(
                            field,
                            "false (not supported otherwise)",
                            &other.to_string(),
                        ))
                    }
                }
            }
        }
        if let Some(bias) = rest.get("bias").filter(|b| **b != "none") {
            return Err(invalid(
                "bias",
                "\"none\" (adapter biases are not supported)",
                &bias.to_string(),
            ));
        }
        let target_modules = self.target_modules.ok_or_else(|| {
            invalid(
                "target_modules",
                "a list of module names or a regex",
                "nothing",
            )
        })?;
        Ok(AdapterConfig {
            peft_type,
            spec,
            target_modules,
            exclude_modules: self.exclude_modules,
            layers_to_transform: self.layers_to_transform.map(OneOrMany::into_vec),
            layers_pattern: self.layers_pattern.map(OneOrMany::into_vec),
            rank_pattern: self.rank_pattern.unwrap_or_default(),
            alpha_pattern: self.alpha_pattern.unwrap_or_default(),
            modules_to_save: self.modules_to_save,
            task_type: self.task_type,
            base_model_name_or_path: self.base_model_name_or_path,
            inference_mode: self.inference_mode.unwrap_or(false),
            auto_mapping: self.auto_mapping,
            extra: rest,
        })
    }
}
