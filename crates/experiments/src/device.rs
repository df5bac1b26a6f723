//! Choosing the backend at run time among those compiled in (`--device`).
//!
//! Code is generic over the backend; [`run_on`] instantiates it for the chosen one. The
//! cargo features decide what can be chosen: `ndarray` (default), `wgpu`, `cuda`.

use anyhow::bail;
use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

/// `--device`: which backend runs the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The most capable backend compiled in: CUDA, then WGPU, then the faster CPU backend
    /// for this CPU (see [`choose_cpu_backend`]).
    #[default]
    Auto,
    /// NdArray on the CPU (feature `ndarray`).
    Ndarray,
    /// WGPU: Vulkan, Metal or DirectX, or Mesa's lavapipe on the CPU (feature `wgpu`).
    Wgpu,
    /// CUDA on an NVIDIA GPU (feature `cuda`).
    Cuda,
    /// Flex, Burn's pure-Rust CPU backend (gemm kernels; f16/bf16 support); always compiled.
    Flex,
}

impl DeviceChoice {
    /// The backend this choice stands for in this build (`Auto`: the most capable compiled
    /// in).
    pub fn resolve(self) -> BackendKind {
        match self {
            Self::Auto if cfg!(feature = "cuda") => BackendKind::Cuda,
            Self::Auto if cfg!(feature = "wgpu") => BackendKind::Wgpu,
            Self::Auto => auto_cpu_backend().0,
            Self::Ndarray => BackendKind::Ndarray,
            Self::Wgpu => BackendKind::Wgpu,
            Self::Cuda => BackendKind::Cuda,
            Self::Flex => BackendKind::Flex,
        }
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Flex => "flex",
        }
    }
}

/// A backend a job runs on: [`DeviceChoice`] resolved (never `auto`). Serialised (summaries)
/// and displayed in lowercase, as `--device` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// NdArray on the CPU.
    Ndarray,
    /// WGPU.
    Wgpu,
    /// CUDA.
    Cuda,
    /// Flex on the CPU.
    Flex,
}

impl BackendKind {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Flex => "flex",
        }
    }

    /// Whether the backend computes on the CPU (NdArray, Flex).
    pub fn is_cpu(self) -> bool {
        matches!(self, Self::Ndarray | Self::Flex)
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Work that runs on any autodiff backend.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` (its inference form is `B::InnerBackend`).
    fn run<B: AutodiffBackend>(
        self,
        device: B::Device,
        backend: BackendKind,
    ) -> anyhow::Result<Self::Output>;
}

/// The device a GPU job's model lives on: the first of `--devices`, else device
/// `LOCAL_RANK` in a run of several processes (torchrun's one process per GPU), else the
/// backend's default.
#[allow(dead_code)]
fn job_device<B: AutodiffBackend>(backend: BackendKind) -> B::Device {
    use burn::tensor::backend::{Device, DeviceId};
    match crate::train::distributed::current().and_then(|w| w.model_device_index(backend)) {
        Some(index) => <B::Device as Device>::from_id(DeviceId::new(0, index)),
        None => Default::default(),
    }
}

/// Prints which CPU backend `--device auto` chose and why, as the first line of a training
/// run (the `bone` tools keep their output to what they produce).
pub fn announce_auto(choice: DeviceChoice) {
    let backend = choice.resolve();
    if choice == DeviceChoice::Auto && backend.is_cpu() {
        println!("device auto: {backend} ({})", auto_cpu_backend().1);
    }
}

/// Runs `job` on the chosen backend.
///
/// # Errors
/// A backend this build lacks (naming the cargo feature to enable), CUDA without a usable
/// driver, or the job's own error.
pub fn run_on<J: BackendJob>(choice: DeviceChoice, job: J) -> anyhow::Result<J::Output> {
    let backend = choice.resolve();
    match backend {
        BackendKind::Ndarray => {
            #[cfg(feature = "ndarray")]
            {
                return job.run::<Autodiff<burn::backend::NdArray>>(
                    Default::default(),
                    BackendKind::Ndarray,
                );
            }
            #[allow(unreachable_code)]
            {
                bail!("--device ndarray: this build lacks the `ndarray` feature (rebuild with `--features ndarray`)")
            }
        }
        BackendKind::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                let device = job_device::<Autodiff<burn::backend::Wgpu>>(BackendKind::Wgpu);
                return job.run::<Autodiff<burn::backend::Wgpu>>(device, BackendKind::Wgpu);
            }
            #[allow(unreachable_code)]
            {
                bail!("--device wgpu: this build lacks the `wgpu` feature (rebuild with `--features wgpu`)")
            }
        }
        BackendKind::Cuda => {
            #[cfg(feature = "cuda")]
            {
                check_cuda()?;
                let device = job_device::<Autodiff<burn::backend::Cuda>>(BackendKind::Cuda);
                return job.run::<Autodiff<burn::backend::Cuda>>(device, BackendKind::Cuda);
            }
            #[allow(unreachable_code)]
            {
                bail!("--device cuda: this build lacks the `cuda` feature (rebuild with `--features cuda`)")
            }
        }
        BackendKind::Flex => {
            job.run::<Autodiff<burn::backend::Flex>>(Default::default(), BackendKind::Flex)
        }
    }
}

/// The CPU backend `--device auto` takes on this machine, and why.
fn auto_cpu_backend() -> (BackendKind, String) {
    choose_cpu_backend(
        crate::cpu::SimdWidth::detect(),
        cfg!(feature = "ndarray"),
        NDARRAY_HAS_AVX512,
    )
}

/// Whether NdArray's GEMM (matrixmultiply) has its AVX-512 kernels in this build: the
/// `ndarray` feature brings matrixmultiply in with its `avx512` feature (bone-module's
/// Cargo.toml), which burn-ndarray's own dependency leaves off.
const NDARRAY_HAS_AVX512: bool = cfg!(feature = "ndarray");

/// The faster CPU backend for a CPU with `simd`, and the reason, as `--device auto` prints it.
///
/// NdArray when it is compiled in and its GEMM covers the CPU's widest SIMD: matrixmultiply
/// has AVX2/FMA kernels always and AVX-512 ones when built with them (measured on an AMD
/// EPYC Zen 5 with AVX-512: 2× the GFLOP/s of its AVX2 kernels on the GLUE and 1024² shapes,
/// see benchmarks/peak.md). Flex otherwise: its gemm crate picks AVX-512 at run time, so on
/// an AVX-512 CPU it beats an NdArray whose matrixmultiply lacks those kernels (the issue's
/// Xeon: LoRA 0.610 s/step on Flex against 0.723 on NdArray), and it is the only CPU
/// backend of a build without the `ndarray` feature.
pub fn choose_cpu_backend(
    simd: crate::cpu::SimdWidth,
    ndarray_compiled: bool,
    ndarray_avx512: bool,
) -> (BackendKind, String) {
    use crate::cpu::SimdWidth;
    if !ndarray_compiled {
        return (
            BackendKind::Flex,
            "the only CPU backend of this build (no `ndarray` feature)".into(),
        );
    }
    match simd {
        SimdWidth::Avx512 if ndarray_avx512 => (
            BackendKind::Ndarray,
            "AVX-512 CPU, and NdArray's matrixmultiply has its AVX-512 kernels in this build".into(),
        ),
        SimdWidth::Avx512 => (
            BackendKind::Flex,
            "AVX-512 CPU: Flex's gemm uses AVX-512, this build's matrixmultiply (NdArray) only AVX2".into(),
        ),
        SimdWidth::Avx2 => (
            BackendKind::Ndarray,
            "AVX2 CPU: NdArray's matrixmultiply and Flex's gemm both run AVX2 kernels; NdArray's step is the faster there".into(),
        ),
        SimdWidth::Narrow => (
            BackendKind::Ndarray,
            "no AVX2: NdArray, the default CPU backend".into(),
        ),
    }
}

/// Fails cleanly when the CUDA driver cannot be loaded (cudarc panics on first use).
#[cfg(feature = "cuda")]
fn check_cuda() -> anyhow::Result<()> {
    use burn::tensor::Tensor;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| {
        let device = Default::default();
        Tensor::<burn::backend::Cuda, 1>::zeros([1], &device).into_data()
    });
    std::panic::set_hook(hook);
    match probe {
        Ok(_) => Ok(()),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown error".into());
            bail!("--device cuda: no usable CUDA device ({reason}); is the NVIDIA driver installed? Use --device ndarray or wgpu")
        }
    }
}

/// Work that runs on any backend without automatic differentiation (inference).
pub trait InferenceJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B`, named `backend`.
    ///
    /// # Errors
    /// The job's own errors.
    fn run<B: burn::tensor::backend::Backend>(
        self,
        device: B::Device,
        backend: BackendKind,
    ) -> anyhow::Result<Self::Output>;
}

/// Runs an inference `job` on the chosen backend (the autodiff wrapper is not used).
///
/// # Errors
/// See [`run_on`].
pub fn run_inference<J: InferenceJob>(choice: DeviceChoice, job: J) -> anyhow::Result<J::Output> {
    struct Inner<J>(J);
    impl<J: InferenceJob> BackendJob for Inner<J> {
        type Output = J::Output;
        fn run<B: AutodiffBackend>(
            self,
            device: B::Device,
            backend: BackendKind,
        ) -> anyhow::Result<J::Output> {
            self.0.run::<B::InnerBackend>(device, backend)
        }
    }
    run_on(choice, Inner(job))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::SimdWidth;

    #[test]
    fn auto_takes_flex_only_where_it_has_the_wider_kernels_or_is_alone() {
        let kind = |simd, compiled, avx512| choose_cpu_backend(simd, compiled, avx512).0;
        assert_eq!(kind(SimdWidth::Avx512, true, true), BackendKind::Ndarray);
        assert_eq!(kind(SimdWidth::Avx512, true, false), BackendKind::Flex);
        assert_eq!(kind(SimdWidth::Avx2, true, false), BackendKind::Ndarray);
        assert_eq!(kind(SimdWidth::Narrow, true, true), BackendKind::Ndarray);
        assert_eq!(kind(SimdWidth::Avx2, false, false), BackendKind::Flex);
        let (_, why) = choose_cpu_backend(SimdWidth::Avx512, true, false);
        assert_eq!(
            why,
            "AVX-512 CPU: Flex's gemm uses AVX-512, this build's matrixmultiply (NdArray) only AVX2"
        );
    }
}
