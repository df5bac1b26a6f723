//! Interoperability with Hugging Face PEFT: `adapter_config.json` and
//! `adapter_model.safetensors`, read and written with PEFT's field names, key names and
//! tensor shapes (checked against files written by PEFT 0.21.2).
//!
//! Key layout: `base_model.model.<module path>.<suffix>` with suffix `miss_block` (MiSS, the
//! current name of Bone/Bat), `bone_block` (older `BoneConfig` files), or `lora_A.weight` /
//! `lora_B.weight` (LoRA).

mod config;
mod io;
mod keys;
mod targets;

pub use config::{AdapterConfig, LayerSelector, PeftType, ADAPTER_CONFIG_FILE};
pub use io::{load_adapter, save_adapter, LoadedAdapter, ADAPTER_WEIGHTS_FILE};
pub use keys::{peft_key, split_peft_key, PEFT_KEY_PREFIX};
pub use targets::TargetModules;
