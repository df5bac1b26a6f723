//! Hugging Face Hub ids for model and adapter folders: the [`bone_hub`] crate, re-exported.
//!
//! [`resolve_model`]`("org/name", revision)` turns a Hub id into its snapshot folder in the
//! standard cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`),
//! downloading missing files from `$HF_ENDPOINT` unless `$HF_HUB_OFFLINE` is set; an existing
//! path, or a string without the `org/name` shape, is returned unchanged. Pass its result to
//! [`AutoModel::from_pretrained`](crate::AutoModel::from_pretrained),
//! [`Tokenizer::from_pretrained`](crate::Tokenizer::from_pretrained) and the other loaders.
//! The code lives in its own crate so that `cargo xtask` downloads without building Burn.

pub use bone_hub::*;
