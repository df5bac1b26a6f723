//! stories260K against transformers: prompt logits, the 40-token greedy continuation (with
//! and without the KV cache), batching, sampling and the training loss; the other decoder
//! families in [`families`].

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests

use crate::common;
#[path = "llama_golden/families.rs"]
mod families;

use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use models::llama::{causal_lm_loss, FinishReason, IGNORE_INDEX};
use models::{GenerationConfig, LlamaForCausalLM, LoadOptions, Tokenizer};

fn model() -> LlamaForCausalLM<TB> {
    LlamaForCausalLM::from_pretrained(stories(), &LoadOptions::default(), &device()).unwrap()
}

#[test]
fn prompt_logits_match_transformers() {
    let g = golden("llama_stories260k_forward");
    let m = model();
    let input = ids(&g["input_ids"]);
    let logits = m.forward(ids_tensor(&[input.clone()], &device()), None, None);
    assert_eq!(logits.dims(), [1, input.len(), 512]);
    assert_close(
        "stories260K prompt logits",
        &values(&logits),
        &f32s(&g["logits"]),
        1e-4,
    );
}

#[test]
fn tokenizer_matches_the_golden_prompt_and_text() {
    let g = golden("llama_stories260k_forward");
    let tok = Tokenizer::from_pretrained(stories()).unwrap();
    assert_eq!(
        tok.encode("Once upon a time", true).unwrap(),
        ids(&g["input_ids"])
    );
    let text = tok.decode(&ids(&g["generated_ids"]), true).unwrap();
    assert_eq!(
        text,
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball."
    );
    assert_eq!(tok.special_tokens().bos, Some(1));
    assert_eq!(tok.special_tokens().eos, Some(2));
    // Streaming pieces concatenate to the full decode.
    let mut stream = tok.stream(true);
    let streamed: String = ids(&g["generated_ids"])
        .iter()
        .map(|&t| stream.push(t).unwrap())
        .collect();
    assert_eq!(streamed, text);
}

#[test]
fn greedy_continuation_matches_with_and_without_cache() {
    let g = golden("llama_stories260k_forward");
    let m = model();
    let prompt = ids(&g["input_ids"]);
    let expected = ids(&g["generated_ids"]);
    for use_cache in [true, false] {
        let config = GenerationConfig {
            use_cache,
            ..GenerationConfig::greedy(40)
        };
        let mut streamed = Vec::new();
        let out = m
            .generate_with(&[prompt.clone()], &config, |row, t| streamed.push((row, t)))
            .unwrap();
        assert_eq!(out.sequences[0], expected, "use_cache = {use_cache}");
        assert_eq!(out.finish_reasons, vec![FinishReason::MaxTokens]);
        assert_eq!(out.new_tokens(0), &expected[5..]);
        assert_eq!(streamed.len(), 40);
        assert!(streamed.iter().all(|(row, _)| *row == 0));
    }
}

#[test]
fn cached_steps_give_the_full_forward_logits_token_for_token() {
    let g = golden("llama_stories260k_forward");
    let m = model();
    let all = ids(&g["generated_ids"]);
    let device = device();
    let full = m.forward(ids_tensor(&[all.clone()], &device), None, None);
    // The golden prompt logits are the first 5 positions of the full forward.
    let prefix = full.clone().narrow(1, 0, 5);
    assert_close(
        "prompt part of the 45-token forward",
        &values(&prefix),
        &f32s(&g["logits"]),
        1e-4,
    );
    // Greedy: every continuation token is the argmax of the previous position.
    let argmax: Vec<i64> = full.clone().argmax(2).into_data().iter::<i64>().collect();
    for t in 5..all.len() {
        assert_eq!(argmax[t - 1] as u32, all[t], "position {t}");
    }
    // Prefill 5, then one token at a time through the cache.
    let mut cache = m.new_cache();
    let mut steps = vec![m.forward(
        ids_tensor(&[all[..5].to_vec()], &device),
        None,
        Some(&mut cache),
    )];
    for &t in &all[5..] {
        steps.push(m.forward(ids_tensor(&[vec![t]], &device), None, Some(&mut cache)));
    }
    assert_eq!(cache.len(), 45);
    let stepped = Tensor::cat(steps, 1);
    assert_close(
        "cached vs full forward",
        &values(&stepped),
        &values(&full),
        1e-5,
    );
}

#[test]
fn batched_prompts_of_different_lengths_equal_single_prompts() {
    let m = model();
    let tok = Tokenizer::from_pretrained(stories()).unwrap();
    let prompts: Vec<Vec<u32>> = [
        "Once upon a time",
        "Lily",
        "The little dog ran to the park and",
    ]
    .iter()
    .map(|p| tok.encode(p, true).unwrap())
    .collect();
    for use_cache in [true, false] {
        let config = GenerationConfig {
            use_cache,
            ..GenerationConfig::greedy(20)
        };
        let batched = m.generate(&prompts, &config).unwrap();
        for (i, p) in prompts.iter().enumerate() {
            let single = m.generate(&[p.clone()], &config).unwrap();
            assert_eq!(
                batched.sequences[i], single.sequences[0],
                "prompt {i}, cache {use_cache}"
            );
        }
    }
}

#[test]
fn left_padded_forward_equals_unpadded_forward() {
    let m = model();
    let device = device();
    let short = vec![1u32, 403, 407];
    let padded = vec![0u32, 0, 1, 403, 407];
    let mask =
        Tensor::<TB, 2, Int>::from_data(TensorData::new(vec![0i64, 0, 1, 1, 1], [1, 5]), &device);
    let a = m.forward(ids_tensor(&[short], &device), None, None);
    let b = m
        .forward(ids_tensor(&[padded], &device), Some(mask), None)
        .narrow(1, 2, 3);
    assert_close("left padding", &values(&b), &values(&a), 1e-4);
}

#[test]
fn sampling_is_reproducible_with_a_seed() {
    let m = model();
    let prompt = vec![1u32, 403, 407, 261, 378];
    let config = |seed| GenerationConfig {
        top_k: Some(40),
        top_p: Some(0.95),
        ..GenerationConfig::sampled(30, 0.9, seed)
    };
    let a = m.generate(&[prompt.clone()], &config(7)).unwrap();
    let b = m.generate(&[prompt.clone()], &config(7)).unwrap();
    let c = m.generate(&[prompt.clone()], &config(8)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.sequences, c.sequences);
    // Cache or not, the same samples.
    let d = m
        .generate(
            &[prompt.clone()],
            &GenerationConfig {
                use_cache: false,
                ..config(7)
            },
        )
        .unwrap();
    assert_eq!(a, d);
    // Row 0 of a batch samples like the prompt alone.
    let batch = m
        .generate(&[prompt.clone(), vec![1, 300]], &config(7))
        .unwrap();
    assert_eq!(batch.sequences[0], a.sequences[0]);
}

#[test]
fn generation_stops_at_eos_and_validates_settings() {
    let m = model();
    let prompt = vec![1u32, 403, 407, 261, 378];
    // Declare the 3rd greedy token an EOS: generation stops there and keeps it.
    let config = GenerationConfig {
        eos_token_ids: Some(vec![286]),
        ..GenerationConfig::greedy(40)
    };
    let out = m.generate(&[prompt.clone()], &config).unwrap();
    assert_eq!(out.new_tokens(0), &[432, 383, 286]);
    assert_eq!(out.finish_reasons, vec![FinishReason::Eos]);

    let err = m
        .generate(&[vec![]], &GenerationConfig::greedy(3))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid prompts: prompt 0 is empty; it needs at least one token (e.g. BOS)"
    );
    let err = m
        .generate(&[vec![1, 999]], &GenerationConfig::greedy(3))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid prompts: prompt 0 holds token id 999, outside the vocabulary of 512"
    );
    let bad = GenerationConfig {
        top_p: Some(1.5),
        ..GenerationConfig::sampled(3, 1.0, 0)
    };
    let err = m.generate(&[prompt], &bad).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid top_p: expected a probability in (0, 1], found 1.5"
    );
}

#[test]
fn causal_lm_loss_shifts_and_ignores_minus_100() {
    let m = model();
    let device = device();
    let all: Vec<u32> = vec![1, 403, 407, 261, 378, 432];
    let input = ids_tensor(&[all.clone()], &device);
    let mut labels: Vec<i64> = all.iter().map(|&t| t as i64).collect();
    labels[1] = IGNORE_INDEX;
    labels[2] = IGNORE_INDEX;
    let labels_t =
        Tensor::<TB, 2, Int>::from_data(TensorData::new(labels.clone(), [1, 6]), &device);
    let out = m.forward_lm(input.clone(), None, labels_t);
    assert_eq!(out.logits.dims(), [1, 5, 512]);
    // Reference: -mean log p(label_{t+1} | ..t) over the labelled targets (positions 3, 4, 5).
    let logits = values(&m.forward(input, None, None));
    let mut nll = 0.0f64;
    for t in [3usize, 4, 5] {
        let row = &logits[(t - 1) * 512..t * 512];
        let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let lse = row
            .iter()
            .map(|&v| (v as f64 - max).exp())
            .sum::<f64>()
            .ln()
            + max;
        nll += lse - row[labels[t] as usize] as f64;
    }
    let expected = (nll / 3.0) as f32;
    let loss = out.loss.into_scalar();
    assert!((loss - expected).abs() < 1e-4, "{loss} vs {expected}");
    // All ignored: zero loss, no NaN.
    let none = Tensor::<TB, 2, Int>::full([1, 6], IGNORE_INDEX, &device);
    let logits = m.forward(ids_tensor(&[all], &device), None, None);
    assert_eq!(causal_lm_loss(logits, none).loss.into_scalar(), 0.0);
}

/// Packing: two examples in one row (positions restarting at 0, segments 1 and 2, padding
/// segment 0) each get the logits they have alone; a second row packs them the other way
/// round, so the mask is per row.
#[test]
fn a_packed_row_gives_each_example_its_own_logits() {
    let m = model();
    let device = device();
    let a = vec![1u32, 403, 407, 61, 290];
    let b = vec![1u32, 29, 50, 77];
    let alone_a = values(&m.forward(ids_tensor(&[a.clone()], &device), None, None));
    let alone_b = values(&m.forward(ids_tensor(&[b.clone()], &device), None, None));
    let pad = 2;
    let row = |first: &[u32], second: &[u32]| -> (Vec<u32>, Vec<i64>, Vec<i64>) {
        let ids = [first, second, &vec![0; pad][..]].concat();
        let positions: Vec<i64> = (0..first.len() as i64)
            .chain(0..second.len() as i64)
            .chain(std::iter::repeat_n(0, pad))
            .collect();
        let segments: Vec<i64> = std::iter::repeat_n(1, first.len())
            .chain(std::iter::repeat_n(2, second.len()))
            .chain(std::iter::repeat_n(0, pad))
            .collect();
        (ids, positions, segments)
    };
    let (ids0, pos0, seg0) = row(&a, &b);
    let (ids1, pos1, seg1) = row(&b, &a);
    let s = ids0.len();
    let ints =
        |rows: Vec<i64>| Tensor::<TB, 2, Int>::from_data(TensorData::new(rows, [2, s]), &device);
    let logits = m.forward_packed(
        ids_tensor(&[ids0, ids1], &device),
        ints([pos0, pos1].concat()),
        ints([seg0, seg1].concat()),
    );
    assert_eq!(logits.dims(), [2, s, 512]);
    let part = |row: usize, start: usize, len: usize| {
        values(&logits.clone().narrow(0, row, 1).narrow(1, start, len))
    };
    let (la, lb) = (a.len(), b.len());
    assert_close("packed row 0, example a", &part(0, 0, la), &alone_a, 1e-5);
    assert_close("packed row 0, example b", &part(0, la, lb), &alone_b, 1e-5);
    assert_close("packed row 1, example b", &part(1, 0, lb), &alone_b, 1e-5);
    assert_close("packed row 1, example a", &part(1, lb, la), &alone_a, 1e-5);
    assert!(
        part(0, 0, s).iter().all(|x| x.is_finite()),
        "padding gave NaN"
    );
}
