//! `bone convert`: a llama.cpp GGUF model written as a Hugging Face checkpoint folder.

use anyhow::bail;
use burn::tensor::FloatDType;
use models::gguf::convert::convert;

use super::{ConvertArgs, ConvertDtype};

pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    if args.out.is_dir() && !args.force && std::fs::read_dir(&args.out)?.next().is_some() {
        bail!(
            "{} already holds files; pass --force to write into it",
            args.out.display()
        );
    }
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
    let report = convert(&gguf, &args.out, dtype)?;
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
