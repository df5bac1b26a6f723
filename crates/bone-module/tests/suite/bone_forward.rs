//! Bone's activation-space forward equals the dense x·(W + ΔW) on many shapes, including
//! in % r != 0 (a partial last chunk) and r > in (a single, padded chunk).

use crate::common::*;
use bone_module::{Adapter, AdapterSpec};
use burn::tensor::{Tensor, TensorData};

/// ΔW in Burn's layout built on the host from the definition ΔW[o, j] = B[j mod r, o].
fn reference_delta(block: &[f32], r: usize, d_in: usize, d_out: usize) -> Vec<f32> {
    let mut delta = vec![0.0; d_in * d_out];
    for j in 0..d_in {
        for o in 0..d_out {
            delta[j * d_out + o] = block[(j % r) * d_out + o];
        }
    }
    delta
}

#[test]
fn efficient_forward_equals_dense_forward_on_random_shapes() {
    let device = device();
    // (in, out, r): divisible, in % r != 0, r > in, r == in, r == 1, a real down_proj.
    for (d_in, d_out, r) in [
        (16, 24, 4),
        (17, 8, 4),
        (5, 7, 8),
        (64, 64, 64),
        (3, 10, 1),
        (172, 64, 8),
        (100, 36, 64),
    ] {
        let mut layer = adapted::<TB>(d_in, d_out, &device);
        layer
            .add_adapter("b", &AdapterSpec::bone(r).with_random_init(), &device)
            .unwrap();
        let Some(Adapter::Bone(bone)) = layer.adapter("b") else {
            panic!("expected a Bone adapter")
        };
        let block = values(&bone.block.val());
        assert_eq!(block.len(), r * d_out, "block is [r, out]");

        let delta = reference_delta(&block, r, d_in, d_out);
        let delta = Tensor::<TB, 2>::from_data(TensorData::new(delta, [d_in, d_out]), &device);
        assert_close(&bone.delta_weight(), &delta, 0.0);

        let x = random::<TB, 3>([2, 5, d_in], &device);
        let weight = layer.base.weight.val() + delta;
        let bias = layer.base.bias.as_ref().unwrap().val();
        let dense = x.clone().matmul(weight.unsqueeze()) + bias.unsqueeze();
        let efficient = layer.forward(x);
        let diff = max_rel_diff(&values(&efficient), &values(&dense));
        assert!(
            diff < 1e-5,
            "in={d_in} out={d_out} r={r}: efficient and dense forwards differ by {diff:e}"
        );
    }
}

#[test]
fn forward_keeps_leading_dimensions() {
    let device = device();
    let mut layer = adapted::<TB>(10, 6, &device);
    layer
        .add_adapter("b", &AdapterSpec::bone(4).with_random_init(), &device)
        .unwrap();
    assert_eq!(
        layer.forward(random::<TB, 2>([7, 10], &device)).dims(),
        [7, 6]
    );
    assert_eq!(
        layer
            .forward(random::<TB, 4>([2, 3, 4, 10], &device))
            .dims(),
        [2, 3, 4, 6]
    );
}
