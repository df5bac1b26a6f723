//! A Hugging Face checkpoint folder: `config.json` plus `model.safetensors`, or the shards
//! listed by `model.safetensors.index.json`.
//!
//! Weight files are memory-mapped and parsed by the `safetensors` crate; a tensor is copied
//! once, from the mapping into the [`TensorData`] handed to the device, and converted there
//! from the file's dtype (F64, F32, F16, BF16) to the run's float type.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear, RmsNorm, RmsNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor, TensorData};
use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata};
use safetensors::SafeTensors;
use serde_json::Value;

use crate::config::ModelConfig;
use bone_io::FileError;

use crate::error::{ModelError, Result};

/// The configuration file of a checkpoint folder.
pub const CONFIG_FILE: &str = "config.json";
/// The single weight file of an unsharded checkpoint.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The index of a sharded checkpoint (`weight_map`: tensor name → shard file).
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";

/// How to load a checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// The float type of the loaded parameters; `None` uses the device's default float type
    /// (f32 unless changed with `burn::tensor::set_default_dtypes`). Files stored in F32, F16,
    /// BF16 or F64 are converted on load.
    pub dtype: Option<FloatDType>,
}

impl LoadOptions {
    /// Parameters in `dtype`.
    pub fn with_dtype(mut self, dtype: FloatDType) -> Self {
        self.dtype = Some(dtype);
        self
    }
}

/// One memory-mapped safetensors file.
struct Shard {
    path: PathBuf,
    mmap: Mmap,
    header_len: usize,
    metadata: Metadata,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("path", &self.path)
            .field("tensors", &self.metadata.tensors().len())
            .finish()
    }
}

impl Shard {
    fn open(path: PathBuf) -> Result<Self> {
        let file = File::open(&path).map_err(|e| ModelError::io("opening", &path, e))?;
        // SAFETY: the mapping is read-only and lives as long as the checkpoint; checkpoint
        // files are not expected to be modified while a model is being loaded from them.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io("mapping", &path, e))?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&mmap).map_err(|e| FileError::Safetensors {
                file: path.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            path,
            mmap,
            header_len,
            metadata,
        })
    }

    fn bytes(&self, name: &str) -> Option<&[u8]> {
        let info = self.metadata.info(name)?;
        let start = 8 + self.header_len + info.data_offsets.0;
        let end = 8 + self.header_len + info.data_offsets.1;
        self.mmap.get(start..end)
    }
}

/// What a checkpoint says about one tensor, without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The file the tensor is in.
    pub file: PathBuf,
    /// The stored data type (`F32`, `F16`, `BF16`, `I64`, …).
    pub dtype: String,
    /// The stored shape (PyTorch layout).
    pub shape: Vec<usize>,
}

/// An opened checkpoint folder: its `config.json` and its weight files, memory-mapped.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    config: Value,
    model_config: ModelConfig,
    shards: Vec<Shard>,
    /// Tensor name → index in `shards`.
    names: BTreeMap<String, usize>,
    /// Whether the weights came as shards with an index file.
    sharded: bool,
    /// The GGUF file the tensors are read from instead of `shards` (see [`crate::gguf`]).
    gguf: Option<crate::gguf::GgufWeights>,
}

impl Checkpoint {
    /// Opens `dir`: reads and checks `config.json`, then maps `model.safetensors`, or every
    /// shard listed in `model.safetensors.index.json`.
    ///
    /// # Errors
    /// A missing folder, a missing `config.json` or weight file, invalid JSON, an
    /// unsupported `model_type` or invalid config field, or a weight file the safetensors
    /// parser rejects; each names the path.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        if let Some(file) = crate::gguf::locate(dir.as_ref(), CONFIG_FILE)? {
            return Self::from_gguf(crate::gguf::GgufWeights::open(file)?);
        }
        let dir = dir.as_ref().to_path_buf();
        let config = read_config(&dir)?;
        // The configuration is checked before the weights are looked for.
        let model_config = ModelConfig::from_value(&config, &dir.join(CONFIG_FILE))?;
        let index_path = dir.join(WEIGHTS_INDEX_FILE);
        let single = dir.join(WEIGHTS_FILE);
        let (files, sharded) = if single.is_file() {
            (vec![single], false)
        } else if index_path.is_file() {
            (shard_files(&index_path)?, true)
        } else {
            return Err(ModelError::MissingFile {
                folder: dir,
                file: WEIGHTS_FILE.into(),
                why: format!(
                    "the weights, as one file or as shards listed in {WEIGHTS_INDEX_FILE}; \
                     PyTorch .bin checkpoints are not supported, convert them to safetensors"
                ),
            });
        };
        let mut shards = Vec::with_capacity(files.len());
        let mut names = BTreeMap::new();
        for file in files {
            let shard = Shard::open(file)?;
            for name in shard.metadata.tensors().keys() {
                names.insert(name.clone(), shards.len());
            }
            shards.push(shard);
        }
        Ok(Self {
            dir,
            config,
            model_config,
            shards,
            names,
            sharded,
            gguf: None,
        })
    }

    /// A checkpoint read from a GGUF model: the `config.json` its metadata implies, tensors
    /// under Hugging Face names, decoded to F32; [`dir`](Self::dir) is the `.gguf` file.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn from_gguf(weights: crate::gguf::GgufWeights) -> Result<Self> {
        let config = weights.config().clone();
        let model_config = ModelConfig::from_value(&config, weights.path())?;
        Ok(Self {
            dir: weights.path().to_path_buf(),
            config,
            model_config,
            shards: Vec::new(),
            names: weights.names().map(|n| (n.to_string(), 0)).collect(),
            sharded: false,
            gguf: Some(weights),
        })
    }

    /// The checkpoint folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The model configuration from `config.json`.
    pub fn model_config(&self) -> &ModelConfig {
        &self.model_config
    }

    /// Whether the weights are split into shards listed by an index file.
    pub fn is_sharded(&self) -> bool {
        self.sharded
    }

    /// Whether the checkpoint has a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// The weight files, in index order, with the names of the tensors each holds (sorted).
    pub fn files(&self) -> Vec<(PathBuf, Vec<String>)> {
        if let Some(g) = &self.gguf {
            return vec![(
                g.path().to_path_buf(),
                g.names().map(String::from).collect(),
            )];
        }
        let mut files: Vec<(PathBuf, Vec<String>)> = self
            .shards
            .iter()
            .map(|s| (s.path.clone(), Vec::new()))
            .collect();
        for (name, &shard) in &self.names {
            files[shard].1.push(name.clone());
        }
        files
    }

    /// Dtype, shape and file of tensor `name`.
    pub fn info(&self, name: &str) -> Option<TensorInfo> {
        if let Some(g) = &self.gguf {
            return g.tensor_info(name);
        }
        let shard = &self.shards[*self.names.get(name)?];
        let info = shard.metadata.info(name)?;
        Some(TensorInfo {
            file: shard.path.clone(),
            dtype: format!("{:?}", info.dtype),
            shape: info.shape.clone(),
        })
    }

    /// Tensor `name` as stored (its own dtype and shape).
    ///
    /// # Errors
    /// A missing tensor (naming the folder), or a dtype Burn cannot hold.
    pub fn read(&self, name: &str) -> Result<TensorData> {
        if let Some(g) = &self.gguf {
            return g.read(name)?.ok_or_else(|| self.missing(name.to_string()));
        }
        let index = *self
            .names
            .get(name)
            .ok_or_else(|| self.missing(name.to_string()))?;
        let shard = &self.shards[index];
        let info = shard
            .metadata
            .info(name)
            .ok_or_else(|| self.missing(name.to_string()))?;
        let dtype = burn_dtype(info.dtype).ok_or_else(|| FileError::UnsupportedDtype {
            file: shard.path.clone(),
            key: name.into(),
            dtype: format!("{:?}", info.dtype),
        })?;
        let bytes = shard.bytes(name).ok_or_else(|| FileError::Safetensors {
            file: shard.path.clone(),
            message: format!("tensor `{name}` lies outside the file"),
        })?;
        Ok(TensorData::from_bytes_vec(
            bytes.to_vec(),
            info.shape.clone(),
            dtype,
        ))
    }

    /// Float tensor `name`, checked against `expected` (PyTorch layout) and converted to
    /// `dtype` (the device's default float type when `None`).
    ///
    /// # Errors
    /// A missing tensor, a shape other than `expected`, or a non-float dtype; the message
    /// names the file, the tensor and both shapes.
    pub fn float<B: Backend, const D: usize>(
        &self,
        name: &str,
        expected: [usize; D],
        dtype: Option<FloatDType>,
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        let info = self.info(name).ok_or_else(|| self.missing(name.into()))?;
        if info.shape != expected {
            return Err(FileError::ShapeMismatch {
                file: info.file,
                key: name.into(),
                layer: None,
                expected: expected.to_vec(),
                found: info.shape,
            }
            .into());
        }
        let data = self.read(name)?;
        if !data.dtype.is_float() {
            return Err(FileError::UnsupportedDtype {
                file: info.file,
                key: name.into(),
                dtype: info.dtype,
            }
            .into());
        }
        // `from_data` converts the host data to the requested (or the device's default) dtype.
        Ok(match dtype {
            Some(dtype) => Tensor::from_data(data, (device, DType::from(dtype))),
            None => Tensor::from_data(data, device),
        })
    }

    fn missing(&self, name: String) -> ModelError {
        FileError::MissingTensor {
            file: self.dir.clone(),
            key: name,
            layer: None,
        }
        .into()
    }
}

/// Reads tensors of one model from a [`Checkpoint`]: a name prefix (`bert.`, `roberta.`, or
/// none), the float type to load into and the device.
///
/// Every method checks the shape against the configuration and returns frozen parameters
/// (`require_grad = false`).
#[derive(Debug, Clone)]
pub struct WeightLoader<'a, B: Backend> {
    checkpoint: &'a Checkpoint,
    prefix: String,
    dtype: Option<FloatDType>,
    device: &'a B::Device,
}

impl<'a, B: Backend> WeightLoader<'a, B> {
    /// A loader for the tensors of `checkpoint`, converted to `dtype` (the device default when
    /// `None`).
    pub fn new(
        checkpoint: &'a Checkpoint,
        dtype: Option<FloatDType>,
        device: &'a B::Device,
    ) -> Self {
        Self {
            checkpoint,
            prefix: String::new(),
            dtype,
            device,
        }
    }

    /// The same loader, reading names under `prefix` (e.g. `"bert."`).
    pub fn with_prefix(&self, prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..self.clone()
        }
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &'a Checkpoint {
        self.checkpoint
    }

    /// The device.
    pub fn device(&self) -> &'a B::Device {
        self.device
    }

    /// The float type tensors are loaded into (`None`: the device default).
    pub fn dtype(&self) -> Option<FloatDType> {
        self.dtype
    }

    /// The full name of `name` under this loader's prefix.
    pub fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Whether the checkpoint has `name` (under the prefix).
    pub fn contains(&self, name: &str) -> bool {
        self.checkpoint.contains(&self.full_name(name))
    }

    /// Float tensor `name` of shape `shape` (PyTorch layout).
    ///
    /// # Errors
    /// See [`Checkpoint::float`].
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<B, D>> {
        self.checkpoint
            .float(&self.full_name(name), shape, self.dtype, self.device)
    }

    /// A frozen parameter from tensor `name`.
    ///
    /// # Errors
    /// See [`Checkpoint::float`].
    pub fn param<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Param<Tensor<B, D>>> {
        Ok(
            Param::from_tensor(self.tensor(name, shape)?.set_require_grad(false))
                .set_require_grad(false),
        )
    }

    /// A frozen Burn [`Linear`] from `{name}.weight` (`[d_output, d_input]` in the file,
    /// transposed to Burn's `[d_input, d_output]`) and, when `bias`, `{name}.bias`.
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn linear(
        &self,
        name: &str,
        d_input: usize,
        d_output: usize,
        bias: bool,
    ) -> Result<Linear<B>> {
        let weight = self.tensor::<2>(&format!("{name}.weight"), [d_output, d_input])?;
        let bias = if bias {
            Some(self.param::<1>(&format!("{name}.bias"), [d_output])?)
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(weight.transpose()).set_require_grad(false),
            bias,
        })
    }

    /// A frozen [`Embedding`] from `{name}.weight` `[n, d]`.
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn embedding(&self, name: &str, n: usize, d: usize) -> Result<Embedding<B>> {
        Ok(Embedding {
            weight: self.param(&format!("{name}.weight"), [n, d])?,
        })
    }

    /// A frozen [`LayerNorm`] from `{name}.weight` and `{name}.bias` (or the older
    /// `gamma`/`beta` names).
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn layer_norm(&self, name: &str, d: usize, eps: f64) -> Result<LayerNorm<B>> {
        let (w, b) = if !self.contains(&format!("{name}.weight"))
            && self.contains(&format!("{name}.gamma"))
        {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        let mut norm = LayerNormConfig::new(d)
            .with_epsilon(eps)
            .init::<B>(self.device);
        norm.gamma = self.param(&format!("{name}.{w}"), [d])?;
        norm.beta = Some(self.param(&format!("{name}.{b}"), [d])?);
        Ok(norm)
    }

    /// A frozen [`RmsNorm`] from `{name}.weight`.
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn rms_norm(&self, name: &str, d: usize, eps: f64) -> Result<RmsNorm<B>> {
        let mut norm = RmsNormConfig::new(d)
            .with_epsilon(eps)
            .init::<B>(self.device);
        norm.gamma = self.param(&format!("{name}.weight"), [d])?;
        Ok(norm)
    }
}

/// Reads and parses `config.json` of `dir`.
///
/// # Errors
/// A missing folder, a missing file, or invalid JSON.
pub fn read_config(dir: &Path) -> Result<Value> {
    if !dir.is_dir() {
        return Err(ModelError::MissingFolder {
            path: dir.to_path_buf(),
        });
    }
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(ModelError::MissingFile {
            folder: dir.to_path_buf(),
            file: CONFIG_FILE.into(),
            why: "the Hugging Face model configuration".into(),
        });
    }
    read_json(&path)
}

/// Reads and parses a JSON file.
///
/// # Errors
/// An unreadable file or invalid JSON, naming the path.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io("reading", path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        FileError::ConfigSyntax {
            file: path.to_path_buf(),
            what: "JSON",
            message: e.to_string(),
        }
        .into()
    })
}

/// The shard files an index lists, in order of first appearance.
fn shard_files(index_path: &Path) -> Result<Vec<PathBuf>> {
    let index = read_json(index_path)?;
    let dir = index_path.parent().unwrap_or(Path::new("."));
    let Some(map) = index.get("weight_map").and_then(Value::as_object) else {
        return Err(FileError::field(
            index_path,
            "weight_map",
            "an object mapping tensor names to shard files",
            index
                .get("weight_map")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "nothing".into()),
        )
        .into());
    };
    let mut files: Vec<String> = Vec::new();
    for (name, file) in map {
        let Some(file) = file.as_str() else {
            return Err(FileError::field(
                index_path,
                format!("weight_map.{name}"),
                "a shard file name",
                file.to_string(),
            )
            .into());
        };
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
    }
    files.sort();
    let mut paths = Vec::with_capacity(files.len());
    for file in files {
        let path = dir.join(&file);
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                folder: dir.to_path_buf(),
                file,
                why: format!("a shard listed in {WEIGHTS_INDEX_FILE}"),
            });
        }
        paths.push(path);
    }
    Ok(paths)
}

fn burn_dtype(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool(burn::tensor::BoolStore::Native),
        _ => return None,
    })
}
