//! The `bone` binary on the real models: outputs against the golden files, help texts,
//! exit codes and error messages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use bone_io::tensors::{read_safetensors, write_safetensors};
use burn::tensor::TensorData;

use crate::common;
use common::shared;

fn stories() -> PathBuf {
    shared().join("models/stories260K")
}

fn bone(args: &[&str]) -> Output {
    common::run(env!("CARGO_BIN_EXE_bone"), args)
}

fn ok(args: &[&str]) -> String {
    common::ok(env!("CARGO_BIN_EXE_bone"), args)
}

fn fails(args: &[&str], code: i32) -> String {
    common::fails(env!("CARGO_BIN_EXE_bone"), args, code)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn golden(name: &str) -> BTreeMap<String, TensorData> {
    read_safetensors(&shared().join(format!("golden/{name}.safetensors"))).unwrap()
}

fn f32s(d: &TensorData) -> Vec<f32> {
    d.iter::<f32>().collect()
}

fn ids_arg(d: &TensorData) -> String {
    d.iter::<i64>()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[track_caller]
fn assert_close(what: &str, ours: &[f32], golden: &[f32]) {
    assert_eq!(ours.len(), golden.len(), "{what}: length");
    let d = ours
        .iter()
        .zip(golden)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(d <= 1e-4, "{what}: max relative difference {d:e}");
}

#[test]
fn help_texts() {
    let top = ok(&["--help"]);
    for cmd in [
        "forward", "generate", "merge", "inspect", "convert", "--device",
    ] {
        assert!(top.contains(cmd), "{top}");
    }
    assert!(ok(&["forward", "--help"]).contains("--ids <ID,ID,...>"));
    assert!(ok(&["generate", "--help"]).contains("--temperature"));
    assert!(ok(&["generate", "--help"]).contains("--top-p"));
    assert!(ok(&["merge", "--help"]).contains("--adapter <DIR>"));
    assert!(ok(&["inspect", "--help"]).contains("--layers"));
}

#[test]
fn usage_errors_exit_with_2() {
    let err = fails(&["forward", "--model", "x"], 2);
    assert!(err.contains("--out"), "{err}");
    fails(&["frobnicate"], 2);
    fails(
        &[
            "forward", "--model", "x", "--out", "y", "--ids", "1", "--text", "a",
        ],
        2,
    );
    fails(&["inspect", "--model", "x", "--device", "tpu"], 2);
}

#[test]
fn forward_writes_golden_logits_for_the_decoder() {
    let g = golden("llama_stories260k_forward");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let stdout = ok(&[
        "forward",
        "--model",
        s(&stories()),
        "--ids",
        &ids_arg(&g["input_ids"]),
        "--out",
        s(&out),
    ]);
    assert!(stdout.contains("logits [1, 5, 512]"), "{stdout}");
    let t = read_safetensors(&out).unwrap();
    assert_close("decoder logits", &f32s(&t["logits"]), &f32s(&g["logits"]));
    // The same from text.
    ok(&[
        "forward",
        "--model",
        s(&stories()),
        "--text",
        "Once upon a time",
        "--out",
        s(&out),
    ]);
    let t = read_safetensors(&out).unwrap();
    assert_eq!(ids_arg(&t["input_ids"]), ids_arg(&g["input_ids"]));
    assert_close(
        "decoder logits from text",
        &f32s(&t["logits"]),
        &f32s(&g["logits"]),
    );
}

#[test]
fn forward_writes_golden_hidden_states_for_the_encoders() {
    let g = golden("bert_minilm_forward");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("minilm.safetensors");
    let model = shared().join("models/all-MiniLM-L6-v2");
    ok(&[
        "forward",
        "--model",
        s(&model),
        "--text",
        "A man is playing a guitar.",
        "--text",
        "Someone is playing an instrument.",
        "--text",
        "The stock market fell sharply today.",
        "--out",
        s(&out),
    ]);
    let t = read_safetensors(&out).unwrap();
    assert_eq!(ids_arg(&t["input_ids"]), ids_arg(&g["input_ids"]));
    assert_eq!(ids_arg(&t["attention_mask"]), ids_arg(&g["attention_mask"]));
    assert_close(
        "MiniLM last_hidden_state",
        &f32s(&t["last_hidden_state"]),
        &f32s(&g["last_hidden_state"]),
    );
    assert_close(
        "MiniLM mean_pooled",
        &f32s(&t["mean_pooled"]),
        &f32s(&g["mean_pooled"]),
    );
    assert!(t.contains_key("pooler_output"));

    let g = golden("roberta_tiny_forward");
    let out = dir.path().join("roberta.safetensors");
    let rows: Vec<String> = {
        let ids: Vec<i64> = g["input_ids"].iter::<i64>().collect();
        let mask: Vec<i64> = g["attention_mask"].iter::<i64>().collect();
        (0..2)
            .map(|r| {
                (0..7)
                    .filter(|&c| mask[r * 7 + c] == 1)
                    .map(|c| ids[r * 7 + c].to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    ok(&[
        "forward",
        "--model",
        s(&shared().join("golden/roberta_tiny_random")),
        "--ids",
        &rows[0],
        "--ids",
        &rows[1],
        "--out",
        s(&out),
    ]);
    let t = read_safetensors(&out).unwrap();
    assert_eq!(
        ids_arg(&t["input_ids"]),
        ids_arg(&g["input_ids"]),
        "right-padded with pad id 1"
    );
    assert_close("RoBERTa logits", &f32s(&t["logits"]), &f32s(&g["logits"]));
    assert_close(
        "RoBERTa last_hidden_state",
        &f32s(&t["last_hidden_state"]),
        &f32s(&g["last_hidden_state"]),
    );
}

#[test]
fn forward_with_a_peft_adapter_and_merge() {
    for method in ["bone", "bat", "lora"] {
        let g = golden(&format!("peft_{method}_stories260k"));
        let adapter = shared().join(format!("golden/peft_{method}_stories260k"));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.safetensors");
        let ids = ids_arg(&g["input_ids"]);
        ok(&[
            "forward",
            "--model",
            s(&stories()),
            "--adapter",
            s(&adapter),
            "--ids",
            &ids,
            "--out",
            s(&out),
        ]);
        let t = read_safetensors(&out).unwrap();
        assert_close(
            &format!("{method} adapter logits"),
            &f32s(&t["logits"]),
            &f32s(&g["logits"]),
        );

        let merged = dir.path().join("merged");
        let stdout = ok(&[
            "merge",
            "--model",
            s(&stories()),
            "--adapter",
            s(&adapter),
            "--out",
            s(&merged),
        ]);
        assert!(stdout.contains("into 35 layers"), "{stdout}");
        for file in [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
        ] {
            assert!(
                merged.join(file).is_file(),
                "{method}: {file} missing from the merged folder"
            );
        }
        // Our loader reads the merged folder, and its logits are PEFT's merged logits.
        ok(&[
            "forward",
            "--model",
            s(&merged),
            "--ids",
            &ids,
            "--out",
            s(&out),
        ]);
        let t = read_safetensors(&out).unwrap();
        assert_close(
            &format!("{method} merged logits"),
            &f32s(&t["logits"]),
            &f32s(&g["merged_logits"]),
        );
        let m = models::LlamaForCausalLM::<models::backend::DefaultBackend>::from_pretrained(
            &merged,
            &models::LoadOptions::default(),
            &Default::default(),
        );
        assert!(m.is_ok());

        let err = fails(
            &[
                "merge",
                "--model",
                s(&stories()),
                "--adapter",
                s(&adapter),
                "--out",
                s(&merged),
            ],
            1,
        );
        assert!(err.contains("already holds files; pass --force"), "{err}");
        ok(&[
            "merge",
            "--model",
            s(&stories()),
            "--adapter",
            s(&adapter),
            "--out",
            s(&merged),
            "--force",
        ]);
    }
}

#[test]
fn inspect_prints_parameter_counts() {
    let out = ok(&["inspect", "--model", s(&stories())]);
    assert!(out.contains("LlamaForCausalLM"), "{out}");
    assert!(out.contains("parameters    260,032"), "{out}");
    assert!(
        out.contains("trainable params: 0 || all params: 260,032 || trainable%: 0.0000"),
        "{out}"
    );
    let adapter = shared().join("golden/peft_bone_stories260k");
    let out = ok(&[
        "inspect",
        "--model",
        s(&stories()),
        "--adapter",
        s(&adapter),
        "--layers",
    ]);
    assert!(
        out.contains("MISS (bone, r=8) on 35 layers, 24,000 parameters"),
        "{out}"
    );
    assert!(
        out.contains("trainable params: 24,000 || all params: 284,032 || trainable%: 8.4498"),
        "{out}"
    );
    assert!(out.contains("model.layers.4.mlp.down_proj"), "{out}");
    let out = ok(&[
        "inspect",
        "--model",
        s(&shared().join("models/all-MiniLM-L6-v2")),
    ]);
    assert!(
        out.contains("BertModel") && out.contains("parameters    22,713,216"),
        "{out}"
    );
}

#[test]
fn generate_prints_the_golden_greedy_text() {
    let expected = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.";
    let model = stories();
    for extra in [&[][..], &["--no-cache"][..], &["--no-stream"][..]] {
        let mut args = vec![
            "generate",
            "--model",
            s(&model),
            "--prompt",
            "Once upon a time",
            "--max-new-tokens",
            "40",
        ];
        args.extend_from_slice(extra);
        let out = bone(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim_end(),
            expected,
            "{extra:?}"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("40 tokens in"));
    }
    // Sampling is reproducible with a seed.
    let sample = |seed: &str| {
        ok(&[
            "generate",
            "--model",
            s(&stories()),
            "--prompt",
            "Once upon a time",
            "--max-new-tokens",
            "20",
            "--temperature",
            "0.8",
            "--top-k",
            "40",
            "--top-p",
            "0.9",
            "--seed",
            seed,
        ])
    };
    assert_eq!(sample("3"), sample("3"));
    assert_ne!(sample("3"), sample("4"));
}

#[test]
fn errors_name_the_problem() {
    let err = fails(&["inspect", "--model", "/no/such/model"], 1);
    assert_eq!(
        err.trim_end(),
        "error: model folder /no/such/model does not exist"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    let err = fails(&["inspect", "--model", s(dir.path())], 1);
    assert_eq!(
        err.trim_end(),
        format!("error: {}/config.json: unsupported model_type \"gpt2\" (supported: llama, mistral, qwen2, qwen3, bert, roberta)", dir.path().display())
    );

    let mut tensors = read_safetensors(&stories().join("model.safetensors")).unwrap();
    tensors.remove("model.norm.weight");
    write_safetensors(&dir.path().join("model.safetensors"), &tensors, &[]).unwrap();
    std::fs::copy(
        stories().join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let err = fails(&["inspect", "--model", s(dir.path())], 1);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: {}: missing tensor `model.norm.weight`",
            dir.path().display()
        )
    );

    tensors.insert(
        "model.norm.weight".into(),
        TensorData::new(vec![1.0f32; 65], [65]),
    );
    write_safetensors(&dir.path().join("model.safetensors"), &tensors, &[]).unwrap();
    let err = fails(
        &[
            "forward",
            "--model",
            s(dir.path()),
            "--ids",
            "1,2",
            "--out",
            s(&dir.path().join("o.safetensors")),
        ],
        1,
    );
    assert_eq!(
        err.trim_end(),
        format!(
            "error: {}/model.safetensors: tensor `model.norm.weight` has shape [65], expected [64]",
            dir.path().display()
        )
    );

    let err = fails(
        &[
            "generate",
            "--model",
            s(&shared().join("models/all-MiniLM-L6-v2")),
            "--prompt",
            "hi",
        ],
        1,
    );
    assert!(
        err.contains("bone generate needs a decoder (llama)"),
        "{err}"
    );
    let err = fails(
        &[
            "forward",
            "--model",
            s(&stories()),
            "--ids",
            "1,9999",
            "--out",
            "/tmp/x.safetensors",
        ],
        1,
    );
    assert!(
        err.contains("token id 9999 is outside the vocabulary of 512"),
        "{err}"
    );
    let err = fails(
        &[
            "generate",
            "--model",
            s(&stories()),
            "--prompt",
            "x",
            "--top-p",
            "2",
        ],
        1,
    );
    assert_eq!(
        err.trim_end(),
        "error: invalid top_p: expected a probability in (0, 1], found 2"
    );
    let err = fails(
        &[
            "inspect",
            "--model",
            s(&stories()),
            "--adapter",
            "/no/adapter",
        ],
        1,
    );
    assert!(err.contains("/no/adapter"), "{err}");
}

#[test]
fn gguf_model_runs_and_converts() {
    let gguf = shared().join("models/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf");
    let g = golden("smollm2_gguf_forward");
    let ids = ids_arg(&g["chat_ids"]);
    let dir = tempfile::tempdir().unwrap();
    let last8 = |file: &Path| -> Vec<f32> {
        let logits = f32s(&read_safetensors(file).unwrap()["logits"]);
        logits[logits.len() - 8 * 49152..].to_vec()
    };
    let from_gguf = dir.path().join("gguf.safetensors");
    ok(&[
        "forward",
        "--model",
        s(&gguf),
        "--ids",
        &ids,
        "--out",
        s(&from_gguf),
    ]);
    assert_close(
        "GGUF chat logits",
        &last8(&from_gguf),
        &f32s(&g["chat_logits_last8"]),
    );

    let hf = dir.path().join("hf");
    let stdout = ok(&[
        "convert",
        "--gguf",
        s(&gguf),
        "--out",
        s(&hf),
        "--dtype",
        "f32",
    ]);
    assert!(stdout.contains("(272 tensors, F32)"), "{stdout}");
    let from_hf = dir.path().join("hf.safetensors");
    ok(&[
        "forward",
        "--model",
        s(&hf),
        "--ids",
        &ids,
        "--out",
        s(&from_hf),
    ]);
    assert_eq!(last8(&from_hf), last8(&from_gguf));
    let err = fails(&["convert", "--gguf", s(&gguf), "--out", s(&hf)], 1);
    assert!(err.contains("already holds files; pass --force"), "{err}");
    let err = fails(
        &[
            "convert",
            "--gguf",
            s(&stories()),
            "--out",
            s(&dir.path().join("x")),
        ],
        1,
    );
    assert!(err.contains("expected a .gguf file"), "{err}");
}

#[test]
fn convert_adapter_turns_peft_mini_into_an_exact_lora() {
    let g = golden("peft_mini_stories260k");
    let dir = tempfile::tempdir().unwrap();
    let lora = dir.path().join("lora");
    let mini = shared().join("golden/peft_mini_stories260k");
    let stdout = ok(&[
        "convert-adapter",
        "--model",
        s(&stories()),
        "--adapter",
        s(&mini),
        "--to",
        "lora",
        "--out",
        s(&lora),
    ]);
    assert!(
        stdout.contains("on 20 layers to LoRA r=16 (lora_alpha=16, scale 1): exact"),
        "{stdout}"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lora.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(
        (config["r"].as_u64(), config["lora_alpha"].as_u64()),
        (Some(16), Some(16))
    );
    let tensors = read_safetensors(&lora.join("adapter_model.safetensors")).unwrap();
    assert_eq!(tensors.len(), 40, "lora_A and lora_B for 20 layers");
    assert_eq!(
        tensors["base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"]
            .shape
            .to_vec(),
        vec![64, 16]
    );
    // The converted LoRA gives PEFT's logits of the mini adapter.
    let out = dir.path().join("out.safetensors");
    ok(&[
        "forward",
        "--model",
        s(&stories()),
        "--adapter",
        s(&lora),
        "--ids",
        &ids_arg(&g["input_ids"]),
        "--out",
        s(&out),
    ]);
    let ours = read_safetensors(&out).unwrap();
    assert_close(
        "converted LoRA logits",
        &f32s(&ours["logits"]),
        &f32s(&g["logits"]),
    );
    // Bat has no exact low-rank form: the rank is required.
    let err = fails(
        &[
            "convert-adapter",
            "--model",
            s(&stories()),
            "--adapter",
            s(&shared().join("golden/peft_bat_stories260k")),
            "--out",
            s(&dir.path().join("bat")),
        ],
        1,
    );
    assert!(err.contains("give the LoRA rank"), "{err}");
}

/// `bone generate --chat` renders SmolLM2's chat template (from the GGUF metadata, default
/// system prompt included) with the generation prompt and answers greedily with transformers'
/// tokens (golden `generated_ids` after `chat_ids`), printing the answer alone.
#[test]
fn generate_chat_answers_with_the_gguf_chat_template() {
    let gguf = shared().join("models/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf");
    let g = golden("smollm2_gguf_forward");
    let chat: Vec<u32> = g["chat_ids"].iter::<i64>().map(|v| v as u32).collect();
    let generated: Vec<u32> = g["generated_ids"].iter::<i64>().map(|v| v as u32).collect();
    let answer = &generated[chat.len()..];
    let tokenizer = models::Tokenizer::from_pretrained(&gguf).unwrap();
    let out = bone(&[
        "generate",
        "--model",
        s(&gguf),
        "--chat",
        "What is the capital of France?",
        "--max-new-tokens",
        "24",
        "--no-stream",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.trim_end_matches('\n'),
        tokenizer.decode(answer, true).unwrap()
    );
    assert_eq!(stdout, "The capital of France is Paris.\n");
    assert!(
        stderr.starts_with(&format!("{} tokens in ", answer.len())),
        "{stderr}"
    );
    let err = fails(&["generate", "--model", s(&stories()), "--chat", "Hi"], 1);
    assert!(err.contains("has no chat template"), "{err}");
    let err = fails(
        &[
            "generate",
            "--model",
            s(&stories()),
            "--chat",
            "Hi",
            "--prompt",
            "x",
        ],
        2,
    );
    assert!(err.contains("cannot be used with"), "{err}");
}
