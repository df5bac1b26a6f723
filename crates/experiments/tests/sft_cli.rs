//! `sft` on stories260K beyond the basics of `metamath_cli`: `--packing` and `--threads` train
//! to the same losses as padding one micro-batch at a time on the same rows, `--eval-every`
//! with `--samples` writes a dev point and a file of sample generations per evaluation, and
//! the load-time limits and input fingerprints of issue 16.

use crate::common::json;
use crate::metamath_cli::{chat_rows, sft, sft_args, step_losses, stories, tmp};

#[test]
fn packing_trains_to_the_losses_of_padding_on_the_same_rows() {
    let model = stories();
    let dir = tmp("sft-packing");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("chat.jsonl");
    std::fs::write(&data, chat_rows(30)).unwrap();
    let data = data.to_str().unwrap();
    let (padded, packed) = (dir.join("padded"), dir.join("packed"));
    // Padded micro-batches one after another; packed ones two at a time on step threads:
    // neither changes the losses.
    let mut args = sft_args(&model, data, padded.to_str().unwrap());
    args.extend(["--samples", "0", "--threads", "1"]);
    let plain = sft(&args);
    assert!(!plain.contains("packed"), "{plain}");
    assert!(!plain.contains("at once"), "{plain}");
    let mut args = sft_args(&model, data, packed.to_str().unwrap());
    args.extend(["--samples", "0", "--packing", "--threads", "2"]);
    let stdout = sft(&args);
    assert!(
        stdout.contains(" · packed · 2 micro-batches at once"),
        "{stdout}"
    );
    assert!(stdout.contains(" GFLOP/step, "), "{stdout}");

    let (a, b) = (step_losses(&padded), step_losses(&packed));
    assert_eq!((a.len(), b.len()), (3, 3));
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() <= 1e-4 * x.abs(),
            "padded {a:?} vs packed {b:?}"
        );
    }
    let dev = |run: &std::path::Path| {
        json(&run.join("metrics.json"))["epochs"][0]["dev"]["loss"]
            .as_f64()
            .unwrap()
    };
    let (x, y) = (dev(&padded), dev(&packed));
    assert!(
        (x - y).abs() <= 1e-4 * x,
        "dev loss padded {x} vs packed {y}"
    );
    let config = std::fs::read_to_string(packed.join("config.toml")).unwrap();
    assert!(config.contains("packing = true"), "{config}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn eval_every_writes_a_dev_point_and_samples_per_evaluation() {
    let model = stories();
    let dir = tmp("sft-samples");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("chat.jsonl");
    std::fs::write(&data, chat_rows(30)).unwrap();
    let out = dir.join("run");
    let mut args = sft_args(&model, data.to_str().unwrap(), out.to_str().unwrap());
    // 24 training rows in steps of 8: 3 steps; evaluations after steps 1 and 2 and at the
    // epoch's end (step 3), each with 2 samples.
    args.extend(["--eval-every", "1", "--samples", "2"]);
    sft(&args);
    let metrics = json(&out.join("metrics.json"));
    let steps: Vec<u64> = metrics["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["global_step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3], "{metrics}");
    let mut files: Vec<String> = std::fs::read_dir(out.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["step-1.jsonl", "step-2.jsonl", "step-3.jsonl"]);
    for (file, step) in files.iter().zip(1..) {
        let text = std::fs::read_to_string(out.join("samples").join(file)).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        for row in rows {
            assert_eq!(row["step"], step);
            // The prompt is the Alpaca rendering of a held-out question (stories260K has no
            // chat template); the reference is its answer.
            let prompt = row["prompt"].as_str().unwrap();
            assert!(prompt.contains("### Instruction:"), "{prompt}");
            assert!(row["output"].is_string(), "{row}");
            assert!(!row["reference"].as_str().unwrap().is_empty(), "{row}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A copy of stories260K whose tokenizer_config.json carries `template`.
fn model_with_template(dir: &std::path::Path, template: &str) -> String {
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let stories = std::path::PathBuf::from(stories());
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(stories.join(file), model.join(file)).unwrap();
    }
    let config = serde_json::json!({
        "bos_token": "<s>",
        "eos_token": "</s>",
        "chat_template": template,
    });
    std::fs::write(model.join("tokenizer_config.json"), config.to_string()).unwrap();
    model.to_str().unwrap().to_string()
}

#[test]
fn bad_rows_templates_long_examples_and_empty_files_get_exact_messages() {
    let model = stories();
    let dir = tmp("sft-bad-input");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("run");
    let out = out.to_str().unwrap();
    let run_on = |name: &str, contents: &str, model: &str| -> (String, String) {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        let path = path.to_str().unwrap().to_string();
        let args = sft_args(model, &path, out);
        let result = crate::common::run(env!("CARGO_BIN_EXE_sft"), &args);
        assert_eq!(result.status.code(), Some(1), "{name}: {result:?}");
        (path, String::from_utf8(result.stderr).unwrap())
    };
    let good = chat_rows(4);
    let (path, err) = run_on(
        "role.jsonl",
        &format!("{good}{{\"messages\": [{{\"role\": \"user\", \"content\": \"q\"}}, {{\"role\": \"bot\", \"content\": \"a\"}}]}}\n"),
        &model,
    );
    assert!(
        err.contains(&format!(
            "{path}:5: key `messages[1].role`: expected one of \"system\", \"user\", \"assistant\", found \"bot\""
        )),
        "{err}"
    );
    let (path, err) = run_on(
        "no-assistant.jsonl",
        &format!("{{\"messages\": [{{\"role\": \"user\", \"content\": \"q\"}}]}}\n{good}"),
        &model,
    );
    assert!(
        err.contains(&format!(
            "{path}:1: key `messages`: expected at least one assistant turn, found 1 messages [user]"
        )),
        "{err}"
    );
    let (path, err) = run_on("empty.jsonl", "\n", &model);
    assert!(
        err.contains(&format!(
            "{path}: the file is empty; expected a JSON array or JSON Lines"
        )),
        "{err}"
    );
    // A template that raises on a system message: the row's file:line and the template's words.
    let raising = model_with_template(
        &dir,
        "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system messages') }}{% endif %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
    );
    let (path, err) = run_on(
        "system.jsonl",
        &format!("{good}{{\"messages\": [{{\"role\": \"system\", \"content\": \"s\"}}, {{\"role\": \"user\", \"content\": \"q\"}}, {{\"role\": \"assistant\", \"content\": \"a\"}}]}}\n{good}"),
        &raising,
    );
    assert!(
        err.contains(&format!(
            "{path}:5: chat template ({raising}/tokenizer_config.json): the template raised: no system messages"
        )),
        "{err}"
    );

    // Longer than --max-seq-len: cut to it and counted when a response token is left, dropped
    // and counted when the prompt alone fills it.
    let long_answer =
        "The cat saw a big red ball and ran after it all day long in the sun. ".repeat(8);
    let long_question =
        "Where did the little dog go after the rain stopped in the park? ".repeat(8);
    let long = dir.join("long.jsonl");
    let mut text = chat_rows(8);
    text.push_str(&format!(
        "{{\"messages\": [{{\"role\": \"user\", \"content\": \"Tell me.\"}}, {{\"role\": \"assistant\", \"content\": \"{long_answer}\"}}]}}\n"
    ));
    text.push_str(&format!(
        "{{\"messages\": [{{\"role\": \"user\", \"content\": \"{long_question}\"}}, {{\"role\": \"assistant\", \"content\": \"Home.\"}}]}}\n"
    ));
    std::fs::write(&long, text).unwrap();
    let eval = dir.join("eval.jsonl");
    std::fs::write(&eval, chat_rows(2)).unwrap();
    let done = dir.join("long-run");
    let mut args = sft_args(&model, long.to_str().unwrap(), done.to_str().unwrap());
    args.extend(["--eval-data", eval.to_str().unwrap(), "--samples", "0"]);
    let stdout = sft(&args);
    assert!(
        stdout.contains(
            " 9 train / 2 held-out of 12 examples (1 truncated to 128 tokens, 1 dropped)"
        ),
        "{stdout}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `args` with the value after `flag` replaced (the flag must be there).
fn with_value<'a>(mut args: Vec<&'a str>, flag: &str, value: &'a str) -> Vec<&'a str> {
    let at = args.iter().position(|a| *a == flag).expect("flag present");
    args[at + 1] = value;
    args
}

#[test]
fn r_wider_than_a_layer_and_an_impossible_memory_estimate_are_refused() {
    let model = stories();
    let dir = tmp("sft-limits");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("chat.jsonl");
    std::fs::write(&data, chat_rows(10)).unwrap();
    let out = dir.join("run");
    let base = sft_args(&model, data.to_str().unwrap(), out.to_str().unwrap());
    let err = crate::metamath_cli::sft_fails(&[base.clone(), vec!["--threads", "0"]].concat());
    assert!(
        err.contains("error: --threads 0: expected a positive number"),
        "{err}"
    );
    let err = crate::metamath_cli::sft_fails(&[base.clone(), vec!["--r", "100"]].concat());
    assert!(
        err.contains(
            "error: --r 100: larger than the input of model.layers.0.self_attn.q_proj (64 \
             features); a Bone block wider than the layer's input only repeats it. Pass --r 64 \
             or less, or --force-r to build it anyway"
        ),
        "{err}"
    );
    let err =
        crate::metamath_cli::sft_fails(&[base, vec!["--r", "10000000", "--force-r"]].concat());
    assert!(
        err.contains("error: the adapters would need about ")
            && err.contains(
                "trainable parameters × 16 bytes for weights, gradients and AdamW moments) but "
            ),
        "{err}"
    );
    assert!(!out.join("checkpoints").exists(), "nothing was trained");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resume_refuses_a_data_file_changed_since_the_run_started_and_long_sequences_warn() {
    let model = stories();
    let dir = tmp("sft-inputs");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("chat.jsonl");
    std::fs::write(&data, chat_rows(30)).unwrap();
    let out = dir.join("run");
    let args = sft_args(&model, data.to_str().unwrap(), out.to_str().unwrap());
    // stories260K's max_position_embeddings is 512: 600 is allowed, with a warning.
    let mut args = with_value(args, "--max-seq-len", "600");
    args.extend(["--samples", "0", "--stop-after-steps", "1"]);
    let run = crate::common::run(env!("CARGO_BIN_EXE_sft"), &args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: --max-seq-len 600 is above the model's max_position_embeddings 512 ({}); \
             positions past 512 were not trained",
            std::path::Path::new(&model).join("config.json").display()
        )),
        "{stderr}"
    );
    let names: Vec<String> = json(&out.join("inputs.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model.safetensors",
            "chat.jsonl"
        ]
    );
    // One more row: the data is not what the run started with.
    std::fs::write(&data, chat_rows(31)).unwrap();
    let resume = ["--resume", out.to_str().unwrap(), "--display", "plain"];
    let err = crate::metamath_cli::sft_fails(&resume);
    assert!(
        err.contains(&format!(
            "error: --resume {}: {} is not the file the run started with (",
            out.display(),
            data.display()
        )) && err.contains(&format!(
            "recorded in {}); resume with the same model and data, or start a new run",
            out.join("inputs.json").display()
        )),
        "{err}"
    );
    // The file as it was: the run resumes and finishes.
    std::fs::write(&data, chat_rows(30)).unwrap();
    crate::metamath_cli::sft(&resume);
    assert!(out.join("summary.json").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}
