//! A GGUF file seen as a Hugging Face state dict: tensors by Hugging Face name, in
//! PyTorch's layout, decoded to `f32` when read.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{DType, TensorData};
use serde_json::Value;

use super::llama::{self, hf_config, RowOrder};
use super::reader::{GgufFile, GgufTensorInfo};
use crate::error::Result;

/// The tensors of a GGUF model under their Hugging Face names, with the `config.json` its
/// metadata implies.
#[derive(Debug)]
pub struct GgufWeights {
    file: GgufFile,
    config: Value,
    /// Hugging Face name → (index into the file's tensors, row order).
    names: BTreeMap<String, (usize, RowOrder)>,
}

impl GgufWeights {
    /// Opens `path` and maps its metadata and tensor names to Hugging Face's.
    ///
    /// # Errors
    /// See [`GgufFile::open`] and [`hf_config`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::new(GgufFile::open(path)?)
    }

    /// Maps an opened file.
    ///
    /// # Errors
    /// See [`hf_config`].
    pub fn new(file: GgufFile) -> Result<Self> {
        let config = hf_config(&file)?;
        let count = |k: &str| config.get(k).and_then(Value::as_u64).unwrap_or(0) as usize;
        let (heads, kv_heads) = (count("num_attention_heads"), count("num_key_value_heads"));
        let permuted = llama::permutes_qk(llama::string(&file, "general.architecture")?);
        let mut names = BTreeMap::new();
        for (i, t) in file.tensors().iter().enumerate() {
            match llama::hf_name(&t.name, heads, kv_heads) {
                Some((hf, order)) => {
                    let order = if permuted { order } else { RowOrder::Same };
                    names.insert(hf, (i, order));
                }
                None => log::debug!(
                    "{}: tensor `{}` has no Hugging Face counterpart; skipped",
                    file.path().display(),
                    t.name
                ),
            }
        }
        Ok(Self {
            file,
            config,
            names,
        })
    }

    /// The underlying file.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The Hugging Face `config.json` the metadata implies.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The Hugging Face tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// Whether there is a tensor called `name` (Hugging Face name).
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// The stored info of Hugging Face tensor `name`.
    pub fn info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.names.get(name).map(|&(i, _)| &self.file.tensors()[i])
    }

    /// Tensor `name` decoded to `f32` in PyTorch's layout (`[out, in]` for a matrix), with
    /// llama.cpp's q/k row permutation undone; `None` when there is no such tensor.
    ///
    /// # Errors
    /// q/k rows that do not split into the configured heads.
    pub fn read(&self, name: &str) -> Result<Option<TensorData>> {
        let Some(&(i, order)) = self.names.get(name) else {
            return Ok(None);
        };
        let info = &self.file.tensors()[i];
        let shape = info.shape();
        let rows = shape.first().copied().unwrap_or(1);
        let values =
            llama::reorder_rows(self.file.dequantize(info), rows, order).ok_or_else(|| {
                self.file.error(format!(
                    "tensor `{}`: {rows} rows do not split into {order:?} of an even size",
                    info.name
                ))
            })?;
        Ok(Some(TensorData::new(values, shape)))
    }
}

impl GgufWeights {
    /// What a [`Checkpoint`](crate::Checkpoint) reports about Hugging Face tensor `name`:
    /// this file, dtype `F32` (what [`read`](Self::read) returns) and the PyTorch shape.
    pub fn tensor_info(&self, name: &str) -> Option<crate::checkpoint::TensorInfo> {
        self.info(name).map(|t| crate::checkpoint::TensorInfo {
            file: self.path().to_path_buf(),
            dtype: DType::F32,
            shape: t.shape(),
        })
    }
}
