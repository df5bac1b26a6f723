//! Writing `adapter_config.json` as PEFT 0.21 does: every field of its config class, with
//! PEFT's defaults for those this crate does not use.

use serde_json::{json, Map, Value};

use super::{AdapterConfig, PeftType};
use crate::bone::BlockInit;
use crate::peft::TargetModules;
use crate::spec::AdapterSpec;

/// The PEFT release whose file format this crate writes.
const PEFT_VERSION: &str = "0.21.2";

/// The JSON of `config`: PEFT's defaults, then the fields of `config`, then `extra`.
pub(super) fn to_json(config: &AdapterConfig) -> Value {
    let mut map = match config.peft_type {
        PeftType::Lora => lora_defaults(),
        other => miss_defaults(other.dropout_field()),
    };
    let mut set = |k: &str, v: Value| {
        map.insert(k.to_string(), v);
    };
    set("peft_type", json!(config.peft_type.as_str()));
    set("r", json!(config.spec.rank()));
    set("target_modules", config.target_modules.to_json());
    set(
        "exclude_modules",
        config
            .exclude_modules
            .as_ref()
            .map_or(Value::Null, TargetModules::to_json),
    );
    set("layers_to_transform", json!(config.layers_to_transform));
    set(
        "layers_pattern",
        match &config.layers_pattern {
            Some(p) if p.len() == 1 => json!(p[0]),
            other => json!(other),
        },
    );
    set("modules_to_save", json!(config.modules_to_save));
    set("task_type", json!(config.task_type));
    set(
        "base_model_name_or_path",
        json!(config.base_model_name_or_path),
    );
    set("inference_mode", json!(config.inference_mode));
    if let Some(auto) = &config.auto_mapping {
        set("auto_mapping", auto.clone());
    }
    let dropout_field = config.peft_type.dropout_field();
    match &config.spec {
        AdapterSpec::Lora {
            alpha,
            use_rslora,
            init_b,
            dropout,
            ..
        } => {
            set("lora_alpha", number(*alpha));
            set("use_rslora", json!(use_rslora));
            set(dropout_field, json!(dropout));
            set("init_lora_weights", json!(*init_b == BlockInit::Zeros));
            set("rank_pattern", json!(config.rank_pattern));
            let alpha: Map<String, Value> = config
                .alpha_pattern
                .iter()
                .map(|(k, v)| (k.clone(), number(*v)))
                .collect();
            set("alpha_pattern", Value::Object(alpha));
        }
        AdapterSpec::Bone { init, dropout, .. } => {
            set("init_weights", json!(*init == BlockInit::Zeros));
            set(dropout_field, json!(dropout));
        }
        AdapterSpec::Mini {
            mini_r, dropout, ..
        } => {
            set("init_weights", json!("mini"));
            set("mini_r", json!(mini_r));
            set(dropout_field, json!(dropout));
        }
        AdapterSpec::Bat { .. } => set("init_weights", json!("bat")),
    }
    for (k, v) in &config.extra {
        map.insert(k.clone(), v.clone());
    }
    Value::Object(map)
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
