//! Every integration test of the crate in one binary (each test binary links Burn again, so
//! CI builds one per crate). The modules are the former `tests/*.rs` files, unchanged, each loaded
//! through `#[path]` so that its `mod common;` finds `tests/common/mod.rs` as before;
//! `cargo test -p experiments --test suite MODULE::` runs one of them.

#[path = "assets_download.rs"]
mod assets_download;
#[path = "bone_cli.rs"]
mod bone_cli;
#[path = "causal_lm_step.rs"]
mod causal_lm_step;
#[path = "glue_cli.rs"]
mod glue_cli;
#[path = "glue_step.rs"]
mod glue_step;
#[path = "gsm8k_eval_cli.rs"]
mod gsm8k_eval_cli;
#[path = "metamath_cli.rs"]
mod metamath_cli;
#[path = "trainer.rs"]
mod trainer;
