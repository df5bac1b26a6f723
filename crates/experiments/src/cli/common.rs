//! What the sub-commands share: the model and adapter arguments, loading, token input.

use std::path::PathBuf;

use anyhow::{bail, Context};
use bone_module::peft::LoadedAdapter;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Int, Tensor, TensorData};
use clap::Args;
use models::{AutoModel, LoadOptions};

/// `--precision`: the float type parameters are loaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Precision {
    /// The backend's default (f32).
    #[default]
    Auto,
    /// 32-bit floats.
    F32,
    /// 16-bit floats (WGPU, CUDA).
    F16,
    /// bfloat16 (CUDA).
    Bf16,
}

/// `--model DIR [--adapter DIR] [--precision P]`.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The Hugging Face model folder (config.json, model.safetensors or shards, tokenizer.json),
    /// a llama.cpp GGUF file (or a folder holding exactly one .gguf file), or a Hub id `org/name`
    /// (not an existing path) found in or downloaded to the HF cache.
    #[arg(long, value_name = "DIR|FILE.gguf|ORG/NAME")]
    pub model: PathBuf,
    /// A PEFT adapter folder (adapter_config.json, adapter_model.safetensors) to apply, or a
    /// Hub id `org/name`.
    #[arg(long, value_name = "DIR|ORG/NAME")]
    pub adapter: Option<PathBuf>,
    /// The float type to load the weights in.
    #[arg(long, value_enum, default_value_t = Precision::Auto)]
    pub precision: Precision,
    /// Branch, tag or 40-hex commit of a Hub id given to --model [default: main].
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
}

impl ModelArgs {
    /// Replaces Hub ids (`org/name`, not an existing path) given to --model and --adapter by
    /// their snapshot folders in the Hugging Face cache, downloading missing files unless
    /// HF_HUB_OFFLINE is set (see `models::hub`).
    pub fn resolve_hub_ids(&mut self) -> anyhow::Result<()> {
        self.model = models::hub::resolve_model(&self.model, self.revision.as_deref())?;
        if let Some(adapter) = &self.adapter {
            self.adapter = Some(models::hub::resolve_adapter(adapter, None)?);
        }
        Ok(())
    }
}

impl super::Command {
    /// [`ModelArgs::resolve_hub_ids`] for whichever command this is.
    pub fn resolve_hub_ids(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Forward(a) => a.model.resolve_hub_ids(),
            Self::Generate(a) => a.model.resolve_hub_ids(),
            Self::Chat(a) => a.model.resolve_hub_ids(),
            Self::Inspect(a) => a.model.resolve_hub_ids(),
            Self::Merge(a) => {
                a.model = models::hub::resolve_model(&a.model, None)?;
                a.adapter = models::hub::resolve_adapter(&a.adapter, None)?;
                Ok(())
            }
            Self::ConvertAdapter(a) => {
                a.model = models::hub::resolve_model(&a.model, None)?;
                a.adapter = models::hub::resolve_adapter(&a.adapter, None)?;
                Ok(())
            }
            // `--gguf` names a local file; there is no Hub id to resolve.
            Self::Convert(_) => Ok(()),
        }
    }
}

/// A loaded model with its adapter, if any.
pub struct Loaded<B: Backend> {
    pub model: AutoModel<B>,
    pub adapter: Option<LoadedAdapter>,
}

impl ModelArgs {
    /// Loads the model (as the kind of model the adapter was saved from) and the adapter.
    pub fn load<B: Backend>(&self, device: &B::Device) -> anyhow::Result<Loaded<B>> {
        let dtype = match self.precision {
            Precision::Auto => None,
            Precision::F32 => Some(FloatDType::F32),
            Precision::F16 => Some(FloatDType::F16),
            Precision::Bf16 => Some(FloatDType::BF16),
        };
        if let Some(dtype) = dtype {
            if !B::supports_dtype(device, DType::from(dtype)) {
                let name = format!("{:?}", self.precision).to_lowercase();
                bail!("--precision {name}: this backend does not support {dtype:?}; use another --device");
            }
        }
        let options = LoadOptions { dtype };
        let mut model =
            AutoModel::<B>::for_adapter(&self.model, self.adapter.as_deref(), &options, device)?;
        let adapter = match &self.adapter {
            Some(dir) => Some(
                model
                    .load_adapter(dir, "default", device)
                    .with_context(|| format!("loading adapter {}", dir.display()))?,
            ),
            None => None,
        };
        Ok(Loaded { model, adapter })
    }
}

/// Parses `1,2,3` into token ids.
pub fn parse_ids(text: &str) -> anyhow::Result<Vec<u32>> {
    let ids: Vec<u32> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .with_context(|| format!("--ids: `{s}` is not a token id (a non-negative integer)"))
        })
        .collect::<anyhow::Result<_>>()?;
    if ids.is_empty() {
        bail!("--ids: expected comma-separated token ids, found `{text}`");
    }
    Ok(ids)
}

/// Right-pads rows to one length: ids `[b, s]` (with `pad`) and the attention mask.
pub fn pad_right<B: Backend>(
    rows: &[Vec<u32>],
    pad: u32,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * width);
    let mut mask = Vec::with_capacity(rows.len() * width);
    for row in rows {
        for i in 0..width {
            ids.push(row.get(i).map_or(pad as i64, |&t| t as i64));
            mask.push(i64::from(i < row.len()));
        }
    }
    (
        Tensor::from_data(TensorData::new(ids, [rows.len(), width]), device),
        Tensor::from_data(TensorData::new(mask, [rows.len(), width]), device),
    )
}

/// Writes `text` to stdout; a closed pipe (`bone inspect | head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `12345678` → `12,345,678`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_groups_digits() {
        assert_eq!(parse_ids("1, 2,3").unwrap(), vec![1, 2, 3]);
        assert!(parse_ids("1,x")
            .unwrap_err()
            .to_string()
            .contains("`x` is not a token id"));
        assert_eq!(thousands(22_713_216), "22,713,216");
        assert_eq!(thousands(512), "512");
    }
}
