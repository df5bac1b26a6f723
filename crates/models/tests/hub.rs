//! Hub ids for `--model` / `--adapter`: a cache laid out as the Hub's clients write it
//! (blobs, snapshot links, refs) resolves `org/name` at a ref or a commit and loads in place;
//! offline misses are exact errors; missing files come from a loopback server standing in for
//! `$HF_ENDPOINT`, answering the `resolve` endpoint as the Hub does.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::module::Module;
use models::hub::{resolve_with, HubSettings, ADAPTER_FILES, MODEL_FILES};
use models::{AutoModel, LoadOptions, Tokenizer};

#[path = "../../hub/tests/support/server.rs"]
mod server;
use server::{sha256_hex, Fault, Server};

const COMMIT_A: &str = "0123456789abcdef0123456789abcdef01234567";
const COMMIT_B: &str = "89abcdef0123456789abcdef0123456789abcdef";
const STORIES_FILES: [&str; 4] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
];

fn shared() -> PathBuf {
    let dir = std::env::var_os("BONE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("models").is_dir(),
        "the shared data is missing: looked for {} (set BONE_SHARED_DIR)",
        dir.join("models").display()
    );
    dir
}

fn stories(file: &str) -> Vec<u8> {
    std::fs::read(shared().join("models/stories260K").join(file)).unwrap()
}

fn offline(cache: &Path) -> HubSettings {
    HubSettings {
        offline: true,
        ..HubSettings::at(cache)
    }
}

/// Lays out `models--org--tiny-stories` as `huggingface_hub` does: one blob per file named by
/// its sha256, `snapshots/<commit>/<file>` relative symlinks to it, `refs/main` → A and
/// `refs/v1.0` → B.
fn hub_cache(cache: &Path, files: &[&str]) -> PathBuf {
    let repo = cache.join("models--org--tiny-stories");
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    for file in files {
        let body = stories(file);
        let sha = sha256_hex(&body);
        std::fs::write(repo.join("blobs").join(&sha), body).unwrap();
        for commit in [COMMIT_A, COMMIT_B] {
            let snapshot = repo.join("snapshots").join(commit);
            std::fs::create_dir_all(&snapshot).unwrap();
            std::os::unix::fs::symlink(Path::new("../../blobs").join(&sha), snapshot.join(file))
                .unwrap();
        }
    }
    std::fs::write(repo.join("refs/main"), COMMIT_A).unwrap();
    std::fs::write(repo.join("refs/v1.0"), format!("{COMMIT_B}\n")).unwrap();
    repo
}

fn load_in_place(dir: &Path) {
    let device = Default::default();
    let model = AutoModel::<NdArray>::from_pretrained(dir, &LoadOptions::default(), &device)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert_eq!(model.num_params(), 260_032);
    let tok = Tokenizer::from_pretrained(dir).unwrap();
    assert_eq!(
        tok.decode(&tok.encode("Once upon a time", false).unwrap(), true)
            .unwrap(),
        "Once upon a time"
    );
}

#[test]
fn cached_ids_resolve_at_refs_and_commits_in_place() {
    let cache = tempfile::tempdir().unwrap();
    let repo = hub_cache(cache.path(), &STORIES_FILES);
    let settings = offline(cache.path());
    let id = Path::new("org/tiny-stories");
    let resolve = |rev: Option<&str>| resolve_with(&settings, id, rev, &MODEL_FILES);

    let main = resolve(None).unwrap();
    assert_eq!(main, repo.join("snapshots").join(COMMIT_A));
    assert_eq!(resolve(Some("main")).unwrap(), main);
    assert_eq!(
        resolve(Some("v1.0")).unwrap(),
        repo.join("snapshots").join(COMMIT_B)
    );
    assert_eq!(
        resolve(Some(COMMIT_B)).unwrap(),
        repo.join("snapshots").join(COMMIT_B)
    );
    // Used in place: the weights are the blob, not a copy.
    let weights = std::fs::canonicalize(main.join("model.safetensors")).unwrap();
    assert_eq!(
        weights.parent().unwrap(),
        repo.join("blobs").canonicalize().unwrap()
    );
    load_in_place(&main);

    let err = resolve(Some("v9")).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "`org/tiny-stories`: revision `v9` is neither a ref in {} (known: main, v1.0) nor a \
             commit in {}; HF_HUB_OFFLINE=1 forbids asking the Hub for it",
            repo.join("refs").display(),
            repo.join("snapshots").display()
        )
    );
    let unknown_commit = "fedcba9876543210fedcba9876543210fedcba98";
    let err = resolve(Some(unknown_commit)).unwrap_err().to_string();
    assert!(
        err.contains(&format!("revision `{unknown_commit}` is neither")),
        "{err}"
    );
}

#[test]
fn an_id_absent_offline_is_an_exact_error() {
    let cache = tempfile::tempdir().unwrap();
    let err = resolve_with(
        &offline(cache.path()),
        Path::new("org/absent-model"),
        None,
        &MODEL_FILES,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`org/absent-model` (revision main) is not in the Hugging Face cache and \
             HF_HUB_OFFLINE=1 forbids downloading it: looked for config.json, model.safetensors \
             in {}. Download it with `huggingface-cli download org/absent-model --revision main` \
             (or unset HF_HUB_OFFLINE and run again), set HF_HUB_CACHE to the cache that holds \
             it, or pass a local folder",
            cache.path().join("models--org--absent-model").display()
        )
    );

    // A snapshot without its weights names the snapshot and the missing file.
    let repo = hub_cache(cache.path(), &["config.json"]);
    let err = resolve_with(
        &offline(cache.path()),
        Path::new("org/tiny-stories"),
        None,
        &MODEL_FILES,
    )
    .unwrap_err()
    .to_string();
    let snapshot = repo.join("snapshots").join(COMMIT_A);
    assert!(
        err.contains(&format!(
            "looked for model.safetensors in {}.",
            snapshot.display()
        )),
        "{err}"
    );
}

#[test]
fn paths_and_strings_that_are_no_ids_pass_through() {
    let settings = offline(Path::new("/nonexistent-cache"));
    let dir = shared().join("models/stories260K");
    for arg in [
        dir.as_path(),
        Path::new("/no/such/model"),
        Path::new("../no/such"),
        Path::new("plain-name"),
        Path::new("a/b/c"),
    ] {
        assert_eq!(
            resolve_with(&settings, arg, None, &MODEL_FILES).unwrap(),
            arg
        );
    }
}

#[test]
fn missing_files_are_downloaded_from_the_endpoint_into_the_cache_layout() {
    let server = Server::start();
    let repo_id = "org/tiny-stories";
    for file in STORIES_FILES {
        server.serve_hub(repo_id, "main", COMMIT_A, file, stories(file));
    }
    let weights_path = format!("/{repo_id}/resolve/main/model.safetensors");
    server.fault(&weights_path, Fault::CloseAfter(300_000));
    let cache = tempfile::tempdir().unwrap();
    let settings = HubSettings {
        endpoint: server.url(),
        token: Some("hf_secret".into()),
        ..HubSettings::at(cache.path())
    };
    let dir = resolve_with(&settings, Path::new(repo_id), None, &MODEL_FILES).unwrap();

    let repo = cache.path().join("models--org--tiny-stories");
    assert_eq!(dir, repo.join("snapshots").join(COMMIT_A));
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT_A
    );
    for file in STORIES_FILES {
        let link = dir.join(file);
        assert!(link.symlink_metadata().unwrap().is_symlink(), "{file}");
        let blob = repo.join("blobs").join(sha256_hex(&stories(file)));
        assert_eq!(
            std::fs::canonicalize(&link).unwrap(),
            blob.canonicalize().unwrap()
        );
    }
    // The cut body was resumed where it stopped.
    let ranges: Vec<_> = server
        .requests(&weights_path)
        .into_iter()
        .map(|l| l.range.unwrap_or_default())
        .collect();
    assert_eq!(ranges, ["bytes=0-0", "bytes=0-", "bytes=300000-"]);
    // The optional files the Hub lacks were asked for once and answered 404.
    let generation = server.requests(&format!("/{repo_id}/resolve/main/generation_config.json"));
    assert_eq!(
        generation.iter().map(|l| l.status).collect::<Vec<_>>(),
        [404]
    );
    assert!(server
        .log()
        .iter()
        .all(|l| l.authorization.as_deref() == Some("Bearer hf_secret")));
    load_in_place(&dir);

    // Now complete: found offline, without a request.
    let before = server.log().len();
    let again = resolve_with(
        &offline(cache.path()),
        Path::new(repo_id),
        None,
        &MODEL_FILES,
    );
    assert_eq!(again.unwrap(), dir);
    assert_eq!(server.log().len(), before);

    // An adapter id, and a required file the repository lacks.
    let adapter = shared().join("golden/peft_bone_stories260k");
    for file in ["adapter_config.json", "adapter_model.safetensors"] {
        let body = std::fs::read(adapter.join(file)).unwrap();
        server.serve_hub("org/bone-adapter", "main", COMMIT_B, file, body);
    }
    let dir = resolve_with(
        &settings,
        Path::new("org/bone-adapter"),
        None,
        &ADAPTER_FILES,
    )
    .unwrap();
    assert_eq!(
        std::fs::read(dir.join("adapter_model.safetensors")).unwrap(),
        std::fs::read(adapter.join("adapter_model.safetensors")).unwrap()
    );
    let err = resolve_with(&settings, Path::new("org/empty"), None, &MODEL_FILES)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "downloading {}/org/empty/resolve/main/config.json to {}: 404 Not Found: the \
             repository has no such file",
            server.url(),
            cache.path().join("models--org--empty").display()
        )
    );
}
