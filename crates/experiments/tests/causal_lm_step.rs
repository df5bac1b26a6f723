//! The causal-LM training step on stories260K: accumulating micro-batches gives the loss and
//! the gradients of one large batch (token-weighted), and the evaluation step agrees.

use std::path::Path;

use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::train::{InferenceStep, TrainStep};
use data::batcher::{EncodedSequence, PaddingSide};
use data::gsm8k::{load_gsm8k, Gsm8kSplit};
use data::metamath::gsm8k_as_metamath;
use data::{DataRoot, LoadOptions};
use experiments::llama::{check_llama_folder, lm_batcher};
use experiments::lm::data::{encode, LmBatch, LmBatcher};
use experiments::lm::model::{scalar, CausalLmModel};
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
    let model = CausalLmModel { inner: llm };

    let seqs = sequences(&dir, 5);
    let lengths: Vec<usize> = seqs.iter().map(|s| s.input_ids.len()).collect();
    assert!(
        lengths.iter().any(|&l| l != lengths[0]),
        "want ragged lengths: {lengths:?}"
    );
    let llama = check_llama_folder(&dir, "--model").unwrap();
    let inner = lm_batcher(&dir, &llama, 320, PaddingSide::Right).unwrap();
    let one: LmBatch<AD> = LmBatcher::new(inner.clone(), 5).batch(seqs.clone(), &device);
    let split: LmBatch<AD> = LmBatcher::new(inner, 2).batch(seqs, &device);
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
    let (la, lb) = (scalar(&a.item.loss), scalar(&b.item.loss));
    assert!((la - lb).abs() < 1e-5 * la, "loss {la} vs {lb}");
    assert!((la - scalar(&eval_one.loss)).abs() < 1e-5 * la);

    let flat = |grads: &GradientsParams| flat_grads(&model, grads);
    let (ga, gb) = (flat(&a.grads), flat(&b.grads));
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
}
