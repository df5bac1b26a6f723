//! Choosing the inference backend at run time among those compiled in, for the `bone` tool.
//!
//! Code is generic over `B: Backend`; [`run_inference`] instantiates a [`BackendTask`] for
//! the backend `--device` names. Cargo features decide what can be chosen: `ndarray`
//! (default), `wgpu`, `cuda`.

use anyhow::bail;
use burn::tensor::backend::Backend;

/// `--device`: which backend runs the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Device {
    /// The most capable backend compiled in: CUDA, then WGPU, then NdArray.
    #[default]
    Auto,
    /// NdArray on the CPU (feature `ndarray`).
    Ndarray,
    /// WGPU: Vulkan, Metal, DirectX, or Mesa's lavapipe on the CPU (feature `wgpu`).
    Wgpu,
    /// CUDA on an NVIDIA GPU (feature `cuda`).
    Cuda,
}

impl Device {
    /// The backend `Auto` stands for in this build.
    pub fn resolve(self) -> Self {
        match self {
            Self::Auto if cfg!(feature = "cuda") => Self::Cuda,
            Self::Auto if cfg!(feature = "wgpu") => Self::Wgpu,
            Self::Auto => Self::Ndarray,
            other => other,
        }
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

/// Work that runs on any backend.
pub trait BackendTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B`, named `backend`.
    ///
    /// # Errors
    /// The task's own errors.
    fn run<B: Backend>(
        self,
        device: B::Device,
        backend: &'static str,
    ) -> anyhow::Result<Self::Output>;
}

/// Runs `task` on the chosen backend.
///
/// # Errors
/// A backend this build lacks (naming the cargo feature to enable), CUDA without a usable
/// driver, or the task's own error.
pub fn run_inference<T: BackendTask>(device: Device, task: T) -> anyhow::Result<T::Output> {
    match device.resolve() {
        Device::Ndarray => {
            #[cfg(feature = "ndarray")]
            {
                return task.run::<burn::backend::NdArray>(Default::default(), "ndarray");
            }
            #[allow(unreachable_code)]
            {
                bail!("--device ndarray: this build lacks the `ndarray` feature (rebuild with `--features ndarray`)")
            }
        }
        Device::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                return task.run::<burn::backend::Wgpu>(Default::default(), "wgpu");
            }
            #[allow(unreachable_code)]
            {
                bail!("--device wgpu: this build lacks the `wgpu` feature (rebuild with `--features wgpu`)")
            }
        }
        Device::Cuda => {
            #[cfg(feature = "cuda")]
            {
                check_cuda()?;
                return task.run::<burn::backend::Cuda>(Default::default(), "cuda");
            }
            #[allow(unreachable_code)]
            {
                bail!("--device cuda: this build lacks the `cuda` feature (rebuild with `--features cuda`)")
            }
        }
        Device::Auto => bail!("--device auto did not resolve to a backend"),
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
            bail!(
                "--device cuda: no usable CUDA device ({reason}); is the NVIDIA driver installed? \
                 Use --device ndarray or wgpu"
            )
        }
    }
}
