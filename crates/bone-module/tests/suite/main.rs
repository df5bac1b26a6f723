//! The bone-module integration suite, in one test binary (one link, one monomorphisation of
//! the backend: much faster to build, especially on WGPU).

mod common;

mod behaviours;
mod bone_forward;
mod golden_merge;
mod half_precision;
mod mini;
mod peft_files;
mod training;
