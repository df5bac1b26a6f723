//! Where data comes from: a root folder chosen by an explicit option, then an environment
//! variable, then the default `../shared/<subdir>`, then (for datasets) the workspace's
//! `datasets/` folder, where `cargo xtask assets --download` puts the files.
//!
//! The default is tried relative to the current directory and relative to the workspace root
//! this crate was built in (so tests, examples and binaries find it from any directory). Files
//! are then asked for by their path relative to the root (`glue/SST-2/train.tsv`); a missing
//! file is a [`DataError::Missing`] that lists every place looked and how to get the data, and,
//! when a [`Manifest`] is attached, a file whose sha256 differs is a [`DataError::Checksum`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{DataError, Result};
use crate::manifest::Manifest;

/// Environment variable naming the dataset root.
pub const DATA_ROOT_ENV: &str = "BONE_DATA_ROOT";
/// Environment variable naming the models root (used by the benchmark and other crates).
pub const MODELS_ROOT_ENV: &str = "BONE_MODELS_ROOT";
/// Default dataset root, relative to the workspace root.
pub const DEFAULT_DATA_ROOT: &str = "../shared/datasets";
/// Where `cargo xtask assets --download` puts the datasets by default, relative to the
/// workspace root (git-ignored but for its README and SHA256SUMS).
pub const DOWNLOAD_DIR: &str = "datasets";

/// The workspace root this crate was compiled in (`crates/data/../..`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How a [`DataRoot`] was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootOrigin {
    /// Given explicitly (a `--data-root` flag or a config field).
    Explicit,
    /// Read from the environment variable.
    Env,
    /// The default `../shared/<subdir>`, or the download location `<workspace>/datasets`.
    Default,
}

/// A root folder of read-only inputs (datasets by default) and, optionally, a checksum manifest
/// that every file handed out is checked against.
#[derive(Debug, Clone)]
pub struct DataRoot {
    dir: PathBuf,
    origin: RootOrigin,
    /// Every candidate considered, with where it came from (for the "not found" message).
    candidates: Vec<(PathBuf, String)>,
    env_var: String,
    manifest: Option<Arc<Manifest>>,
}

impl DataRoot {
    /// Resolves the dataset root: `explicit` if given, else `$BONE_DATA_ROOT` if set and not
    /// empty, else the first existing `../shared/datasets` (relative to the current directory,
    /// then to the workspace root). Never fails: a root that does not exist is reported, with
    /// every place looked, when a file is asked for.
    pub fn resolve(explicit: Option<&Path>) -> Self {
        Self::resolve_in(explicit, DATA_ROOT_ENV, "datasets")
    }

    /// Like [`DataRoot::resolve`] for another folder of `../shared` (for example
    /// `resolve_in(None, MODELS_ROOT_ENV, "models")`).
    pub fn resolve_in(explicit: Option<&Path>, env_var: &str, shared_subdir: &str) -> Self {
        let env_value = std::env::var_os(env_var);
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::resolve_from(
            explicit,
            env_value,
            env_var,
            shared_subdir,
            &cwd,
            &workspace_root(),
        )
    }

    /// The resolution rule with its inputs made explicit (no process state is read).
    pub fn resolve_from(
        explicit: Option<&Path>,
        env_value: Option<OsString>,
        env_var: &str,
        shared_subdir: &str,
        cwd: &Path,
        workspace: &Path,
    ) -> Self {
        let make = |dir: PathBuf, origin, candidates| Self {
            dir,
            origin,
            candidates,
            env_var: env_var.to_string(),
            manifest: None,
        };
        if let Some(dir) = explicit {
            let c = vec![(dir.to_path_buf(), "given explicitly".to_string())];
            return make(dir.to_path_buf(), RootOrigin::Explicit, c);
        }
        if let Some(value) = env_value.filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(value);
            let c = vec![(dir.clone(), format!("from ${env_var}"))];
            return make(dir, RootOrigin::Env, c);
        }
        let rel = Path::new("../shared").join(shared_subdir);
        let mut candidates = vec![
            (
                cwd.join(&rel),
                "default, relative to the current directory".to_string(),
            ),
            (
                workspace.join(&rel),
                "default, relative to the workspace root".to_string(),
            ),
        ];
        if shared_subdir == "datasets" {
            candidates.push((
                workspace.join(DOWNLOAD_DIR),
                "where `cargo xtask assets --download` puts it".to_string(),
            ));
        }
        let dir = candidates
            .iter()
            .map(|(p, _)| p.clone())
            .find(|p| p.is_dir())
            .unwrap_or_else(|| candidates[0].0.clone());
        make(dir, RootOrigin::Default, candidates)
    }

    /// A root at exactly `dir` (no environment lookup).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self::resolve_from(
            Some(&dir),
            None,
            DATA_ROOT_ENV,
            "datasets",
            Path::new("."),
            Path::new("."),
        )
    }

    /// Checks every file handed out by [`DataRoot::file`] against `manifest`.
    pub fn with_manifest(mut self, manifest: Manifest) -> Self {
        self.manifest = Some(Arc::new(manifest));
        self
    }

    /// The chosen folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How the folder was chosen.
    pub fn origin(&self) -> RootOrigin {
        self.origin
    }

    /// The attached manifest, if checksums are on.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_deref()
    }

    /// The path of `rel` (relative to the root, `/`-separated) after checking it exists and,
    /// if a manifest is attached, that its sha256 matches.
    ///
    /// # Errors
    /// [`DataError::Missing`] naming every place looked and how to get the data;
    /// [`DataError::Checksum`] / [`DataError::NotInManifest`] when verification fails.
    pub fn file(&self, rel: &str) -> Result<PathBuf> {
        let path = self.dir.join(rel);
        if !path.is_file() {
            return Err(self.missing(rel));
        }
        if let Some(manifest) = &self.manifest {
            manifest.verify(&path, rel)?;
        }
        Ok(path)
    }

    /// The error for a missing `rel`: every candidate root joined with `rel`, and a hint.
    pub fn missing(&self, rel: &str) -> DataError {
        let looked = self
            .candidates
            .iter()
            .map(|(root, origin)| (root.join(rel), origin.clone()))
            .collect();
        DataError::Missing {
            what: format!("`{rel}`"),
            looked,
            hint: how_to_get(rel, &self.env_var),
        }
    }
}

/// Where to get the file `rel`, and how to point this crate at it.
pub(crate) fn how_to_get(rel: &str, env_var: &str) -> String {
    let rel = rel.replace('\\', "/");
    let source = if rel.contains("glue/") {
        "GLUE: the TSV files written by GLUE's download_glue_data.py \
         (https://gluebenchmark.com/tasks), kept in glue/<TASK>/{train,dev,test}.tsv"
    } else if rel.contains("gsm8k/") {
        "GSM8K: grade_school_math/data/{train,test}.jsonl from \
         https://github.com/openai/grade-school-math, kept in gsm8k/"
    } else if rel.contains("metamathqa/") {
        "MetaMathQA: MetaMathQA-395K.json from https://huggingface.co/datasets/meta-math/MetaMathQA, \
         kept in metamathqa/ (GSM8K can stand in for it, see data::metamath::gsm8k_as_metamath)"
    } else {
        "see the project's shared/README.md"
    };
    format!(
        "Get it from {source}. Point to the folder holding it with a --data-root flag (or the \
         loader's root option), or set ${env_var}; the default is ../shared/<subdir> next to the \
         workspace. Layout and checksums: datasets/README.md and datasets/SHA256SUMS \
         (`sha256sum -c SHA256SUMS` inside the data folder). Without ../shared, download the \
         data with `cargo xtask assets --download` (into the workspace's datasets/, or \
         `--to DIR`)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_beats_env_beats_default() {
        let cwd = Path::new("/nowhere/a");
        let ws = Path::new("/nowhere/b");
        let r = DataRoot::resolve_from(
            Some(Path::new("/x")),
            Some("/y".into()),
            "V",
            "datasets",
            cwd,
            ws,
        );
        assert_eq!(r.dir(), Path::new("/x"));
        assert_eq!(r.origin(), RootOrigin::Explicit);

        let r = DataRoot::resolve_from(None, Some("/y".into()), "V", "datasets", cwd, ws);
        assert_eq!(r.dir(), Path::new("/y"));
        assert_eq!(r.origin(), RootOrigin::Env);

        let r = DataRoot::resolve_from(None, Some("".into()), "V", "datasets", cwd, ws);
        assert_eq!(r.origin(), RootOrigin::Default);
        assert_eq!(r.dir(), Path::new("/nowhere/a/../shared/datasets"));
    }

    #[test]
    fn missing_file_lists_every_place_and_a_hint() {
        let r = DataRoot::resolve_from(
            None,
            None,
            "BONE_DATA_ROOT",
            "datasets",
            Path::new("/nowhere/a"),
            Path::new("/nowhere/b"),
        );
        let msg = r.file("glue/SST-2/train.tsv").unwrap_err().to_string();
        assert!(
            msg.contains("/nowhere/a/../shared/datasets/glue/SST-2/train.tsv"),
            "{msg}"
        );
        assert!(
            msg.contains("/nowhere/b/../shared/datasets/glue/SST-2/train.tsv"),
            "{msg}"
        );
        assert!(msg.contains("$BONE_DATA_ROOT"), "{msg}");
        assert!(msg.contains("download_glue_data.py"), "{msg}");
        assert!(
            msg.contains("/nowhere/b/datasets/glue/SST-2/train.tsv"),
            "{msg}"
        );
        assert!(msg.contains("`cargo xtask assets --download`"), "{msg}");
    }

    #[test]
    fn the_download_location_comes_after_shared() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("datasets")).unwrap();
        let cwd = Path::new("/nowhere/a");
        let r = DataRoot::resolve_from(None, None, "V", "datasets", cwd, ws.path());
        assert_eq!(r.dir(), ws.path().join("datasets"));
        assert_eq!(r.origin(), RootOrigin::Default);
        // ../shared (here beside the current directory) comes first.
        let cwd2 = ws.path().join("a");
        std::fs::create_dir_all(ws.path().join("shared/datasets")).unwrap();
        std::fs::create_dir_all(&cwd2).unwrap();
        let r = DataRoot::resolve_from(None, None, "V", "datasets", &cwd2, ws.path());
        assert_eq!(r.dir(), cwd2.join("../shared/datasets"));
        // Models have no download location under the workspace (they go to the HF cache).
        let r = DataRoot::resolve_from(None, None, "V", "models", cwd, ws.path());
        assert_eq!(r.candidates.len(), 2);
    }
}
