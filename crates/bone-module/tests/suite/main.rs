//! The bone-module integration suite, in one test binary (one link, one monomorphisation of
//! the backend: much faster to build, especially on WGPU).

/// The backend the suite runs on: NdArray, or CUDA with the `cuda` feature (the GPU check).
/// `tests/wgpu_suite.rs` runs the same modules on WGPU.
#[cfg(feature = "cuda")]
pub type TB = burn::backend::Cuda;
/// The backend the suite runs on: NdArray, or CUDA with the `cuda` feature (the GPU check).
#[cfg(not(feature = "cuda"))]
pub type TB = burn::backend::NdArray;

mod common;

mod behaviours;
mod bone_forward;
mod golden_merge;
mod half_precision;
mod mini;
mod peft_files;
mod training;
