//! Adapter files in PEFT's format: reading PEFT's own files, writing files PEFT can read
//! (same keys, shapes and config fields), save → load round trips, and bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use bone_io::tensors::{read_safetensors, write_safetensors};
use bone_module::peft::{load_adapter, save_adapter, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};
use bone_module::{
    AdaptedLinear, AdapterConfig, AdapterHostExt, AdapterKind, AdapterSpec, BlockInit, PeftType,
    TargetModules,
};
use burn::tensor::{Tensor, TensorData};
use serde_json::Value;

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bone-peft-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn golden_dir(method: &str) -> PathBuf {
    shared_dir().join(format!("golden/peft_{method}_stories260k"))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn shapes(path: &Path) -> BTreeMap<String, Vec<usize>> {
    read_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.shape.to_vec()))
        .collect()
}

/// Output of every layer on the same random input, concatenated.
fn outputs(layers: &[AdaptedLinear<TB>], seed_input: &Tensor<TB, 2>) -> Vec<f32> {
    let mut out = Vec::new();
    for layer in layers {
        let d_in = layer.d_input();
        let x = seed_input.clone().slice([0..4, 0..d_in]);
        out.extend(values(&layer.forward(x)));
    }
    out
}

#[test]
fn reads_the_configs_peft_wrote() {
    let bone = AdapterConfig::load(&golden_dir("bone")).unwrap();
    assert_eq!(
        (bone.peft_type, bone.method(), bone.r()),
        (PeftType::Miss, AdapterKind::Bone, 8)
    );
    assert_eq!(
        bone.spec.init(),
        BlockInit::KaimingUniform,
        "init_weights=false"
    );
    let bat = AdapterConfig::load(&golden_dir("bat")).unwrap();
    assert_eq!(
        (bat.peft_type, bat.method(), bat.r()),
        (PeftType::Miss, AdapterKind::Bat, 4)
    );
    let mini = AdapterConfig::load(&golden_dir("mini")).unwrap();
    assert_eq!(
        (mini.peft_type, mini.method(), &mini.spec),
        (PeftType::Miss, AdapterKind::Mini, &AdapterSpec::mini(16, 4))
    );
    let lora = AdapterConfig::load(&golden_dir("lora")).unwrap();
    assert_eq!(
        (lora.peft_type, lora.method(), lora.r(), lora.spec.alpha()),
        (PeftType::Lora, AdapterKind::Lora, 4, Some(8.0))
    );
    let TargetModules::Names(mut names) = lora.target_modules else {
        panic!("a list")
    };
    names.sort();
    assert_eq!(
        names,
        [
            "down_proj",
            "gate_proj",
            "k_proj",
            "o_proj",
            "q_proj",
            "up_proj",
            "v_proj"
        ]
    );
}

#[test]
fn written_files_have_peft_keys_shapes_and_config_fields() {
    let device = device();
    for method in ["bone", "bat", "lora", "mini"] {
        let golden = golden_dir(method);
        let mut layers = stories260k_linears::<TB>(&device);
        let loaded = load_adapter(&mut layers, &golden, "default", &device).unwrap();
        let out = tmp_dir(&format!("write-{method}"));
        save_adapter(&layers, "default", &loaded.config, &out, &BTreeMap::new()).unwrap();

        assert_eq!(
            shapes(&out.join(ADAPTER_WEIGHTS_FILE)),
            shapes(&golden.join(ADAPTER_WEIGHTS_FILE)),
            "{method}: keys and shapes"
        );
        // The values survive the round trip bit for bit.
        let ours = read_safetensors(&out.join(ADAPTER_WEIGHTS_FILE)).unwrap();
        let theirs = read_safetensors(&golden.join(ADAPTER_WEIGHTS_FILE)).unwrap();
        for (key, data) in &theirs {
            assert_eq!(data_f32(&ours[key]), data_f32(data), "{method}: {key}");
        }

        let ours = json(&out.join(ADAPTER_CONFIG_FILE));
        let theirs = json(&golden.join(ADAPTER_CONFIG_FILE));
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ours), keys(&theirs), "{method}: config fields");
        for field in [
            "peft_type",
            "r",
            "init_weights",
            "mini_r",
            "lora_alpha",
            "bias",
            "inference_mode",
            "auto_mapping",
            "peft_version",
            "task_type",
        ] {
            assert_eq!(
                ours.get(field),
                theirs.get(field),
                "{method}: field {field}"
            );
        }
    }
}

#[test]
fn a_fresh_adapter_saves_with_the_fields_peft_writes() {
    let device = device();
    let golden_keys = |method: &str| {
        let v = json(&golden_dir(method).join(ADAPTER_CONFIG_FILE));
        let mut keys: Vec<String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "auto_mapping")
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    for (method, spec) in [
        ("bone", AdapterSpec::bone(8)),
        ("bat", AdapterSpec::bat(4)),
        ("lora", AdapterSpec::lora(4, 8.0)),
    ] {
        let mut layers = stories260k_linears::<TB>(&device);
        let config = AdapterConfig::from_spec(&spec, TargetModules::names(&["q_proj", "v_proj"]));
        let targeted = layers.add_adapter("mine", &config, &device).unwrap();
        assert_eq!(targeted.len(), 10, "q_proj and v_proj of 5 layers");
        let out = tmp_dir(&format!("fresh-{method}"));
        save_adapter(&layers, "mine", &config, &out, &BTreeMap::new()).unwrap();
        let ours = json(&out.join(ADAPTER_CONFIG_FILE));
        let mut keys: Vec<String> = ours.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, golden_keys(method), "{method}");
        assert_eq!(ours["inference_mode"], Value::Bool(true));
        if method == "bat" {
            assert_eq!(ours["init_weights"], Value::String("bat".into()));
        }
        assert_eq!(
            shapes(&out.join(ADAPTER_WEIGHTS_FILE)).len(),
            if method == "lora" { 20 } else { 10 }
        );
    }
}

#[test]
fn save_then_load_gives_identical_outputs() {
    let device = device();
    let x = random::<TB, 2>([4, 172], &device);
    for spec in [
        AdapterSpec::bone(8),
        AdapterSpec::bat(4),
        AdapterSpec::lora(4, 8.0),
    ] {
        let mut layers = stories260k_linears::<TB>(&device);
        let config = AdapterConfig::from_spec(
            &spec.clone().with_random_init(),
            TargetModules::Regex(r".*\.(q_proj|down_proj)".into()),
        );
        layers.add_adapter("trained", &config, &device).unwrap();
        let expected = outputs(&layers, &x);
        let out = tmp_dir(&format!("roundtrip-{}", spec.kind()));
        let extra: BTreeMap<String, TensorData> = [(
            "classifier.weight".to_string(),
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
        )]
        .into();
        save_adapter(&layers, "trained", &config, &out, &extra).unwrap();

        let mut fresh = stories260k_linears::<TB>(&device);
        let base = outputs(&fresh, &x);
        let loaded = load_adapter(&mut fresh, &out, "trained", &device).unwrap();
        assert_eq!(loaded.layers.len(), 10);
        assert_eq!(
            data_f32(&loaded.extra_tensors["classifier.weight"]),
            [1.0, 2.0, 3.0, 4.0]
        );
        let got = outputs(&fresh, &x);
        assert_eq!(got, expected, "{}: outputs after save → load", spec.kind());
        assert!(
            max_abs_diff(&got, &base) > 1e-4,
            "the adapter changes the output"
        );
    }
}

/// Copies a golden adapter folder, letting `edit` change the tensors and the config text.
fn edited_copy(
    method: &str,
    name: &str,
    edit: impl FnOnce(&mut BTreeMap<String, TensorData>, &mut String),
) -> PathBuf {
    let dir = tmp_dir(name);
    let mut tensors = read_safetensors(&golden_dir(method).join(ADAPTER_WEIGHTS_FILE)).unwrap();
    let mut config = std::fs::read_to_string(golden_dir(method).join(ADAPTER_CONFIG_FILE)).unwrap();
    edit(&mut tensors, &mut config);
    write_safetensors(
        &dir.join(ADAPTER_WEIGHTS_FILE),
        &tensors,
        &[("format", "pt")],
    )
    .unwrap();
    std::fs::write(dir.join(ADAPTER_CONFIG_FILE), config).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    let device = device();
    let mut layers = stories260k_linears::<TB>(&device);
    let err = load_adapter(&mut layers, dir, "default", &device)
        .unwrap_err()
        .to_string();
    // Nothing was attached.
    assert!(
        layers.adapter_names().is_empty(),
        "a failed load must leave the model unchanged"
    );
    err
}

#[test]
fn a_tensor_of_the_wrong_shape_is_an_error_naming_it() {
    let key = "base_model.model.model.layers.2.mlp.down_proj.miss_block";
    let dir = edited_copy("bone", "wrong-shape", |t, _| {
        t.insert(key.into(), TensorData::new(vec![0.0f32; 4 * 64], [4, 64]));
    });
    let file = dir.join(ADAPTER_WEIGHTS_FILE);
    assert_eq!(
        load_error(&dir),
        format!("{}: tensor `{key}` has shape [4, 64], but layer `model.layers.2.mlp.down_proj` expects [8, 64]", file.display())
    );
}

#[test]
fn a_missing_tensor_is_an_error_naming_it() {
    let key = "base_model.model.model.layers.4.self_attn.v_proj.lora_B.weight";
    let dir = edited_copy("lora", "missing", |t, _| {
        t.remove(key);
    });
    assert_eq!(
        load_error(&dir),
        format!(
            "{}: missing tensor `{key}` for layer `model.layers.4.self_attn.v_proj`",
            dir.join(ADAPTER_WEIGHTS_FILE).display()
        )
    );
}

#[test]
fn a_tensor_for_a_layer_the_model_lacks_is_an_error() {
    let key = "base_model.model.model.layers.9.self_attn.q_proj.miss_block";
    let dir = edited_copy("bat", "unexpected", |t, _| {
        t.insert(
            key.into(),
            TensorData::new(vec![0.0f32; 16 * 16], [16, 4, 4]),
        );
    });
    assert_eq!(
        load_error(&dir),
        format!(
            "{}: tensor `{key}` does not belong to any layer targeted in this model (no layer `model.layers.9.self_attn.q_proj` matched target_modules)",
            dir.join(ADAPTER_WEIGHTS_FILE).display()
        )
    );
}

#[test]
fn a_model_with_other_shapes_is_rejected() {
    let device = device();
    // A model whose q_proj is 64 → 32 instead of 64 → 64.
    let mut layers = vec![AdaptedLinear::<TB>::new(
        random_linear(64, 32, false, &device),
        "model.layers.0.self_attn.q_proj",
    )];
    let dir = edited_copy("bone", "other-model", |t, c| {
        t.retain(|k, _| k.contains("layers.0.self_attn.q_proj"));
        *c = c.replace("\"gate_proj\",", "");
    });
    let err = load_adapter(&mut layers, &dir, "default", &device)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: tensor `base_model.model.model.layers.0.self_attn.q_proj.miss_block` has shape [8, 64], but layer `model.layers.0.self_attn.q_proj` expects [8, 32]",
            dir.join(ADAPTER_WEIGHTS_FILE).display()
        )
    );
}

#[test]
fn config_errors_name_the_field_and_the_value() {
    let file = "adapter_config.json";
    let err = |text: &str| {
        AdapterConfig::from_json_str(text, file)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(r#"{"peft_type": "IA3", "r": 8, "target_modules": ["q_proj"]}"#),
        "adapter_config.json: field `peft_type`: expected one of MISS, BONE, LORA, found \"IA3\""
    );
    assert_eq!(
        err(r#"{"peft_type": "MISS", "r": 0, "target_modules": ["q_proj"]}"#),
        "adapter_config.json: field `r`: expected a positive integer, found 0"
    );
    assert_eq!(
        err(r#"{"peft_type": "MISS", "r": 8, "init_weights": "pissa", "target_modules": ["q_proj"]}"#),
        "adapter_config.json: field `init_weights`: expected true, false, \"bat\" or \"mini\", found \"pissa\""
    );
    assert_eq!(
        err(
            r#"{"peft_type": "MISS", "r": 8, "init_weights": "mini", "mini_r": 0, "target_modules": ["q_proj"]}"#
        ),
        "adapter_config.json: field `mini_r`: expected a positive integer, found 0"
    );
    assert_eq!(
        err(
            r#"{"peft_type": "MISS", "r": 8, "init_weights": "mini", "mini_r": "4", "target_modules": ["q_proj"]}"#
        ),
        "adapter_config.json: field `mini_r`: expected a positive integer, found \"4\""
    );
    assert_eq!(
        err(r#"{"peft_type": "LORA", "r": 8, "use_dora": true, "target_modules": ["q_proj"]}"#),
        "adapter_config.json: field `use_dora`: expected false (not supported otherwise), found true"
    );
    assert_eq!(
        err(r#"{"peft_type": "MISS", "r": 8}"#),
        "adapter_config.json: field `target_modules`: expected a list of module names or a regex, found nothing"
    );
    assert_eq!(
        err(r#"{"peft_type": "MISS", "r": "8", "target_modules": ["q_proj"]}"#),
        "adapter_config.json: field `r`: expected a positive integer, found \"8\""
    );
    assert_eq!(
        err("{\"peft_type\": \n"),
        "adapter_config.json: invalid adapter config: EOF while parsing a value at line 2 column 0"
    );
    assert_eq!(
        err("[1]"),
        "adapter_config.json: invalid adapter config: expected a JSON object at the top level"
    );
}

#[test]
fn values_a_cast_or_a_skipped_regex_would_hide_are_errors() {
    let file = "adapter_config.json";
    let err = |text: &str| {
        AdapterConfig::from_json_str(text, file)
            .unwrap_err()
            .to_string()
    };
    // A negative index must not wrap around to a huge usize.
    assert_eq!(
        err(r#"{"peft_type": "MISS", "r": 8, "layers_to_transform": -1, "target_modules": ["q_proj"]}"#),
        "adapter_config.json: field `layers_to_transform`: expected a layer index or a list of layer indices, found -1"
    );
    assert_eq!(
        err(r#"{"peft_type": "LORA", "r": -8, "target_modules": ["q_proj"]}"#),
        "adapter_config.json: field `r`: expected a positive integer, found -8"
    );
    assert_eq!(
        err(r#"{"peft_type": "LORA", "r": 8, "rank_pattern": {"q_proj": -4}, "target_modules": ["q_proj"]}"#),
        "adapter_config.json: field `rank_pattern`: expected an object mapping module-name patterns to positive integers, found {\"q_proj\":-4}"
    );
    // An invalid rank_pattern key used to be skipped, leaving its layers at the default rank.
    assert_eq!(
        err(r#"{"peft_type": "LORA", "r": 8, "rank_pattern": {"q_proj(": 4}, "target_modules": ["q_proj"]}"#),
        "adapter_config.json: field `rank_pattern`: expected module-name patterns that are valid regular expressions, found \"q_proj(\" (regex parse error:\n    q_proj(\n          ^\nerror: unclosed group)"
    );
    // Built in code, the same key fails where the config is applied.
    let mut config = AdapterConfig::from_spec(
        &AdapterSpec::lora(8, 16.0),
        TargetModules::names(&["q_proj"]),
    );
    config.alpha_pattern.insert("[".into(), 4.0);
    let device = device();
    let mut layers = stories260k_linears::<TB>(&device);
    assert_eq!(
        layers.add_adapter("a", &config, &device).unwrap_err().to_string(),
        "adapter_config.json: field `alpha_pattern`: expected module-name patterns that are valid regular expressions, found \"[\" (regex parse error:\n    [\n    ^\nerror: unclosed character class)"
    );
    assert!(layers.adapter_names().is_empty());
}

#[test]
fn configs_peft_wrote_are_written_back_as_they_were() {
    for method in ["bone", "bat", "lora", "mini"] {
        let path = golden_dir(method).join(ADAPTER_CONFIG_FILE);
        let config = AdapterConfig::load(&path).unwrap();
        assert_eq!(config.to_json(), json(&path), "{method}");
    }
}

#[test]
fn a_missing_folder_or_file_names_the_path() {
    let device = device();
    let mut layers = stories260k_linears::<TB>(&device);
    let dir = tmp_dir("empty");
    let err = load_adapter(&mut layers, &dir, "x", &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "reading {}: ",
            dir.join(ADAPTER_CONFIG_FILE).display()
        )),
        "{err}"
    );
    std::fs::write(
        dir.join(ADAPTER_CONFIG_FILE),
        r#"{"peft_type": "MISS", "r": 8, "target_modules": ["q_proj"]}"#,
    )
    .unwrap();
    std::fs::write(dir.join(ADAPTER_WEIGHTS_FILE), b"not a safetensors file").unwrap();
    let err = load_adapter(&mut layers, &dir, "x", &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{}: invalid safetensors file: ",
            dir.join(ADAPTER_WEIGHTS_FILE).display()
        )),
        "{err}"
    );
}

#[test]
fn targets_that_match_nothing_are_an_error() {
    let device = device();
    let mut layers = stories260k_linears::<TB>(&device);
    let config = AdapterConfig::from_spec(
        &AdapterSpec::bone(8),
        TargetModules::names(&["query", "value"]),
    );
    let err = layers
        .add_adapter("a", &config, &device)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "target_modules [query, value] matched none of the model's 35 linear layers (e.g. model.layers.0.mlp.down_proj)"
    );
}

#[test]
fn bat_on_a_layer_it_cannot_divide_names_the_layer_and_changes_nothing() {
    let device = device();
    let mut layers = stories260k_linears::<TB>(&device);
    // r = 8 divides 64 but not gate_proj's 172 outputs.
    let config = AdapterConfig::from_spec(
        &AdapterSpec::bat(8),
        TargetModules::names(&["q_proj", "gate_proj"]),
    );
    let err = layers
        .add_adapter("a", &config, &device)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Bat needs in and out to be multiples of r, but layer `model.layers.0.mlp.gate_proj` has in=64, out=172, r=8 (in % r = 0, out % r = 4); choose an r that divides both or use Bone, which supports any r"
    );
    assert!(layers.adapter_names().is_empty());
}

#[test]
fn model_level_operations_mirror_peft_model() {
    let device = device();
    let mut layers = stories260k_linears::<TB>(&device);
    let x = random::<TB, 2>([4, 172], &device);
    let base = outputs(&layers, &x);
    let bone = AdapterConfig::from_spec(
        &AdapterSpec::bone(8).with_random_init(),
        TargetModules::names(&["q_proj"]),
    );
    let lora = AdapterConfig::from_spec(
        &AdapterSpec::lora(4, 8.0).with_random_init(),
        TargetModules::names(&["v_proj", "q_proj"]),
    );
    layers.add_adapter("bone", &bone, &device).unwrap();
    layers.add_adapter("lora", &lora, &device).unwrap();
    assert_eq!(layers.adapter_names(), ["bone", "lora"]);
    layers.set_active_adapters(&["bone", "lora"]).unwrap();
    let both = outputs(&layers, &x);
    layers.merge_adapters(None, true).unwrap();
    assert!(max_rel_diff(&outputs(&layers, &x), &both) < 1e-4);
    layers.disable_adapters().unwrap();
    assert!(max_rel_diff(&outputs(&layers, &x), &base) < 1e-5);
    layers.enable_adapters();
    assert!(max_rel_diff(&outputs(&layers, &x), &both) < 1e-5);
    assert_eq!(
        layers
            .set_active_adapters(&["nope"])
            .unwrap_err()
            .to_string(),
        "unknown adapter `nope` on layer `<model>`; adapters present: [bone, lora]"
    );
    layers.delete_adapter("lora").unwrap();
    assert_eq!(layers.adapter_names(), ["bone"]);
    assert_eq!(layers.adapter_trainable_params(), 5 * 8 * 64);
}
