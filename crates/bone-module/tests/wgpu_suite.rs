//! The adapter suite of `tests/suite/` on the WGPU backend (Mesa's lavapipe runs it on the
//! CPU where there is no GPU): `cargo test -p bone-module --features wgpu --test wgpu_suite`.
//! `cargo xtask ci` builds it with the rest of the workspace's tests. `half_precision` is left
//! out: it runs on Flex whatever the suite's backend.

/// The backend the suite runs on here.
pub type TB = burn::backend::Wgpu;

#[path = "suite/common/mod.rs"]
mod common;

#[path = "suite/behaviours.rs"]
mod behaviours;
#[path = "suite/bone_forward.rs"]
mod bone_forward;
#[path = "suite/golden_merge.rs"]
mod golden_merge;
#[path = "suite/mini.rs"]
mod mini;
#[path = "suite/peft_files.rs"]
mod peft_files;
#[path = "suite/training.rs"]
mod training;
