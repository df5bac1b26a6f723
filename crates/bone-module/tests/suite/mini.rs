//! MiSS "mini" (a `[r, mini_r]` block repeated along the outputs) and merging when r > in
//! (PEFT issue #3701: PEFT's merge fails there while its forward works).

use crate::common::*;
use bone_module::{Adapter, AdapterError, AdapterKind, AdapterSpec};
use burn::tensor::Tensor;

/// ΔW in Burn's layout from the definition ΔW[o, j] = block[j mod r, o mod mini_r].
fn reference_delta(block: &[f32], r: usize, mini_r: usize, d_in: usize, d_out: usize) -> Vec<f32> {
    let mut delta = vec![0.0; d_in * d_out];
    for j in 0..d_in {
        for o in 0..d_out {
            delta[j * d_out + o] = block[(j % r) * mini_r + o % mini_r];
        }
    }
    delta
}

#[test]
fn mini_forward_delta_and_merge_follow_the_definition() {
    let device = device();
    // (in, out, r, mini_r): divisible, in % r != 0, r > in, mini_r == out, mini_r == 1.
    for (d_in, d_out, r, mini_r) in [
        (16, 24, 4, 6),
        (17, 8, 4, 2),
        (5, 12, 8, 4),
        (12, 6, 3, 6),
        (10, 9, 2, 1),
    ] {
        let mut layer = adapted::<TB>(d_in, d_out, &device);
        let spec = AdapterSpec::mini(r, mini_r).with_random_init();
        assert_eq!(spec.trainable_params(d_in, d_out), r * mini_r);
        layer.add_adapter("m", &spec, &device).unwrap();
        let adapter = layer.adapter("m").unwrap();
        assert_eq!(adapter.kind(), AdapterKind::Mini);
        let Adapter::Bone(bone) = adapter else {
            panic!("mini is a Bone adapter")
        };
        assert_eq!(bone.block.val().dims(), [r, mini_r], "block is [r, mini_r]");
        assert_eq!(bone.mini_r(), Some(mini_r));
        let block = values(&bone.block.val());
        let delta = reference_delta(&block, r, mini_r, d_in, d_out);
        let label = format!("in={d_in} out={d_out} r={r} mini_r={mini_r}");
        assert!(
            max_abs_diff(&values(&bone.delta_weight()), &delta) == 0.0,
            "{label}: delta_weight"
        );

        let base = layer.base.weight.val();
        let x = random::<TB, 3>([2, 3, d_in], &device);
        let delta_t =
            Tensor::<TB, 1>::from_floats(delta.as_slice(), &device).reshape([d_in, d_out]);
        let dense = x.clone().matmul((base.clone() + delta_t).unsqueeze())
            + layer.base.bias.as_ref().unwrap().val().unsqueeze();
        let adapted = layer.forward(x.clone());
        assert_close(&adapted, &dense, 1e-5);

        layer.merge(None, true).unwrap();
        assert_close(&layer.forward(x), &adapted, 1e-5);
        layer.unmerge().unwrap();
        let restored = values(&layer.base.weight.val());
        assert!(
            max_abs_diff(&restored, &values(&base)) <= 1e-6,
            "{label}: unmerge restores the base weight"
        );
    }
}

#[test]
fn mini_r_that_does_not_divide_out_names_the_layer() {
    let device = device();
    let mut layer = adapted::<TB>(16, 10, &device);
    let err = layer
        .add_adapter("m", &AdapterSpec::mini(4, 4), &device)
        .unwrap_err();
    assert!(matches!(err, AdapterError::MiniDivisibility { .. }));
    assert_eq!(
        err.to_string(),
        "MiSS mini needs mini_r to divide out, but layer `test.layer` has out=10, mini_r=4; \
         choose a mini_r ≥ 1 that divides out"
    );
    assert!(layer.adapter_names().is_empty());
    let zero = layer
        .add_adapter("m", &AdapterSpec::mini(4, 0), &device)
        .unwrap_err()
        .to_string();
    assert!(zero.contains("mini_r=0"), "{zero}");
}

#[test]
fn merging_with_r_above_in_features_is_exact() {
    // PEFT #3701: with r > in_features PEFT's forward pads the input, but its merge reshapes
    // the weight into [out, 0, r] blocks and fails. Ours uses the first `in` rows of the block.
    let device = device();
    for spec in [
        AdapterSpec::bone(16).with_random_init(),
        AdapterSpec::mini(16, 4).with_random_init(),
    ] {
        let mut layer = adapted::<TB>(6, 8, &device);
        let base = values(&layer.base.weight.val());
        layer.add_adapter("a", &spec, &device).unwrap();
        let x = random::<TB, 2>([5, 6], &device);
        let before = layer.forward(x.clone());
        let without = layer.base.forward(x.clone());
        assert!(
            max_abs_diff(&values(&before), &values(&without)) > 1e-3,
            "{spec:?}: the adapter changes the output"
        );
        layer.merge(None, true).unwrap();
        assert_close(&layer.forward(x), &before, 1e-5);
        layer.unmerge().unwrap();
        assert!(
            max_abs_diff(&values(&layer.base.weight.val()), &base) <= 1e-6,
            "{spec:?}: unmerge restores the base weight"
        );
    }
}

#[test]
fn converted_lora_merges_to_the_same_weight() {
    let device = device();
    // (spec, in, out, rank): exact Bone, exact mini (with in % r != 0 and r > in), Bat by SVD.
    for (spec, d_in, d_out, rank) in [
        (AdapterSpec::bone(4).with_random_init(), 18, 12, None),
        (AdapterSpec::mini(5, 3).with_random_init(), 17, 12, None),
        (AdapterSpec::mini(16, 4).with_random_init(), 6, 8, None),
        (AdapterSpec::bat(4).with_random_init(), 16, 12, Some(6)),
        (AdapterSpec::bat(4).with_random_init(), 16, 12, Some(12)),
    ] {
        let mut layer = adapted::<TB>(d_in, d_out, &device);
        layer.add_adapter("src", &spec, &device).unwrap();
        let (lora, conversion) = layer.to_lora("src", rank).unwrap();
        let label = format!("{spec:?} rank {rank:?}");
        assert_eq!(lora.scaling, 1.0, "{label}: lora_alpha = rank");
        layer.insert_adapter("lora", Adapter::Lora(lora)).unwrap();
        let mut other = layer.clone();
        layer.merge(Some(&["src"]), true).unwrap();
        other.merge(Some(&["lora"]), true).unwrap();
        let (ours, theirs) = (
            values(&layer.base.weight.val()),
            values(&other.base.weight.val()),
        );
        let base_norm = values(&adapted_base_delta(&layer, &other));
        let diff = max_abs_diff(&ours, &theirs);
        if conversion.exact {
            assert!(conversion.relative_error < 1e-6, "{label}: {conversion:?}");
            assert!(diff < 1e-5, "{label}: merged weights differ by {diff}");
        } else {
            // The merged difference is the truncation residual: its Frobenius norm relative to
            // ‖ΔW‖ is the reported error.
            let residual: f32 = ours
                .iter()
                .zip(&theirs)
                .map(|(x, y)| (x - y) * (x - y))
                .sum();
            let norm: f32 = base_norm.iter().map(|d| d * d).sum();
            let measured = (residual / norm).sqrt() as f64;
            assert!(
                (measured - conversion.relative_error).abs() < 1e-4,
                "{label}: measured {measured} vs reported {}",
                conversion.relative_error
            );
            if rank == Some(12) {
                assert!(
                    conversion.relative_error < 1e-5,
                    "full rank is exact: {conversion:?}"
                );
            } else {
                assert!(
                    conversion.relative_error > 1e-3,
                    "rank 6 truncates: {conversion:?}"
                );
            }
        }
    }
}

/// ΔW of the source adapter: its merged weight minus the base weight.
fn adapted_base_delta(
    merged: &bone_module::AdaptedLinear<TB>,
    unmerged: &bone_module::AdaptedLinear<TB>,
) -> Tensor<TB, 2> {
    let mut base = unmerged.clone();
    base.unmerge().unwrap();
    merged.base.weight.val() - base.base.weight.val()
}
