//! The behaviours PEFT's own test-suite checks for Bone/MiSS, Bat and LoRA layers, ported to
//! [`AdaptedLinear`]: zero-init identity, merge/unmerge, safe merge, enable/disable, several
//! adapters, delete, errors.

use crate::common::*;
use bone_module::{Adapter, AdapterError, AdapterSpec};
use burn::module::Param;
use burn::tensor::Tensor;

fn specs() -> Vec<(&'static str, AdapterSpec)> {
    vec![
        ("bone", AdapterSpec::bone(4)),
        ("bone-partial-chunk", AdapterSpec::bone(5)),
        ("bat", AdapterSpec::bat(4)),
        ("lora", AdapterSpec::lora(4, 8.0)),
    ]
}

#[test]
fn zero_init_is_the_identity_and_a_random_block_is_not() {
    let device = device();
    for (label, spec) in specs() {
        let mut layer = adapted::<TB>(24, 16, &device);
        let x = random::<TB, 3>([2, 3, 24], &device);
        let base = layer.forward(x.clone());
        layer.add_adapter("zero", &spec, &device).unwrap();
        assert_eq!(
            values(&layer.forward(x.clone())),
            values(&base),
            "{label}: zero init must give the base output exactly"
        );

        layer
            .add_adapter("random", &spec.clone().with_random_init(), &device)
            .unwrap();
        layer.set_active(&["random"]).unwrap();
        let d = max_abs_diff(&values(&layer.forward(x)), &values(&base));
        assert!(
            d > 1e-3,
            "{label}: a random adapter must change the output (diff {d})"
        );
    }
}

#[test]
fn merged_forward_equals_unmerged_and_unmerge_restores_the_base() {
    let device = device();
    for (label, spec) in specs() {
        let mut layer = adapted::<TB>(24, 16, &device);
        layer
            .add_adapter("a", &spec.with_random_init(), &device)
            .unwrap();
        let base_weight = layer.base.weight.val();
        let x = random::<TB, 3>([2, 3, 24], &device);
        let unmerged = layer.forward(x.clone());

        let report = layer.merge(None, true).unwrap();
        assert_eq!(report.merged, vec!["a".to_string()]);
        assert!(layer.is_merged());
        assert_close(&layer.forward(x.clone()), &unmerged, 1e-4);

        // Merging again is a no-op that reports the adapter as already merged.
        let merged_weight = values(&layer.base.weight.val());
        let again = layer.merge(None, true).unwrap();
        assert!(again.merged.is_empty(), "{label}");
        assert_eq!(again.already_merged, vec!["a".to_string()]);
        assert_eq!(
            values(&layer.base.weight.val()),
            merged_weight,
            "{label}: double merge changed the weight"
        );

        layer.unmerge().unwrap();
        assert!(!layer.is_merged());
        assert_close(&layer.base.weight.val(), &base_weight, 1e-5);
        assert_close(&layer.forward(x), &unmerged, 1e-4);
    }
}

#[test]
fn bat_merge_unmerge_round_trip_restores_the_weight() {
    let device = device();
    let mut layer = adapted::<TB>(32, 48, &device);
    layer
        .add_adapter("bat", &AdapterSpec::bat(8).with_random_init(), &device)
        .unwrap();
    let original = layer.base.weight.val();
    for _ in 0..3 {
        layer.merge(None, false).unwrap();
        let d = max_abs_diff(&values(&layer.base.weight.val()), &values(&original));
        assert!(d > 1e-3, "Bat merge must change the weight");
        layer.unmerge().unwrap();
        assert_close(&layer.base.weight.val(), &original, 1e-5);
    }
}

#[test]
fn safe_merge_refuses_nan_and_leaves_the_weights_untouched() {
    let device = device();
    for (label, spec) in specs() {
        let mut layer = adapted::<TB>(24, 16, &device);
        layer.add_adapter("bad", &spec, &device).unwrap();
        let poisoned = match layer.adapter("bad").unwrap() {
            Adapter::Bone(b) => Adapter::Bone(bone_module::Bone {
                block: Param::from_tensor(b.block.val().add_scalar(f32::NAN)),
                d_input: b.d_input,
                d_output: b.d_output,
                mini: b.mini,
                dropout: b.dropout.clone(),
            }),
            Adapter::Bat(b) => Adapter::Bat(bone_module::Bat {
                block: Param::from_tensor(b.block.val().add_scalar(f32::NAN)),
            }),
            Adapter::Lora(l) => Adapter::Lora(bone_module::Lora {
                lora_a: l.lora_a.clone(),
                lora_b: Param::from_tensor(l.lora_b.val().add_scalar(f32::INFINITY)),
                scaling: l.scaling,
                dropout: l.dropout.clone(),
            }),
        };
        layer.delete_adapter("bad").unwrap();
        layer.insert_adapter("bad", poisoned).unwrap();
        let before = values(&layer.base.weight.val());

        let err = layer.merge(None, true).unwrap_err();
        assert!(
            matches!(err, AdapterError::NonFiniteMerge { .. }),
            "{label}: {err}"
        );
        assert_eq!(
            err.to_string(),
            "refusing to merge adapter `bad` into layer `test.layer`: the merged weight would hold 384 non-finite value(s) (NaN or inf); the base weight is left untouched",
            "{label}"
        );
        assert!(!layer.is_merged(), "{label}");
        let after = values(&layer.base.weight.val());
        assert!(
            before
                .iter()
                .zip(&after)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{label}: weights changed"
        );
    }
}

#[test]
fn disable_gives_the_base_output_and_enable_restores_the_adapted_one() {
    let device = device();
    for (label, spec) in specs() {
        let mut layer = adapted::<TB>(24, 16, &device);
        let x = random::<TB, 2>([5, 24], &device);
        let base = values(&layer.forward(x.clone()));
        layer
            .add_adapter("a", &spec.with_random_init(), &device)
            .unwrap();
        let adapted_out = values(&layer.forward(x.clone()));

        layer.disable_adapters().unwrap();
        assert!(!layer.adapters_enabled());
        assert_eq!(values(&layer.forward(x.clone())), base, "{label}");
        layer.enable_adapters();
        assert_eq!(values(&layer.forward(x.clone())), adapted_out, "{label}");

        // Disabling a merged layer unmerges it first.
        layer.merge(None, false).unwrap();
        layer.disable_adapters().unwrap();
        assert!(!layer.is_merged(), "{label}");
        assert!(
            max_rel_diff(&values(&layer.forward(x)), &base) < 1e-5,
            "{label}"
        );
    }
}

#[test]
fn switching_between_named_adapters() {
    let device = device();
    let mut layer = adapted::<TB>(24, 16, &device);
    let x = random::<TB, 2>([5, 24], &device);
    layer
        .add_adapter("one", &AdapterSpec::bone(4).with_random_init(), &device)
        .unwrap();
    layer
        .add_adapter(
            "two",
            &AdapterSpec::lora(4, 8.0).with_random_init(),
            &device,
        )
        .unwrap();
    assert_eq!(
        layer.active_adapters(),
        ["one"],
        "the first adapter added is the active one"
    );
    let out_one = values(&layer.forward(x.clone()));
    layer.set_active(&["two"]).unwrap();
    let out_two = values(&layer.forward(x.clone()));
    assert!(max_abs_diff(&out_one, &out_two) > 1e-3);
    layer.set_active(&["one"]).unwrap();
    assert_eq!(values(&layer.forward(x)), out_one);
}

#[test]
fn two_additive_adapters_add_their_outputs() {
    let device = device();
    let mut layer = adapted::<TB>(24, 16, &device);
    let x = random::<TB, 2>([5, 24], &device);
    let base = layer.forward(x.clone());
    layer
        .add_adapter("bone", &AdapterSpec::bone(6).with_random_init(), &device)
        .unwrap();
    layer
        .add_adapter(
            "lora",
            &AdapterSpec::lora(4, 8.0).with_random_init(),
            &device,
        )
        .unwrap();
    let only_bone = layer.forward(x.clone()) - base.clone();
    layer.set_active(&["lora"]).unwrap();
    let only_lora = layer.forward(x.clone()) - base.clone();
    layer.set_active(&["bone", "lora"]).unwrap();
    let both = layer.forward(x.clone());
    assert_close(&both, &(base + only_bone + only_lora), 1e-5);

    let unmerged = both;
    layer.merge(None, true).unwrap();
    assert_close(&layer.forward(x), &unmerged, 1e-4);
}

#[test]
fn two_bat_adapters_compose_and_mixed_adapters_merge_consistently() {
    let device = device();
    let mut layer = adapted::<TB>(16, 24, &device);
    let x = random::<TB, 2>([5, 16], &device);
    layer
        .add_adapter("bat1", &AdapterSpec::bat(4).with_random_init(), &device)
        .unwrap();
    layer
        .add_adapter("bat2", &AdapterSpec::bat(8).with_random_init(), &device)
        .unwrap();
    layer
        .add_adapter("bone", &AdapterSpec::bone(8).with_random_init(), &device)
        .unwrap();
    layer.set_active(&["bat1", "bat2"]).unwrap();

    // Composition: the second Bat sees the weight the first produced.
    let w = layer.base.weight.val();
    let (Some(Adapter::Bat(b1)), Some(Adapter::Bat(b2))) =
        (layer.adapter("bat1"), layer.adapter("bat2"))
    else {
        panic!("expected Bat adapters")
    };
    let composed = b2.adapted_weight(b1.adapted_weight(w));
    assert_close(&layer.effective_weight(), &composed, 1e-5);

    // Bat then Bone, merged one by one in any order, equals the unmerged forward.
    layer.set_active(&["bat1", "bone", "bat2"]).unwrap();
    let unmerged = layer.forward(x.clone());
    // Every partial state (later Bat merged before an earlier one, additive merged between
    // them) computes the same output.
    layer.merge(Some(&["bat2"]), true).unwrap();
    assert_close(&layer.forward(x.clone()), &unmerged, 1e-4);
    layer.merge(Some(&["bone"]), true).unwrap();
    assert_close(&layer.forward(x.clone()), &unmerged, 1e-4);
    layer.merge(Some(&["bat1"]), true).unwrap();
    assert_eq!(layer.merged_adapters(), ["bat1", "bat2", "bone"]);
    assert_close(&layer.forward(x.clone()), &unmerged, 1e-4);
    layer.unmerge().unwrap();
    assert_close(&layer.forward(x), &unmerged, 1e-4);
}

#[test]
fn delete_removes_an_adapter() {
    let device = device();
    let mut layer = adapted::<TB>(24, 16, &device);
    let x = random::<TB, 2>([5, 24], &device);
    let base = values(&layer.forward(x.clone()));
    layer
        .add_adapter("a", &AdapterSpec::bone(4).with_random_init(), &device)
        .unwrap();
    layer.merge(None, false).unwrap();
    let err = layer.delete_adapter("a").unwrap_err();
    assert_eq!(
        err.to_string(),
        "adapter `a` on layer `test.layer` is merged into the base weight; unmerge first"
    );
    layer.unmerge().unwrap();
    let removed = layer.delete_adapter("a").unwrap();
    assert_eq!(removed.rank(), 4);
    assert!(layer.adapter_names().is_empty());
    assert!(layer.active_adapters().is_empty());
    assert!(max_rel_diff(&values(&layer.forward(x)), &base) < 1e-6);
}

#[test]
fn unknown_and_duplicate_names_are_errors() {
    let device = device();
    let mut layer = adapted::<TB>(24, 16, &device);
    layer
        .add_adapter("a", &AdapterSpec::bone(4), &device)
        .unwrap();
    layer
        .add_adapter("b", &AdapterSpec::bone(4), &device)
        .unwrap();
    let err = layer.set_active(&["c"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown adapter `c` on layer `test.layer`; adapters present: [a, b]"
    );
    assert_eq!(
        layer.active_adapters(),
        ["a"],
        "a failed switch changes nothing"
    );
    assert!(layer.merge(Some(&["zz"]), true).is_err());
    assert!(layer.delete_adapter("zz").is_err());
    let err = layer
        .add_adapter("a", &AdapterSpec::lora(2, 4.0), &device)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "adapter `a` already exists on layer `test.layer`; delete it first or pick another name"
    );
}

#[test]
fn invalid_ranks_are_errors_naming_the_layer() {
    let device = device();
    let mut layer = adapted::<TB>(24, 18, &device);
    let err = layer
        .add_adapter("a", &AdapterSpec::bone(0), &device)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid rank r=0 for layer `test.layer`: r must be at least 1"
    );
    let err = layer
        .add_adapter("a", &AdapterSpec::lora(0, 8.0), &device)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid rank r=0 for layer `test.layer`: r must be at least 1"
    );
    let err = layer
        .add_adapter("a", &AdapterSpec::bat(4), &device)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Bat needs in and out to be multiples of r, but layer `test.layer` has in=24, out=18, r=4 (in % r = 0, out % r = 2); choose an r that divides both or use Bone, which supports any r"
    );
    let err = layer
        .add_adapter("a", &AdapterSpec::lora(2, f64::NAN), &device)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid lora_alpha=NaN for layer `test.layer`: expected a finite, non-zero number"
    );
    let err = layer
        .add_adapter("a", &AdapterSpec::bone(2).with_dropout(1.5), &device)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid dropout 1.5 for layer `test.layer`: expected a probability in [0, 1)"
    );
    assert!(
        layer.adapter_names().is_empty(),
        "failed adds leave nothing behind"
    );
    // Bone takes any r, including r > in.
    layer
        .add_adapter("ok", &AdapterSpec::bone(7), &device)
        .unwrap();
    layer
        .add_adapter("big", &AdapterSpec::bone(40), &device)
        .unwrap();
}

#[test]
fn bone_with_partial_chunk_merges_and_unmerges_exactly() {
    let device = device();
    let mut layer = adapted::<TB>(172, 64, &device);
    layer
        .add_adapter("b", &AdapterSpec::bone(8).with_random_init(), &device)
        .unwrap();
    let original = layer.base.weight.val();
    let x = random::<TB, 2>([3, 172], &device);
    let unmerged = layer.forward(x.clone());
    layer.merge(None, true).unwrap();
    assert_close(&layer.forward(x), &unmerged, 1e-4);
    layer.unmerge().unwrap();
    assert_close(&layer.base.weight.val(), &original, 1e-6);
}

#[test]
fn trainable_parameter_counts_follow_the_method() {
    let device = device();
    let mut layer = adapted::<TB>(64, 128, &device);
    layer
        .add_adapter("bone", &AdapterSpec::bone(16), &device)
        .unwrap();
    layer
        .add_adapter("bat", &AdapterSpec::bat(16), &device)
        .unwrap();
    layer
        .add_adapter("lora", &AdapterSpec::lora(8, 16.0), &device)
        .unwrap();
    assert_eq!(layer.trainable_params(), 16 * 128, "Bone: r · out");
    layer.set_active(&["bat"]).unwrap();
    assert_eq!(layer.trainable_params(), 128 * 16, "Bat: out/r · r · r");
    layer.set_active(&["lora"]).unwrap();
    assert_eq!(
        layer.trainable_params(),
        8 * (64 + 128),
        "LoRA: r · (in + out)"
    );
    assert_eq!(layer.base_params(), 64 * 128 + 128);
    layer.set_base_trainable(true);
    assert_eq!(layer.trainable_params(), 8 * (64 + 128) + 64 * 128 + 128);
    let _: Tensor<TB, 2> = layer.effective_weight();
}
