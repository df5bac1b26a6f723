//! Bone (Block-Affine Adaptation, PEFT `MissConfig` with `init_weights=True`).
//!
//! The update of a layer `W ∈ R^{out×in}` is `ΔW[o, j] = B[j mod r, o]` with one trainable block
//! `B ∈ R^{r×out}`. Training never builds `ΔW`: the input is folded into `r` columns and
//! multiplied by `B` (see [`Bone::forward`]).

mod config;
mod layer;

pub(crate) use config::{dropout, kaiming_uniform};
pub use config::{BlockInit, BoneConfig};
pub use layer::Bone;
