//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use bone_module::AdaptedLinear;
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};

/// The backend of the suite: chosen by its test target (`TB` in `suite/main.rs`, `wgpu_suite.rs`).
pub use crate::TB;

pub fn device() -> burn::tensor::Device<TB> {
    Default::default()
}

/// `../shared` beside the workspace (or `BONE_SHARED_DIR`); panics with a clear message when
/// it is missing, since these tests check against real files.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("BONE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("golden").is_dir(),
        "the shared test data is missing: looked for {} (set BONE_SHARED_DIR to the folder that holds golden/ and models/)",
        dir.display()
    );
    dir
}

/// A linear layer with random weight and bias.
pub fn random_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    bias: bool,
    device: &B::Device,
) -> Linear<B> {
    LinearConfig::new(d_in, d_out).with_bias(bias).init(device)
}

/// A linear layer with the given Burn-layout weight `[in, out]`.
pub fn linear_from<B: Backend>(weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Linear<B> {
    Linear {
        weight: Param::from_tensor(weight),
        bias: bias.map(Param::from_tensor),
    }
}

pub fn adapted<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> AdaptedLinear<B> {
    AdaptedLinear::new(random_linear(d_in, d_out, true, device), "test.layer")
}

pub fn random<B: Backend, const D: usize>(shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

pub fn values<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Vec<f32> {
    t.to_data().iter::<f32>().collect()
}

/// Largest |a − b| / max(1, |b|) over all entries, after checking the shapes agree.
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[track_caller]
pub fn assert_close<B: Backend, const D: usize>(a: &Tensor<B, D>, b: &Tensor<B, D>, tol: f32) {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let d = max_rel_diff(&values(a), &values(b));
    assert!(
        d <= tol,
        "tensors differ: max relative difference {d:e} > {tol:e}"
    );
}

pub fn data_f32(data: &TensorData) -> Vec<f32> {
    data.iter::<f32>().collect()
}

/// Every linear projection of the stories260K checkpoint as an [`AdaptedLinear`] with its
/// Hugging Face path (Burn layout: the PyTorch `[out, in]` weight transposed).
pub fn stories260k_linears<B: Backend>(device: &B::Device) -> Vec<AdaptedLinear<B>> {
    let path = shared_dir().join("models/stories260K/model.safetensors");
    let tensors = bone_io::read_safetensors(&path).unwrap();
    let mut layers = Vec::new();
    for (key, data) in &tensors {
        let Some(module) = key.strip_suffix(".weight") else {
            continue;
        };
        if !(module.contains("_proj")) {
            continue;
        }
        let shape = data.shape.to_vec();
        let pytorch: Tensor<B, 2> = Tensor::from_data(data.clone().convert::<f32>(), device);
        assert_eq!(pytorch.dims(), [shape[0], shape[1]]);
        layers.push(AdaptedLinear::new(
            linear_from(pytorch.transpose(), None),
            module,
        ));
    }
    assert_eq!(
        layers.len(),
        35,
        "stories260K has 5 layers of 7 projections"
    );
    layers
}
