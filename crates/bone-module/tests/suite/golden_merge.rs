//! Golden parity without a model: the base weights of stories260K plus the adapters PEFT
//! 0.21.2 wrote, merged by this crate, equal the merged weights PEFT computed.

use crate::common::*;
use bone_io::tensors::read_safetensors;
use bone_module::peft::load_adapter;
use bone_module::{AdapterHost, AdapterHostExt, AdapterKind};

fn check(method: &str, kind: AdapterKind, r: usize) {
    let device = device();
    let shared = shared_dir();
    let mut layers = stories260k_linears::<TB>(&device);
    let dir = shared.join(format!("golden/peft_{method}_stories260k"));
    let loaded = load_adapter(&mut layers, &dir, "default", &device).unwrap();
    assert_eq!(loaded.config.method(), kind);
    assert_eq!(loaded.config.r(), r);
    assert_eq!(loaded.layers.len(), 35);
    assert!(loaded.extra_tensors.is_empty());

    layers.merge_adapters(None, true).unwrap();
    let golden =
        read_safetensors(&shared.join(format!("golden/peft_{method}_stories260k.safetensors")))
            .unwrap();
    let mut compared = 0;
    layers.visit_linears(&mut |layer| {
        let key = format!("merged.{}.weight", layer.path());
        if let Some(expected) = golden.get(&key) {
            // Golden is PyTorch [out, in]; ours is Burn [in, out].
            let ours = values(&layer.base.weight.val().transpose());
            let expected = data_f32(expected);
            let diff = max_rel_diff(&ours, &expected);
            assert!(
                diff < 1e-5,
                "{method}: {key} differs from PEFT by {diff:e} (relative)"
            );
            // The merge must actually have changed the weight.
            compared += 1;
        }
    });
    assert_eq!(
        compared, 2,
        "{method}: golden holds q_proj and down_proj of layer 0"
    );
}

#[test]
fn bone_merge_matches_peft() {
    check("bone", AdapterKind::Bone, 8);
}

#[test]
fn bat_merge_matches_peft() {
    check("bat", AdapterKind::Bat, 4);
}

#[test]
fn lora_merge_matches_peft() {
    check("lora", AdapterKind::Lora, 4);
}

#[test]
fn merged_weights_differ_from_the_base() {
    // Guards the parity tests: PEFT's merged weights are not the base weights.
    let shared = shared_dir();
    let base = read_safetensors(&shared.join("models/stories260K/model.safetensors")).unwrap();
    for method in ["bone", "bat", "lora"] {
        let golden =
            read_safetensors(&shared.join(format!("golden/peft_{method}_stories260k.safetensors")))
                .unwrap();
        for module in [
            "model.layers.0.self_attn.q_proj",
            "model.layers.0.mlp.down_proj",
        ] {
            let key = format!("{module}.weight");
            let d = max_abs_diff(
                &data_f32(&golden[&format!("merged.{key}")]),
                &data_f32(&base[&key]),
            );
            assert!(d > 1e-3, "{method} {module}: merged equals base (diff {d})");
        }
    }
}
