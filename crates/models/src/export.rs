//! Writing models back as Hugging Face checkpoint folders: every weight under its
//! transformers name, in PyTorch layout and the source checkpoint's dtype, sharded as the
//! source was, with `config.json`, the tokenizer and every other file of the source copied.
//!
//! Merging an adapter and saving gives a plain checkpoint that transformers loads.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bone_io::fs::write_atomic;
use bone_io::tensors::write_safetensors;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, TensorData};
use serde_json::{json, Value};

use crate::checkpoint::{Checkpoint, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};
use crate::config::CONFIG_FILE;
use crate::encoder::{EncoderModel, SequenceClassificationModel};
use crate::error::{ModelError, Result};
use crate::llama::LlamaForCausalLM;
use crate::weights::hf_tensors;

/// Tensors by Hugging Face name, in PyTorch layout.
pub type StateDict = BTreeMap<String, TensorData>;

/// A model whose weights can be written under Hugging Face names.
pub trait HfExport {
    /// Every parameter under its transformers name (PyTorch layout: linear weights are
    /// `[out, in]`), in the model's dtype. Adapters that are not merged are not included.
    fn hf_state_dict(&self) -> StateDict;

    /// The folder the model was loaded from (its config, tokenizer and dtypes are reused).
    fn source_dir(&self) -> Option<&Path>;

    /// `config.json` for the saved model, from the source's.
    fn hf_config(&self, source: &Value) -> Value {
        source.clone()
    }

    /// `(from, to)`: tensors copied from the source (those the model does not hold, such as
    /// `embeddings.position_ids`) are renamed from prefix `from` to `to`.
    fn copied_prefix(&self) -> Option<(String, String)> {
        None
    }
}

/// What [`save_pretrained`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveReport {
    /// The weight files written.
    pub weight_files: Vec<PathBuf>,
    /// Number of tensors written.
    pub tensors: usize,
    /// Other files copied from the source folder.
    pub copied_files: Vec<PathBuf>,
}

/// Writes `model` as a Hugging Face checkpoint folder `out_dir`.
///
/// Tensor names and dtypes follow the source checkpoint (a tensor the source lacks, such as
/// a new classification head, gets the source's float dtype); tensors the model does not
/// hold are copied unchanged; shards mirror the source's. Files are written atomically.
///
/// # Errors
/// A model with no source folder, `out_dir` equal to the source, or an I/O error.
pub fn save_pretrained<M: HfExport + ?Sized>(model: &M, out_dir: &Path) -> Result<SaveReport> {
    let source_dir = model.source_dir().ok_or_else(|| {
        ModelError::invalid(
            "model",
            "it was not loaded from a checkpoint folder, so there is no config to save",
        )
    })?;
    if source_dir.is_file() {
        return Err(ModelError::invalid(
            "model",
            format!(
                "it was loaded from the GGUF file {}, not a checkpoint folder; convert the file \
                 first (models::gguf::convert::convert, `bone convert`) and load that folder",
                source_dir.display()
            ),
        ));
    }
    if same_dir(source_dir, out_dir) {
        return Err(ModelError::invalid(
            "output folder",
            format!(
                "{} is the source checkpoint; choose another folder",
                out_dir.display()
            ),
        ));
    }
    let source = Checkpoint::open(source_dir)?;
    let state = model.hf_state_dict();
    let rename = model.copied_prefix();
    let default_dtype = source
        .names()
        .find_map(|n| {
            source
                .info(n)
                .filter(|i| matches!(i.dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64))
        })
        .map(|i| i.dtype)
        .unwrap_or(DType::F32);

    // Assign each output tensor to a file, following the source's shards.
    let files = source.files();
    let file_name = |path: &Path| {
        path.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut shard_of: BTreeMap<String, String> = BTreeMap::new();
    for (path, names) in &files {
        for name in names {
            shard_of.insert(name.clone(), file_name(path));
        }
    }
    let last_file = files
        .last()
        .map(|(p, _)| file_name(p))
        .unwrap_or_else(|| WEIGHTS_FILE.into());
    let source_name = |name: &str| -> Option<String> {
        if source.contains(name) {
            return Some(name.to_string());
        }
        let (from, to) = rename.as_ref()?;
        let bare = name.strip_prefix(to.as_str())?;
        let candidate = format!("{from}{bare}");
        source.contains(&candidate).then_some(candidate)
    };

    let mut outputs: BTreeMap<String, StateDict> = BTreeMap::new();
    let mut used_source: Vec<String> = Vec::new();
    for (name, data) in &state {
        let (file, dtype) = match source_name(name) {
            Some(src) => {
                used_source.push(src.clone());
                let info = source.info(&src);
                (
                    shard_of
                        .get(&src)
                        .cloned()
                        .unwrap_or_else(|| last_file.clone()),
                    info.map(|i| float_dtype(i.dtype)).unwrap_or(default_dtype),
                )
            }
            None => (last_file.clone(), default_dtype),
        };
        let data = if data.dtype == dtype {
            data.clone()
        } else {
            data.clone().convert_dtype(dtype)
        };
        outputs.entry(file).or_default().insert(name.clone(), data);
    }
    // Source tensors the model does not hold (buffers such as position_ids).
    for name in source.names() {
        if used_source.iter().any(|u| u == name) {
            continue;
        }
        let out_name = match &rename {
            Some((from, to)) if !name.starts_with("classifier.") => {
                format!("{to}{}", name.strip_prefix(from.as_str()).unwrap_or(name))
            }
            _ => name.to_string(),
        };
        if state.contains_key(&out_name) {
            continue;
        }
        let file = shard_of
            .get(name)
            .cloned()
            .unwrap_or_else(|| last_file.clone());
        outputs
            .entry(file)
            .or_default()
            .insert(out_name, source.read(name)?);
    }

    fs::create_dir_all(out_dir).map_err(|e| ModelError::io("creating folder", out_dir, e))?;
    let mut weight_files = Vec::new();
    let mut weight_map = serde_json::Map::new();
    let mut total_size = 0usize;
    let mut count = 0usize;
    for (file, tensors) in &outputs {
        let path = out_dir.join(file);
        write_safetensors(&path, tensors, &[("format", "pt")])?;
        for (name, data) in tensors {
            weight_map.insert(name.clone(), Value::String(file.clone()));
            total_size += data.as_bytes().len();
        }
        count += tensors.len();
        weight_files.push(path);
    }
    if source.is_sharded() {
        let index = json!({ "metadata": { "total_size": total_size }, "weight_map": weight_map });
        write_json(&out_dir.join(WEIGHTS_INDEX_FILE), &index)?;
    }
    let config = model.hf_config(source.config());
    write_json(&out_dir.join(CONFIG_FILE), &config)?;

    let skip: Vec<String> = files
        .iter()
        .map(|(p, _)| file_name(p))
        .chain([WEIGHTS_INDEX_FILE.to_string(), CONFIG_FILE.to_string()])
        .collect();
    let mut copied_files = Vec::new();
    copy_others(source_dir, out_dir, &skip, &mut copied_files)?;
    Ok(SaveReport {
        weight_files,
        tensors: count,
        copied_files,
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `stored` when it is F16, BF16 or F64, else F32 (a non-float source tensor under the name
/// of a float parameter is written in F32).
fn float_dtype(stored: DType) -> DType {
    match stored {
        DType::F16 | DType::BF16 | DType::F64 => stored,
        _ => DType::F32,
    }
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| ModelError::invalid("JSON", e.to_string()))?;
    text.push('\n');
    Ok(write_atomic(path, text.as_bytes())?)
}

fn copy_others(from: &Path, to: &Path, skip: &[String], copied: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(from).map_err(|e| ModelError::io("reading folder", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ModelError::io("reading folder", from, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip.contains(&name) {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        if src.is_dir() {
            fs::create_dir_all(&dst).map_err(|e| ModelError::io("creating folder", &dst, e))?;
            copy_others(&src, &dst, &[], copied)?;
        } else {
            fs::copy(&src, &dst).map_err(|e| ModelError::io("copying to", &dst, e))?;
            copied.push(dst);
        }
    }
    Ok(())
}

impl<B: Backend> HfExport for LlamaForCausalLM<B> {
    fn hf_state_dict(&self) -> StateDict {
        // The names come from the model's table (`HfModules`), as when loading; cloning a
        // module shares its tensors.
        hf_tensors(&mut self.clone())
    }

    fn source_dir(&self) -> Option<&Path> {
        self.origin()
    }
}

impl<B: Backend> HfExport for EncoderModel<B> {
    fn hf_state_dict(&self) -> StateDict {
        hf_tensors(&mut self.clone())
    }

    fn source_dir(&self) -> Option<&Path> {
        self.origin()
    }

    fn copied_prefix(&self) -> Option<(String, String)> {
        Some((
            self.checkpoint_prefix().to_string(),
            self.path_prefix().to_string(),
        ))
    }
}

impl<B: Backend> HfExport for SequenceClassificationModel<B> {
    fn hf_state_dict(&self) -> StateDict {
        hf_tensors(&mut self.clone())
    }

    fn source_dir(&self) -> Option<&Path> {
        self.encoder.origin()
    }

    fn hf_config(&self, source: &Value) -> Value {
        let mut config = source.clone();
        if let Value::Object(map) = &mut config {
            let family = self.family();
            let arch = match family {
                crate::config::ModelFamily::Roberta => "RobertaForSequenceClassification",
                _ => "BertForSequenceClassification",
            };
            map.insert("architectures".into(), json!([arch]));
            let n = self.num_labels();
            let same_labels = map
                .get("id2label")
                .and_then(Value::as_object)
                .is_some_and(|m| m.len() == n);
            if !same_labels {
                let id2label: serde_json::Map<String, Value> = (0..n)
                    .map(|i| (i.to_string(), Value::String(format!("LABEL_{i}"))))
                    .collect();
                let label2id: serde_json::Map<String, Value> =
                    (0..n).map(|i| (format!("LABEL_{i}"), json!(i))).collect();
                map.insert("id2label".into(), Value::Object(id2label));
                map.insert("label2id".into(), Value::Object(label2id));
            }
            if n == 1 {
                map.insert("problem_type".into(), json!("regression"));
            }
        }
        config
    }

    fn copied_prefix(&self) -> Option<(String, String)> {
        self.encoder.copied_prefix()
    }
}
