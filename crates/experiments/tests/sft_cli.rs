//! `sft` on stories260K beyond the basics of `metamath_cli`: `--packing` trains to the same
//! losses as padding on the same rows, and `--eval-every` with `--samples` writes a dev point
//! and a file of sample generations per evaluation.

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
    let mut args = sft_args(&model, data, padded.to_str().unwrap());
    args.extend(["--samples", "0"]);
    let plain = sft(&args);
    assert!(!plain.contains("packed"), "{plain}");
    let mut args = sft_args(&model, data, packed.to_str().unwrap());
    args.extend(["--samples", "0", "--packing"]);
    let stdout = sft(&args);
    assert!(stdout.contains(" · packed"), "{stdout}");

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
