//! LoRA, the baseline every comparison is made against: `ΔW = (α / r) · B A`.

mod config;
mod layer;

pub use config::LoraConfig;
pub use layer::Lora;
