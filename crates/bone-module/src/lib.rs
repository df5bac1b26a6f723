//! Bone, Bat and LoRA adapters as [Burn](https://burn.dev) modules, generic over any backend.
//!
//! - [`bone`], [`bat`], [`lora`]: one folder per method, each a `Config` with `init` and a
//!   `Module` with `forward`, with tensors in PEFT's shapes.
//! - [`AdaptedLinear`]: a frozen `Linear` with named adapters: activate, disable, delete,
//!   merge and unmerge (exact for Bone and LoRA, Bat through `(I + B)⁻¹`), safe merge.
//! - [`peft`]: `adapter_config.json` and `adapter_model.safetensors` in PEFT's format, read
//!   and written for any model that implements [`AdapterHost`].
//!
//! Burn's `Linear` stores `weight [d_input, d_output]`, the transpose of PyTorch's; every
//! `delta_weight` here is in Burn's layout, while adapter tensors keep PEFT's shapes.

pub mod adapted;
pub mod adapter;
pub mod bat;
pub mod bone;
pub mod dropout;
pub mod error;
pub mod host;
mod linalg;
pub mod lora;
pub mod peft;
pub mod spec;
pub mod to_lora;

pub use adapted::{AdaptedLinear, MergeReport};
pub use adapter::{Adapter, AdapterKind};
pub use bat::{Bat, BatConfig};
pub use bone::{BlockInit, Bone, BoneConfig};
pub use dropout::{backend_seed, with_dropout_seed, Dropout};
pub use error::{AdapterError, Result};
pub use host::{AdapterHost, AdapterHostExt};
pub use lora::{Lora, LoraConfig};
pub use peft::{AdapterConfig, PeftType, TargetModules};
pub use spec::AdapterSpec;
pub use to_lora::LoraConversion;
