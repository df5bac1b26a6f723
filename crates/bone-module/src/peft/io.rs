//! `adapter_model.safetensors`: saving and loading the adapter tensors alone.

use std::collections::BTreeMap;
use std::path::Path;

use bone_io::{read_safetensors, write_safetensors, FileError};
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::config::{AdapterConfig, PeftType, ADAPTER_CONFIG_FILE};
use super::keys::{peft_key, split_peft_key, PEFT_KEY_PREFIX};
use crate::adapter::Adapter;
use crate::error::{AdapterError, Result};
use crate::host::AdapterHost;

/// The file name PEFT gives the adapter tensors.
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// The result of [`load_adapter`].
#[derive(Debug, Clone)]
pub struct LoadedAdapter {
    /// The configuration read from `adapter_config.json`.
    pub config: AdapterConfig,
    /// Module paths of the layers that received the adapter.
    pub layers: Vec<String>,
    /// Tensors of the file that are not adapter tensors (PEFT's `modules_to_save`, e.g. a
    /// classification head), keyed without the `base_model.model.` prefix, in PyTorch layout.
    pub extra_tensors: BTreeMap<String, TensorData>,
}

/// Saves adapter `name` of `host` into `dir` as PEFT does: `adapter_model.safetensors` with
/// the adapter tensors (f32, PEFT's keys and shapes) plus `extra_tensors` (keys without the
/// `base_model.model.` prefix, e.g. `classifier.dense.weight` in PyTorch layout), then
/// `adapter_config.json`. Both files are written atomically. Returns the layers saved.
///
/// # Errors
/// No layer holds `name`; a layer's adapter is not of `config`'s method; I/O errors.
pub fn save_adapter<B: Backend, H: AdapterHost<B> + ?Sized>(
    host: &H,
    name: &str,
    config: &AdapterConfig,
    dir: &Path,
    extra_tensors: &BTreeMap<String, TensorData>,
) -> Result<Vec<String>> {
    let mut tensors = BTreeMap::new();
    let mut layers = Vec::new();
    let mut error = None;
    host.visit_linears(&mut |layer| {
        let Some(adapter) = layer.adapter(name) else {
            return;
        };
        if error.is_some() {
            return;
        }
        if adapter.kind() != config.method() {
            error = Some(
                FileError::field(
                    ADAPTER_CONFIG_FILE,
                    "peft_type/init_weights",
                    format!(
                        "the method of adapter `{name}` on `{}` ({})",
                        layer.path(),
                        adapter.kind()
                    ),
                    config.method().to_string(),
                )
                .into(),
            );
            return;
        }
        let path = layer.path();
        match adapter {
            Adapter::Bone(bone) => {
                tensors.insert(
                    peft_key(path, config.peft_type.block_suffix()),
                    f32_data(bone.block.val()),
                );
            }
            Adapter::Bat(bat) => {
                tensors.insert(
                    peft_key(path, config.peft_type.block_suffix()),
                    f32_data(bat.block.val()),
                );
            }
            Adapter::Lora(lora) => {
                tensors.insert(peft_key(path, "lora_A.weight"), f32_data(lora.lora_a.val()));
                tensors.insert(peft_key(path, "lora_B.weight"), f32_data(lora.lora_b.val()));
            }
        }
        layers.push(path.to_string());
    });
    if let Some(e) = error {
        return Err(e);
    }
    if layers.is_empty() {
        return Err(AdapterError::UnknownAdapter {
            name: name.into(),
            layer: "<model>".into(),
            available: String::new(),
        });
    }
    for (key, data) in extra_tensors {
        tensors.insert(format!("{PEFT_KEY_PREFIX}{key}"), data.clone());
    }
    write_safetensors(
        &dir.join(ADAPTER_WEIGHTS_FILE),
        &tensors,
        &[("format", "pt")],
    )?;
    let mut saved = config.clone();
    saved.inference_mode = true;
    saved.save(dir)?;
    Ok(layers)
}

/// Loads the PEFT adapter in `dir` onto `host` under `name`, on the layers its config targets.
///
/// Everything is checked before anything changes: every targeted layer must have its tensors
/// with the shapes its config implies, and every adapter tensor of the file must belong to a
/// targeted layer. f16, bf16 and f64 files are converted to the device's float type.
///
/// # Errors
/// A missing or malformed file, a missing tensor, a tensor of the wrong shape or for a layer
/// the model does not have (each naming the key and the layer), a duplicate adapter name.
pub fn load_adapter<B: Backend, H: AdapterHost<B> + ?Sized>(
    host: &mut H,
    dir: &Path,
    name: &str,
    device: &B::Device,
) -> Result<LoadedAdapter> {
    let config = AdapterConfig::load(dir)?;
    let weights_path = dir.join(ADAPTER_WEIGHTS_FILE);
    let file = weights_path.clone();
    let mut adapter_tensors: BTreeMap<String, BTreeMap<&'static str, (String, TensorData)>> =
        BTreeMap::new();
    let mut extra_tensors = BTreeMap::new();
    for (key, data) in read_safetensors(&weights_path)? {
        match split_peft_key(&key) {
            Some((path, suffix)) => {
                let path = path.to_string();
                adapter_tensors
                    .entry(path)
                    .or_default()
                    .insert(suffix, (key, data));
            }
            None => {
                let stripped = key
                    .strip_prefix(PEFT_KEY_PREFIX)
                    .unwrap_or(&key)
                    .to_string();
                extra_tensors.insert(stripped, data);
            }
        }
    }

    let selector = config.selector()?;
    let suffixes: &[&str] = match config.peft_type {
        PeftType::Lora => &["lora_A.weight", "lora_B.weight"],
        other => match other.block_suffix() {
            "bone_block" => &["bone_block"],
            _ => &["miss_block"],
        },
    };
    let mut planned: Vec<(String, Adapter<B>)> = Vec::new();
    let mut candidates = 0usize;
    let mut example = String::new();
    let mut error: Option<AdapterError> = None;
    host.visit_linears(&mut |layer| {
        candidates += 1;
        if example.is_empty() {
            example = layer.path().to_string();
        }
        if error.is_some() || !selector.selects(layer.path()) {
            return;
        }
        let path = layer.path().to_string();
        if layer.adapter(name).is_some() {
            error = Some(AdapterError::DuplicateAdapter {
                name: name.into(),
                layer: path,
            });
            return;
        }
        let spec = selector.spec_for(&path);
        let (d_in, d_out) = (layer.d_input(), layer.d_output());
        let adapter = match spec.build::<B>(&path, d_in, d_out, device) {
            Ok(a) => a,
            Err(e) => {
                error = Some(e);
                return;
            }
        };
        let mut found = adapter_tensors.remove(&path).unwrap_or_default();
        let mut fetch = |suffix: &'static str, expected: Vec<usize>| -> Result<TensorData> {
            let (key, data) = found
                .remove(suffix)
                .ok_or_else(|| FileError::MissingTensor {
                    file: file.clone(),
                    key: peft_key(&path, suffix),
                    layer: Some(path.clone()),
                })?;
            let shape = data.shape.to_vec();
            if shape != expected {
                return Err(FileError::ShapeMismatch {
                    file: file.clone(),
                    key,
                    layer: Some(path.clone()),
                    expected,
                    found: shape,
                }
                .into());
            }
            Ok(data.convert::<f32>())
        };
        let r = spec.rank();
        let built = match adapter {
            Adapter::Bone(mut bone) => {
                let width = bone.mini_r().unwrap_or(d_out);
                fetch(suffixes[0], vec![r, width]).map(|data| {
                    bone.block = Param::from_tensor(Tensor::from_data(data, device));
                    Adapter::Bone(bone)
                })
            }
            Adapter::Bat(mut bat) => fetch(suffixes[0], vec![d_out / r, r, r]).map(|data| {
                bat.block = Param::from_tensor(Tensor::from_data(data, device));
                Adapter::Bat(bat)
            }),
            Adapter::Lora(mut lora) => fetch("lora_A.weight", vec![r, d_in]).and_then(|a| {
                let b = fetch("lora_B.weight", vec![d_out, r])?;
                lora.lora_a = Param::from_tensor(Tensor::from_data(a, device));
                lora.lora_b = Param::from_tensor(Tensor::from_data(b, device));
                Ok(Adapter::Lora(lora))
            }),
        };
        match built {
            Ok(adapter) => {
                // Tensors of another method left for this layer are unexpected.
                if let Some((_, (key, _))) = found.into_iter().next() {
                    error = Some(AdapterError::UnexpectedTensor {
                        file: file.clone(),
                        key,
                        layer: path.clone(),
                    });
                    return;
                }
                planned.push((path, adapter));
            }
            Err(e) => error = Some(e),
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    if let Some((path, tensors)) = adapter_tensors.into_iter().next() {
        let key = tensors
            .into_values()
            .next()
            .map(|(key, _)| key)
            .unwrap_or_default();
        return Err(AdapterError::UnexpectedTensor {
            file,
            key,
            layer: path,
        });
    }
    if planned.is_empty() {
        return Err(AdapterError::NoTargetMatched {
            targets: config.target_modules.to_string(),
            candidates,
            example,
        });
    }

    let layers: Vec<String> = planned.iter().map(|(p, _)| p.clone()).collect();
    let mut planned = planned.into_iter();
    let mut next = planned.next();
    let mut result = Ok(());
    host.visit_linears_mut(&mut |layer| {
        if let Some((path, _)) = &next {
            if path == layer.path() {
                if let Some((_, adapter)) = next.take() {
                    if result.is_ok() {
                        result = layer.insert_adapter(name, adapter);
                    }
                }
                next = planned.next();
            }
        }
    });
    result?;
    Ok(LoadedAdapter {
        config,
        layers,
        extra_tensors,
    })
}

fn f32_data<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> TensorData {
    tensor.into_data().convert::<f32>()
}
