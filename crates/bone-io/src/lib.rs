//! Files shared by every crate of the workspace: atomic writes ([`fs`]), `.safetensors` files
//! as Burn [`TensorData`](burn::tensor::TensorData) ([`tensors`]), and the typed
//! [`FileError`] that names the file, key or field a problem was found in.
//!
//! The adapter crate (`bone-module`) and the model crate (`models`) both wrap [`FileError`]
//! as `#[error(transparent)] File(#[from] FileError)`, so one failure reads the same
//! whichever crate reports it.

pub mod error;
pub mod fs;
pub mod tensors;

pub use error::{FileError, Result};
pub use fs::{read, write_atomic};
pub use tensors::{read_safetensors, to_f32_vec, write_safetensors};
