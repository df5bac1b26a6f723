//! `bone convert`: a llama.cpp GGUF model written as a Hugging Face checkpoint folder.

use anyhow::bail;
use burn::tensor::FloatDType;
use models::gguf::convert::convert;

use super::{ConvertArgs, ConvertDtype};

pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    super::output::check_out(&args.out, args.force, true)?;
    let gguf = match models::gguf::locate(&args.gguf, "config.json")? {
        Some(file) => file,
        None => bail!(
            "--gguf {}: expected a .gguf file (or a folder holding exactly one)",
            args.gguf.display()
        ),
    };
    let dtype = match args.dtype {
        ConvertDtype::F32 => FloatDType::F32,
        ConvertDtype::Bf16 => FloatDType::BF16,
        ConvertDtype::F16 => FloatDType::F16,
    };
    let report =
        super::output::write_output(&args.out, args.force, |dir| Ok(convert(&gguf, dir, dtype)?))?;
    println!(
        "converted {} ({} tensors, {:?}) to {} ({} files)",
        gguf.display(),
        report.tensors,
        args.dtype,
        args.out.display(),
        report.files.len()
    );
    Ok(())
}
