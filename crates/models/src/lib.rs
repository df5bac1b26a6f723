//! LLaMA, BERT and RoBERTa as [Burn](https://burn.dev) modules, loaded from Hugging Face
//! checkpoint folders, with Bone, Bat and LoRA adapters on any linear projection.
//!
//! - [`checkpoint`]: `config.json` + `model.safetensors` (or shards with their index),
//!   memory-mapped; tensors by Hugging Face name, shape-checked, converted from F32, F16 or
//!   BF16 to the run's float type.
//! - [`config`]: `model_type` dispatch ([`ModelConfig`]), with [`LlamaConfig`] and
//!   [`EncoderConfig`] holding the Hugging Face fields.
//! - [`weights`]: where weights come from ([`weights::TensorSource`]: a checkpoint, an
//!   in-memory [`weights::TensorMap`]) and the one Hugging Face name table of each model
//!   ([`weights::HfModules`]) that loading and export share.
//! - [`llama`]: [`LlamaForCausalLM`] for `llama`, `mistral`, `qwen2` and `qwen3` (switches
//!   in [`llama::DecoderKind`]; Llama 3 RoPE scaling; Mistral's sliding window), with RoPE,
//!   grouped-query attention, SwiGLU, a [`KvCache`], the causal-LM loss and
//!   [`generate`](LlamaForCausalLM::generate).
//! - [`encoder`]: [`EncoderModel`] (BERT, RoBERTa), mean pooling, the pooler, and
//!   [`SequenceClassificationModel`] with transformers' heads.
//! - [`tokenizer`]: `tokenizer.json` through the `tokenizers` crate.
//! - [`targets`]: PEFT's default `target_modules` per family and "all block linears".
//! - [`auto`]: [`AutoModel`], any supported checkpoint behind one type.
//! - [`export`]: Hugging Face state dicts and checkpoint folders (e.g. after merging).
//! - [`gguf`]: llama.cpp GGUF files (quantised) as checkpoints, tokenizers and HF folders.
//! - [`backend`]: the backend this build selects with its `ndarray`, `wgpu` and `cuda` features.
//!
//! Every model implements [`bone_module::AdapterHost`]: adapters are added, loaded, saved,
//! merged and switched with [`bone_module::AdapterHostExt`] and [`bone_module::peft`], and
//! their module paths are those of the transformers task model, so files interoperate with
//! PEFT. After loading, every base parameter is frozen.
//!
//! ```no_run
//! use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
//! use burn::backend::{Autodiff, NdArray};
//! use burn::tensor::{Int, Tensor};
//! use models::targets::all_block_linears;
//! use models::{ClassifierOptions, GenerationConfig, LlamaForCausalLM, LoadOptions};
//! use models::{SequenceClassificationModel, Tokenizer};
//!
//! type B = NdArray;
//! type AB = Autodiff<NdArray>;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Default::default();
//!
//! // A decoder: load, attach a PEFT adapter, generate.
//! let mut llm = LlamaForCausalLM::<B>::from_pretrained(
//!     "../shared/models/stories260K", &LoadOptions::default(), &device)?;
//! llm.load_adapter("adapters/bone".as_ref(), "default", &device)?;
//! let tok = Tokenizer::from_pretrained("../shared/models/stories260K")?;
//! let prompt = tok.encode("Once upon a time", true)?;
//! let out = llm.generate(&[prompt], &GenerationConfig::greedy(40))?;
//! println!("{}", tok.decode(&out.sequences[0], true)?);
//!
//! // An encoder classifier for GLUE: Bone on every block linear, a fresh trainable head.
//! let mut clf = SequenceClassificationModel::<AB>::from_pretrained(
//!     "../shared/models/all-MiniLM-L6-v2", &ClassifierOptions::with_num_labels(2), &device)?;
//! let config = AdapterConfig::from_spec(&AdapterSpec::bone(64), all_block_linears(clf.family()));
//! clf.add_adapter("default", &config, &device)?;
//! let input_ids = Tensor::<AB, 2, Int>::from_ints([[101, 7592, 102]], &device); // [b, s]
//! let attention_mask = input_ids.ones_like();
//! let logits = clf.forward(input_ids, Some(attention_mask), None); // [b, 2]
//! # let _ = logits;
//! clf.save_adapter("default", &config, "out/adapter".as_ref())?; // PEFT folder, head in modules_to_save
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod auto;
pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod encoder;
pub mod error;
pub mod export;
pub mod gguf;
pub mod hub;
pub mod llama;
pub mod nn;
pub mod targets;
pub mod tokenizer;
pub mod train;
pub mod weights;

pub use auto::AutoModel;
pub use checkpoint::{Checkpoint, LoadOptions};
pub use config::{ModelConfig, ModelFamily};
pub use encoder::{ClassifierOptions, EncoderConfig, EncoderModel, SequenceClassificationModel};
pub use error::{ModelError, Result};
pub use llama::{
    DecoderKind, GenerationConfig, GenerationOutput, KvCache, LlamaConfig, LlamaForCausalLM,
};
pub use tokenizer::Tokenizer;
pub use weights::{HfModules, TensorMap, TensorSource};
