//! Data-parallel training across processes on this machine (loopback only, NdArray): two
//! ranks of `glue-sst2` on a CI-sized slice give the losses and the adapter of one process
//! with the same global batch (11 rows: an uneven 6 + 5 split); a rank killed with SIGKILL
//! stops the other within `--peer-timeout`, naming it, and `--resume` on both ranks ends
//! where the uninterrupted run ends; ranks that disagree, a coordinator nobody runs and a
//! taken port are errors within a bounded wait.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use common::{adapter_values, json, shared};

const EXE: &str = env!("CARGO_BIN_EXE_glue-sst2");

fn tmp(name: &str) -> PathBuf {
    common::tmp("distributed", name)
}

/// A port base for this test process and `test` (each run of the suite its own ports).
fn port(test: u16) -> u16 {
    20000 + (std::process::id() % 2000) as u16 * 8 + test
}

/// MiniLM with dropout off (so that masks, which depend on how rows are split, do not enter
/// the comparison): the shared weights linked, `config.json` rewritten.
fn minilm_without_dropout(dir: &Path) -> String {
    let src = shared().join("models/all-MiniLM-L6-v2");
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "config.json" {
            std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let mut config = json(&src.join("config.json"));
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir.display().to_string()
}

/// 33 (or `samples`) SST-2 sentences, batches of 11, one epoch, a checkpoint every step.
fn slice(model: &str, out: &Path, samples: &str) -> Vec<String> {
    [
        "--model",
        model,
        "--data-root",
        &common::shared_arg("datasets"),
        "--max-train-samples",
        samples,
        "--max-eval-samples",
        "16",
        "--max-seq-len",
        "32",
        "--batch-size",
        "11",
        "--epochs",
        "1",
        "--checkpoint-every",
        "1",
        "--log-every",
        "1",
        "--threads",
        "1",
        "--display",
        "plain",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn rank(rank: usize, world: usize, port: u16, args: &[String], extra: &[&str]) -> Child {
    Command::new(EXE)
        .args(args)
        .args(extra)
        .env("WORLD_SIZE", world.to_string())
        .env("RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env_remove("BONE_DATA_ROOT")
        .env_remove("BONE_DEVICE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("glue-sst2 starts")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs every rank of a run to its end; panics unless each succeeds.
fn run_ranks(world: usize, port: u16, args: &[String], extra: &[&str]) -> Vec<Output> {
    let children: Vec<Child> = (0..world)
        .map(|r| rank(r, world, port, args, extra))
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (r, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "rank {r}: {}", text(out));
    }
    outputs
}

fn step_losses(run: &Path) -> Vec<f64> {
    json(&run.join("metrics.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["loss"].as_f64().unwrap())
        .collect()
}

fn max_rel_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for ((ka, va), (kb, vb)) in a.iter().zip(b) {
        assert_eq!(ka, kb);
        let scale = va.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
        for (x, y) in va.iter().zip(vb) {
            worst = worst.max((x - y).abs() / scale);
        }
    }
    worst
}

fn assert_same_run(one: &Path, two: &Path) {
    let (l1, l2) = (step_losses(one), step_losses(two));
    assert_eq!(l1.len(), l2.len());
    for (a, b) in l1.iter().zip(&l2) {
        assert!((a - b).abs() <= 1e-4 * a.abs(), "losses {l1:?} vs {l2:?}");
    }
    let d = max_rel_diff(
        &adapter_values(&one.join("best")),
        &adapter_values(&two.join("best")),
    );
    eprintln!("adapter max relative difference {d:e}");
    // AdamW normalises each element by its own gradient scale, so an element whose gradient is
    // near zero moves by up to ±lr whichever way summation order tips it (seen: 9e-3 of the
    // largest value after 3 steps); the losses above match to 1e-4.
    assert!(d < 2e-2, "the adapters differ by {d:e}");
}

#[test]
fn two_ranks_train_what_one_process_trains_and_a_killed_rank_is_named_and_resumed() {
    let root = tmp("two-ranks");
    let model = minilm_without_dropout(&root.join("model"));
    // One process, the same global batch of 11.
    let one = root.join("one");
    let out = common::run(
        EXE,
        &slice(&model, &one, "66")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", text(&out));

    // Two ranks: 6 + 5 rows of each batch.
    let two = root.join("two");
    let outputs = run_ranks(2, port(0), &slice(&model, &two, "66"), &[]);
    for (r, out) in outputs.iter().enumerate() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!(
                "data parallel: rank {r} of 2 · 1 device(s) · 12 all-reduces"
            )),
            "rank {r}: {stdout}"
        );
    }
    assert_same_run(&one, &two);
    // Rank 0 alone wrote the run folder; rank 1's scratch copy is elsewhere.
    assert!(two.join("best").is_dir() && two.join("metrics.json").is_file());

    // Kill rank 1 once the first checkpoint is written: rank 0 stops with the lost rank's
    // name within the peer timeout, its checkpoints complete.
    let killed = root.join("killed");
    let args = slice(&model, &killed, "66");
    let timeout = ["--peer-timeout", "10"];
    let r0 = rank(0, 2, port(1), &args, &timeout);
    let mut r1 = rank(1, 2, port(1), &args, &timeout);
    let started = Instant::now();
    // A complete checkpoint: a `step-*` folder with its manifest (temp folders start with '.').
    let complete = |dir: &Path| {
        dir.join("checkpoints").read_dir().is_ok_and(|d| {
            d.filter_map(Result::ok).any(|e| {
                e.file_name().to_string_lossy().starts_with("step-")
                    && e.path().join(experiments::train::MANIFEST_FILE).is_file()
            })
        })
    };
    while !complete(&killed) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    r1.kill().unwrap();
    let _ = r1.wait();
    let killed_at = Instant::now();
    let out = r0.wait_with_output().unwrap();
    let waited = killed_at.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        stderr.contains(
            "error: rank 1 of WORLD_SIZE 2 was lost (its connection closed); rank 0 stops"
        ),
        "{stderr}"
    );
    assert!(
        waited < Duration::from_secs(12),
        "rank 0 took {waited:?} to stop"
    );
    assert!(
        !killed.join("best").exists() || json(&killed.join("metrics.json"))["finished"] != true
    );

    // Both ranks resume from rank 0's checkpoint and end where the uninterrupted run ended.
    let resume = [
        "--resume".to_string(),
        killed.display().to_string(),
        "--display".into(),
        "plain".into(),
    ];
    run_ranks(2, port(2), &resume, &[]);
    assert_same_run(&one, &killed);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn ranks_that_disagree_or_cannot_meet_fail_within_the_timeout() {
    let root = tmp("disagree");
    let model = minilm_without_dropout(&root.join("model"));
    let args = slice(&model, &root.join("run"), "33");
    let r0 = rank(0, 2, port(3), &args, &["--peer-timeout", "20"]);
    let r1 = rank(1, 2, port(3), &args, &["--peer-timeout", "20", "--r", "32"]);
    for (r, child) in [r0, r1].into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "rank {r}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(
                "rank 1's configuration differs from rank 0's: `r` is 32 on rank 1, 64 on rank 0"
            ),
            "rank {r}: {stderr}"
        );
    }

    // Nobody at MASTER_ADDR:MASTER_PORT.
    let p = port(4);
    let started = Instant::now();
    let out = rank(1, 2, p, &args, &["--peer-timeout", "2"])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "rank 1: nobody answered at MASTER_ADDR:MASTER_PORT 127.0.0.1:{p} within 2 s (--peer-timeout): is rank 0 running?"
        )),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // MASTER_PORT taken by someone else.
    let p = port(5);
    let _taken = std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    let out = rank(0, 2, p, &args, &["--peer-timeout", "2"])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "rank 0: cannot listen on MASTER_ADDR:MASTER_PORT 127.0.0.1:{p} (is the port already taken by another run?)"
        )),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&root);
}
