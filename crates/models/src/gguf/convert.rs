//! A GGUF model written out as a Hugging Face checkpoint folder: `config.json`,
//! `model.safetensors` (decoded weights under Hugging Face names), `tokenizer.json`,
//! `tokenizer_config.json` (with the chat template) and `generation_config.json`.

use std::fs;
use std::path::{Path, PathBuf};

use bone_io::FileError;
use burn::tensor::FloatDType;
use half::{bf16, f16};
use safetensors::tensor::{Dtype, TensorView};
use serde_json::{json, Value};

use super::tokenizer::GgufTokenizer;
use super::weights::GgufWeights;
use crate::checkpoint::WEIGHTS_FILE;
use crate::config::CONFIG_FILE;
use crate::error::{ModelError, Result};
use crate::tokenizer::{TOKENIZER_CONFIG_FILE, TOKENIZER_FILE};

/// What [`convert`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertReport {
    /// The tensors written.
    pub tensors: usize,
    /// The files written, in order.
    pub files: Vec<PathBuf>,
}

/// Writes the GGUF model `gguf` as a Hugging Face folder `out` with weights in `dtype`
/// (F32, BF16 or F16); `out` is created if missing.
///
/// # Errors
/// An unreadable or invalid GGUF file, or a file that cannot be written.
pub fn convert(gguf: &Path, out: &Path, dtype: FloatDType) -> Result<ConvertReport> {
    let weights = GgufWeights::open(gguf)?;
    let tokenizer = GgufTokenizer::from_file(weights.file())?;
    let (st_dtype, name) = match dtype {
        FloatDType::F32 => (Dtype::F32, "float32"),
        FloatDType::BF16 => (Dtype::BF16, "bfloat16"),
        FloatDType::F16 => (Dtype::F16, "float16"),
        other => {
            return Err(ModelError::invalid(
                "dtype",
                format!("expected f32, bf16 or f16, found {other:?}"),
            ))
        }
    };
    fs::create_dir_all(out).map_err(|e| ModelError::io("creating folder", out, e))?;
    let mut files = Vec::new();

    let mut config = weights.config().clone();
    config["torch_dtype"] = json!(name);
    files.push(write_json(&out.join(CONFIG_FILE), &config)?);

    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for hf in weights.names() {
        let data = weights.read(hf)?.expect("listed name");
        let values = data.as_slice::<f32>().expect("decoded as f32");
        tensors.push((
            hf.to_string(),
            data.shape.to_vec(),
            encode(values, st_dtype),
        ));
    }
    let views = tensors
        .iter()
        .map(|(n, shape, bytes)| {
            TensorView::new(st_dtype, shape.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| {
                    ModelError::from(FileError::Safetensors {
                        file: out.join(WEIGHTS_FILE),
                        message: format!("tensor `{n}`: {e}"),
                    })
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let weights_path = out.join(WEIGHTS_FILE);
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), &weights_path).map_err(|e| {
        ModelError::from(FileError::Safetensors {
            file: weights_path.clone(),
            message: e.to_string(),
        })
    })?;
    files.push(weights_path);

    files.push(write_json(&out.join(TOKENIZER_FILE), &tokenizer.json)?);
    let max_length = config
        .get("max_position_embeddings")
        .and_then(Value::as_u64);
    files.push(write_json(
        &out.join(TOKENIZER_CONFIG_FILE),
        &tokenizer.tokenizer_config(max_length),
    )?);
    let mut generation = json!({});
    for field in ["bos_token_id", "eos_token_id", "pad_token_id"] {
        if let Some(v) = config.get(field) {
            generation[field] = v.clone();
        }
    }
    files.push(write_json(
        &out.join("generation_config.json"),
        &generation,
    )?);
    Ok(ConvertReport {
        tensors: tensors.len(),
        files,
    })
}

fn encode(values: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::BF16 => values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect(),
        _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn write_json(path: &Path, value: &Value) -> Result<PathBuf> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    fs::write(path, text).map_err(|e| ModelError::io("writing", path, e))?;
    Ok(path.to_path_buf())
}
