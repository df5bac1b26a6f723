//! LLaMA-architecture decoders (`LlamaForCausalLM`): RMSNorm, rotary embeddings,
//! grouped-query attention, SwiGLU MLP, tied or separate `lm_head`, a KV cache and
//! generation.

mod attention;
mod cache;
mod config;
mod generate;
mod layer;
mod mlp;
mod model;
mod rope;
pub mod sampling;

pub use attention::LlamaAttention;
pub use cache::KvCache;
pub use config::{DecoderKind, LlamaConfig, RopeScaling};
pub use generate::{FinishReason, GenerationConfig, GenerationOutput};
pub use layer::LlamaDecoderLayer;
pub use mlp::LlamaMlp;
pub use model::{causal_lm_loss, CausalLmOutput, LlamaForCausalLM, LlamaModel, IGNORE_INDEX};
pub use rope::RotaryEmbedding;
