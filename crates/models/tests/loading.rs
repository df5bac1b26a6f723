//! Half-precision and sharded checkpoints, and models run in half precision.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests

use crate::common;

use bone_io::tensors::{read_safetensors, write_safetensors};
use burn::backend::Flex;
use burn::tensor::{DType, FloatDType, Tensor};
use common::*;
use models::{GenerationConfig, LlamaForCausalLM, LoadOptions};

fn golden_logits() -> (Vec<u32>, Vec<f32>) {
    let g = golden("llama_stories260k_forward");
    (ids(&g["input_ids"]), f32s(&g["logits"]))
}

#[test]
fn f16_and_bf16_checkpoints_are_converted_on_load() {
    let (input, expected) = golden_logits();
    let source = read_safetensors(&stories().join("model.safetensors")).unwrap();
    for (dtype, tol) in [(DType::F16, 2e-2), (DType::BF16, 1e-1)] {
        let dir = tempfile::tempdir().unwrap();
        let converted = source
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().convert_dtype(dtype)))
            .collect();
        write_safetensors(
            &dir.path().join("model.safetensors"),
            &converted,
            &[("format", "pt")],
        )
        .unwrap();
        std::fs::copy(
            stories().join("config.json"),
            dir.path().join("config.json"),
        )
        .unwrap();
        let m =
            LlamaForCausalLM::<TB>::from_pretrained(dir.path(), &LoadOptions::default(), &device())
                .unwrap();
        let logits = m.forward(ids_tensor(&[input.clone()], &device()), None, None);
        assert_eq!(
            logits.dtype(),
            DType::F32,
            "loaded into the run's float type"
        );
        let d = assert_close(
            &format!("{dtype:?} checkpoint"),
            &values(&logits),
            &expected,
            tol,
        );
        assert!(d > 0.0, "the conversion must have happened");
    }
}

#[test]
fn sharded_checkpoints_load_through_their_index() {
    let (input, expected) = golden_logits();
    let source = read_safetensors(&stories().join("model.safetensors")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b): (Vec<_>, Vec<_>) = source
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let mut map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let part: std::collections::BTreeMap<_, _> = part.into_iter().map(|(_, kv)| kv).collect();
        for k in part.keys() {
            map.insert(k.clone(), serde_json::Value::String(file.into()));
        }
        write_safetensors(&dir.path().join(file), &part, &[("format", "pt")]).unwrap();
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    std::fs::copy(
        stories().join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let m = LlamaForCausalLM::<TB>::from_pretrained(dir.path(), &LoadOptions::default(), &device())
        .unwrap();
    let logits = m.forward(ids_tensor(&[input.clone()], &device()), None, None);
    assert_close("sharded checkpoint", &values(&logits), &expected, 1e-4);

    // Saving keeps the shards and the index.
    let out = tempfile::tempdir().unwrap();
    let report = models::export::save_pretrained(&m, out.path()).unwrap();
    assert_eq!(report.weight_files.len(), 2);
    assert!(out.path().join("model.safetensors.index.json").is_file());
    let again =
        LlamaForCausalLM::<TB>::from_pretrained(out.path(), &LoadOptions::default(), &device())
            .unwrap();
    let logits = again.forward(ids_tensor(&[input], &device()), None, None);
    assert_close(
        "sharded checkpoint saved again",
        &values(&logits),
        &expected,
        1e-4,
    );
}

#[test]
fn models_run_in_half_precision_on_flex() {
    let (input, expected) = golden_logits();
    let device = Default::default();
    for (dtype, tol) in [(FloatDType::F16, 5e-2), (FloatDType::BF16, 2e-1)] {
        let m = LlamaForCausalLM::<Flex>::from_pretrained(
            stories(),
            &LoadOptions::default().with_dtype(dtype),
            &device,
        )
        .unwrap();
        let logits = m.forward(ids_tensor(&[input.clone()], &device), None, None);
        assert_eq!(logits.dtype(), DType::from(dtype));
        let logits: Tensor<Flex, 3> = logits.cast(FloatDType::F32);
        assert_close(
            &format!("{dtype:?} model"),
            &values(&logits),
            &expected,
            tol,
        );
        let out = m
            .generate(&[input.clone()], &GenerationConfig::greedy(5))
            .unwrap();
        assert_eq!(out.sequences[0].len(), 10);
    }
}

#[test]
fn a_separate_lm_head_is_loaded_and_used() {
    let (input, expected) = golden_logits();
    let mut tensors = read_safetensors(&stories().join("model.safetensors")).unwrap();
    // An untied copy whose lm_head equals the embeddings gives the same logits ...
    tensors.insert(
        "lm_head.weight".into(),
        tensors["model.embed_tokens.weight"].clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    write_safetensors(&dir.path().join("model.safetensors"), &tensors, &[]).unwrap();
    let config = std::fs::read_to_string(stories().join("config.json"))
        .unwrap()
        .replace(
            "\"tie_word_embeddings\": true",
            "\"tie_word_embeddings\": false",
        );
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let m = LlamaForCausalLM::<TB>::from_pretrained(dir.path(), &LoadOptions::default(), &device())
        .unwrap();
    assert!(m.lm_head.is_some());
    let logits = m.forward(ids_tensor(&[input.clone()], &device()), None, None);
    assert_close("untied lm_head", &values(&logits), &expected, 1e-4);
    // ... and a different lm_head changes them.
    let scaled: Vec<f32> = f32s(&tensors["model.embed_tokens.weight"])
        .iter()
        .map(|v| v * 2.0)
        .collect();
    tensors.insert(
        "lm_head.weight".into(),
        burn::tensor::TensorData::new(scaled, [512, 64]),
    );
    write_safetensors(&dir.path().join("model.safetensors"), &tensors, &[]).unwrap();
    let m = LlamaForCausalLM::<TB>::from_pretrained(dir.path(), &LoadOptions::default(), &device())
        .unwrap();
    let doubled = values(&m.forward(ids_tensor(&[input], &device()), None, None));
    let twice: Vec<f32> = expected.iter().map(|v| v * 2.0).collect();
    assert_close("lm_head doubled", &doubled, &twice, 1e-4);
}
