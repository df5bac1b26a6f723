//! Mistral, Qwen2 and Qwen3 through the one LLaMA decoder, against transformers (tiny random
//! checkpoints, a right-padded batch and 12 greedy tokens); Llama 3 RoPE scaling against the
//! formula; sliding windows; models built from a config with random weights.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use models::export::{save_pretrained, HfExport};
use models::llama::{DecoderKind, RotaryEmbedding};
use models::{Checkpoint, GenerationConfig, LlamaConfig, LlamaForCausalLM, LoadOptions};
use serde_json::{json, Value};

use super::common::*;

fn family_dir(name: &str) -> PathBuf {
    shared_dir().join(format!("golden/{name}_tiny_random"))
}

fn load(dir: &Path) -> LlamaForCausalLM<TB> {
    LlamaForCausalLM::from_pretrained(dir, &LoadOptions::default(), &device()).unwrap()
}

/// Logits of the right-padded batch (all positions, and the real tokens with positions from
/// the mask) and the greedy continuation of row 0, with and without the cache.
fn check_family(name: &str, kind: DecoderKind, architecture: &str) {
    let g = golden(&format!("{name}_tiny_forward"));
    let m = load(&family_dir(name));
    assert_eq!(m.kind(), kind);
    assert_eq!(kind.architecture(), architecture);
    let device = device();
    let input = int_tensor::<TB, 2>(&g["input_ids"], &device);
    let mask = int_tensor::<TB, 2>(&g["attention_mask"], &device);
    let [b, t] = input.dims();
    let expected = f32s(&g["logits"]);

    // transformers' forward numbers positions 0..t whatever the mask.
    let positions = Tensor::<TB, 1, Int>::arange(0..t as i64, &device)
        .reshape([1, t])
        .expand([b, t]);
    let hidden = m.forward_hidden(input.clone(), Some(mask.clone()), Some(positions), None);
    let logits = m.lm_logits(hidden);
    assert_eq!(logits.dims(), [b, t, 512]);
    assert_close(&format!("{name} logits"), &values(&logits), &expected, 1e-4);

    // Positions from the mask agree on every real token (right padding leaves them alone).
    let from_mask = values(&m.forward(input, Some(mask), None));
    let real: Vec<i64> = g["attention_mask"].iter::<i64>().collect();
    let pick = |v: &[f32]| -> Vec<f32> {
        (0..b * t)
            .filter(|&i| real[i] == 1)
            .flat_map(|i| v[i * 512..(i + 1) * 512].to_vec())
            .collect()
    };
    assert_eq!(real.iter().filter(|&&r| r == 0).count(), 3);
    assert_close(
        &format!("{name} logits of real tokens, positions from the mask"),
        &pick(&from_mask),
        &pick(&expected),
        1e-4,
    );

    let generated = ids(&g["generated_ids"]);
    let prompt = generated[..t].to_vec();
    for use_cache in [true, false] {
        let config = GenerationConfig {
            use_cache,
            ..GenerationConfig::greedy(12)
        };
        let out = m.generate(&[prompt.clone()], &config).unwrap();
        assert_eq!(
            out.sequences[0], generated,
            "{name}, use_cache = {use_cache}"
        );
    }
}

#[test]
fn qwen2_matches_transformers() {
    check_family("qwen2", DecoderKind::Qwen2, "Qwen2ForCausalLM");
}

#[test]
fn qwen3_matches_transformers() {
    check_family("qwen3", DecoderKind::Qwen3, "Qwen3ForCausalLM");
}

#[test]
fn mistral_matches_transformers() {
    check_family("mistral", DecoderKind::Mistral, "MistralForCausalLM");
}

/// The modules of each family carry exactly the checkpoint's names, and a saved model loads
/// back to the same logits.
#[test]
fn family_names_round_trip_through_save_pretrained() {
    for name in ["qwen2", "qwen3", "mistral"] {
        let dir = family_dir(name);
        let m = load(&dir);
        let source: BTreeSet<String> = Checkpoint::open(&dir)
            .unwrap()
            .names()
            .map(String::from)
            .collect();
        let ours: BTreeSet<String> = m.hf_state_dict().into_keys().collect();
        assert_eq!(ours, source, "{name}");
        let out = tempfile::tempdir().unwrap();
        let report = save_pretrained(&m, out.path()).unwrap();
        assert_eq!(report.tensors, source.len(), "{name}");
        let back = load(out.path());
        let ids = ids_tensor(&[vec![1, 300, 41, 263]], &device());
        assert_close(
            &format!("{name} saved and reloaded"),
            &values(&back.forward(ids.clone(), None, None)),
            &values(&m.forward(ids, None, None)),
            0.0,
        );
    }
}

fn config_from(value: Value) -> Result<LlamaConfig, String> {
    LlamaConfig::from_value(&value, Path::new("config.json")).map_err(|e| e.to_string())
}

fn tiny(extra: Value) -> Value {
    let mut base = json!({
        "model_type": "llama", "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 64, "rms_norm_eps": 1e-6, "tie_word_embeddings": false
    });
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// transformers' `_compute_llama3_parameters`, in f64.
fn llama3_reference(
    base: f64,
    dim: usize,
    factor: f64,
    low: f64,
    high: f64,
    original: f64,
) -> Vec<f64> {
    let low_wavelen = original / low;
    let high_wavelen = original / high;
    (0..dim / 2)
        .map(|i| {
            let inv = 1.0 / base.powf((2 * i) as f64 / dim as f64);
            let wavelen = 2.0 * std::f64::consts::PI / inv;
            let inv_llama = if wavelen > low_wavelen {
                inv / factor
            } else {
                inv
            };
            let smooth = (original / wavelen - low) / (high - low);
            let smoothed = (1.0 - smooth) * inv_llama / factor + smooth * inv_llama;
            // transformers: `~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)`.
            let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
            if medium {
                smoothed
            } else {
                inv_llama
            }
        })
        .collect()
}

#[test]
fn llama3_rope_scaling_matches_the_formula() {
    let scaling = json!({
        "rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192
    });
    let expected = llama3_reference(500_000.0, 64, 32.0, 1.0, 4.0, 8192.0);
    let plain: Vec<f64> = (0..32)
        .map(|i| 1.0 / 500_000f64.powf((2 * i) as f64 / 64.0))
        .collect();
    // The three regimes all occur: kept, divided by the factor, interpolated.
    let kept = (0..32).filter(|&i| expected[i] == plain[i]).count();
    let divided = (0..32).filter(|&i| expected[i] == plain[i] / 32.0).count();
    assert!(
        kept > 0 && divided > 0 && kept + divided < 32,
        "{kept} {divided}"
    );

    let mut v5 = scaling.clone();
    v5["rope_theta"] = json!(500_000.0);
    for config in [
        // transformers ≥ 5: everything in rope_parameters.
        tiny(json!({"hidden_size": 256, "rope_parameters": v5})),
        // transformers 4: rope_theta and rope_scaling.
        tiny(json!({"hidden_size": 256, "rope_theta": 500_000.0, "rope_scaling": scaling})),
    ] {
        let config = config_from(config).unwrap();
        assert_eq!(config.head_dim(), 64);
        let ours = RotaryEmbedding::new(&config);
        let ours: Vec<f64> = ours.inv_freq().iter().map(|&f| f as f64).collect();
        assert_eq!(ours.len(), 32);
        for (i, (a, b)) in ours.iter().zip(&expected).enumerate() {
            assert!((a - b).abs() <= 1e-6 * b.abs(), "inv_freq[{i}]: {a} vs {b}");
        }
    }
}

#[test]
fn unsupported_family_settings_are_errors_naming_the_field() {
    let err = config_from(tiny(
        json!({"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}),
    ))
    .unwrap_err();
    assert_eq!(
        err,
        "config.json: field `rope_parameters.rope_type`: expected default, linear or llama3, found \"yarn\""
    );
    let err = config_from(tiny(
        json!({"model_type": "qwen2", "use_sliding_window": true, "sliding_window": 16}),
    ))
    .unwrap_err();
    assert_eq!(
        err,
        "config.json: field `use_sliding_window`: expected false (sliding-window attention is supported for mistral, not qwen2), found true"
    );
    let err = config_from(tiny(json!({
        "model_type": "qwen3", "head_dim": 8,
        "layer_types": ["full_attention", "sliding_attention"]
    })))
    .unwrap_err();
    assert_eq!(
        err,
        "config.json: field `layer_types[1]`: expected full_attention, found \"sliding_attention\""
    );
    let err = config_from(tiny(json!({"model_type": "mistral", "sliding_window": 0}))).unwrap_err();
    assert_eq!(
        err,
        "config.json: field `sliding_window`: expected a positive number of tokens or null, found 0"
    );
    // Zero layers is a config field error, not a missing adapter target later on.
    let err =
        config_from(tiny(json!({"model_type": "llama", "num_hidden_layers": 0}))).unwrap_err();
    assert_eq!(
        err,
        "config.json: field `num_hidden_layers`: expected a positive integer, found 0"
    );
    // Qwen2's default configs name a window they do not use.
    let c = config_from(tiny(
        json!({"model_type": "qwen2", "use_sliding_window": false, "sliding_window": 4}),
    ))
    .unwrap();
    assert_eq!(c.attention_window(), None);
    assert!(c.qkv_bias() && !c.o_bias());
}

/// A Mistral layer with a 3-token window: the last position sees only the last 3 tokens, so
/// (RoPE being relative) one layer gives the same logits for the whole sequence as for its
/// last 3 tokens; the cache steps through the window like the full forward.
#[test]
fn sliding_window_limits_attention_in_the_mask_and_the_cache() {
    let device = device();
    let config = |window: Value| {
        config_from(tiny(json!({
            "model_type": "mistral", "num_hidden_layers": 1, "sliding_window": window
        })))
        .unwrap()
    };
    let windowed: LlamaForCausalLM<TB> = config(json!(3)).init(&device);
    let tokens = vec![5u32, 17, 9, 33, 2, 41, 8, 60];
    let last = |m: &LlamaForCausalLM<TB>, ids: &[u32]| {
        let logits = m.forward(ids_tensor(&[ids.to_vec()], &device), None, None);
        let [_, s, v] = logits.dims();
        values(&logits.narrow(1, s - 1, 1).reshape([v]))
    };
    let full = last(&windowed, &tokens);
    assert_close("window of 3", &full, &last(&windowed, &tokens[5..]), 1e-5);

    // Without the window (same weights) the earlier tokens change the result.
    let mut unwindowed: LlamaForCausalLM<TB> = config(Value::Null).init(&device);
    unwindowed = unwindowed.load_record(windowed.clone().into_record());
    assert!(max_rel_diff(&last(&unwindowed, &tokens), &full) > 1e-3);

    // Token by token through the cache: the same logits as the full forward.
    let all = windowed.forward(ids_tensor(&[tokens.clone()], &device), None, None);
    let mut cache = windowed.new_cache();
    let steps: Vec<_> = tokens
        .iter()
        .map(|&t| windowed.forward(ids_tensor(&[vec![t]], &device), None, Some(&mut cache)))
        .collect();
    assert_close(
        "cached steps with a window",
        &values(&Tensor::cat(steps, 1)),
        &values(&all),
        1e-5,
    );
    // The cache holds only the window: 8 tokens seen, 3 kept.
    assert_eq!(
        (cache.len(), cache.stored_len(), cache.dropped()),
        (8, 3, 5)
    );
    let greedy = |use_cache| GenerationConfig {
        use_cache,
        eos_token_ids: Some(vec![]),
        ..GenerationConfig::greedy(10)
    };
    assert_eq!(
        windowed.generate(&[tokens.clone()], &greedy(true)).unwrap(),
        windowed
            .generate(&[tokens.clone()], &greedy(false))
            .unwrap()
    );
    // A left-padded batch through the bounded cache (positions continue after the dropped
    // tokens, padding stays masked) generates what recomputing everything does.
    let batch = [tokens.clone(), tokens[3..].to_vec()];
    assert_eq!(
        windowed.generate(&batch, &greedy(true)).unwrap(),
        windowed.generate(&batch, &greedy(false)).unwrap()
    );
    // A prompt given in two chunks, the second with a mask over everything seen.
    let mut cache = windowed.new_cache();
    let first = windowed.forward(
        ids_tensor(&[tokens[..5].to_vec()], &device),
        None,
        Some(&mut cache),
    );
    assert_eq!(cache.stored_len(), 3);
    let mask = Tensor::<TB, 2, Int>::ones([1, 8], &device);
    let second = windowed.forward(
        ids_tensor(&[tokens[5..].to_vec()], &device),
        Some(mask),
        Some(&mut cache),
    );
    assert_close(
        "two chunks through a windowed cache",
        &values(&Tensor::cat(vec![first, second], 1)),
        &values(&all),
        1e-5,
    );
}

/// A Qwen3 model from a config written in code: shapes, parameter count, Hugging Face names,
/// and a forward and backward pass with every parameter trained.
#[test]
fn a_model_built_from_a_config_trains_without_a_checkpoint() {
    type AB = Autodiff<TB>;
    let device = device();
    let config = config_from(tiny(json!({"model_type": "qwen3", "head_dim": 16}))).unwrap();
    let model: LlamaForCausalLM<AB> = config.init(&device);
    assert_eq!(model.num_params(), config.num_params());
    assert_eq!(model.trainable_params(), 0);
    let names: BTreeSet<String> = model.hf_state_dict().into_keys().collect();
    assert!(names.contains("model.layers.1.self_attn.q_norm.weight"));
    assert!(!names.contains("model.layers.1.self_attn.q_proj.bias"));
    assert_eq!(names.len(), 2 + 2 * 11 + 1);

    let model = model.set_full_finetune(true);
    let ids = [vec![1u32, 7, 9, 12, 3], vec![4, 4, 20, 63, 0]];
    let input = ids_tensor::<AB>(&ids, &device);
    let labels = input.clone();
    let mask = Tensor::<AB, 2, Int>::from_data(
        TensorData::new(vec![1i64, 1, 1, 1, 1, 1, 1, 1, 1, 0], [2, 5]),
        &device,
    );
    let out = model.forward_lm(input, Some(mask), labels);
    assert_eq!(out.logits.dims(), [2, 4, 64]);
    let loss = out.loss.clone().into_scalar();
    // Random weights predict about uniformly over 64 tokens.
    assert!((loss - 64f32.ln()).abs() < 1.0, "{loss}");
    let grads = out.loss.backward();
    let attn = &model.model.layers[1].self_attn;
    for (what, grad) in [
        (
            "q_norm",
            attn.q_norm
                .as_ref()
                .unwrap()
                .gamma
                .grad(&grads)
                .map(|g| values(&g)),
        ),
        (
            "embed_tokens",
            model
                .model
                .embed_tokens
                .weight
                .grad(&grads)
                .map(|g| values(&g)),
        ),
        (
            "q_proj",
            attn.q_proj.base.weight.grad(&grads).map(|g| values(&g)),
        ),
    ] {
        let grad = grad.unwrap_or_else(|| panic!("{what} has no gradient"));
        assert!(grad.iter().all(|g| g.is_finite()), "{what}");
        assert!(grad.iter().any(|&g| g != 0.0), "{what}");
    }
}
