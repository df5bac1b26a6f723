//! Where model weights come from and how they reach the modules: a [`TensorSource`] (a
//! [`Checkpoint`](crate::Checkpoint) folder, an in-memory [`TensorMap`], or any other store
//! such as a GGUF file), read through a [`WeightLoader`] into the modules a model lists with
//! [`HfModules`].
//!
//! [`HfModules::visit_hf_modules`] is the one table of Hugging Face names of a model: loading
//! fills every module it lists from the source, and export
//! ([`HfExport`](crate::export::HfExport)) reads the same modules back under the same names.
//!
//! Why not burn-store's `SafetensorsStore` with key remaps: in Burn 0.21 it reads one file
//! (no `model.safetensors.index.json` shards), keeps each tensor in its stored dtype (an F16
//! checkpoint would give an F16 model instead of the run's float type), reports shape errors
//! by Burn path rather than by file and Hugging Face name, and sees `AdaptedLinear`'s
//! `base` level and Burn's `[in, out]` linear layout, both of which would need remapping in
//! each direction; loading from an in-memory map (GGUF) would go through serialisation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{
    Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor, TensorData};

use crate::checkpoint::{dtype_name, TensorInfo};
use crate::error::{ModelError, Result};
use bone_io::FileError;

/// A store of tensors by Hugging Face name, in PyTorch layout (linear weights `[out, in]`).
pub trait TensorSource {
    /// Where the tensors come from (a checkpoint folder, a GGUF file), named in errors.
    fn origin(&self) -> &Path;

    /// Dtype, shape and file of tensor `name`, without reading it; `None` when missing.
    fn info(&self, name: &str) -> Option<TensorInfo>;

    /// Tensor `name` as stored.
    ///
    /// # Errors
    /// A missing tensor, or one that cannot be read.
    fn read(&self, name: &str) -> Result<TensorData>;

    /// Whether the source has a tensor called `name`.
    fn contains(&self, name: &str) -> bool {
        self.info(name).is_some()
    }
}

/// Tensors held in memory by Hugging Face name (e.g. dequantised from a GGUF file), as a
/// [`TensorSource`]. `origin` names them in errors.
#[derive(Debug, Clone, Default)]
pub struct TensorMap {
    /// Where the tensors came from, for error messages.
    pub origin: PathBuf,
    /// The tensors, PyTorch layout.
    pub tensors: BTreeMap<String, TensorData>,
}

impl TensorMap {
    /// `tensors`, named `origin` in errors.
    pub fn new(origin: impl Into<PathBuf>, tensors: BTreeMap<String, TensorData>) -> Self {
        Self {
            origin: origin.into(),
            tensors,
        }
    }
}

impl TensorSource for TensorMap {
    fn origin(&self) -> &Path {
        &self.origin
    }

    fn info(&self, name: &str) -> Option<TensorInfo> {
        self.tensors.get(name).map(|t| TensorInfo {
            file: self.origin.clone(),
            dtype: t.dtype,
            shape: t.shape.to_vec(),
        })
    }

    fn read(&self, name: &str) -> Result<TensorData> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| missing(self, name))
    }
}

fn missing(source: &(impl TensorSource + ?Sized), name: &str) -> ModelError {
    FileError::MissingTensor {
        file: source.origin().to_path_buf(),
        key: name.into(),
        layer: None,
    }
    .into()
}

/// Float tensor `name` of `source`, checked against `expected` (PyTorch layout) and converted
/// to `dtype` (the device's default float type when `None`).
///
/// # Errors
/// A missing tensor, a shape other than `expected`, or a non-float dtype; the message names
/// the file, the tensor and both shapes.
pub fn float_tensor<B: Backend, const D: usize>(
    source: &(impl TensorSource + ?Sized),
    name: &str,
    expected: [usize; D],
    dtype: Option<FloatDType>,
    device: &B::Device,
) -> Result<Tensor<B, D>> {
    let Some(info) = source.info(name) else {
        // A tensor stored in a dtype Burn cannot hold has no info; `read` names its dtype.
        source.read(name)?;
        return Err(missing(source, name));
    };
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
    if !info.dtype.is_float() {
        return Err(FileError::UnsupportedDtype {
            file: info.file,
            key: name.into(),
            dtype: dtype_name(info.dtype),
        }
        .into());
    }
    let data = source.read(name)?;
    // `from_data` converts the host data to the requested (or the device's default) dtype.
    Ok(match dtype {
        Some(dtype) => Tensor::from_data(data, (device, DType::from(dtype))),
        None => Tensor::from_data(data, device),
    })
}

/// One weight-bearing module of a model, as [`HfModules::visit_hf_modules`] lists it under
/// its Hugging Face name `name`: the tensors are `{name}.weight` (and `{name}.bias`).
#[derive(Debug)]
pub enum HfModule<'a, B: Backend> {
    /// `{name}.weight` `[out, in]` (Burn holds `[in, out]`), `{name}.bias` `[out]` when the
    /// module has one.
    Linear(&'a mut Linear<B>),
    /// `{name}.weight` `[n, d]`.
    Embedding(&'a mut Embedding<B>),
    /// `{name}.weight` `[d]`.
    RmsNorm(&'a mut RmsNorm<B>),
    /// `{name}.weight` and `{name}.bias` `[d]` (or the older `gamma` and `beta`).
    LayerNorm(&'a mut LayerNorm<B>),
}

/// A model whose weights are listed under their Hugging Face names: the one name table that
/// loading ([`WeightLoader::fill`]) and export read.
pub trait HfModules<B: Backend> {
    /// Calls `f` with the Hugging Face name and the module of every weight-bearing module
    /// (base weights of adapted linears; adapters are not listed), stopping at the first
    /// error.
    ///
    /// # Errors
    /// Whatever `f` returns.
    fn visit_hf_modules(
        &mut self,
        f: &mut dyn FnMut(&str, HfModule<'_, B>) -> Result<()>,
    ) -> Result<()>;
}

/// Reads tensors of one model from a [`TensorSource`]: a name prefix (`bert.`, `roberta.`,
/// or none), the float type to load into and the device.
///
/// Every method checks the shape against the configuration and returns frozen parameters
/// (`require_grad = false`).
#[derive(Clone)]
pub struct WeightLoader<'a, B: Backend> {
    source: &'a dyn TensorSource,
    prefix: String,
    dtype: Option<FloatDType>,
    device: &'a B::Device,
}

impl<B: Backend> std::fmt::Debug for WeightLoader<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightLoader")
            .field("origin", &self.source.origin())
            .field("prefix", &self.prefix)
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl<'a, B: Backend> WeightLoader<'a, B> {
    /// A loader for the tensors of `source`, converted to `dtype` (the device default when
    /// `None`).
    pub fn new(
        source: &'a dyn TensorSource,
        dtype: Option<FloatDType>,
        device: &'a B::Device,
    ) -> Self {
        Self {
            source,
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

    /// The tensor source.
    pub fn source(&self) -> &'a dyn TensorSource {
        self.source
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

    /// Whether the source has `name` (under the prefix).
    pub fn contains(&self, name: &str) -> bool {
        self.source.contains(&self.full_name(name))
    }

    /// Float tensor `name` of shape `shape` (PyTorch layout).
    ///
    /// # Errors
    /// See [`float_tensor`].
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<B, D>> {
        float_tensor(
            self.source,
            &self.full_name(name),
            shape,
            self.dtype,
            self.device,
        )
    }

    /// A frozen parameter from tensor `name`.
    ///
    /// # Errors
    /// See [`float_tensor`].
    pub fn param<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Param<Tensor<B, D>>> {
        Ok(Param::from_tensor(self.tensor(name, shape)?).set_require_grad(false))
    }

    /// Replaces the weights of `module` (listed as `name` by [`HfModules`]) with tensors
    /// `{name}.weight` (and `{name}.bias`) of the shapes the module already has, frozen.
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn fill(&self, name: &str, module: HfModule<'_, B>) -> Result<()> {
        let weight = format!("{name}.weight");
        match module {
            HfModule::Linear(linear) => {
                let [d_in, d_out] = linear.weight.lazy_shape().dims();
                let w = self.tensor::<2>(&weight, [d_out, d_in])?.transpose();
                linear.weight = Param::from_tensor(w).set_require_grad(false);
                if let Some(bias) = &mut linear.bias {
                    *bias = self.param(&format!("{name}.bias"), [d_out])?;
                }
            }
            HfModule::Embedding(embedding) => {
                let [n, d] = embedding.weight.lazy_shape().dims();
                embedding.weight = self.param(&weight, [n, d])?;
            }
            HfModule::RmsNorm(norm) => {
                let [d] = norm.gamma.lazy_shape().dims();
                norm.gamma = self.param(&weight, [d])?;
            }
            HfModule::LayerNorm(norm) => {
                let [d] = norm.gamma.lazy_shape().dims();
                let (w, b) = if !self.contains(&weight) && self.contains(&format!("{name}.gamma")) {
                    ("gamma", "beta")
                } else {
                    ("weight", "bias")
                };
                norm.gamma = self.param(&format!("{name}.{w}"), [d])?;
                norm.beta = Some(self.param(&format!("{name}.{b}"), [d])?);
            }
        }
        Ok(())
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
        let mut linear = LinearConfig::new(d_input, d_output)
            .with_bias(bias)
            .init(self.device);
        self.fill(name, HfModule::Linear(&mut linear))?;
        Ok(linear)
    }

    /// A frozen [`Embedding`] from `{name}.weight` `[n, d]`.
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn embedding(&self, name: &str, n: usize, d: usize) -> Result<Embedding<B>> {
        let mut embedding = EmbeddingConfig::new(n, d).init(self.device);
        self.fill(name, HfModule::Embedding(&mut embedding))?;
        Ok(embedding)
    }

    /// A frozen [`LayerNorm`] from `{name}.weight` and `{name}.bias` (or the older
    /// `gamma`/`beta` names).
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn layer_norm(&self, name: &str, d: usize, eps: f64) -> Result<LayerNorm<B>> {
        let mut norm = LayerNormConfig::new(d).with_epsilon(eps).init(self.device);
        self.fill(name, HfModule::LayerNorm(&mut norm))?;
        Ok(norm)
    }

    /// A frozen [`RmsNorm`] from `{name}.weight`.
    ///
    /// # Errors
    /// A missing or misshaped tensor.
    pub fn rms_norm(&self, name: &str, d: usize, eps: f64) -> Result<RmsNorm<B>> {
        let mut norm = RmsNormConfig::new(d).with_epsilon(eps).init(self.device);
        self.fill(name, HfModule::RmsNorm(&mut norm))?;
        Ok(norm)
    }

    /// Fills every module `model` lists (see [`fill`](Self::fill)).
    ///
    /// # Errors
    /// The first missing or misshaped tensor.
    pub fn fill_all(&self, model: &mut impl HfModules<B>) -> Result<()> {
        model.visit_hf_modules(&mut |name, module| self.fill(name, module))
    }
}

/// Every tensor of the modules `model` lists, under Hugging Face names in PyTorch layout
/// (linear weights `[out, in]`), in the model's dtype.
pub fn hf_tensors<B: Backend>(model: &mut impl HfModules<B>) -> BTreeMap<String, TensorData> {
    let mut out = BTreeMap::new();
    let mut put = |name: String, t: TensorData| {
        out.insert(name, t);
    };
    let result = model.visit_hf_modules(&mut |name, module| {
        match module {
            HfModule::Linear(l) => {
                put(
                    format!("{name}.weight"),
                    l.weight.val().transpose().into_data(),
                );
                if let Some(b) = &l.bias {
                    put(format!("{name}.bias"), b.val().into_data());
                }
            }
            HfModule::Embedding(e) => put(format!("{name}.weight"), e.weight.val().into_data()),
            HfModule::RmsNorm(n) => put(format!("{name}.weight"), n.gamma.val().into_data()),
            HfModule::LayerNorm(n) => {
                put(format!("{name}.weight"), n.gamma.val().into_data());
                if let Some(b) = &n.beta {
                    put(format!("{name}.bias"), b.val().into_data());
                }
            }
        }
        Ok(())
    });
    debug_assert!(result.is_ok(), "collecting tensors cannot fail");
    out
}
