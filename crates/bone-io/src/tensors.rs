//! Reading and writing `.safetensors` files as named Burn [`TensorData`] on the host.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::{DType, TensorData};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{FileError, Result};
use crate::fs::{read, write_atomic};

/// Reads every tensor of a safetensors file, keeping its dtype (f64, f32, f16, bf16, i64,
/// i32, u8 or bool).
///
/// # Errors
/// A missing or unreadable file, a malformed header, or a dtype Burn cannot hold; each names
/// the file (and the key).
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, TensorData>> {
    let bytes = read(path)?;
    let file = path.to_path_buf();
    let parsed = SafeTensors::deserialize(&bytes).map_err(|e| FileError::Safetensors {
        file: file.clone(),
        message: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for (key, view) in parsed.tensors() {
        let dtype = match view.dtype() {
            Dtype::F64 => DType::F64,
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            Dtype::I64 => DType::I64,
            Dtype::I32 => DType::I32,
            Dtype::U8 => DType::U8,
            Dtype::BOOL => DType::Bool(burn::tensor::BoolStore::Native),
            other => {
                return Err(FileError::UnsupportedDtype {
                    file,
                    key,
                    dtype: format!("{other:?}"),
                })
            }
        };
        let data = TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), dtype);
        out.insert(key, data);
    }
    Ok(out)
}

/// Writes tensors as a safetensors file, atomically, with `metadata` in the header (PEFT and
/// transformers write `{"format": "pt"}`). Tensors are stored in their own dtype.
///
/// # Errors
/// A dtype safetensors cannot store, or an I/O error naming the path.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, TensorData>,
    metadata: &[(&str, &str)],
) -> Result<()> {
    let file = path.to_path_buf();
    let mut views = Vec::with_capacity(tensors.len());
    for (key, data) in tensors {
        let dtype = match data.dtype {
            DType::F64 => Dtype::F64,
            DType::F32 => Dtype::F32,
            DType::F16 => Dtype::F16,
            DType::BF16 => Dtype::BF16,
            DType::I64 => Dtype::I64,
            DType::I32 => Dtype::I32,
            DType::U8 => Dtype::U8,
            other => {
                return Err(FileError::UnsupportedDtype {
                    file,
                    key: key.clone(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        let view = TensorView::new(dtype, data.shape.to_vec(), data.as_bytes()).map_err(|e| {
            FileError::Safetensors {
                file: file.clone(),
                message: format!("tensor `{key}`: {e}"),
            }
        })?;
        views.push((key.as_str(), view));
    }
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| FileError::Safetensors {
            file,
            message: e.to_string(),
        })?;
    write_atomic(path, &bytes)
}

/// The values of `data` as f32 (converting f64, f16, bf16 and integers).
pub fn to_f32_vec(data: &TensorData) -> Vec<f32> {
    data.iter::<f32>().collect()
}
