//! Bat (Block-Affine Transformation, PEFT `MissConfig` with `init_weights="bat"`).
//!
//! The weight `W ∈ R^{out×in}` is cut into `r×r` blocks `W_{a,b}`; the update is
//! `ΔW_{a,b} = W_{a,b} · B_a + B_a` with one trainable `r×r` block per output block row,
//! so the update depends on the weight it is applied to (the "weight guide").

mod config;
mod layer;

pub use config::BatConfig;
pub use layer::{Bat, SingularBlock};
