//! Downloads into the cache through the `hf-hub` crate (0.4, blocking `ureq` client with
//! rustls, no tokio): `GET {endpoint}/{repo}/resolve/{revision}/{file}`, the blob written as
//! `blobs/<etag>` (resumed from `blobs/<etag>.part` with an HTTP Range), linked from
//! `snapshots/<commit>/<file>`, and `refs/<revision>` set to the commit the Hub answered
//! with (`x-repo-commit`) — the layout Python's `huggingface_hub` writes and reads.

use std::path::PathBuf;

use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Repo, RepoType};

use crate::cache::RepoId;
use crate::error::{HubError, Result};
use crate::settings::HubSettings;

/// Times an interrupted body is resumed before giving up.
const RETRIES: usize = 3;

/// A client of one Hub endpoint writing into one cache.
pub struct HubClient {
    api: Api,
    settings: HubSettings,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &self.settings.endpoint)
            .field("cache", &self.settings.cache)
            .finish()
    }
}

impl HubClient {
    /// A client for `settings` (its endpoint, token, cache and progress bar).
    ///
    /// # Errors
    /// [`HubError::Download`] when the HTTP client cannot be built.
    pub fn new(settings: &HubSettings) -> Result<Self> {
        let api = ApiBuilder::new()
            .with_cache_dir(settings.cache.clone())
            .with_endpoint(settings.endpoint.clone())
            .with_token(settings.token.clone())
            .with_progress(settings.progress)
            .with_retries(RETRIES)
            .build()
            .map_err(|e| HubError::Download {
                url: settings.endpoint.clone(),
                file: settings.cache.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            api,
            settings: settings.clone(),
        })
    }

    /// The URL `file` of `repo` at `revision` is downloaded from.
    pub fn url(&self, repo: &RepoId, revision: &str, file: &str) -> String {
        self.api.repo(self.repo(repo, revision)).url(file)
    }

    /// Downloads `file` of `repo` at `revision` into the cache and returns its snapshot path;
    /// `Ok(None)` when the Hub answers 404 (the repository has no such file).
    ///
    /// # Errors
    /// [`HubError::Download`] naming the URL and the cache folder.
    pub fn download(&self, repo: &RepoId, revision: &str, file: &str) -> Result<Option<PathBuf>> {
        let api_repo = self.api.repo(self.repo(repo, revision));
        match api_repo.download(file) {
            Ok(path) => Ok(Some(path)),
            Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(HubError::Download {
                url: api_repo.url(file),
                file: self.settings.cache.join(repo.folder_name()),
                message: e.to_string(),
            }),
        }
    }

    fn repo(&self, repo: &RepoId, revision: &str) -> Repo {
        Repo::with_revision(repo.to_string(), RepoType::Model, revision.to_string())
    }
}
