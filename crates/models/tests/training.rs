//! Training on an autodiff backend: only adapters (and heads) change; dropout applies in
//! training only; full fine-tuning unfreezes everything.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests

use crate::common;

use bone_module::{AdapterConfig, AdapterHost, AdapterHostExt, AdapterSpec};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use models::targets::default_target_modules;
use models::{
    ClassifierOptions, LlamaForCausalLM, LoadOptions, ModelFamily, SequenceClassificationModel,
};

type AB = Autodiff<TB>;

fn linear_weights<H: AdapterHost<AB>>(m: &H) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    m.visit_linears(&mut |l| out.push(values(&l.base.weight.val())));
    out
}

#[test]
fn classifier_training_moves_only_adapters_and_head() {
    let device = device();
    let options = ClassifierOptions {
        seed: Some(5),
        ..ClassifierOptions::with_num_labels(2)
    };
    let mut model =
        SequenceClassificationModel::<AB>::from_pretrained(roberta_tiny(), &options, &device)
            .unwrap();
    let config = AdapterConfig::from_spec(
        &AdapterSpec::bone(4),
        default_target_modules(ModelFamily::Roberta),
    );
    model.add_adapter("a", &config, &device).unwrap();
    let base = linear_weights(&model);
    let embed = values(&model.encoder.embeddings.word_embeddings.weight.val());
    let head = model.head_tensors();

    let input = ids_tensor::<AB>(&[vec![0, 15, 27, 99, 2], vec![0, 250, 3, 4, 2]], &device);
    let labels = Tensor::<AB, 1, Int>::from_data(TensorData::new(vec![1i64, 0], [2]), &device);
    let mut optim = AdamWConfig::new().init();
    for _ in 0..3 {
        let logits = model.forward(input.clone(), None, None);
        let loss = SequenceClassificationModel::classification_loss(logits, labels.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    assert_eq!(
        linear_weights(&model),
        base,
        "base projections are bit-identical"
    );
    assert_eq!(
        values(&model.encoder.embeddings.word_embeddings.weight.val()),
        embed
    );
    let new_head = model.head_tensors();
    assert_ne!(
        f32s(&new_head["classifier.out_proj.weight"]),
        f32s(&head["classifier.out_proj.weight"])
    );
    let mut moved = 0;
    model.visit_linears(&mut |l| {
        if let Some(bone_module::Adapter::Bone(b)) = l.adapter("a") {
            if values(&b.block.val()).iter().any(|&v| v != 0.0) {
                moved += 1;
            }
        }
    });
    assert_eq!(moved, 4, "query and value of 2 layers trained");
}

#[test]
fn dropout_applies_in_training_only() {
    let device = device();
    let model = SequenceClassificationModel::<AB>::from_pretrained(
        roberta_tiny(),
        &ClassifierOptions::default(),
        &device,
    )
    .unwrap();
    let input = ids_tensor::<AB>(&[vec![0, 15, 27, 99, 2]], &device);
    let a = values(&model.forward(input.clone(), None, None));
    let b = values(&model.forward(input.clone(), None, None));
    assert_ne!(
        a, b,
        "hidden and attention dropout are active under autodiff"
    );
    let valid = model.valid();
    let input = ids_tensor::<TB>(&[vec![0, 15, 27, 99, 2]], &device);
    let c = values(&valid.forward(input.clone(), None, None));
    let d = values(&valid.forward(input, None, None));
    assert_eq!(c, d);
    let g = golden("roberta_tiny_forward");
    assert_close("valid() logits", &c, &f32s(&g["logits"])[..2], 1e-4);
}

#[test]
fn causal_lm_lora_training_and_full_finetuning() {
    let device = device();
    let mut model =
        LlamaForCausalLM::<AB>::from_pretrained(stories(), &LoadOptions::default(), &device)
            .unwrap();
    let config = AdapterConfig::from_spec(
        &AdapterSpec::lora(4, 8.0),
        default_target_modules(ModelFamily::Llama),
    );
    model.add_adapter("lora", &config, &device).unwrap();
    let base = linear_weights(&model);
    let input = ids_tensor::<AB>(&[vec![1, 403, 407, 261, 378, 432]], &device);
    let labels = Tensor::<AB, 2, Int>::from_data(
        TensorData::new(vec![-100i64, -100, 407, 261, 378, 432], [1, 6]),
        &device,
    );
    let mut optim = AdamWConfig::new().init();
    let first = model
        .forward_lm(input.clone(), None, labels.clone())
        .loss
        .into_scalar();
    for _ in 0..5 {
        let out = model.forward_lm(input.clone(), None, labels.clone());
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let last = model
        .forward_lm(input.clone(), None, labels.clone())
        .loss
        .into_scalar();
    assert!(last < first, "loss {first} -> {last}");
    assert_eq!(linear_weights(&model), base);

    // Full fine-tuning: the embeddings move too.
    let mut full =
        LlamaForCausalLM::<AB>::from_pretrained(stories(), &LoadOptions::default(), &device)
            .unwrap()
            .set_full_finetune(true);
    assert_eq!(full.trainable_params(), full.config().num_params());
    let embed = values(&full.model.embed_tokens.weight.val());
    let mut optim = AdamWConfig::new().init();
    let out = full.forward_lm(input, None, labels);
    let grads = GradientsParams::from_grads(out.loss.backward(), &full);
    full = optim.step(1e-3, full, grads);
    assert_ne!(values(&full.model.embed_tokens.weight.val()), embed);
}
