//! Half-precision bases: an f16 (or bf16) base weight with f32 adapters runs forward, merge
//! and unmerge, on the Flex CPU backend (NdArray has no half types).

use crate::common::*;
use bone_module::{AdaptedLinear, AdapterSpec};
use burn::backend::Flex;
use burn::tensor::{DType, FloatDType, Tensor};

type F = Flex;

fn half_layer(spec: &AdapterSpec, dtype: FloatDType) -> (AdaptedLinear<F>, AdaptedLinear<F>) {
    let device = Default::default();
    let mut full = AdaptedLinear::<F>::new(random_linear(32, 24, true, &device), "layer");
    full.add_adapter("a", &spec.clone().with_random_init(), &device)
        .unwrap();
    let mut half = full.clone();
    half.base.weight = half.base.weight.clone().map(|w| w.cast(dtype));
    half.base.bias = half.base.bias.clone().map(|b| b.map(|b| b.cast(dtype)));
    (full, half)
}

#[test]
fn half_base_with_f32_adapters_forward_merge_unmerge() {
    let device = Default::default();
    for dtype in [FloatDType::F16, FloatDType::BF16] {
        let tol = if dtype == FloatDType::F16 { 2e-2 } else { 6e-2 };
        for spec in [
            AdapterSpec::bone(8),
            AdapterSpec::bone(5),
            AdapterSpec::bat(4),
            AdapterSpec::lora(4, 8.0),
        ] {
            let (full, mut half) = half_layer(&spec, dtype);
            let x = random::<F, 2>([6, 32], &device);
            let reference = full.forward(x.clone());
            let out = half.forward(x.clone().cast(dtype));
            assert_eq!(
                out.dtype(),
                DType::from(dtype),
                "output keeps the input's dtype"
            );
            let out: Tensor<F, 2> = out.cast(FloatDType::F32);
            let d = max_rel_diff(&values(&out), &values(&reference));
            assert!(d < tol, "{dtype:?} {}: forward differs by {d}", spec.kind());

            let original = half.base.weight.val();
            half.merge(None, true).unwrap();
            assert_eq!(
                half.base.weight.val().dtype(),
                DType::from(dtype),
                "merge keeps the base dtype"
            );
            let merged: Tensor<F, 2> = half.forward(x.clone().cast(dtype)).cast(FloatDType::F32);
            let d = max_rel_diff(&values(&merged), &values(&reference));
            assert!(
                d < tol,
                "{dtype:?} {}: merged forward differs by {d}",
                spec.kind()
            );

            half.unmerge().unwrap();
            let restored: Tensor<F, 2> = half.base.weight.val().cast(FloatDType::F32);
            let d = max_rel_diff(&values(&restored), &values(&original.cast(FloatDType::F32)));
            assert!(d < tol, "{dtype:?} {}: unmerge differs by {d}", spec.kind());
            match half.adapter("a").unwrap() {
                bone_module::Adapter::Bone(b) => assert_eq!(b.block.val().dtype(), DType::F32),
                bone_module::Adapter::Bat(b) => assert_eq!(b.block.val().dtype(), DType::F32),
                bone_module::Adapter::Lora(l) => assert_eq!(l.lora_a.val().dtype(), DType::F32),
            }
        }
    }
}
