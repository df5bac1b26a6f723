//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// The backend the tests run on: NdArray by default, WGPU or CUDA with their features.
pub type TB = models::backend::DefaultBackend;

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
        dir.join("golden").is_dir() && dir.join("models").is_dir(),
        "the shared test data is missing: looked for {} (set BONE_SHARED_DIR to the folder that holds golden/ and models/)",
        dir.display()
    );
    dir
}

pub fn stories() -> PathBuf {
    shared_dir().join("models/stories260K")
}

pub fn minilm() -> PathBuf {
    shared_dir().join("models/all-MiniLM-L6-v2")
}

pub fn roberta_tiny() -> PathBuf {
    shared_dir().join("golden/roberta_tiny_random")
}

pub fn golden(name: &str) -> BTreeMap<String, TensorData> {
    bone_io::tensors::read_safetensors(&shared_dir().join(format!("golden/{name}.safetensors")))
        .unwrap()
}

pub fn f32s(data: &TensorData) -> Vec<f32> {
    data.iter::<f32>().collect()
}

pub fn ids(data: &TensorData) -> Vec<u32> {
    data.iter::<i64>().map(|v| v as u32).collect()
}

pub fn values<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Vec<f32> {
    t.to_data().iter::<f32>().collect()
}

pub fn int_tensor<B: Backend, const D: usize>(
    data: &TensorData,
    device: &B::Device,
) -> Tensor<B, D, Int> {
    Tensor::from_data(data.clone(), device)
}

pub fn ids_tensor<B: Backend>(rows: &[Vec<u32>], device: &B::Device) -> Tensor<B, 2, Int> {
    let cols = rows[0].len();
    let flat: Vec<i64> = rows.iter().flatten().map(|&v| v as i64).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), cols]), device)
}

/// Largest |a − b| / max(1, |b|), after checking the lengths agree.
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

#[track_caller]
pub fn assert_close(what: &str, ours: &[f32], golden: &[f32], tol: f32) -> f32 {
    let d = max_rel_diff(ours, golden);
    assert!(d <= tol, "{what}: max relative difference {d:e} > {tol:e}");
    eprintln!("{what}: max relative difference {d:e}");
    d
}
