//! Every integration test of the crate in one binary (each test binary links Burn again, so
//! CI builds one per crate). The modules are the former `tests/*.rs` files, unchanged, each loaded
//! through `#[path]` so that its `mod common;` finds `tests/common/mod.rs` as before;
//! `cargo test -p models --test suite MODULE::` runs one of them.

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
