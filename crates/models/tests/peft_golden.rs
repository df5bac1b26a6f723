//! PEFT Bone, Bat, MiSS-mini and LoRA adapters (written by PEFT 0.21.2) on stories260K: logits with the
//! adapter and after merging; our own adapters saved and loaded; merged checkpoints saved in
//! Hugging Face layout and loaded back.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests

use crate::common;

use bone_module::peft::{load_adapter, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};
use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use common::*;
use models::export::save_pretrained;
use models::targets::{all_block_linears, default_target_modules};
use models::{
    AutoModel, ClassifierOptions, LlamaForCausalLM, LoadOptions, ModelFamily,
    SequenceClassificationModel,
};

fn model() -> LlamaForCausalLM<TB> {
    LlamaForCausalLM::from_pretrained(stories(), &LoadOptions::default(), &device()).unwrap()
}

fn check(method: &str, layers: usize) {
    let device = device();
    let g = golden(&format!("peft_{method}_stories260k"));
    let dir = shared_dir().join(format!("golden/peft_{method}_stories260k"));
    let mut m = model();
    let loaded = load_adapter(&mut m, &dir, "default", &device).unwrap();
    assert_eq!(loaded.layers.len(), layers);
    let input = ids_tensor::<TB>(&[ids(&g["input_ids"])], &device);
    let logits = m.forward(input.clone(), None, None);
    assert_close(
        &format!("{method}: logits with the adapter"),
        &values(&logits),
        &f32s(&g["logits"]),
        1e-4,
    );

    m.merge_adapters(None, true).unwrap();
    let merged = m.forward(input.clone(), None, None);
    assert_close(
        &format!("{method}: merged logits"),
        &values(&merged),
        &f32s(&g["merged_logits"]),
        1e-4,
    );

    // A merged checkpoint in Hugging Face layout loads back with the merged logits.
    let out = tempfile::tempdir().unwrap();
    let report = save_pretrained(&m, out.path()).unwrap();
    assert_eq!(report.tensors, 47, "same tensors as the source");
    assert!(
        out.path().join("tokenizer.json").is_file() && out.path().join("config.json").is_file()
    );
    let reloaded =
        LlamaForCausalLM::<TB>::from_pretrained(out.path(), &LoadOptions::default(), &device)
            .unwrap();
    let again = reloaded.forward(input, None, None);
    assert_close(
        &format!("{method}: merged checkpoint reloaded"),
        &values(&again),
        &f32s(&g["merged_logits"]),
        1e-4,
    );
    let source = bone_io::tensors::read_safetensors(&stories().join("model.safetensors")).unwrap();
    let saved = bone_io::tensors::read_safetensors(&out.path().join("model.safetensors")).unwrap();
    assert_eq!(
        source.keys().collect::<Vec<_>>(),
        saved.keys().collect::<Vec<_>>()
    );
}

#[test]
fn peft_bone_adapter_logits_and_merge_match() {
    check("bone", 35);
}

#[test]
fn peft_bat_adapter_logits_and_merge_match() {
    check("bat", 35);
}

#[test]
fn peft_lora_adapter_logits_and_merge_match() {
    check("lora", 35);
}

/// MiSS `init_weights="mini"` (r=16, mini_r=4) on q_proj, o_proj, up_proj and down_proj.
#[test]
fn peft_mini_adapter_logits_and_merge_match() {
    check("mini", 20);
}

#[test]
fn adapters_change_nothing_until_trained_and_the_base_stays_frozen() {
    let device = device();
    let mut m = model();
    assert_eq!(m.trainable_params(), 0);
    let input = ids_tensor::<TB>(&[vec![1, 403, 407, 261, 378]], &device);
    let base = values(&m.forward(input.clone(), None, None));
    let config = AdapterConfig::from_spec(
        &AdapterSpec::bone(8),
        default_target_modules(ModelFamily::Llama),
    );
    let targets = m.add_adapter("bone", &config, &device).unwrap();
    assert_eq!(targets.len(), 10, "q_proj and v_proj of 5 layers");
    assert_eq!(m.trainable_params(), 5 * (8 * 64 + 8 * 32));
    assert_eq!(
        values(&m.forward(input, None, None)),
        base,
        "zero-initialised Bone is the identity"
    );
    let all = AdapterConfig::from_spec(
        &AdapterSpec::lora(4, 8.0),
        all_block_linears(ModelFamily::Llama),
    );
    assert_eq!(m.add_adapter("lora", &all, &device).unwrap().len(), 35);
}

#[test]
fn saved_adapters_load_back_with_identical_outputs() {
    let device = device();
    let input = ids_tensor::<TB>(&[vec![1, 403, 407, 261, 378]], &device);
    for spec in [
        AdapterSpec::bone(8),
        AdapterSpec::bat(4),
        AdapterSpec::lora(4, 8.0),
    ] {
        let mut m = model();
        let config = AdapterConfig::from_spec(
            &spec.clone().with_random_init(),
            all_block_linears(ModelFamily::Llama),
        );
        m.add_adapter("mine", &config, &device).unwrap();
        let expected = values(&m.forward(input.clone(), None, None));
        let dir = tempfile::tempdir().unwrap();
        m.save_adapter("mine", &config, dir.path()).unwrap();
        let saved = AdapterConfig::load(dir.path()).unwrap();
        assert_eq!(saved.task_type.as_deref(), Some("CAUSAL_LM"));
        assert!(saved
            .base_model_name_or_path
            .unwrap()
            .ends_with("stories260K"));
        assert!(dir.path().join(ADAPTER_CONFIG_FILE).is_file());
        assert!(dir.path().join(ADAPTER_WEIGHTS_FILE).is_file());
        let mut fresh = model();
        load_adapter(&mut fresh, dir.path(), "default", &device).unwrap();
        let got = values(&fresh.forward(input.clone(), None, None));
        assert_close(
            &format!("{} round trip", spec.kind()),
            &got,
            &expected,
            1e-6,
        );
        let base = values(&model().forward(input.clone(), None, None));
        assert!(
            max_rel_diff(&got, &base) > 1e-3,
            "the random adapter must change the output"
        );
    }
}

#[test]
fn classifier_adapters_save_the_head_as_modules_to_save_and_load_back() {
    let device = device();
    let input = ids_tensor::<TB>(&[vec![101, 1037, 2158, 2003, 2652, 102]], &device);
    let options = ClassifierOptions {
        seed: Some(11),
        ..ClassifierOptions::with_num_labels(3)
    };
    let mut clf =
        SequenceClassificationModel::<TB>::from_pretrained(minilm(), &options, &device).unwrap();
    let config = AdapterConfig::from_spec(
        &AdapterSpec::bone(8).with_random_init(),
        default_target_modules(ModelFamily::Bert),
    );
    clf.add_adapter("glue", &config, &device).unwrap();
    let expected = values(&clf.forward(input.clone(), None, None));
    let dir = tempfile::tempdir().unwrap();
    clf.save_adapter("glue", &config, dir.path()).unwrap();

    let saved = bone_io::tensors::read_safetensors(&dir.path().join(ADAPTER_WEIGHTS_FILE)).unwrap();
    assert!(
        saved.contains_key("base_model.model.bert.encoder.layer.0.attention.self.query.miss_block")
    );
    assert_eq!(
        saved["base_model.model.classifier.weight"].shape.to_vec(),
        vec![3, 384]
    );
    assert!(saved.contains_key("base_model.model.classifier.bias"));
    let cfg = AdapterConfig::load(dir.path()).unwrap();
    assert_eq!(cfg.task_type.as_deref(), Some("SEQ_CLS"));
    assert_eq!(cfg.modules_to_save, Some(vec!["classifier".to_string()]));

    // A fresh classifier with another random head gets the saved head back.
    let other = ClassifierOptions {
        seed: Some(99),
        ..ClassifierOptions::with_num_labels(3)
    };
    let mut fresh =
        SequenceClassificationModel::<TB>::from_pretrained(minilm(), &other, &device).unwrap();
    fresh.load_adapter(dir.path(), "glue", &device).unwrap();
    assert_close(
        "classifier round trip",
        &values(&fresh.forward(input.clone(), None, None)),
        &expected,
        1e-6,
    );

    // AutoModel picks the classifier (with 3 labels) from the adapter alone.
    let mut auto =
        AutoModel::<TB>::for_adapter(minilm(), Some(dir.path()), &LoadOptions::default(), &device)
            .unwrap();
    assert_eq!(auto.architecture(), "BertForSequenceClassification");
    auto.load_adapter(dir.path(), "glue", &device).unwrap();
    let AutoModel::Classifier(auto) = auto else {
        unreachable!()
    };
    assert_close(
        "AutoModel classifier",
        &values(&auto.forward(input.clone(), None, None)),
        &expected,
        1e-6,
    );

    // Merged and saved: a BertForSequenceClassification checkpoint with the head.
    let mut merged = fresh;
    merged.merge_adapters(None, true).unwrap();
    let out = tempfile::tempdir().unwrap();
    save_pretrained(&merged, out.path()).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["id2label"].as_object().unwrap().len(), 3);
    let tensors =
        bone_io::tensors::read_safetensors(&out.path().join("model.safetensors")).unwrap();
    assert!(tensors.contains_key("bert.encoder.layer.0.attention.self.query.weight"));
    assert!(
        tensors.contains_key("bert.embeddings.position_ids"),
        "buffers are kept, renamed"
    );
    assert!(tensors.contains_key("classifier.weight"));
    let reloaded = SequenceClassificationModel::<TB>::from_pretrained(
        out.path(),
        &ClassifierOptions::default(),
        &device,
    )
    .unwrap();
    assert_eq!(reloaded.num_labels(), 3);
    assert_close(
        "merged classifier reloaded",
        &values(&reloaded.forward(input, None, None)),
        &expected,
        1e-5,
    );
}
