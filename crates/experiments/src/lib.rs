//! The binaries users run, and what they share.
//!
//! - [`glue`]: `glue-sst2` and `glue`, fine-tuning BERT/RoBERTa on GLUE with Bone, Bat, LoRA,
//!   the head alone or everything.
//! - [`lm`]: the causal-LM fine-tuning job (a LLaMA decoder, the loss on response tokens,
//!   gradient accumulation and checkpointing, packing, half precision, samples); `metamath`
//!   and `sft` are its presets:
//! - [`metamath`]: `metamath`, MetaMathQA (or GSM8K train) with the paper's defaults.
//! - [`sft`]: `sft`, your own JSON / JSONL data with the model's chat template.
//! - [`gsm8k_eval`]: `gsm8k-eval`, GSM8K accuracy by batched greedy generation.
//! - [`cli`]: the `bone` tool (`forward`, `generate`, `merge`, `inspect`).
//! - [`train`]: the resumable training loop on burn-train, checkpoints, schedules, reports.
//! - [`llama`]: what the LLaMA jobs share (checkpoint check, batcher, `--precision`).
//! - [`cpu`]: the CPU's model, clock, SIMD width and theoretical peak; a GEMM probe.
//! - [`device`]: `--device`, choosing the backend at run time among those compiled in.

pub mod cli;
pub mod cpu;
pub mod device;
pub mod glue;
pub mod gsm8k_eval;
pub mod llama;
pub mod lm;
pub mod metamath;
pub mod sft;
pub mod train;
