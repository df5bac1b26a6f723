//! `bone chat`: one turn with `--prompt`, two turns piped on stdin with the history in the
//! second prompt, the GGUF file's own ChatML template, and a model without a template.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common;
use common::shared;

/// A plain template for stories260K (a base model without one).
const TEMPLATE: &str = "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

fn setup(name: &str) -> (std::path::PathBuf, String, String) {
    let dir = common::tmp("chat-cli", name);
    std::fs::create_dir_all(&dir).unwrap();
    let template = dir.join("chat.jinja");
    std::fs::write(&template, TEMPLATE).unwrap();
    let model = common::shared_arg("models/stories260K");
    (dir, model, template.to_str().unwrap().to_string())
}

/// Runs `bone chat ARGS` with `stdin` piped in; (status, stdout, stderr).
fn chat(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bone"))
        .arg("chat")
        .args(args)
        .env_remove("BONE_DEVICE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The text between `--- prompt ---` and `--- end of prompt ---` markers, in order.
fn prompts(stderr: &str) -> Vec<String> {
    stderr
        .split("--- prompt ---\n")
        .skip(1)
        .map(|p| {
            p.split("\n--- end of prompt ---")
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn one_turn_is_the_greedy_continuation_of_the_rendered_prompt() {
    let (dir, model, template) = setup("one");
    let args = [
        "--model",
        &model,
        "--chat-template",
        &template,
        "--prompt",
        "Once upon a time",
        "--max-new-tokens",
        "12",
        "--show-prompt",
    ];
    let (code, stdout, stderr) = chat(&args, "");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(prompts(&stderr), ["<s>user: Once upon a time\nassistant:"]);
    // `bone generate` adds BOS itself: the same prompt without `<s>` gives the same tokens.
    let generated = common::ok(
        env!("CARGO_BIN_EXE_bone"),
        &[
            "generate",
            "--model",
            &model,
            "--prompt",
            "user: Once upon a time\nassistant:",
            "--max-new-tokens",
            "12",
            "--no-stream",
        ],
    );
    let reply = stdout.trim_end_matches('\n');
    assert!(!reply.trim().is_empty(), "{stdout:?}");
    assert!(
        generated.trim_end().ends_with(reply.trim_end()),
        "chat {reply:?} vs generate {generated:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn piped_turns_keep_the_conversation() {
    let (dir, model, template) = setup("two");
    let args = [
        "--model",
        &model,
        "--chat-template",
        &template,
        "--system",
        "Tell a story.",
        "--max-new-tokens",
        "8",
        "--show-prompt",
    ];
    let (code, _, stderr) = chat(&args, "Hello\n\nWho is Lily?\n");
    assert_eq!(code, Some(0), "{stderr}");
    let turns = prompts(&stderr);
    assert_eq!(turns.len(), 2, "{stderr}");
    assert_eq!(
        turns[0],
        "<s>system: Tell a story.\nuser: Hello\nassistant:"
    );
    // The first reply, as a one-turn chat gives it, is in the second prompt.
    let (_, first, _) = chat(
        &[
            "--model",
            &model,
            "--chat-template",
            &template,
            "--system",
            "Tell a story.",
            "--max-new-tokens",
            "8",
            "--prompt",
            "Hello",
        ],
        "",
    );
    let expected = format!(
        "<s>system: Tell a story.\nuser: Hello\nassistant: {}\nuser: Who is Lily?\nassistant:",
        first.trim()
    );
    assert_eq!(turns[1], expected);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_gguf_template_renders_chatml_and_a_base_model_without_one_is_refused() {
    let gguf = shared().join("models/SmolLM2-135M-Instruct-GGUF");
    let (code, stdout, stderr) = chat(
        &[
            "--model",
            gguf.to_str().unwrap(),
            "--prompt",
            "What is 2+2?",
            "--max-new-tokens",
            "4",
            "--show-prompt",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    let prompt = &prompts(&stderr)[0];
    assert!(prompt.starts_with("<|im_start|>system\n"), "{prompt}");
    assert!(
        prompt.ends_with("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"),
        "{prompt}"
    );
    assert!(!stdout.trim().is_empty(), "{stdout:?}");

    let model = common::shared_arg("models/stories260K");
    let (code, _, stderr) = chat(&["--model", &model, "--prompt", "Hi"], "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--model {model}: no chat template (no `chat_template` in tokenizer_config.json, no \
             chat_template.jinja); a base model has none, pass --chat-template FILE"
        )),
        "{stderr}"
    );
}
