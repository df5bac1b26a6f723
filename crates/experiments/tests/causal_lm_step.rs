//! The causal-LM training step on stories260K: accumulating micro-batches gives the loss and
//! the gradients of one large batch (token-weighted), and the evaluation step agrees; a
//! packed row (positions restarting per example, a block-diagonal causal mask) gives each
//! example the loss and gradients it has alone.

use std::path::Path;

use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use burn::train::{InferenceStep, TrainStep};
use data::batcher::{
    EncodedSequence, PackedBatch, PackedBatcher, PackingConfig, PaddingSide, IGNORE_INDEX,
};
use data::gsm8k::{load_gsm8k, Gsm8kSplit};
use data::metamath::gsm8k_as_metamath;
use data::{DataRoot, LoadOptions};
use experiments::llama::{check_llama_folder, lm_batcher};
use experiments::lm::data::{encode, LmBatch, LmBatcher};
use experiments::lm::model::{scalar, CausalLmModel};
use models::llama::causal_lm_loss;
use models::targets::all_block_linears;
use models::{LlamaForCausalLM, ModelFamily};

use crate::common;
use common::{flat_grads, shared};

type TB = models::backend::DefaultBackend;
type AD = burn::backend::Autodiff<TB>;

fn sequences(model_dir: &Path, n: usize) -> Vec<EncodedSequence> {
    let llama = check_llama_folder(model_dir, "--model").unwrap();
    let batcher = lm_batcher(model_dir, &llama, 320, PaddingSide::Right).unwrap();
    let root = DataRoot::resolve(Some(&shared().join("datasets")));
    let problems = load_gsm8k(&root, Gsm8kSplit::Train, &LoadOptions::default()).unwrap();
    let rows = gsm8k_as_metamath(&problems.examples()[..2 * n]);
    let (encoded, _) = encode(&batcher, &rows).unwrap();
    assert!(encoded.len() >= n);
    encoded.into_iter().take(n).collect()
}

#[test]
fn accumulated_micro_batches_give_the_gradients_of_one_batch() {
    let dir = shared().join("models/stories260K");
    let device = Default::default();
    let mut llm =
        LlamaForCausalLM::<AD>::from_pretrained(&dir, &models::LoadOptions::default(), &device)
            .unwrap();
    let config = AdapterConfig::from_spec(
        &AdapterSpec::bone(16).with_random_init(),
        all_block_linears(ModelFamily::Llama),
    );
    llm.add_adapter("default", &config, &device).unwrap();
    let model = CausalLmModel::new(llm);

    let seqs = sequences(&dir, 5);
    let lengths: Vec<usize> = seqs.iter().map(|s| s.input_ids.len()).collect();
    assert!(
        lengths.iter().any(|&l| l != lengths[0]),
        "want ragged lengths: {lengths:?}"
    );
    let llama = check_llama_folder(&dir, "--model").unwrap();
    let inner = lm_batcher(&dir, &llama, 320, PaddingSide::Right).unwrap();
    let one: LmBatch<AD> = LmBatcher::new(inner.clone(), 5).batch(seqs.clone(), &device);
    let split: LmBatch<AD> = LmBatcher::new(inner.clone(), 2).batch(seqs.clone(), &device);
    let split_again: LmBatch<AD> = LmBatcher::new(inner, 2).batch(seqs, &device);
    assert_eq!((one.parts.len(), split.parts.len()), (1, 3));
    assert_eq!(
        one.target_tokens[0],
        split.target_tokens.iter().sum::<usize>()
    );
    assert_eq!(one.input_tokens, lengths.iter().sum::<usize>());

    let eval_one = model.valid().step(
        LmBatcher::new(
            lm_batcher(&dir, &llama, 320, PaddingSide::Right).unwrap(),
            5,
        )
        .batch(sequences(&dir, 5), &device),
    );
    let a = TrainStep::step(&model, one);
    let b = TrainStep::step(&model, split);
    // The same three micro-batches two at a time on step threads (a wave of 2, then 1).
    let threaded = model.clone().with_step_threads(2);
    let c = TrainStep::step(&threaded, split_again);
    let (la, lb, lc) = (
        scalar(&a.item.loss),
        scalar(&b.item.loss),
        scalar(&c.item.loss),
    );
    assert!((la - lb).abs() < 1e-5 * la, "loss {la} vs {lb}");
    assert!((la - lc).abs() < 1e-5 * la, "loss {la} vs threaded {lc}");
    assert_eq!(c.item.target_tokens, a.item.target_tokens);
    assert!((la - scalar(&eval_one.loss)).abs() < 1e-5 * la);

    let flat = |grads: &GradientsParams| flat_grads(&model, grads);
    let (ga, gb, gc) = (flat(&a.grads), flat(&b.grads), flat(&c.grads));
    assert_eq!(ga.len(), model.inner.trainable_params());
    let scale = ga.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    let diff = ga
        .iter()
        .zip(&gb)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "gradients differ by {diff:e} (max {scale:e})"
    );
    let diff = ga
        .iter()
        .zip(&gc)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "threaded gradients differ by {diff:e} (max {scale:e})"
    );
}

#[test]
fn a_packed_row_gives_each_example_the_loss_and_gradients_it_has_alone() {
    let dir = shared().join("models/stories260K");
    let device = Default::default();
    let mut llm =
        LlamaForCausalLM::<AD>::from_pretrained(&dir, &models::LoadOptions::default(), &device)
            .unwrap();
    let config = AdapterConfig::from_spec(
        &AdapterSpec::bone(16).with_random_init(),
        all_block_linears(ModelFamily::Llama),
    );
    llm.add_adapter("default", &config, &device).unwrap();
    let model = CausalLmModel::new(llm);
    let llama = check_llama_folder(&dir, "--model").unwrap();
    let inner = lm_batcher(&dir, &llama, 320, PaddingSide::Right).unwrap();
    let seqs = sequences(&dir, 3);
    let total_len: usize = seqs.iter().map(|s| s.input_ids.len()).sum();

    // The three examples side by side in one row: positions restart, segments 1, 2, 3.
    let packer = PackedBatcher::new(PackingConfig::new(total_len)).unwrap();
    let packed = packer.pack(&seqs);
    assert_eq!((packed.rows.len(), packed.report.tokens), (1, total_len));
    let row = &packed.rows[0];
    let starts: Vec<usize> = (0..row.position_ids.len())
        .filter(|&i| row.position_ids[i] == 0)
        .collect();
    assert_eq!(starts.len(), 3);

    // Each example alone (a batch of one, no padding): its loss, scored tokens, gradients.
    let alone: Vec<(f64, usize, Vec<f32>)> = seqs
        .iter()
        .map(|s| {
            let batch: LmBatch<AD> =
                LmBatcher::new(inner.clone(), 1).batch(vec![s.clone()], &device);
            let n = batch.target_tokens[0];
            let out = TrainStep::step(&model, batch);
            (scalar(&out.item.loss), n, flat_grads(&model, &out.grads))
        })
        .collect();

    // Per example, its tokens' loss inside the packed row equals its loss alone.
    let batch: PackedBatch<AD> = packer.collate(&packed.rows, &device);
    let logits = model.inner.forward_packed(
        batch.input_ids.clone(),
        batch.position_ids.clone(),
        batch.segment_ids.clone(),
    );
    for (k, (loss, _, _)) in alone.iter().enumerate() {
        let labels: Vec<i64> = row
            .labels
            .iter()
            .zip(&row.segment_ids)
            .map(|(&l, &s)| if s == k as u32 + 1 { l } else { IGNORE_INDEX })
            .collect();
        let labels = Tensor::<AD, 2, Int>::from_data(
            TensorData::new(labels, [1, row.labels.len()]),
            &device,
        );
        let packed_loss = scalar(&causal_lm_loss(logits.clone(), labels).loss);
        assert!(
            (packed_loss - loss).abs() <= 1e-4 * loss,
            "example {k}: packed {packed_loss} vs alone {loss}"
        );
    }

    // The packed step: the token-weighted mean of the losses alone, and of their gradients.
    let step: LmBatch<AD> = LmBatcher::packed(inner, packer, 4).batch(seqs, &device);
    assert_eq!(step.parts.len(), 1);
    assert_eq!(step.parts[0].dims(), [1, total_len]);
    let n: usize = alone.iter().map(|a| a.1).sum();
    assert_eq!(step.target_tokens, [n]);
    let out = TrainStep::step(&model, step);
    let want: f64 = alone.iter().map(|a| a.0 * a.1 as f64).sum::<f64>() / n as f64;
    let got = scalar(&out.item.loss);
    assert!((got - want).abs() <= 1e-4 * want, "packed {got} vs {want}");
    let grads = flat_grads(&model, &out.grads);
    let mut expected = vec![0f32; grads.len()];
    for (_, tokens, g) in &alone {
        let w = *tokens as f32 / n as f32;
        for (e, v) in expected.iter_mut().zip(g) {
            *e += w * v;
        }
    }
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    let diff = grads
        .iter()
        .zip(&expected)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "gradients differ by {diff:e} (max {scale:e})"
    );
}
