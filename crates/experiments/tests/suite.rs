//! Every integration test of the crate in one binary (each test binary links Burn again, so
//! CI builds one per crate). The modules are the former `tests/*.rs` files, unchanged but for
//! `use crate::common;` (the helpers in `tests/common/mod.rs`, compiled once here);
//! `cargo test -p experiments --test suite MODULE::` runs one of them.

#[path = "assets_download.rs"]
mod assets_download;
#[path = "bone_cli.rs"]
mod bone_cli;
#[path = "causal_lm_step.rs"]
mod causal_lm_step;
#[path = "chat_cli.rs"]
mod chat_cli;
mod common;
#[path = "decoder_hub.rs"]
mod decoder_hub;
#[path = "distributed.rs"]
mod distributed;
#[path = "fuzz.rs"]
mod fuzz;
#[path = "glue_cli.rs"]
mod glue_cli;
#[path = "glue_step.rs"]
mod glue_step;
#[path = "gsm8k_eval_cli.rs"]
mod gsm8k_eval_cli;
#[path = "metamath_cli.rs"]
mod metamath_cli;
#[path = "robustness.rs"]
mod robustness;
#[path = "sft_cli.rs"]
mod sft_cli;
#[path = "trainer.rs"]
mod trainer;
