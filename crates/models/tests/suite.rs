//! Every integration test of the crate in one binary (each test binary links Burn again, so
//! CI builds one per crate). The modules are the former `tests/*.rs` files, unchanged but for
//! `use crate::common;` (the helpers in `tests/common/mod.rs`, compiled once here);
//! `cargo test -p models --test suite MODULE::` runs one of them.

mod common;
#[path = "encoder_golden.rs"]
mod encoder_golden;
#[path = "errors.rs"]
mod errors;
#[path = "gguf.rs"]
mod gguf;
#[path = "hub.rs"]
mod hub;
#[path = "llama_golden.rs"]
mod llama_golden;
#[path = "loading.rs"]
mod loading;
#[path = "peft_golden.rs"]
mod peft_golden;
#[path = "training.rs"]
mod training;
#[path = "unpadded.rs"]
mod unpadded;
