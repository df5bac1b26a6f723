//! Every integration test of the crate in one binary (each test binary links Burn again, so
//! CI builds one per crate). The modules are the former `tests/*.rs` files, unchanged but for
//! `use crate::common;` (the helpers in `tests/common/mod.rs`, compiled once here);
//! `cargo test -p data --test suite MODULE::` runs one of them.

#[path = "batchers.rs"]
mod batchers;
mod common;
#[path = "glue_layouts.rs"]
mod glue_layouts;
#[path = "glue_real.rs"]
mod glue_real;
#[path = "gsm8k.rs"]
mod gsm8k;
#[path = "metamath.rs"]
mod metamath;
#[path = "metrics.rs"]
mod metrics;
#[path = "own_data.rs"]
mod own_data;
