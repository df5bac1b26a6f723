//! Typed errors of Hub resolution and asset downloads; each names the repository, file, URL
//! or folder involved and what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong when resolving a Hub id or downloading an asset.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The repository is not in the cache (or lacks files) and downloads are forbidden.
    #[error(
        "`{repo}` (revision {revision}) is not in the Hugging Face cache and HF_HUB_OFFLINE=1 \
         forbids downloading it: looked for {missing} in {}. Download it with \
         `huggingface-cli download {repo} --revision {revision}` (or unset HF_HUB_OFFLINE and run \
         again), set HF_HUB_CACHE to the cache that holds it, or pass a local folder",
        looked.display()
    )]
    Offline {
        /// The repository id, `org/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The folder looked in (the snapshot, or the repository's cache folder).
        looked: PathBuf,
        /// The files that were not there, comma-separated.
        missing: String,
    },

    /// A revision that is neither a ref nor a cached commit (downloads forbidden).
    #[error(
        "`{repo}`: revision `{revision}` is neither a ref in {} (known: {}) nor a commit in {}; \
         HF_HUB_OFFLINE=1 forbids asking the Hub for it",
        repo_dir.join("refs").display(),
        if known.is_empty() { "none".to_string() } else { known.join(", ") },
        repo_dir.join("snapshots").display()
    )]
    UnknownRevision {
        /// The repository id.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The repository's cache folder (`models--org--name`).
        repo_dir: PathBuf,
        /// The refs that exist.
        known: Vec<String>,
    },

    /// A download failed (connection, HTTP status, interrupted body after every retry).
    #[error("downloading {url} to {}: {message}", file.display())]
    Download {
        /// The URL asked for.
        url: String,
        /// Where it was being written.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A downloaded file whose sha256 is not the pinned one, after every retry.
    #[error(
        "{}: sha256 {found} but {expected} was expected (downloaded from {url}, {attempts} \
         attempts); the source or a mirror serves other bytes",
        file.display()
    )]
    Checksum {
        /// The URL it came from.
        url: String,
        /// The file.
        file: PathBuf,
        /// The pinned sha256.
        expected: String,
        /// The sha256 of what arrived.
        found: String,
        /// How many times it was downloaded.
        attempts: usize,
    },

    /// A member missing from a downloaded zip archive, or an unreadable archive.
    #[error("{}: member `{member}`: {message}", archive.display())]
    Archive {
        /// The archive file.
        archive: PathBuf,
        /// The member asked for.
        member: String,
        /// What went wrong.
        message: String,
    },

    /// A source file that is not what it should be (GLUE's MRPC sources).
    #[error("{}:{line}: {message}", file.display())]
    Format {
        /// The file.
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },

    /// Files derived from downloaded sources whose sha256 is not the pinned one.
    #[error("{message}")]
    Derived {
        /// What was derived from what, what came out and what to do.
        message: String,
    },

    /// A default model found nowhere.
    #[error(
        "no {what} found; tried:\n{}\nDownload it with `cargo xtask assets --download` (it lands in \
         the Hugging Face cache), or pass --model DIR, or set $BONE_MODELS_ROOT",
        tried.iter().map(|(p, why)| format!("  {} ({why})", p.display())).collect::<Vec<_>>().join("\n")
    )]
    NotFound {
        /// What was looked for.
        what: String,
        /// Every place tried, with where it came from.
        tried: Vec<(PathBuf, String)>,
    },

    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, HubError>;

/// Wraps an I/O error with its path.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HubError {
    let path = path.into();
    move |source| HubError::Io { path, source }
}
