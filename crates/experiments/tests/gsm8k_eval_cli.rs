//! The `gsm8k-eval` binary on stories260K: the printed accuracy and the summary agree with a
//! count over the JSONL file, each row's prediction is the extraction of its generation,
//! adapters load (merged or not), and bad input fails clearly.

use std::path::{Path, PathBuf};

use data::gsm8k::{extract_predicted_answer, load_gsm8k, Gsm8kSplit};
use data::metrics::gsm8k_answers_match;
use data::{DataRoot, LoadOptions};

use crate::common;
use common::shared;

fn stories() -> String {
    common::shared_arg("models/stories260K")
}

fn data_root() -> String {
    common::shared_arg("datasets")
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("gsm8k-cli", name)
}

fn ok(args: &[&str]) -> String {
    common::ok(env!("CARGO_BIN_EXE_gsm8k-eval"), args)
}

fn fails(args: &[&str]) -> String {
    common::fails(env!("CARGO_BIN_EXE_gsm8k-eval"), args, 1)
}

fn rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `(k of n correct` in the final line.
fn printed_counts(stdout: &str) -> (usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("accuracy "))
        .unwrap_or_else(|| panic!("no accuracy line in {stdout}"));
    let inner = line.split('(').nth(1).unwrap();
    let words: Vec<&str> = inner.split_whitespace().collect();
    assert_eq!((words[1], words[3]), ("of", "correct,"), "{line}");
    (words[0].parse().unwrap(), words[2].parse().unwrap())
}

#[test]
fn the_printed_accuracy_is_a_count_over_the_jsonl() {
    let (model, root) = (stories(), data_root());
    let dir = tmp("count");
    let out = dir.join("base.jsonl");
    let stdout = ok(&[
        "--model",
        &model,
        "--data-root",
        &root,
        "--limit",
        "8",
        "--batch-size",
        "3",
        "--max-new-tokens",
        "24",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("GSM8K test: 8 problems"), "{stdout}");

    let gold = load_gsm8k(
        &DataRoot::resolve(Some(Path::new(&root))),
        Gsm8kSplit::Test,
        &LoadOptions::default(),
    )
    .unwrap();
    let rows = rows(&out);
    assert_eq!(rows.len(), 8);
    let mut correct = 0;
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["index"], i);
        let problem = &gold.examples()[i];
        assert_eq!(row["question"], problem.question.as_str());
        assert_eq!(row["gold"].as_f64().unwrap(), problem.final_answer);
        let generation = row["generation"].as_str().unwrap();
        let predicted = extract_predicted_answer(generation);
        assert_eq!(row["predicted"].as_f64(), predicted, "row {i}");
        let is_correct = predicted.is_some_and(|p| gsm8k_answers_match(p, problem.final_answer));
        assert_eq!(row["correct"], is_correct, "row {i}");
        correct += usize::from(is_correct);
        let new_tokens = row["new_tokens"].as_u64().unwrap();
        assert!((1..=24).contains(&new_tokens));
        match row["finish"].as_str().unwrap() {
            "length" => assert_eq!(new_tokens, 24, "row {i}"),
            finish => assert_eq!(finish, "eos", "row {i}"),
        }
    }
    assert_eq!(printed_counts(&stdout), (correct, 8));

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("base.summary.json")).unwrap()).unwrap();
    assert_eq!(summary["problems"], 8);
    assert_eq!(summary["correct"], correct);
    assert!((summary["accuracy"].as_f64().unwrap() - correct as f64 / 8.0).abs() < 1e-12);
    let no_answer = rows.iter().filter(|r| r["predicted"].is_null()).count();
    assert_eq!(summary["no_answer"], no_answer);
    let tokens: u64 = rows.iter().map(|r| r["new_tokens"].as_u64().unwrap()).sum();
    assert_eq!(summary["new_tokens"], tokens);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_peft_adapter_generates_the_same_merged_or_not() {
    let (model, root) = (stories(), data_root());
    let adapter = shared().join("golden/peft_bone_stories260k");
    let dir = tmp("adapter");
    let mut generations = Vec::new();
    for (name, extra) in [("merged", None), ("separate", Some("--no-merge"))] {
        let out = dir.join(format!("{name}.jsonl"));
        let mut args = vec![
            "--model",
            &model,
            "--adapter",
            adapter.to_str().unwrap(),
            "--data-root",
            &root,
            "--limit",
            "2",
            "--max-new-tokens",
            "12",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let stdout = ok(&args);
        assert_eq!(stdout.contains("(merged)"), extra.is_none(), "{stdout}");
        let summary: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{name}.summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["merged"], extra.is_none());
        generations.push(
            rows(&out)
                .iter()
                .map(|r| r["generation"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(generations[0], generations[1]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let (model, root) = (stories(), data_root());
    let err = fails(&["--model", "/nonexistent/llama", "--data-root", &root]);
    assert!(
        err.contains("--model /nonexistent/llama: no such folder"),
        "{err}"
    );
    let bert = shared().join("models/all-MiniLM-L6-v2");
    let err = fails(&["--model", bert.to_str().unwrap(), "--data-root", &root]);
    assert!(err.contains("describes a bert model"), "{err}");
    let err = fails(&["--model", &model, "--adapter", &model, "--data-root", &root]);
    assert!(err.contains("not a PEFT adapter folder"), "{err}");
    let err = fails(&["--model", &model, "--limit", "0"]);
    assert!(err.contains("--limit 0"), "{err}");
    let err = fails(&[
        "--model",
        &model,
        "--precision",
        "f16",
        "--device",
        "ndarray",
    ]);
    assert!(err.contains("--precision f16"), "{err}");
    let err = fails(&["--model", &model, "--data-root", "/nonexistent/data"]);
    assert!(err.contains("gsm8k/test.jsonl"), "{err}");
}

/// A GGUF model with `--chat-template`: the question is the user turn of SmolLM2's template
/// (the golden chat text with its question swapped), tokenised without added BOS.
#[test]
fn a_gguf_model_is_prompted_with_its_chat_template() {
    let gguf = shared().join("models/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf");
    let root = data_root();
    let dir = tmp("chat");
    let out = dir.join("chat.jsonl");
    let stdout = ok(&[
        "--model",
        gguf.to_str().unwrap(),
        "--chat-template",
        "--data-root",
        &root,
        "--limit",
        "1",
        "--max-new-tokens",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("GSM8K test: 1 problems"), "{stdout}");
    let row = &rows(&out)[0];
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared().join("golden/MANIFEST_FAMILIES.json")).unwrap(),
    )
    .unwrap();
    let chat_text = manifest["files"]["smollm2_gguf_forward"]["chat_text"]
        .as_str()
        .unwrap()
        .replace(
            "What is the capital of France?",
            row["question"].as_str().unwrap(),
        );
    let tokenizer = models::Tokenizer::from_pretrained(&gguf).unwrap();
    assert_eq!(
        row["prompt_tokens"].as_u64().unwrap() as usize,
        tokenizer.encode(&chat_text, false).unwrap().len()
    );
    assert_eq!(row["new_tokens"], 4);
    let err = fails(&["--model", &stories(), "--chat-template", "--limit", "1"]);
    assert!(err.contains("has no chat template"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
