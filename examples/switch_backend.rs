//! The same training code on NdArray, Flex, WGPU or CUDA: everything is generic over
//! `B: AutodiffBackend`, and `main` picks the backend by name among those compiled in.
//!
//! ```sh
//! cargo run --release -p bone-examples --example switch_backend               # NdArray and Flex
//! cargo run --release -p bone-examples --example switch_backend -- flex       # one backend
//! cargo run --release -p bone-examples --features wgpu --example switch_backend -- wgpu
//! cargo run --release -p bone-examples --features cuda --example switch_backend -- cuda
//! ```
//!
//! WGPU runs on Vulkan, Metal or DirectX 12 (without a GPU, Mesa's lavapipe runs it on the
//! CPU); CUDA builds without a toolkit and needs the NVIDIA driver at run time.

use std::time::Instant;

use bone_module::{AdaptedLinear, AdapterSpec};
use burn::backend::Autodiff;
use burn::nn::LinearConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, ElementConversion, Tensor};

/// One Bone-adapted 512 → 512 layer, trained for 10 steps; returns (first, last) loss.
fn train<B: AutodiffBackend>(device: &B::Device) -> anyhow::Result<(f32, f32)> {
    B::seed(device, 0);
    let mut layer = AdaptedLinear::<B>::new(LinearConfig::new(512, 512).init(device), "proj");
    layer.add_adapter("default", &AdapterSpec::bone(64), device)?;
    let x = Tensor::<B, 2>::random([1024, 512], Distribution::Normal(0.0, 1.0), device);
    let target = x.clone().mul_scalar(0.5).detach(); // [1024, 512]
    let mut optim = AdamWConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..10 {
        let loss = (layer.forward(x.clone()) - target.clone())
            .powi_scalar(2)
            .mean();
        losses.push(loss.clone().into_scalar().elem::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = optim.step(1e-2, layer, grads);
    }
    Ok((losses[0], losses[losses.len() - 1]))
}

fn report<B: AutodiffBackend>(name: &str, device: B::Device) -> anyhow::Result<()> {
    let start = Instant::now();
    let (first, last) = train::<B>(&device)?;
    println!(
        "{name:>8}: loss {first:.4} -> {last:.4} in {:.2?}",
        start.elapsed()
    );
    anyhow::ensure!(last < first, "{name}: the loss did not fall");
    Ok(())
}

fn run(name: &str) -> anyhow::Result<()> {
    match name {
        #[cfg(feature = "ndarray")]
        "ndarray" => report::<Autodiff<burn::backend::NdArray>>(name, Default::default()),
        "flex" => report::<Autodiff<burn::backend::Flex>>(name, Default::default()),
        #[cfg(feature = "wgpu")]
        "wgpu" => report::<Autodiff<burn::backend::Wgpu>>(name, Default::default()),
        #[cfg(feature = "cuda")]
        "cuda" => report::<Autodiff<burn::backend::Cuda>>(name, Default::default()),
        other => anyhow::bail!(
            "backend `{other}` is not compiled in; this build has: {}",
            compiled().join(", ")
        ),
    }
}

/// The backends this build can run (`flex` is always compiled).
fn compiled() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "ndarray") {
        names.push("ndarray");
    }
    names.push("flex");
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    names
}

fn main() -> anyhow::Result<()> {
    let asked: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<String> = if asked.is_empty() {
        // By default the CPU backends, which need no driver.
        compiled()
            .into_iter()
            .filter(|n| matches!(*n, "ndarray" | "flex"))
            .map(String::from)
            .collect()
    } else {
        asked
    };
    for name in &names {
        run(name)?;
    }
    Ok(())
}
