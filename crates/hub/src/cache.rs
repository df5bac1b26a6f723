//! The Hugging Face cache layout, read offline: `models--org--name/refs/<revision>` holds a
//! commit, `snapshots/<commit>/<file>` links to `blobs/<etag>`. Files are used in place.

use std::path::{Path, PathBuf};

use crate::error::HubError;

/// A model repository id, `org/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId(String);

impl RepoId {
    /// `id` if it has the `org/name` shape (see [`is_hub_id_shape`]).
    pub fn parse(id: &str) -> Option<Self> {
        is_hub_id_shape(id).then(|| Self(id.to_string()))
    }

    /// `org/name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cache folder name, `models--org--name`.
    pub fn folder_name(&self) -> String {
        format!("models--{}", self.0.replace('/', "--"))
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` has the shape of a Hub model id: exactly one `/` between two non-empty parts
/// of ASCII letters, digits, `-`, `_` and `.`, neither starting or ending with `-` or `.`,
/// without `--` or `..`, at most 96 characters each (the Hub's own rules). `../shared/x`,
/// `./x`, `/abs/x` and `a/b/c` are therefore never ids.
pub fn is_hub_id_shape(s: &str) -> bool {
    let Some((org, name)) = s.split_once('/') else {
        return false;
    };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !p.starts_with(['-', '.'])
            && !p.ends_with(['-', '.'])
            && !p.contains("--")
            && !p.contains("..")
    };
    part_ok(org) && part_ok(name)
}

/// Whether `revision` is a full commit hash (40 lowercase hex digits), used without a ref.
pub fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One repository's folder in the cache.
#[derive(Debug, Clone)]
pub struct CachedRepo {
    repo: RepoId,
    dir: PathBuf,
}

impl CachedRepo {
    /// The folder of `repo` under `cache` (it may not exist).
    pub fn new(cache: &Path, repo: RepoId) -> Self {
        let dir = cache.join(repo.folder_name());
        Self { repo, dir }
    }

    /// `…/models--org--name`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The repository id.
    pub fn repo(&self) -> &RepoId {
        &self.repo
    }

    /// The commit a revision names: itself if it is a commit hash, else the content of
    /// `refs/<revision>`; `None` when the ref does not exist.
    pub fn commit(&self, revision: &str) -> Option<String> {
        if is_commit(revision) {
            return Some(revision.to_ascii_lowercase());
        }
        let text = std::fs::read_to_string(self.dir.join("refs").join(revision)).ok()?;
        Some(text.trim().to_string()).filter(|c| !c.is_empty())
    }

    /// `snapshots/<commit>` of `revision`, if that folder exists.
    pub fn snapshot(&self, revision: &str) -> Option<PathBuf> {
        let dir = self.dir.join("snapshots").join(self.commit(revision)?);
        dir.is_dir().then_some(dir)
    }

    /// The refs that exist (`main`, tags, …), sorted.
    pub fn refs(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_refs(&self.dir.join("refs"), "", &mut out);
        out.sort();
        out
    }

    /// The error for `revision` when downloads are forbidden and `missing` is not there.
    pub(crate) fn offline_error(&self, revision: &str, missing: &[String]) -> HubError {
        if self.dir.is_dir() && self.snapshot(revision).is_none() {
            return HubError::UnknownRevision {
                repo: self.repo.to_string(),
                revision: revision.to_string(),
                repo_dir: self.dir.clone(),
                known: self.refs(),
            };
        }
        HubError::Offline {
            repo: self.repo.to_string(),
            revision: revision.to_string(),
            looked: self.snapshot(revision).unwrap_or_else(|| self.dir.clone()),
            missing: missing.join(", "),
        }
    }

    /// Checks that `path` exists (a snapshot link to an existing blob).
    pub(crate) fn has(snapshot: &Path, file: &str) -> bool {
        snapshot.join(file).is_file()
    }

    /// The snapshot folder `path` (a file of it, `rel` deep) lies in.
    pub(crate) fn snapshot_of(path: &Path, rel: &str) -> PathBuf {
        let mut dir = path.to_path_buf();
        for _ in rel.split('/') {
            dir.pop();
        }
        dir
    }
}

/// Refs may hold `/` (`refs/pr/1`): walk the folder.
fn collect_refs(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if path.is_dir() {
            collect_refs(&path, &format!("{prefix}{name}/"), out);
        } else {
            out.push(format!("{prefix}{name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_shapes() {
        for id in [
            "sentence-transformers/all-MiniLM-L6-v2",
            "org/name",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "a.b/c_d",
        ] {
            assert!(is_hub_id_shape(id), "{id}");
        }
        for s in [
            "name",
            "../shared/models/x",
            "./x",
            "/abs/x",
            "a/b/c",
            "a//b",
            "a/",
            "/b",
            "org/-x",
            "org/x.",
            "a--b/c",
            "a/b..c",
            "a b/c",
            "C:\\x/y",
        ] {
            assert!(!is_hub_id_shape(s), "{s}");
        }
    }

    #[test]
    fn commits() {
        assert!(is_commit("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit("main"));
        assert!(!is_commit("0123456789abcdef0123456789abcdef0123456"));
    }
}
