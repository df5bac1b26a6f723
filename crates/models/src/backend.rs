//! The backends this workspace is built with, selected by cargo features.
//!
//! Code is generic over `B: Backend`; binaries and tests pick a concrete backend here.
//! [`DefaultBackend`] is the most capable one compiled in: CUDA, then WGPU, then NdArray.

#[cfg(feature = "cuda")]
/// The default backend of this build (CUDA).
pub type DefaultBackend = burn::backend::Cuda;

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
/// The default backend of this build (WGPU: Vulkan, Metal, DirectX, or Mesa's lavapipe).
pub type DefaultBackend = burn::backend::Wgpu;

#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "cuda"))))]
/// The default backend of this build (NdArray on the CPU).
pub type DefaultBackend = burn::backend::NdArray;

/// The default backend with automatic differentiation, for training.
#[cfg(any(feature = "ndarray", feature = "wgpu", feature = "cuda"))]
pub type DefaultAutodiffBackend = burn::backend::Autodiff<DefaultBackend>;

/// A short name of the default backend, for logs and result tables.
#[cfg(any(feature = "ndarray", feature = "wgpu", feature = "cuda"))]
pub fn default_backend_name() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda"
    } else if cfg!(feature = "wgpu") {
        "wgpu"
    } else {
        "ndarray"
    }
}
