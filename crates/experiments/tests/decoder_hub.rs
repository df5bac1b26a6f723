//! Hub ids in the decoder jobs: `gsm8k-eval`, `metamath` and `sft` take `--model org/name`
//! (with `--revision`) and `gsm8k-eval` `--adapter org/name`, read in place from a cache the
//! test lays out as `huggingface_hub` does (blobs, snapshot symlinks, refs), offline.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::common;
use common::shared;

const COMMIT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const COMMIT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// Lays out `models--org--<name>` with the files of `src`: one blob per file named by its
/// sha256, `snapshots/<commit>/<file>` relative symlinks, `refs/main` → A, `refs/v1.0` → B.
fn hub_repo(cache: &Path, name: &str, src: &Path, files: &[&str]) {
    let repo = cache.join(format!("models--org--{name}"));
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    for file in files {
        let body = std::fs::read(src.join(file)).unwrap();
        let sha: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
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
}

/// A cache holding `org/tiny-stories` (stories260K) and `org/bone-adapter` (the golden PEFT
/// Bone adapter of stories260K).
fn cache(name: &str) -> PathBuf {
    let dir = common::tmp("decoder-hub", name);
    let stories = shared().join("models/stories260K");
    hub_repo(
        &dir,
        "tiny-stories",
        &stories,
        &[
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
        ],
    );
    hub_repo(
        &dir,
        "bone-adapter",
        &shared().join("golden/peft_bone_stories260k"),
        &["adapter_config.json", "adapter_model.safetensors"],
    );
    dir
}

fn run(exe: &str, cache: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .env_remove("BONE_DATA_ROOT")
        .env_remove("BONE_DEVICE")
        .env_remove("HF_HOME")
        .env("HF_HUB_CACHE", cache)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap_or_else(|e| panic!("{exe} does not start: {e}"))
}

fn ok(exe: &str, cache: &Path, args: &[&str]) -> String {
    let out = run(exe, cache, args);
    assert!(
        out.status.success(),
        "{exe} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(exe: &str, cache: &Path, args: &[&str]) -> String {
    let out = run(exe, cache, args);
    assert_eq!(out.status.code(), Some(1), "{exe} {args:?}");
    String::from_utf8(out.stderr).unwrap()
}

fn generations(jsonl: &Path) -> Vec<String> {
    std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l).unwrap();
            row["generation"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn gsm8k_eval_reads_model_and_adapter_ids_from_the_cache() {
    let exe = env!("CARGO_BIN_EXE_gsm8k-eval");
    let cache = cache("gsm8k");
    let root = common::shared_arg("datasets");
    let eval = |model: &str, adapter: &str, revision: Option<&str>, out: &Path| {
        let mut args = vec![
            "--model",
            model,
            "--adapter",
            adapter,
            "--data-root",
            &root,
            "--limit",
            "2",
            "--max-new-tokens",
            "6",
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(r) = revision {
            args.extend(["--revision", r]);
        }
        ok(exe, &cache, &args)
    };
    let local = cache.join("local.jsonl");
    let by_path = eval(
        &common::shared_arg("models/stories260K"),
        &common::shared_arg("golden/peft_bone_stories260k"),
        None,
        &local,
    );
    assert!(by_path.contains("GSM8K test: 2 problems"), "{by_path}");
    let hub = cache.join("hub.jsonl");
    let by_id = eval("org/tiny-stories", "org/bone-adapter", Some("v1.0"), &hub);
    let snapshot = cache
        .join("models--org--tiny-stories/snapshots")
        .join(COMMIT_B);
    assert!(
        by_id.contains(&format!("· {} + ", snapshot.display())),
        "{by_id}"
    );
    assert_eq!(generations(&hub), generations(&local));

    let err = fails(
        exe,
        &cache,
        &[
            "--model",
            "org/tiny-stories",
            "--revision",
            "v9",
            "--limit",
            "1",
        ],
    );
    assert!(
        err.starts_with("error: --model org/tiny-stories: "),
        "{err}"
    );
    assert!(err.contains("v9"), "{err}");
    let err = fails(
        exe,
        &cache,
        &["--model", "org/absent-model", "--limit", "1"],
    );
    assert!(
        err.starts_with("error: --model org/absent-model: "),
        "{err}"
    );
    assert!(err.contains("HF_HUB_OFFLINE"), "{err}");
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn metamath_and_sft_train_a_hub_id_and_keep_it_in_the_run_config() {
    let cache = cache("train");
    let root = common::shared_arg("datasets");
    let data = cache.join("rows.jsonl");
    let rows: String = (0..8)
        .map(|i| {
            format!(
                "{{\"instruction\": \"Add {i} and 1.\", \"output\": \"{}\"}}\n",
                i + 1
            )
        })
        .collect();
    std::fs::write(&data, rows).unwrap();
    for (exe, extra) in [
        (env!("CARGO_BIN_EXE_metamath"), vec!["--data-root", &root]),
        (
            env!("CARGO_BIN_EXE_sft"),
            vec!["--data", data.to_str().unwrap(), "--eval-fraction", "0.25"],
        ),
    ] {
        let out = cache.join(format!("run-{}", extra[0].trim_start_matches('-')));
        let mut args = vec![
            "--model",
            "org/tiny-stories",
            "--revision",
            "v1.0",
            "--max-train-samples",
            "4",
            "--max-eval-samples",
            "2",
            "--max-seq-len",
            "256",
            "--batch-size",
            "2",
            "--grad-accumulation",
            "2",
            "--r",
            "4",
            "--display",
            "plain",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let stdout = ok(exe, &cache, &args);
        assert!(stdout.contains("finished"), "{stdout}");
        let saved = std::fs::read_to_string(out.join("config.toml")).unwrap();
        assert!(
            saved.contains("model = \"org/tiny-stories\"") && saved.contains("revision = \"v1.0\""),
            "{saved}"
        );
        let err = fails(
            exe,
            &cache,
            &[
                "--model",
                "org/absent-model",
                "--out",
                out.with_extension("x").to_str().unwrap(),
            ],
        );
        assert!(
            err.starts_with("error: --model org/absent-model: "),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
}
