//! The `metamath` binary end to end on stories260K and CI-sized slices of GSM8K train: the
//! loss falls, the run folder and the PEFT adapter are right, an interrupted run resumes to
//! the same adapter, gradient checkpointing changes nothing, and bad input fails clearly.

use std::path::{Path, PathBuf};

use bone_io::tensors::read_safetensors;
use experiments::lm::LmConfig;

use crate::common;
use common::{adapter_values, json, ok, shared};

pub(crate) fn stories() -> String {
    common::shared_arg("models/stories260K")
}

fn data_root() -> String {
    common::shared_arg("datasets")
}

pub(crate) fn tmp(name: &str) -> PathBuf {
    common::tmp("metamath-cli", name)
}

fn fails(args: &[&str]) -> String {
    common::fails(env!("CARGO_BIN_EXE_metamath"), args, 1)
}

fn metamath(args: &[&str]) -> String {
    common::ok(env!("CARGO_BIN_EXE_metamath"), args)
}

/// A CI slice: `train` GSM8K problems (those whose response fits in 256 tokens), 4 held out,
/// micro-batches of 4 accumulated twice, lr 1e-3 without warm-up so that a few steps show.
fn slice<'a>(out: &'a str, model: &'a str, root: &'a str, train: &'a str) -> Vec<&'a str> {
    vec![
        "--model",
        model,
        "--data-root",
        root,
        "--max-train-samples",
        train,
        "--max-eval-samples",
        "4",
        "--max-seq-len",
        "256",
        "--batch-size",
        "4",
        "--grad-accumulation",
        "2",
        "--lr",
        "1e-3",
        "--warmup-ratio",
        "0",
        "--schedule",
        "constant",
        "--log-every",
        "1",
        "--display",
        "plain",
        "--out",
        out,
    ]
}

/// NdArray's reductions are not bitwise reproducible on the LLaMA path (two identical runs
/// differ in the last bits of the gradients), and AdamW's first step, `lr·g/(|g|+ε)`, turns
/// that into visible differences wherever a gradient is close to zero. Adapters are therefore
/// compared by the relative L2 distance of each block, `‖a − b‖ / ‖a‖ ≤ tolerance`: 1e-4 to
/// 1.02e-3 seen between identical runs (1e-3 failed about one run in seven), far above 1e-2
/// for a resume that lost the optimiser state, the schedule position or the data position.
fn assert_same_adapter(a: &Path, b: &Path, tolerance: f64) {
    let (a, b) = (adapter_values(a), adapter_values(b));
    assert_eq!(a.len(), b.len());
    for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb);
        let norm = va.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let diff = va
            .iter()
            .zip(vb)
            .map(|(&x, &y)| f64::from(x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(norm > 0.0, "{ka}: the adapter was never updated");
        assert!(
            diff <= tolerance * norm,
            "{ka}: relative distance {:e}",
            diff / norm
        );
    }
}

#[test]
fn help_documents_the_papers_defaults() {
    let help = metamath(&["--help"]);
    for text in [
        "--grad-accumulation",
        "--gradient-checkpointing",
        "--precision",
        "--max-seq-len",
        "[default: 2e-5]",
        "[default: cosine]",
        "[default: 0.03]",
        "[default: 64]",
        "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        "GSM8K train",
        "--method bat --r 4",
        "Llama-2-7b-hf",
    ] {
        assert!(help.contains(text), "--help lacks {text:?}:\n{help}");
    }
}

#[test]
fn the_ci_slice_lowers_the_loss_and_writes_the_run_folder_and_a_peft_adapter() {
    let (model, root) = (stories(), data_root());
    let dir = tmp("slice");
    let out = dir.join("run");
    let mut args = slice(out.to_str().unwrap(), &model, &root, "16");
    args.extend(["--epochs", "3"]);
    let stdout = metamath(&args);
    assert!(
        stdout.contains("rendered as MetaMathQA rows (no --data given)"),
        "{stdout}"
    );
    assert!(stdout.contains("bone r=64 · "), "{stdout}");
    assert!(stdout.contains(" of 4 × 2 = 8 · "), "{stdout}");
    assert!(stdout.contains("finished: train loss"), "{stdout}");

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
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let saved: LmConfig = experiments::train::config::load(&out.join("config.toml")).unwrap();
    assert_eq!((saved.r, saved.epochs, saved.max_seq_len), (64, 3, 256));

    // The loss on the training slice falls from epoch to epoch, and so does the dev loss.
    let metrics = json(&out.join("metrics.json"));
    let epochs = metrics["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    let train: Vec<f64> = epochs
        .iter()
        .map(|e| e["train_loss"].as_f64().unwrap())
        .collect();
    assert!(
        train[2] < 0.8 * train[0] && train[1] < train[0],
        "training loss per epoch: {train:?}"
    );
    let dev: Vec<f64> = epochs
        .iter()
        .map(|e| e["dev"]["loss"].as_f64().unwrap())
        .collect();
    assert!(dev[2] < dev[0], "dev loss per epoch: {dev:?}");
    let ppl = epochs[2]["dev"]["perplexity"].as_f64().unwrap();
    assert!((ppl - dev[2].exp()).abs() < 1e-6 * ppl);
    assert_eq!(metrics["best"]["metric"], "loss");
    let steps = metrics["steps"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        metrics["global_step"].as_u64().unwrap() as usize
    );

    let summary = json(&out.join("summary.json"));
    assert_eq!(
        summary["trainable_params"], 192_000,
        "Bone r=64: 64·out per projection"
    );
    assert_eq!(summary["effective_batch"], 8);
    assert!(summary["tokens_per_second"].as_f64().unwrap() > 0.0);
    assert!(summary["dropped"].as_u64().is_some());

    // A PEFT MiSS adapter for AutoModelForCausalLM on all seven projections of 5 layers.
    let config = json(&out.join("best/adapter_config.json"));
    assert_eq!(config["peft_type"], "MISS");
    assert_eq!(config["task_type"], "CAUSAL_LM");
    assert_eq!(config["r"], 64);
    assert_eq!(
        config["target_modules"],
        serde_json::json!([
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj"
        ])
    );
    let tensors = read_safetensors(&out.join("best/adapter_model.safetensors")).unwrap();
    assert_eq!(tensors.len(), 35);
    let shape = |key: &str| {
        tensors
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", tensors.keys().collect::<Vec<_>>()))
            .shape
            .to_vec()
    };
    let p = "base_model.model.model.layers";
    assert_eq!(
        shape(&format!("{p}.0.self_attn.q_proj.miss_block")),
        [64, 64]
    );
    assert_eq!(
        shape(&format!("{p}.0.self_attn.k_proj.miss_block")),
        [64, 32]
    );
    assert_eq!(shape(&format!("{p}.4.mlp.up_proj.miss_block")), [64, 172]);
    assert_eq!(shape(&format!("{p}.4.mlp.down_proj.miss_block")), [64, 64]);

    // The adapter scores on GSM8K with the other binary.
    let jsonl = dir.join("eval.jsonl");
    let stdout = ok(
        env!("CARGO_BIN_EXE_gsm8k-eval"),
        &[
            "--model",
            &model,
            "--adapter",
            out.join("best").to_str().unwrap(),
            "--data-root",
            &root,
            "--limit",
            "3",
            "--max-new-tokens",
            "8",
            "--out",
            jsonl.to_str().unwrap(),
        ],
    );
    assert!(stdout.contains(" of 3 correct"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 3);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn trains_on_a_metamathqa_file() {
    let (model, root) = (stories(), data_root());
    let sample = shared().join("datasets/metamathqa/sample.json");
    let dir = tmp("sample");
    let out = dir.join("run");
    let stdout = metamath(&[
        "--model",
        &model,
        "--data-root",
        &root,
        "--data",
        sample.to_str().unwrap(),
        "--max-seq-len",
        "512",
        "--batch-size",
        "2",
        "--grad-accumulation",
        "1",
        "--lr",
        "1e-3",
        "--display",
        "plain",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("data: MetaMathQA "), "{stdout}");
    assert!(!stdout.contains("GSM8K"), "{stdout}");
    assert!(
        stdout.contains("5 train / 1 held-out of 6 examples"),
        "{stdout}"
    );
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["steps"], 3);
    assert!(summary["data"].as_str().unwrap().starts_with("MetaMathQA"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_interrupted_run_resumes_to_the_same_adapter() {
    let (model, root) = (stories(), data_root());
    let dir = tmp("resume");
    let (full, parts) = (dir.join("full"), dir.join("parts"));
    let mut args = slice(full.to_str().unwrap(), &model, &root, "24");
    args.extend(["--checkpoint-every", "1"]);
    metamath(&args);
    let steps = json(&full.join("metrics.json"))["global_step"]
        .as_u64()
        .unwrap();
    assert!(steps >= 2, "{steps} steps");

    let mut args = slice(parts.to_str().unwrap(), &model, &root, "24");
    args.extend(["--checkpoint-every", "1", "--stop-after-steps", "1"]);
    // An interrupted run exits 3, so a script can tell it from a finished one.
    let out = common::run(env!("CARGO_BIN_EXE_metamath"), &args);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("interrupted after 1 of"), "{stdout}");
    assert!(!parts.join("best").exists());

    // Flags that change the result are refused; where files are and the backend may change.
    let resume = parts.to_str().unwrap();
    let err = fails(&["--resume", resume, "--r", "8", "--lr", "1e-3"]);
    assert!(err.contains("--r 8 (the run used 64)"), "{err}");
    assert!(!err.contains("--lr"), "{err}");

    let stdout = metamath(&[
        "--resume",
        resume,
        "--model",
        &model,
        "--data-root",
        &root,
        "--log-every",
        "1",
        "--display",
        "plain",
    ]);
    assert!(stdout.contains("finished"), "{stdout}");
    assert_same_adapter(&full.join("best"), &parts.join("best"), 3e-3);
    let (a, b) = (
        json(&full.join("metrics.json")),
        json(&parts.join("metrics.json")),
    );
    assert_eq!(a["global_step"], b["global_step"]);
    let losses = |m: &serde_json::Value| -> Vec<f64> {
        m["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["loss"].as_f64().unwrap())
            .collect()
    };
    let (la, lb) = (losses(&a), losses(&b));
    assert_eq!(la.len(), lb.len());
    for (x, y) in la.iter().zip(&lb) {
        assert!((x - y).abs() <= 1e-4 * x.abs(), "{la:?} vs {lb:?}");
    }

    let err = fails(&["--resume", resume]);
    assert!(err.contains("already finished"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gradient_checkpointing_gives_the_same_adapter() {
    let (model, root) = (stories(), data_root());
    let dir = tmp("checkpointing");
    let (plain, recomputed) = (dir.join("plain"), dir.join("recomputed"));
    metamath(&slice(plain.to_str().unwrap(), &model, &root, "8"));
    let mut args = slice(recomputed.to_str().unwrap(), &model, &root, "8");
    args.push("--gradient-checkpointing");
    let stdout = metamath(&args);
    assert!(stdout.contains("gradient checkpointing"), "{stdout}");
    assert_same_adapter(&plain.join("best"), &recomputed.join("best"), 3e-3);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let (model, root) = (stories(), data_root());
    let dir = tmp("errors");
    let out = dir.join("run");
    let out = out.to_str().unwrap();

    // A config whose vocab_size is below the tokenizer's ids (512): refused before any
    // embedding lookup could index past the table (issue 16 item 3).
    let small = dir.join("small-vocab");
    std::fs::create_dir_all(&small).unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(shared().join("models/stories260K").join(f), small.join(f)).unwrap();
    }
    let config = std::fs::read_to_string(shared().join("models/stories260K/config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    config["vocab_size"] = serde_json::json!(500);
    std::fs::write(small.join("config.json"), config.to_string()).unwrap();
    let err = fails(&[
        "--model",
        small.to_str().unwrap(),
        "--data-root",
        &root,
        "--max-train-samples",
        "4",
        "--out",
        out,
    ]);
    assert!(
        err.contains(&format!(
            "{}: the tokenizer has 512 ids (added tokens included) but the model's vocab_size is 500 ({}); ids from 500 on have no embedding",
            small.join("tokenizer.json").display(),
            small.join("config.json").display()
        )),
        "{err}"
    );

    let err = fails(&["--model", "/nonexistent/llama", "--out", out]);
    assert!(
        err.contains("--model /nonexistent/llama: no such folder"),
        "{err}"
    );
    let bert = shared().join("models/all-MiniLM-L6-v2");
    let err = fails(&["--model", bert.to_str().unwrap(), "--out", out]);
    assert!(
        err.contains("describes a bert model") && err.contains("LLaMA-architecture decoder"),
        "{err}"
    );
    let err = fails(&[
        "--model",
        &model,
        "--data",
        "/nonexistent.json",
        "--out",
        out,
    ]);
    assert!(
        err.contains("--data /nonexistent.json: no such file"),
        "{err}"
    );
    let err = fails(&[
        "--model",
        &model,
        "--precision",
        "bf16",
        "--device",
        "ndarray",
        "--out",
        out,
    ]);
    assert!(
        err.contains("--precision bf16: the ndarray backend has no bf16 tensors"),
        "{err}"
    );
    let err = fails(&["--model", &model, "--grad-accumulation", "0", "--out", out]);
    assert!(err.contains("--grad-accumulation 0"), "{err}");

    // Bat needs r to divide in and out of every target: k_proj is 64 → 32 on stories260K.
    let mut args = slice(out, &model, &root, "4");
    args.extend(["--method", "bat", "--r", "64"]);
    let err = fails(&args);
    assert!(
        err.contains("`model.layers.0.self_attn.k_proj`") && err.contains("in=64, out=32, r=64"),
        "{err}"
    );

    // --resume checks the saved configuration.
    let run_dir = dir.join("saved");
    std::fs::create_dir_all(run_dir.join("checkpoints")).unwrap();
    experiments::train::config::save(&LmConfig::defaults(), &run_dir.join("config.toml")).unwrap();
    let resume = run_dir.to_str().unwrap();
    let err = fails(&["--resume", resume, "--method", "lora", "--epochs", "1"]);
    assert!(
        err.contains("--method \"lora\" (the run used \"bone\")") && !err.contains("--epochs"),
        "{err}"
    );
    let err = fails(&["--resume", resume, "--model", &model, "--data-root", &root]);
    assert!(err.contains("no checkpoint yet"), "{err}");
    let err = fails(&["--resume", dir.join("none").to_str().unwrap()]);
    assert!(err.contains("not the folder of an earlier run"), "{err}");
    // A run that stopped before its first checkpoint is started again in its own folder
    // (`--resume` has nothing to continue), saying so.
    let mut args = slice(resume, &model, &root, "4");
    args.extend(["--epochs", "1"]);
    let out = common::run(env!("CARGO_BIN_EXE_metamath"), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("holds a run that stopped before its first checkpoint; starting it again"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

// ---- `sft`: the same training job on your own data ----

pub(crate) fn sft(args: &[&str]) -> String {
    common::ok(env!("CARGO_BIN_EXE_sft"), args)
}

pub(crate) fn sft_fails(args: &[&str]) -> String {
    common::fails(env!("CARGO_BIN_EXE_sft"), args, 1)
}

/// Short question/answer pairs the tiny model can learn something of in a few steps.
const PAIRS: &[(&str, &str)] = &[
    ("What did the cat see?", "The cat saw a big red ball."),
    ("Where did Lily go?", "Lily went to the park with her mom."),
    ("What did Tom like?", "Tom liked to play with his dog."),
    ("Who was happy?", "The little girl was very happy."),
    ("What was in the box?", "There was a small toy in the box."),
    ("Where was the bird?", "The bird was in the tall tree."),
];

/// `n` chat rows (`{"messages": …}`) cycling through [`PAIRS`].
pub(crate) fn chat_rows(n: usize) -> String {
    (0..n)
        .map(|i| {
            let (q, a) = PAIRS[i % PAIRS.len()];
            format!(
                "{{\"messages\": [{{\"role\": \"user\", \"content\": \"{q}\"}}, {{\"role\": \"assistant\", \"content\": \"{a}\"}}]}}\n"
            )
        })
        .collect()
}

/// `n` Alpaca rows cycling through [`PAIRS`].
pub(crate) fn alpaca_rows(n: usize) -> String {
    (0..n)
        .map(|i| {
            let (q, a) = PAIRS[i % PAIRS.len()];
            format!("{{\"instruction\": \"{q}\", \"input\": \"\", \"output\": \"{a}\"}}\n")
        })
        .collect()
}

/// A small `sft` run: micro-batches of 4 accumulated twice, lr 1e-3 constant.
pub(crate) fn sft_args<'a>(model: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "--model",
        model,
        "--data",
        data,
        "--eval-fraction",
        "0.2",
        "--max-seq-len",
        "128",
        "--batch-size",
        "4",
        "--grad-accumulation",
        "2",
        "--lr",
        "1e-3",
        "--warmup-ratio",
        "0",
        "--schedule",
        "constant",
        "--log-every",
        "1",
        "--display",
        "plain",
        "--out",
        out,
    ]
}

pub(crate) fn step_losses(run: &Path) -> Vec<f64> {
    json(&run.join("metrics.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["loss"].as_f64().unwrap())
        .collect()
}

#[test]
fn sft_lowers_the_loss_on_chat_and_alpaca_files() {
    let model = stories();
    let dir = tmp("sft-loss");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, rows, format) in [
        ("chat.jsonl", chat_rows(30), "chat"),
        ("alpaca.jsonl", alpaca_rows(30), "alpaca"),
    ] {
        let data = dir.join(name);
        std::fs::write(&data, rows).unwrap();
        let out = dir.join(format!("run-{format}"));
        let mut args = sft_args(&model, data.to_str().unwrap(), out.to_str().unwrap());
        args.extend(["--epochs", "3"]);
        let stdout = sft(&args);
        // stories260K has no chat template: the Alpaca prompt, and the detected format.
        assert!(
            stdout.contains("prompt: the Alpaca prompt (the model has no chat template)"),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("format {format}")), "{stdout}");
        assert!(
            stdout.contains(" 24 train / 6 held-out of 30 examples"),
            "{stdout}"
        );
        assert!(stdout.contains("finished: train loss"), "{stdout}");
        let losses = step_losses(&out);
        assert_eq!(losses.len(), 9, "{losses:?}");
        assert!(
            losses[8] < 0.9 * losses[0],
            "{format}: the loss did not fall: {losses:?}"
        );
        let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
        assert!(config.contains("format = \"auto\""), "{config}");
        assert!(out.join("best/adapter_model.safetensors").is_file());
        // The eval loss and perplexity of the last epoch: perplexity = exp(loss).
        let summary = json(&out.join("summary.json"));
        let dev = |key: &str| {
            summary["last_dev"]
                .as_array()
                .unwrap()
                .iter()
                .find(|kv| kv[0] == key)
                .and_then(|kv| kv[1].as_f64())
                .unwrap_or_else(|| panic!("no dev {key}: {summary}"))
        };
        let (loss, ppl) = (dev("loss"), dev("perplexity"));
        assert!((ppl - loss.exp()).abs() <= 1e-3 * ppl, "{loss} {ppl}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_interrupted_sft_run_resumes_to_the_same_adapter() {
    let model = stories();
    let dir = tmp("sft-resume");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("chat.jsonl");
    std::fs::write(&data, chat_rows(30)).unwrap();
    let data = data.to_str().unwrap();
    let (full, parts) = (dir.join("full"), dir.join("parts"));
    let mut args = sft_args(&model, data, full.to_str().unwrap());
    args.extend(["--epochs", "2", "--checkpoint-every", "1"]);
    sft(&args);

    let mut args = sft_args(&model, data, parts.to_str().unwrap());
    args.extend([
        "--epochs",
        "2",
        "--checkpoint-every",
        "1",
        "--stop-after-steps",
        "2",
    ]);
    // An interrupted run exits 3, so a script can tell it from a finished one.
    let out = common::run(env!("CARGO_BIN_EXE_sft"), &args);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("interrupted after 2 of 6"), "{stdout}");

    let resume = parts.to_str().unwrap();
    let err = sft_fails(&["--resume", resume, "--train-on", "prompt+response"]);
    assert!(err.contains("--train-on"), "{err}");
    let stdout = sft(&[
        "--resume",
        resume,
        "--model",
        &model,
        "--data",
        data,
        "--display",
        "plain",
    ]);
    assert!(stdout.contains("finished"), "{stdout}");
    assert_same_adapter(&full.join("best"), &parts.join("best"), 3e-3);
    let (la, lb) = (step_losses(&full), step_losses(&parts));
    assert_eq!(la.len(), lb.len());
    for (x, y) in la.iter().zip(&lb) {
        assert!((x - y).abs() <= 1e-4 * x.abs(), "{la:?} vs {lb:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sft_names_the_file_and_line_of_a_bad_row() {
    let model = stories();
    let dir = tmp("sft-errors");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("bad.jsonl");
    let mut rows = alpaca_rows(4);
    rows.push_str("{\"instruction\": \"Hi\", \"output\": 3}\n");
    rows.push_str(&alpaca_rows(4));
    std::fs::write(&data, rows).unwrap();
    let path = data.to_str().unwrap();
    let out = dir.join("run");
    let args = sft_args(&model, path, out.to_str().unwrap());
    let err = sft_fails(&args);
    assert!(err.contains(&format!("{path}:5:")), "{err}");

    let mut args = sft_args(&model, path, out.to_str().unwrap());
    args.extend(["--skip-bad-rows", "--epochs", "1"]);
    let stdout = sft(&args);
    assert!(stdout.contains("1 bad rows skipped"), "{stdout}");

    let err = sft_fails(&["--model", &model, "--format", "csv", "--data", path]);
    assert!(err.contains("--format") && err.contains("csv"), "{err}");
    let other = dir.join("other");
    let err = sft_fails(&["--model", &model, "--out", other.to_str().unwrap()]);
    assert!(err.contains("--data FILE is required"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
