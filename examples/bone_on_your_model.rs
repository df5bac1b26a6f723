//! Bone on the linear layers of a small Burn model of your own.
//!
//! An [`AdaptedLinear`] stands where a `Linear` would; implementing [`AdapterHost`] (two lines
//! per layer) gives the model PEFT's adapter operations. The example trains the Bone blocks for
//! a few steps on a regression target the base cannot fit, merges them into the weights (the
//! output does not change), and saves a PEFT adapter folder.
//!
//! ```sh
//! cargo run --release -p bone-examples --example bone_on_your_model [-- OUT_DIR]
//! ```

use std::collections::BTreeMap;

use bone_module::peft::save_adapter;
use bone_module::TargetModules;
use bone_module::{AdaptedLinear, AdapterConfig, AdapterHost, AdapterHostExt, AdapterSpec};
use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module};
use burn::nn::LinearConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

type B = Autodiff<NdArray>;

/// Your model: `x [n, 32] → up [n, 128] → relu → down [n, 32]`.
#[derive(Module, Debug)]
struct TinyMlp<B: Backend> {
    up: AdaptedLinear<B>,
    down: AdaptedLinear<B>,
}

impl<B: Backend> TinyMlp<B> {
    fn new(device: &B::Device) -> Self {
        Self {
            // The path is the module name PEFT files use for the layer.
            up: AdaptedLinear::new(LinearConfig::new(32, 128).init(device), "up"),
            down: AdaptedLinear::new(LinearConfig::new(128, 32).init(device), "down"),
        }
    }

    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.down.forward(relu(self.up.forward(x)))
    }
}

impl<B: Backend> AdapterHost<B> for TinyMlp<B> {
    fn visit_linears(&self, f: &mut dyn FnMut(&AdaptedLinear<B>)) {
        f(&self.up);
        f(&self.down);
    }
    fn visit_linears_mut(&mut self, f: &mut dyn FnMut(&mut AdaptedLinear<B>)) {
        f(&mut self.up);
        f(&mut self.down);
    }
}

fn main() -> anyhow::Result<()> {
    let device = Default::default();
    B::seed(&device, 7);
    let mut model = TinyMlp::<B>::new(&device);
    let config =
        AdapterConfig::from_spec(&AdapterSpec::bone(8), TargetModules::names(&["up", "down"]));
    let layers = model.add_adapter("default", &config, &device)?;
    println!(
        "Bone r=8 on {layers:?}: {} trainable parameters",
        model.adapter_trainable_params()
    );

    // A target the frozen base does not produce: a fixed random linear map of the input.
    let x = Tensor::<B, 2>::random([256, 32], Distribution::Normal(0.0, 1.0), &device);
    let map = Tensor::<B, 2>::random([32, 32], Distribution::Normal(0.0, 0.3), &device);
    let target = x.clone().matmul(map).detach();

    let mut optim = AdamWConfig::new().init();
    let mut first = None;
    let mut last = 0.0;
    for step in 0..60 {
        let loss = (model.forward(x.clone()) - target.clone())
            .powi_scalar(2)
            .mean();
        last = loss.clone().into_scalar();
        first.get_or_insert(last);
        if step % 20 == 0 {
            println!("step {step:>2}: mse {last:.4}");
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let first = first.unwrap_or(last);
    println!("mse {first:.4} -> {last:.4}");
    anyhow::ensure!(last < first, "training did not lower the loss");

    // Merge: the adapted output is folded into the base weights; the forward is unchanged.
    let model = model.valid();
    let before = model.forward(x.clone().inner());
    let mut merged = model.clone();
    merged.merge_adapters(None, true)?;
    let diff = (merged.forward(x.inner()) - before)
        .abs()
        .max()
        .into_scalar();
    println!("merged vs adapted forward: max |diff| = {diff:.2e}");
    anyhow::ensure!(diff < 1e-4, "merging changed the output by {diff}");

    // The PEFT folder: adapter_config.json + adapter_model.safetensors (Bone = PEFT's MiSS).
    let out = bone_examples::out_dir("bone_on_your_model")?;
    save_adapter(&model, "default", &config, &out, &BTreeMap::new())?;
    println!("adapter saved to {}", out.display());
    Ok(())
}
