//! `--model` / `--adapter` arguments: a local folder, or a Hub id resolved through the cache
//! (downloading what is missing unless `HF_HUB_OFFLINE` is set).
//!
//! An argument is a Hub id when it is **not an existing path** and has the `org/name` shape
//! ([`is_hub_id_shape`](crate::is_hub_id_shape)); anything else is returned unchanged, so
//! the loaders' own "no such folder" errors still report bad paths. Write `./org/name` to
//! force a relative path that does not exist yet.

use std::path::{Path, PathBuf};

use crate::cache::{CachedRepo, RepoId};
use crate::client::HubClient;
use crate::error::{io, Result};
use crate::settings::HubSettings;

/// The revision used when none is given.
pub const DEFAULT_REVISION: &str = "main";

/// The weights of a model: one file, or shards listed in an index.
const WEIGHTS: &str = "model.safetensors";
const WEIGHTS_INDEX: &str = "model.safetensors.index.json";

/// What a kind of folder must hold, and what it may hold.
#[derive(Debug, Clone, Copy)]
pub struct FileSet {
    /// Files that must be there (weights handled apart).
    pub required: &'static [&'static str],
    /// Files fetched when the Hub has them (404 is fine).
    pub optional: &'static [&'static str],
    /// Whether `model.safetensors` (or its shards) is needed.
    pub weights: bool,
}

/// A Hugging Face model folder: `config.json`, the weights, and the tokenizer files.
pub const MODEL_FILES: FileSet = FileSet {
    required: &["config.json"],
    optional: &[
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
    ],
    weights: true,
};

/// A PEFT adapter folder.
pub const ADAPTER_FILES: FileSet = FileSet {
    required: &["adapter_config.json", "adapter_model.safetensors"],
    optional: &[],
    weights: false,
};

/// Resolves a `--model` argument with the environment's settings: an existing path or a
/// string that is no Hub id is returned as given; `org/name` becomes its snapshot folder
/// (`revision`, default `main`; a 40-hex commit is used directly).
///
/// # Errors
/// See [`resolve_with`].
pub fn resolve_model(arg: impl AsRef<Path>, revision: Option<&str>) -> Result<PathBuf> {
    resolve_with(
        &HubSettings::from_env(),
        arg.as_ref(),
        revision,
        &MODEL_FILES,
    )
}

/// [`resolve_model`] for a PEFT adapter (`adapter_config.json`, `adapter_model.safetensors`).
///
/// # Errors
/// See [`resolve_with`].
pub fn resolve_adapter(arg: impl AsRef<Path>, revision: Option<&str>) -> Result<PathBuf> {
    resolve_with(
        &HubSettings::from_env(),
        arg.as_ref(),
        revision,
        &ADAPTER_FILES,
    )
}

/// The resolution rule with explicit settings.
///
/// # Errors
/// [`HubError::Offline`](crate::HubError::Offline) /
/// [`HubError::UnknownRevision`](crate::HubError::UnknownRevision) when files are missing
/// and downloads are forbidden; [`HubError::Download`](crate::HubError::Download) when the Hub
/// cannot be reached or lacks a required file.
pub fn resolve_with(
    settings: &HubSettings,
    arg: &Path,
    revision: Option<&str>,
    files: &FileSet,
) -> Result<PathBuf> {
    if arg.exists() {
        return Ok(arg.to_path_buf());
    }
    let Some(repo) = arg.to_str().and_then(RepoId::parse) else {
        return Ok(arg.to_path_buf());
    };
    let revision = revision.unwrap_or(DEFAULT_REVISION);
    let cached = CachedRepo::new(&settings.cache, repo);
    let snapshot = cached.snapshot(revision);
    let missing = match &snapshot {
        Some(dir) => missing_files(dir, files)?,
        None => all_files(files),
    };
    if let (Some(dir), true) = (&snapshot, missing.is_empty()) {
        return Ok(dir.clone());
    }
    if settings.offline {
        return Err(cached.offline_error(revision, &missing));
    }
    fetch(settings, &cached, revision, files, snapshot.as_deref())
}

/// The required files not in `snapshot` (shards of an index included).
fn missing_files(snapshot: &Path, files: &FileSet) -> Result<Vec<String>> {
    let mut missing: Vec<String> = files
        .required
        .iter()
        .filter(|f| !CachedRepo::has(snapshot, f))
        .map(|f| f.to_string())
        .collect();
    if files.weights && !CachedRepo::has(snapshot, WEIGHTS) {
        if CachedRepo::has(snapshot, WEIGHTS_INDEX) {
            let shards = shard_names(&snapshot.join(WEIGHTS_INDEX))?;
            missing.extend(shards.into_iter().filter(|s| !CachedRepo::has(snapshot, s)));
        } else {
            missing.push(WEIGHTS.to_string());
        }
    }
    Ok(missing)
}

fn all_files(files: &FileSet) -> Vec<String> {
    let mut all: Vec<String> = files.required.iter().map(|f| f.to_string()).collect();
    if files.weights {
        all.push(WEIGHTS.to_string());
    }
    all
}

/// Downloads what `snapshot` lacks and returns the snapshot folder.
fn fetch(
    settings: &HubSettings,
    cached: &CachedRepo,
    revision: &str,
    files: &FileSet,
    snapshot: Option<&Path>,
) -> Result<PathBuf> {
    let client = HubClient::new(settings)?;
    let repo = cached.repo();
    let have = |name: &str| snapshot.is_some_and(|dir| CachedRepo::has(dir, name));
    let mut dir = snapshot.map(Path::to_path_buf);
    let mut get = |name: &str, required: bool| -> Result<Option<PathBuf>> {
        if let Some(found) = snapshot.filter(|_| have(name)) {
            return Ok(Some(found.join(name)));
        }
        let path = client.download(repo, revision, name)?;
        match &path {
            Some(p) => dir = Some(CachedRepo::snapshot_of(p, name)),
            None if required => {
                return Err(crate::HubError::Download {
                    url: client.url(repo, revision, name),
                    file: settings.cache.join(repo.folder_name()),
                    message: "404 Not Found: the repository has no such file".into(),
                })
            }
            None => {}
        }
        Ok(path)
    };
    for name in files.required {
        get(name, true)?;
    }
    if files.weights && get(WEIGHTS, false)?.is_none() {
        let index = get(WEIGHTS_INDEX, false)?.ok_or_else(|| crate::HubError::Download {
            url: client.url(repo, revision, WEIGHTS),
            file: settings.cache.join(repo.folder_name()),
            message: format!(
                "404 Not Found: the repository has neither {WEIGHTS} nor {WEIGHTS_INDEX}"
            ),
        })?;
        for shard in shard_names(&index)? {
            get(&shard, true)?;
        }
    }
    for name in files.optional {
        get(name, false)?;
    }
    dir.ok_or_else(|| crate::HubError::Download {
        url: client.url(
            repo,
            revision,
            files.required.first().copied().unwrap_or(WEIGHTS),
        ),
        file: settings.cache.clone(),
        message: "nothing was downloaded".into(),
    })
}

/// The distinct shard file names of a `model.safetensors.index.json`.
fn shard_names(index: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(io(index))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| crate::HubError::Io {
            path: index.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
    let mut names: Vec<String> = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    Ok(names)
}
