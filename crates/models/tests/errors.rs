//! The messages users see for broken model folders: exact text.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use bone_io::tensors::{read_safetensors, write_safetensors};
use burn::tensor::TensorData;
use common::*;
use models::{AutoModel, LlamaForCausalLM, LoadOptions, SequenceClassificationModel, Tokenizer};

fn copy_with(src: &Path, dst: &Path, edit: impl FnOnce(&mut BTreeMap<String, TensorData>)) {
    let mut tensors = read_safetensors(&src.join("model.safetensors")).unwrap();
    edit(&mut tensors);
    write_safetensors(
        &dst.join("model.safetensors"),
        &tensors,
        &[("format", "pt")],
    )
    .unwrap();
    std::fs::copy(src.join("config.json"), dst.join("config.json")).unwrap();
}

fn load_err(dir: &Path) -> String {
    AutoModel::<TB>::from_pretrained(dir, &LoadOptions::default(), &device())
        .unwrap_err()
        .to_string()
}

#[test]
fn missing_folder() {
    assert_eq!(
        load_err(Path::new("/no/such/model")),
        "model folder /no/such/model does not exist"
    );
}

#[test]
fn missing_config_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        load_err(dir.path()),
        format!(
            "{}: missing config.json (the Hugging Face model configuration)",
            dir.path().display()
        )
    );
    std::fs::copy(
        stories().join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    assert_eq!(
        load_err(dir.path()),
        format!(
            "{}: missing model.safetensors (the weights, as one file or as shards listed in \
             model.safetensors.index.json; PyTorch .bin checkpoints are not supported, convert them to safetensors)",
            dir.path().display()
        )
    );
}

#[test]
fn unsupported_model_type() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "gpt2", "n_embd": 768}"#,
    )
    .unwrap();
    assert_eq!(
        load_err(dir.path()),
        format!(
            "{}/config.json: unsupported model_type \"gpt2\" (supported: llama, mistral, qwen2, qwen3, bert, roberta)",
            dir.path().display()
        )
    );
}

#[test]
fn invalid_config_fields_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "llama", "hidden_size": 64}"#,
    )
    .unwrap();
    assert_eq!(
        load_err(dir.path()),
        format!(
            "{}/config.json: field `intermediate_size`: expected a valid Hugging Face configuration, \
             found missing field `intermediate_size`",
            dir.path().display()
        )
    );
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    assert!(load_err(dir.path()).starts_with(&format!(
        "{}/config.json: invalid JSON: ",
        dir.path().display()
    )));
    let text = std::fs::read_to_string(stories().join("config.json"))
        .unwrap()
        .replace("\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3");
    std::fs::write(dir.path().join("config.json"), text).unwrap();
    assert_eq!(
        load_err(dir.path()),
        format!(
            "{}/config.json: field `num_key_value_heads`: expected a divisor of num_attention_heads 8, found 3",
            dir.path().display()
        )
    );
    let text = std::fs::read_to_string(stories().join("config.json"))
        .unwrap()
        .replacen('{', "{\"attention_dropout\": 1.5, ", 1);
    std::fs::write(dir.path().join("config.json"), text).unwrap();
    assert_eq!(
        load_err(dir.path()),
        format!(
            "{}/config.json: field `attention_dropout`: expected a probability in [0, 1), found 1.5",
            dir.path().display()
        )
    );
}

#[test]
fn missing_tensor() {
    let dir = tempfile::tempdir().unwrap();
    copy_with(&stories(), dir.path(), |t| {
        t.remove("model.layers.2.mlp.up_proj.weight");
    });
    assert_eq!(
        load_err(dir.path()),
        format!(
            "{}: missing tensor `model.layers.2.mlp.up_proj.weight`",
            dir.path().display()
        )
    );
}

#[test]
fn misshaped_tensor() {
    let dir = tempfile::tempdir().unwrap();
    copy_with(&stories(), dir.path(), |t| {
        t.insert(
            "model.layers.0.self_attn.q_proj.weight".into(),
            TensorData::new(vec![0.0f32; 64 * 60], [64, 60]),
        );
    });
    let err =
        LlamaForCausalLM::<TB>::from_pretrained(dir.path(), &LoadOptions::default(), &device())
            .unwrap_err()
            .to_string();
    assert_eq!(
        err,
        format!(
            "{}/model.safetensors: tensor `model.layers.0.self_attn.q_proj.weight` has shape [64, 60], expected [64, 64]",
            dir.path().display()
        )
    );
    // Encoder checkpoints name the tensor with their prefix.
    let dir = tempfile::tempdir().unwrap();
    copy_with(&roberta_tiny(), dir.path(), |t| {
        t.insert(
            "roberta.encoder.layer.0.attention.self.query.weight".into(),
            TensorData::new(vec![0.0f32; 48 * 40], [48, 40]),
        );
    });
    let err = SequenceClassificationModel::<TB>::from_pretrained(
        dir.path(),
        &Default::default(),
        &device(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        format!(
            "{}/model.safetensors: tensor `roberta.encoder.layer.0.attention.self.query.weight` has shape [48, 40], expected [48, 48]",
            dir.path().display()
        )
    );
}

#[test]
fn wrong_model_kind_and_missing_tokenizer() {
    let err =
        LlamaForCausalLM::<TB>::from_pretrained(roberta_tiny(), &LoadOptions::default(), &device())
            .unwrap_err()
            .to_string();
    assert_eq!(
        err,
        format!(
            "LlamaForCausalLM::from_pretrained needs a llama checkpoint, but {} holds a roberta model",
            roberta_tiny().display()
        )
    );
    let err = Tokenizer::from_pretrained(roberta_tiny())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: missing tokenizer.json (the tokenizer (only fast tokenizers saved as tokenizer.json are supported))",
            roberta_tiny().display()
        )
    );
}
