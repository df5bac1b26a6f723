//! `bone convert-adapter`: a Bone, MiSS-mini or Bat adapter rewritten as a PEFT LoRA adapter.

use anyhow::{bail, Context};
use bone_module::peft::save_adapter;
use bone_module::{Adapter, AdapterConfig, AdapterHost, AdapterSpec};
use burn::tensor::backend::Backend;

use super::common::{ModelArgs, Precision};
use super::ConvertAdapterArgs;

/// The name the converted adapter gets while both are on the model.
const LORA_NAME: &str = "lora";

pub fn run<B: Backend>(args: ConvertAdapterArgs, device: &B::Device) -> anyhow::Result<()> {
    if args.to != "lora" {
        bail!("--to {}: only `lora` is supported", args.to);
    }
    super::output::check_out(&args.out, false, false)?;
    let model_args = ModelArgs {
        model: args.model.clone(),
        adapter: Some(args.adapter.clone()),
        precision: Precision::Auto,
        revision: None,
    };
    let mut loaded = model_args.load::<B>(device)?;
    let source = loaded.adapter.take().context("an adapter was loaded")?;

    let mut converted = Vec::new();
    let mut error = None;
    loaded.model.visit_linears(&mut |layer| {
        if error.is_some() || layer.adapter("default").is_none() {
            return;
        }
        match layer.to_lora("default", args.rank) {
            Ok((lora, conversion)) => converted.push((layer.path().to_string(), lora, conversion)),
            Err(e) => error = Some(e),
        }
    });
    if let Some(e) = error {
        return Err(e.into());
    }
    let rank = converted.first().map_or(0, |(_, _, c)| c.rank);
    let worst = converted
        .iter()
        .map(|(_, _, c)| c.relative_error)
        .fold(0.0, f64::max);
    let exact = converted.iter().all(|(_, _, c)| c.exact);
    let layers = converted.len();
    let mut pending = converted.into_iter();
    let mut next = pending.next();
    let mut result = Ok(());
    loaded.model.visit_linears_mut(&mut |layer| {
        if next
            .as_ref()
            .is_some_and(|(path, _, _)| path == layer.path())
        {
            if let Some((_, lora, _)) = next.take() {
                if result.is_ok() {
                    result = layer.insert_adapter(LORA_NAME, Adapter::Lora(lora));
                }
            }
            next = pending.next();
        }
    });
    result?;

    let mut config = AdapterConfig::from_spec(
        &AdapterSpec::lora(rank, rank as f64),
        source.config.target_modules.clone(),
    );
    config.exclude_modules = source.config.exclude_modules.clone();
    config.layers_to_transform = source.config.layers_to_transform.clone();
    config.layers_pattern = source.config.layers_pattern.clone();
    config.task_type = source.config.task_type.clone();
    config.base_model_name_or_path = source.config.base_model_name_or_path.clone();
    config.auto_mapping = source.config.auto_mapping.clone();
    config.modules_to_save = source.config.modules_to_save.clone();
    super::output::write_output(&args.out, false, |dir| {
        Ok(save_adapter(
            &loaded.model,
            LORA_NAME,
            &config,
            dir,
            &source.extra_tensors,
        )?)
    })?;
    println!(
        "converted {} adapter ({}, r={}) on {layers} layers to LoRA r={rank} (lora_alpha={rank}, scale 1): {}, relative error {worst:.3e}; wrote {}",
        source.config.peft_type.as_str(),
        source.config.method(),
        source.config.r(),
        if exact { "exact" } else { "SVD-truncated" },
        args.out.display()
    );
    Ok(())
}
