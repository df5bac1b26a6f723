//! Training touches adapter parameters only: after optimiser steps the base weights are
//! bit-identical, the adapter moved, and the optimiser saw only adapter gradients.

use crate::common::*;
use bone_module::{AdaptedLinear, AdapterSpec};
use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::Tensor;

type AD = Autodiff<TB>;

fn train_steps(spec: AdapterSpec, steps: usize) -> (AdaptedLinear<AD>, AdaptedLinear<AD>, usize) {
    let device = device();
    let mut layer = AdaptedLinear::<AD>::new(random_linear(24, 16, true, &device), "layer");
    layer.add_adapter("a", &spec, &device).unwrap();
    let initial = layer.clone();
    let mut optim = AdamWConfig::new().with_weight_decay(0.01).init();
    let x = random::<AD, 2>([8, 24], &device);
    let target = random::<AD, 2>([8, 16], &device);
    let mut trained_params = 0;
    for _ in 0..steps {
        let loss = (layer.forward(x.clone()) - target.clone())
            .powi_scalar(2)
            .mean();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        trained_params = grads.len();
        layer = optim.step(1e-2, layer, grads);
    }
    (initial, layer, trained_params)
}

#[test]
fn only_adapter_parameters_change_after_optimiser_steps() {
    for (spec, tensors) in [
        (AdapterSpec::bone(4), 1),
        (AdapterSpec::bone(5), 1),
        (AdapterSpec::bat(4), 1),
        (AdapterSpec::lora(4, 8.0), 2),
    ] {
        let kind = spec.kind();
        let (initial, trained, grads) = train_steps(spec, 5);
        assert_eq!(
            grads, tensors,
            "{kind}: gradients exist for the adapter tensors only"
        );
        let bits = |t: Tensor<AD, 2>| values(&t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(trained.base.weight.val()),
            bits(initial.base.weight.val()),
            "{kind}: base weight changed"
        );
        assert_eq!(
            values(&trained.base.bias.as_ref().unwrap().val()),
            values(&initial.base.bias.as_ref().unwrap().val()),
            "{kind}: base bias changed"
        );
        let (before, after) = (initial.adapter("a").unwrap(), trained.adapter("a").unwrap());
        let moved = match (before, after) {
            (bone_module::Adapter::Bone(b), bone_module::Adapter::Bone(a)) => {
                max_abs_diff(&values(&b.block.val()), &values(&a.block.val()))
            }
            (bone_module::Adapter::Bat(b), bone_module::Adapter::Bat(a)) => {
                max_abs_diff(&values(&b.block.val()), &values(&a.block.val()))
            }
            (bone_module::Adapter::Lora(b), bone_module::Adapter::Lora(a)) => {
                max_abs_diff(&values(&b.lora_b.val()), &values(&a.lora_b.val()))
            }
            _ => panic!("adapter kind changed"),
        };
        assert!(
            moved > 1e-3,
            "{kind}: the adapter did not train (moved {moved})"
        );
    }
}

#[test]
fn the_loss_falls_and_inactive_adapters_stay_put() {
    let device = device();
    let mut layer = AdaptedLinear::<AD>::new(random_linear(24, 16, true, &device), "layer");
    layer
        .add_adapter("on", &AdapterSpec::bone(8), &device)
        .unwrap();
    layer
        .add_adapter("off", &AdapterSpec::bone(8).with_random_init(), &device)
        .unwrap();
    let off_before = layer.clone();
    let mut optim = AdamWConfig::new().init();
    let x = random::<AD, 2>([32, 24], &device);
    let target = random::<AD, 2>([32, 16], &device);
    let loss_of = |l: &AdaptedLinear<AD>| {
        (l.forward(x.clone()) - target.clone())
            .powi_scalar(2)
            .mean()
            .into_scalar()
    };
    let first = loss_of(&layer);
    for _ in 0..30 {
        let loss = (layer.forward(x.clone()) - target.clone())
            .powi_scalar(2)
            .mean();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = optim.step(5e-2, layer, grads);
    }
    let last = loss_of(&layer);
    assert!(last < first * 0.95, "loss {first} → {last}");
    let block = |l: &AdaptedLinear<AD>| match l.adapter("off").unwrap() {
        bone_module::Adapter::Bone(b) => values(&b.block.val()),
        _ => unreachable!(),
    };
    assert_eq!(block(&layer), block(&off_before));
    assert_eq!(layer.trainable_params(), 8 * 16);
}

#[test]
fn dropout_applies_in_training_only() {
    let device = device();
    let mut layer = AdaptedLinear::<AD>::new(random_linear(24, 16, false, &device), "layer");
    layer
        .add_adapter(
            "a",
            &AdapterSpec::bone(4).with_random_init().with_dropout(0.5),
            &device,
        )
        .unwrap();
    let x = random::<AD, 2>([64, 24], &device);
    let a = values(&layer.forward(x.clone()));
    let b = values(&layer.forward(x.clone()));
    assert!(
        max_abs_diff(&a, &b) > 1e-3,
        "dropout is active on the autodiff backend"
    );
    let valid = layer.valid();
    let x = x.inner();
    assert_eq!(
        values(&valid.forward(x.clone())),
        values(&valid.forward(x)),
        "no dropout at inference"
    );
    assert_eq!(
        valid.adapter_names(),
        ["a"],
        "valid() keeps the adapter state"
    );
    assert_eq!(valid.num_params(), layer.num_params());
}
