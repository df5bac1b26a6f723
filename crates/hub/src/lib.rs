//! Hugging Face Hub ids for `--model` / `--adapter`, resolved through the standard cache, and
//! the verified downloads of `cargo xtask assets --download`.
//!
//! - [`resolve_model`] / [`resolve_adapter`]: an existing path is used as given; an `org/name`
//!   id (see [`is_hub_id_shape`]) becomes `models--org--name/snapshots/<commit>/` of the cache
//!   (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`) through
//!   `refs/<revision>` (default `main`; a 40-hex commit directly). Files a user downloaded
//!   with Python are used in place. Missing files are downloaded from `$HF_ENDPOINT` (with
//!   `$HF_TOKEN`) into the same layout, unless `$HF_HUB_OFFLINE` is set.
//! - [`DefaultModel`]: the project's default encoder and decoder, found in
//!   `$BONE_MODELS_ROOT`, `../shared/models` or the cache.
//! - [`assets`]: what `cargo xtask assets --download` fetches, checked against pinned sha256.
//!
//! Why `hf-hub`: its 0.4 line has a blocking `ureq` client (rustls, no tokio, default features
//! off), takes a custom endpoint, cache folder and token, resumes `.part` blobs with a Range
//! and writes the cache layout Python reads; 1.0 moved to reqwest + tokio, so 0.4 is pinned.

#![warn(missing_docs)]

pub mod assets;
pub mod cache;
pub mod client;
pub mod defaults;
pub mod download;
pub mod error;
pub mod mrpc;
pub mod resolve;
pub mod settings;

pub use cache::{is_commit, is_hub_id_shape, CachedRepo, RepoId};
pub use client::HubClient;
pub use defaults::{DefaultModel, Found, DECODER, DECODER_GGUF, ENCODER, MODELS_ROOT_ENV};
pub use error::{HubError, Result};
pub use resolve::{
    resolve_adapter, resolve_model, resolve_with, FileSet, ADAPTER_FILES, DEFAULT_REVISION,
    MODEL_FILES,
};
pub use settings::HubSettings;
