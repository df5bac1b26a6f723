//! Where the cache is, which endpoint to ask, with which token, and whether asking is allowed:
//! read from the same environment variables as Python's `huggingface_hub`.

use std::ffi::OsString;
use std::path::PathBuf;

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How the Hub is reached and where its files are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The cache folder holding `models--org--name/` folders.
    pub cache: PathBuf,
    /// The Hub's base URL (`$HF_ENDPOINT`, else `https://huggingface.co`).
    pub endpoint: String,
    /// A bearer token (`$HF_TOKEN`, else the `token` file beside the cache).
    pub token: Option<String>,
    /// Whether downloads are forbidden (`$HF_HUB_OFFLINE` is 1, true, yes or on).
    pub offline: bool,
    /// Whether downloads draw a progress bar (on stderr, when it is a terminal).
    pub progress: bool,
}

impl HubSettings {
    /// The settings of this process's environment.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let cache = cache_dir(var("HF_HUB_CACHE"), var("HF_HOME"), home_dir());
        let token = var("HF_TOKEN")
            .and_then(|t| t.into_string().ok())
            .or_else(|| token_file(var("HF_HOME"), home_dir()));
        Self {
            cache,
            endpoint: var("HF_ENDPOINT")
                .and_then(|e| e.into_string().ok())
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            token,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v)),
            progress: true,
        }
    }

    /// Settings for a cache at `cache`, the public endpoint, no token, downloads allowed, no
    /// progress bar (for tests and tools that set every field themselves).
    pub fn at(cache: impl Into<PathBuf>) -> Self {
        Self {
            cache: cache.into(),
            endpoint: DEFAULT_ENDPOINT.to_string(),
            token: None,
            offline: false,
            progress: false,
        }
    }
}

/// The cache folder: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir(
    hf_hub_cache: Option<OsString>,
    hf_home: Option<OsString>,
    home: Option<PathBuf>,
) -> PathBuf {
    if let Some(dir) = hf_hub_cache {
        return PathBuf::from(dir);
    }
    hf_home_dir(hf_home, home).join("hub")
}

/// `$HF_HOME`, else `~/.cache/huggingface`.
fn hf_home_dir(hf_home: Option<OsString>, home: Option<PathBuf>) -> PathBuf {
    match hf_home {
        Some(dir) => PathBuf::from(dir),
        None => home
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".cache")
            .join("huggingface"),
    }
}

/// The token saved by `huggingface-cli login` (`$HF_HOME/token`).
fn token_file(hf_home: Option<OsString>, home: Option<PathBuf>) -> Option<String> {
    let text = std::fs::read_to_string(hf_home_dir(hf_home, home).join("token")).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `huggingface_hub`'s reading of boolean variables.
fn is_truthy(value: &OsString) -> bool {
    let v = value.to_string_lossy().trim().to_ascii_lowercase();
    matches!(v.as_str(), "1" | "true" | "yes" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_order() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            cache_dir(Some("/c".into()), Some("/h".into()), home.clone()),
            PathBuf::from("/c")
        );
        assert_eq!(
            cache_dir(None, Some("/h".into()), home.clone()),
            PathBuf::from("/h/hub")
        );
        assert_eq!(
            cache_dir(None, None, home),
            PathBuf::from("/home/u/.cache/huggingface/hub")
        );
    }

    #[test]
    fn offline_values() {
        for v in ["1", "TRUE", "yes", "On"] {
            assert!(is_truthy(&v.into()), "{v}");
        }
        for v in ["0", "false", "no", ""] {
            assert!(!is_truthy(&v.into()), "{v}");
        }
    }
}
