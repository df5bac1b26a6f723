//! `bone merge`: adapter merged into the base weights, written as a checkpoint folder.

use anyhow::Context;
use bone_module::AdapterHostExt;
use burn::tensor::backend::Backend;
use models::export::save_pretrained;

use super::common::{ModelArgs, Precision};
use super::MergeArgs;

pub fn run<B: Backend>(args: MergeArgs, device: &B::Device) -> anyhow::Result<()> {
    super::output::check_out(&args.out, args.force, true)?;
    let model_args = ModelArgs {
        model: args.model.clone(),
        adapter: Some(args.adapter.clone()),
        precision: Precision::Auto,
        revision: None,
    };
    let mut loaded = model_args.load::<B>(device)?;
    let adapter = loaded.adapter.take().context("an adapter was loaded")?;
    let reports = loaded.model.merge_adapters(None, !args.unsafe_merge)?;
    let merged = reports.iter().filter(|r| !r.merged.is_empty()).count();
    let report = super::output::write_output(&args.out, args.force, |dir| {
        Ok(save_pretrained(&loaded.model, dir)?)
    })?;
    println!(
        "merged {} adapter ({}, r={}) into {merged} layers of {} ({}); wrote {} tensors to {} ({} files copied)",
        adapter.config.peft_type.as_str(),
        adapter.config.method(),
        adapter.config.r(),
        args.model.display(),
        loaded.model.architecture(),
        report.tensors,
        args.out.display(),
        report.copied_files.len()
    );
    Ok(())
}
