//! The GLUE binaries end to end on CI-sized slices of the real data and MiniLM: the run
//! folder, the metrics, resuming, other tasks' metrics, configuration files and bad input.

use std::path::PathBuf;

use bone_io::tensors::read_safetensors;

use crate::common;
use common::{adapter_values, json, shared};

fn minilm() -> String {
    common::shared_arg("models/all-MiniLM-L6-v2")
}

fn data_root() -> String {
    common::shared_arg("datasets")
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("glue-cli", name)
}

fn exe(bin: &str) -> &'static str {
    match bin {
        "glue" => env!("CARGO_BIN_EXE_glue"),
        _ => env!("CARGO_BIN_EXE_glue-sst2"),
    }
}

fn ok(bin: &str, args: &[&str]) -> String {
    common::ok(exe(bin), args)
}

fn fails(bin: &str, args: &[&str], code: i32) -> String {
    common::fails(exe(bin), args, code)
}

/// The CI slice: 128 train / 64 dev sentences, length 32, 2 epochs of 4 steps.
/// The values of a burn-train metric log (`value` or `value,count` per line).
fn metric_log(path: &std::path::Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

fn slice<'a>(out: &'a str, model: &'a str, root: &'a str) -> Vec<&'a str> {
    vec![
        "--model",
        model,
        "--data-root",
        root,
        "--max-train-samples",
        "128",
        "--max-eval-samples",
        "64",
        "--max-seq-len",
        "32",
        "--epochs",
        "2",
        "--checkpoint-every",
        "3",
        "--log-every",
        "2",
        "--display",
        "plain",
        "--out",
        out,
    ]
}

#[test]
fn the_ci_slice_trains_writes_the_run_folder_and_resumes_exactly() {
    let (model, root) = (minilm(), data_root());
    let full = tmp("full");
    let stdout = ok("glue-sst2", &slice(full.to_str().unwrap(), &model, &root));
    assert!(
        stdout.contains("sst2 · bone r=64 · 128 train / 64 dev examples · 8 steps of batch 32"),
        "{stdout}"
    );
    assert!(stdout.contains("finished: best dev accuracy"), "{stdout}");

    for file in [
        "config.toml",
        "metrics.json",
        "metrics.csv",
        "curves.png",
        "summary.json",
        "experiment.log",
        "checkpoints/latest",
        "best/adapter_config.json",
        "best/adapter_model.safetensors",
    ] {
        assert!(full.join(file).is_file(), "missing {file}");
    }
    let metrics = json(&full.join("metrics.json"));
    let epochs = metrics["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    for e in epochs {
        let acc = e["dev"]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(e["train_loss"].as_f64().unwrap().is_finite());
    }
    assert_eq!(metrics["global_step"], 8);
    assert_eq!(
        metrics["steps"].as_array().unwrap().len(),
        4,
        "a record every 2 steps"
    );

    // The adapter PEFT can load: 36 Bone blocks on the task model's paths plus the head.
    let config = json(&full.join("best/adapter_config.json"));
    assert_eq!(config["peft_type"], "MISS");
    assert_eq!(config["r"], 64);
    assert_eq!(config["task_type"], "SEQ_CLS");
    assert_eq!(config["modules_to_save"], serde_json::json!(["classifier"]));
    let tensors = read_safetensors(&full.join("best/adapter_model.safetensors")).unwrap();
    assert_eq!(
        tensors
            .keys()
            .filter(|k| k.ends_with(".miss_block"))
            .count(),
        36
    );
    assert_eq!(
        tensors["base_model.model.bert.encoder.layer.0.attention.self.query.miss_block"]
            .shape
            .to_vec(),
        [64, 384]
    );
    assert_eq!(
        tensors["base_model.model.bert.encoder.layer.5.intermediate.dense.miss_block"]
            .shape
            .to_vec(),
        [64, 1536]
    );
    assert_eq!(
        tensors["base_model.model.classifier.weight"].shape.to_vec(),
        [2, 384]
    );
    // Checkpoints hold the trainable tensors and the optimiser, never the frozen base.
    let latest = std::fs::read_to_string(full.join("checkpoints/latest")).unwrap();
    let ckpt = full.join("checkpoints").join(latest.trim());
    let ckpt_tensors = read_safetensors(&ckpt.join("trainable/adapter_model.safetensors")).unwrap();
    assert_eq!(ckpt_tensors.len(), 36 + 2);
    assert!(ckpt.join("optimizer.mpk").is_file());
    let summary = json(&full.join("summary.json"));
    // 36 blocks of r·out (4·64·384 + 64·1536 + 64·384 per layer) plus the 2×384 head and bias.
    assert_eq!(summary["trainable_params"], 1_327_874);

    // Interrupted after 5 steps (mid epoch 2), then resumed: the same adapter and losses.
    let part = tmp("part");
    let mut args = slice(part.to_str().unwrap(), &model, &root);
    args.extend(["--stop-after-steps", "5"]);
    // An interrupted run exits 3, so a script can tell it from a finished one.
    let out = common::run(exe("glue-sst2"), &args);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("interrupted after 5 steps; continue with: --resume"),
        "{stdout}"
    );
    assert_eq!(
        json(&part.join("metrics.json"))["epochs"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "epoch 1 finished before the stop"
    );
    let resumed = ok(
        "glue-sst2",
        &["--resume", part.to_str().unwrap(), "--display", "plain"],
    );
    assert!(resumed.contains("finished: best dev accuracy"), "{resumed}");
    // Multi-threaded CPU kernels sum in a varying order, so two runs agree to rounding, not
    // bit for bit (within one process the toy trainer test checks bitwise equality).
    let (resumed, uninterrupted) = (
        adapter_values(&part.join("best")),
        adapter_values(&full.join("best")),
    );
    assert_eq!(resumed.len(), uninterrupted.len());
    for ((key, a), (_, b)) in resumed.iter().zip(&uninterrupted) {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            diff <= 1e-4 * scale,
            "{key}: resumed run differs from the uninterrupted one by {diff:e}"
        );
    }
    let steps = |m: &serde_json::Value| -> Vec<f64> {
        m["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["loss"].as_f64().unwrap())
            .collect()
    };
    let (a, b) = (steps(&json(&part.join("metrics.json"))), steps(&metrics));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-4, "step losses differ: {a:?} vs {b:?}");
    }
    // burn-train's per-epoch logs (the dashboard's summary reads them) hold every step and
    // dev batch of both epochs, as the uninterrupted run's do: the resumed process appended
    // epoch 2's last 3 steps to the first process's step 5, and left epoch 1's log alone.
    for log in [
        "train/epoch-1/Loss.log",
        "train/epoch-2/Loss.log",
        "valid/epoch-1/Loss.log",
        "valid/epoch-2/Loss.log",
    ] {
        let (a, b) = (metric_log(&part.join(log)), metric_log(&full.join(log)));
        let lines = if log.starts_with("train") { 4 } else { 2 };
        assert_eq!(b.len(), lines, "{log} of the uninterrupted run: {b:?}");
        assert_eq!(
            a.len(),
            b.len(),
            "{log}: resumed {a:?} vs uninterrupted {b:?}"
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4, "{log}: {a:?} vs {b:?}");
        }
    }

    // A finished run cannot be resumed; changed flags are refused.
    let err = fails("glue-sst2", &["--resume", part.to_str().unwrap()], 1);
    assert!(err.contains("the run already finished (8 steps)"), "{err}");
    let err = fails(
        "glue-sst2",
        &[
            "--resume",
            part.to_str().unwrap(),
            "--lr",
            "1e-3",
            "--r",
            "8",
        ],
        1,
    );
    // The learning rate, schedule and clipping may change (advice after a divergence).
    assert!(
        err.contains("the flags do not match the run: --r 8 (the run used 64); drop them"),
        "{err}"
    );
    // A second run into the same folder is refused rather than overwriting it.
    let err = fails(
        "glue-sst2",
        &slice(full.to_str().unwrap(), &model, &root),
        1,
    );
    assert!(err.contains("already holds a run; pass `--resume"), "{err}");
}

#[test]
fn other_tasks_report_their_own_metrics() {
    let (model, root) = (minilm(), data_root());
    for (task, metrics) in [
        ("stsb", vec!["pearson", "spearman"]),
        ("cola", vec!["matthews"]),
        ("mrpc", vec!["f1", "accuracy"]),
    ] {
        let out = tmp(task);
        let args = [
            "--task",
            task,
            "--model",
            &model,
            "--data-root",
            &root,
            "--max-train-samples",
            "32",
            "--max-eval-samples",
            "32",
            "--max-seq-len",
            "32",
            "--batch-size",
            "16",
            "--method",
            "lora",
            "--r",
            "8",
            "--lora-alpha",
            "16",
            "--display",
            "plain",
            "--out",
            out.to_str().unwrap(),
        ];
        ok("glue", &args);
        let m = json(&out.join("metrics.json"));
        let dev = &m["epochs"][0]["dev"];
        for name in &metrics {
            assert!(
                dev[*name].as_f64().is_some_and(f64::is_finite),
                "{task}: no {name} in {dev}"
            );
        }
        let config = json(&out.join("best/adapter_config.json"));
        assert_eq!(config["peft_type"], "LORA");
        assert_eq!(config["lora_alpha"], 16);
        if task == "stsb" {
            let t = read_safetensors(&out.join("best/adapter_model.safetensors")).unwrap();
            assert_eq!(
                t["base_model.model.classifier.weight"].shape.to_vec(),
                [1, 384],
                "a regression head"
            );
        }
    }
}

#[test]
fn a_toml_config_sets_keys_and_flags_override_it() {
    let (model, root) = (minilm(), data_root());
    let dir = tmp("toml");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("run.toml");
    std::fs::write(&file, "method = \"bat\"\nr = 32\nmax_train_samples = 32\nmax_eval_samples = 16\nmax_seq_len = 32\nlr = 1e-3\n").unwrap();
    let out = dir.join("run");
    ok(
        "glue-sst2",
        &[
            "--config",
            file.to_str().unwrap(),
            "--r",
            "16",
            "--model",
            &model,
            "--data-root",
            &root,
            "--display",
            "plain",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let saved = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(saved.contains("method = \"bat\""), "{saved}");
    assert!(saved.contains("r = 16"), "the flag wins: {saved}");
    assert!(saved.contains("lr = 0.001"), "{saved}");
    let config = json(&out.join("best/adapter_config.json"));
    assert_eq!(config["init_weights"], "bat");
    assert_eq!(config["r"], 16);

    std::fs::write(&file, "methd = \"bone\"\n").unwrap();
    let err = fails("glue-sst2", &["--config", file.to_str().unwrap()], 1);
    assert!(
        err.contains(&format!(
            "{}: unknown key `methd`; known keys: batch_size, checkpoint_every, data_root, device",
            file.display()
        )),
        "{err}"
    );
    std::fs::write(&file, "r = \"sixty-four\"\n").unwrap();
    let err = fails("glue-sst2", &["--config", file.to_str().unwrap()], 1);
    assert!(
        err.contains(&file.display().to_string()) && err.contains("invalid type"),
        "{err}"
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let (model, root) = (minilm(), data_root());
    let out = tmp("bad");
    let o = out.to_str().unwrap();
    let err = fails(
        "glue-sst2",
        &[
            "--model",
            "/no/such/model",
            "--data-root",
            &root,
            "--out",
            o,
        ],
        1,
    );
    assert!(
        err.contains(
            "--model /no/such/model: no such folder; expected a Hugging Face checkpoint folder"
        ),
        "{err}"
    );
    let err = fails(
        "glue-sst2",
        &[
            "--model",
            &model,
            "--data-root",
            "/no/such/data",
            "--out",
            o,
        ],
        1,
    );
    assert!(
        err.contains("/no/such/data") && err.contains("SST-2"),
        "{err}"
    );
    let stories = shared().join("models/stories260K").display().to_string();
    let err = fails(
        "glue-sst2",
        &[
            "--model",
            &stories,
            "--data-root",
            &root,
            "--max-train-samples",
            "8",
            "--out",
            o,
        ],
        1,
    );
    assert!(
        err.contains("llama"),
        "a decoder is not a sequence classifier: {err}"
    );
    let err = fails(
        "glue-sst2",
        &[
            "--model",
            &model,
            "--data-root",
            &root,
            "--method",
            "bat",
            "--r",
            "5",
            "--max-train-samples",
            "8",
            "--out",
            o,
        ],
        1,
    );
    assert!(
        err.contains("Bat needs in and out to be multiples of r") && err.contains("r=5"),
        "{err}"
    );
    let err = fails("glue-sst2", &["--resume", "/no/such/run"], 1);
    assert!(
        err.contains("--resume /no/such/run: not the folder of an earlier run"),
        "{err}"
    );
    let err = fails("glue-sst2", &["--method", "adapterX"], 2);
    assert!(
        err.contains("invalid value 'adapterX' for '--method <METHOD>'"),
        "{err}"
    );
    let err = fails("glue", &["--model", &model], 2);
    assert!(err.contains("`glue` needs --task"), "{err}");
    let err = fails("glue", &["--task", "squad"], 1);
    assert!(err.to_lowercase().contains("squad"), "{err}");
    let err = fails(
        "glue-sst2",
        &[
            "--lr",
            "0",
            "--model",
            &model,
            "--data-root",
            &root,
            "--out",
            o,
        ],
        1,
    );
    assert!(
        err.contains("--lr 0: expected a positive learning rate"),
        "{err}"
    );
    let cores = std::thread::available_parallelism().unwrap().get();
    let too_many = (cores * 4 + 1).to_string();
    for (flag, value, message) in [
        (
            "--max-grad-norm",
            "nan",
            "--max-grad-norm NaN: expected a finite number ≥ 0 (0 disables clipping)".to_string(),
        ),
        (
            "--max-grad-norm",
            "-1",
            "--max-grad-norm -1: expected a finite number ≥ 0 (0 disables clipping)".to_string(),
        ),
        (
            "--weight-decay",
            "-1",
            "--weight-decay -1: expected a finite number ≥ 0".to_string(),
        ),
        (
            "--threads",
            "0",
            "--threads 0: expected a positive number".to_string(),
        ),
        (
            "--threads",
            too_many.as_str(),
            format!(
                "--threads {too_many}: expected at most {} (4 per core, {cores} cores)",
                cores * 4
            ),
        ),
    ] {
        let arg = format!("{flag}={value}");
        let err = fails(
            "glue-sst2",
            &[&arg, "--model", &model, "--data-root", &root, "--out", o],
            1,
        );
        assert!(err.contains(&message), "{flag} {value}: {err}");
    }

    // A learning rate that blows the weights up: the run stops at the first non-finite loss.
    let blow = tmp("nan");
    let err = fails(
        "glue-sst2",
        &[
            "--model",
            &model,
            "--data-root",
            &root,
            "--max-train-samples",
            "96",
            "--max-eval-samples",
            "8",
            "--max-seq-len",
            "16",
            "--lr",
            "1e20",
            "--warmup-ratio",
            "0",
            "--max-grad-norm",
            "0",
            "--checkpoint-every",
            "1",
            "--display",
            "plain",
            "--out",
            blow.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        err.contains("training stopped: the loss is")
            && err.contains("the last good checkpoint is"),
        "{err}"
    );
}

#[test]
fn help_lists_the_flags() {
    let help = ok("glue-sst2", &["--help"]);
    for flag in [
        "--model",
        "--data-root",
        "--method",
        "--r ",
        "--lora-alpha",
        "--targets",
        "--epochs",
        "--batch-size",
        "--lr",
        "--warmup-ratio",
        "--weight-decay",
        "--max-seq-len",
        "--max-train-samples",
        "--seed",
        "--out",
        "--resume",
        "--config",
        "--device",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

/// Runs glue-sst2 with `env` set; returns its exit code, stdout and stderr.
fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(exe("glue-sst2"))
        .args(args)
        .env_remove("BONE_DATA_ROOT")
        .env_remove("BONE_DEVICE")
        .envs(env.iter().copied())
        .output()
        .expect("glue-sst2 starts");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_kill_between_renames_or_before_the_first_checkpoint_loses_nothing() {
    let (model, root) = (minilm(), data_root());
    let dir = tmp("fault");
    let args = slice(dir.to_str().unwrap(), &model, &root);
    // Killed after the third rename: step 3 is in place with `latest` naming it, the epoch-end
    // checkpoint of step 4 is renamed into place but `latest` not yet switched.
    let (code, stdout, stderr) = run_with_env(&args, &[("BONE_FAULT_AFTER_RENAMES", "3")]);
    assert_eq!(code, Some(86), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("BONE_FAULT_AFTER_RENAMES=3: stopping after rename 3"),
        "{stderr}"
    );
    let checkpoints = dir.join("checkpoints");
    assert_eq!(
        std::fs::read_to_string(checkpoints.join("latest")).unwrap(),
        "step-00000003"
    );
    assert!(checkpoints.join("step-00000004/manifest.json").is_file());
    // The checkpoint `latest` names loses a file: resume skips it, naming it, and continues
    // from the newest complete one.
    std::fs::remove_file(checkpoints.join("step-00000003/optimizer.mpk")).unwrap();
    let resume = ["--resume", dir.to_str().unwrap(), "--display", "plain"];
    // Resumed with a lower learning rate, another schedule and clipping: allowed.
    let mut changed = resume.to_vec();
    changed.extend([
        "--lr",
        "1e-4",
        "--schedule",
        "cosine",
        "--max-grad-norm",
        "0.5",
    ]);
    let (code, stdout, stderr) = run_with_env(&changed, &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: skipping checkpoint step-00000003 (named by latest): {} cannot be read",
            checkpoints.join("step-00000003/optimizer.mpk").display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "warning: resuming from checkpoint {} (step 4)",
            checkpoints.join("step-00000004").display()
        )),
        "{stderr}"
    );
    assert!(stdout.contains("finished: best dev accuracy"), "{stdout}");
    assert_eq!(json(&dir.join("metrics.json"))["global_step"], 8);

    // A run that died before its first checkpoint: nothing to resume, and a restart reuses
    // the folder, saying so.
    std::fs::remove_dir_all(&checkpoints).unwrap();
    std::fs::create_dir(&checkpoints).unwrap();
    let err = fails("glue-sst2", &resume, 1);
    assert!(err.contains("the run has no checkpoint yet"), "{err}");
    let (code, stdout, stderr) = run_with_env(&args, &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "note: {} holds a run that stopped before its first checkpoint; starting it again \
             in the same folder",
            dir.display()
        )),
        "{stderr}"
    );
    assert!(stdout.contains("finished: best dev accuracy"), "{stdout}");

    // A non-empty folder that is not a run folder is refused, and left as it was.
    let other = tmp("not-a-run");
    std::fs::create_dir_all(other.join("best")).unwrap();
    std::fs::write(other.join("best/mine.txt"), "keep me").unwrap();
    let err = fails(
        "glue-sst2",
        &slice(other.to_str().unwrap(), &model, &root),
        1,
    );
    assert!(
        err.contains(&format!(
            "--out {}: the folder is not empty and holds no run (no config.toml); choose an \
             empty or new folder",
            other.display()
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(other.join("best/mine.txt")).unwrap(),
        "keep me"
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(other);
}

#[test]
fn a_divergence_on_the_last_step_fails_and_saves_no_best_adapter() {
    let (model, root) = (minilm(), data_root());
    let out = tmp("diverge-last");
    // One step of batch 32: its loss is finite, its update blows the weights up.
    let err = fails(
        "glue-sst2",
        &[
            "--model",
            &model,
            "--data-root",
            &root,
            "--max-train-samples",
            "32",
            "--max-eval-samples",
            "8",
            "--max-seq-len",
            "16",
            "--epochs",
            "1",
            "--lr",
            "1e30",
            "--warmup-ratio",
            "0",
            "--max-grad-norm",
            "0",
            "--display",
            "plain",
            "--out",
            out.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        err.contains("training stopped: the dev loss is NaN after epoch 1 (step 1); the model diverged and is not saved as the best adapter; no checkpoint was written before it"),
        "{err}"
    );
    assert!(!out.join("best").exists());
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn eval_every_gives_a_dev_point_per_evaluation_and_the_best_of_them() {
    let (model, root) = (minilm(), data_root());
    let out = tmp("eval-every");
    let mut args = slice(out.to_str().unwrap(), &model, &root);
    // One epoch of 4 steps, checkpoints and evaluations every 2: dev points at steps 2 and 4.
    for (flag, value) in [("--epochs", "1"), ("--checkpoint-every", "2")] {
        let at = args.iter().position(|a| *a == flag).unwrap();
        args[at + 1] = value;
    }
    args.extend(["--eval-every", "2"]);
    let stdout = ok("glue-sst2", &args);
    assert!(
        stdout.contains("step 2 (epoch 1/1, batch 2/4): train loss"),
        "{stdout}"
    );
    let metrics = json(&out.join("metrics.json"));
    let points = metrics["epochs"].as_array().unwrap();
    let steps: Vec<u64> = points
        .iter()
        .map(|e| e["global_step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [2, 4], "{metrics}");
    let accuracies: Vec<f64> = points
        .iter()
        .map(|e| e["dev"]["accuracy"].as_f64().unwrap())
        .collect();
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    // The best adapter is the first evaluation with the highest accuracy, and best/ holds
    // the weights the checkpoint of that step holds.
    let best = &metrics["best"];
    let top = accuracies.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let best_step = steps[accuracies.iter().position(|&a| a == top).unwrap()];
    assert_eq!(best["value"].as_f64().unwrap(), top, "{metrics}");
    assert_eq!(
        best["global_step"].as_u64().unwrap(),
        best_step,
        "{metrics}"
    );
    let ckpt = out
        .join("checkpoints")
        .join(format!("step-{best_step:08}"))
        .join(experiments::train::TRAINABLE_DIR);
    assert_eq!(adapter_values(&out.join("best")), adapter_values(&ckpt));
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn train_indices_choose_the_rows_and_bad_files_are_named() {
    let (model, root) = (minilm(), data_root());
    let dir = tmp("indices");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rows.txt");
    std::fs::write(&file, "# four RTE rows\n5\n3\n100\n7\n").unwrap();
    let out = dir.join("run");
    let (f, o) = (file.to_str().unwrap(), out.to_str().unwrap());
    let common = [
        "--task",
        "rte",
        "--model",
        &model,
        "--data-root",
        &root,
        "--max-eval-samples",
        "8",
        "--max-seq-len",
        "32",
        "--checkpoint-every",
        "0",
        "--display",
        "plain",
        "--train-indices",
        f,
    ];
    let mut args = common.to_vec();
    args.extend(["--max-train-samples", "3", "--out", o]);
    let stdout = ok("glue", &args);
    assert!(
        stdout.contains("rte · bone r=64 · 3 train / 8 dev examples · 1 steps of batch 32"),
        "{stdout}"
    );
    assert_eq!(json(&out.join("summary.json"))["train_examples"], 3);

    std::fs::write(&file, "5\n2490\n").unwrap();
    let bad = dir.join("bad");
    let mut args = common.to_vec();
    args.extend(["--out", bad.to_str().unwrap()]);
    let err = fails("glue", &args, 1);
    assert!(
        err.contains(&format!(
            "{f}:2: row index 2490 is out of range (the train split has 2490 rows)"
        )),
        "{err}"
    );
}
