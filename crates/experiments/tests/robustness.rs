//! Issue 16 ("nothing lost, whatever happens") on the real `glue-sst2` binary with a tiny
//! slice: SIGTERM/SIGINT, the run-folder lock between two processes, the load-time limits
//! (sequence length, tokenizer ids, `--r`, memory), outputs completed after a kill, stale
//! temporary folders; and, in process, the checkpoint writer killed at every rename.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use experiments::train::{CheckpointStore, TrainerState};

use crate::common;
use common::{adapter_values, json};

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_glue-sst2")
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("robust", name)
}

/// 64 train / 16 dev sentences of 16 tokens, 2 epochs of 2 steps, a line every step.
fn tiny(out: &Path) -> Vec<String> {
    sized(out, 64, 2)
}

/// `train` sentences for `epochs` epochs (batch 32), otherwise as [`tiny`].
fn sized(out: &Path, train: usize, epochs: usize) -> Vec<String> {
    let (train, epochs) = (train.to_string(), epochs.to_string());
    let mut args: Vec<String> = [
        "--max-train-samples",
        &train,
        "--max-eval-samples",
        "16",
        "--max-seq-len",
        "16",
        "--epochs",
        &epochs,
        "--checkpoint-every",
        "1",
        "--log-every",
        "1",
        "--display",
        "plain",
        "--r",
        "8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(base(out));
    args
}

fn base(out: &Path) -> Vec<String> {
    vec![
        "--model".into(),
        common::shared_arg("models/all-MiniLM-L6-v2"),
        "--data-root".into(),
        common::shared_arg("datasets"),
        "--out".into(),
        out.display().to_string(),
    ]
}

/// A running glue-sst2 whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
}

impl Running {
    fn start(args: &[String]) -> Self {
        let mut child = Command::new(exe())
            .args(args)
            .env_remove("BONE_DATA_ROOT")
            .env_remove("BONE_DEVICE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("glue-sst2 starts");
        let (send, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Self {
            child,
            lines,
            stdout: Vec::new(),
        }
    }

    /// Waits for a stdout line containing `needle` (at most a minute).
    fn wait_for(&mut self, needle: &str) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.stdout.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("no line with `{needle}`; stdout so far:\n{:?}", self.stdout),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Exit code, all stdout, all stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = self.child.wait().unwrap();
        self.stdout.extend(self.lines.iter());
        (status.code(), self.stdout.join("\n"), stderr)
    }
}

fn run(args: &[String]) -> (Option<i32>, String, String) {
    Running::start(args).finish()
}

#[test]
fn sigterm_checkpoints_a_second_process_is_locked_out_and_resume_ends_where_a_full_run_does() {
    let dir = tmp("sigterm");
    let mut running = Running::start(&sized(&dir, 256, 1));
    running.wait_for(" · step 1 ");
    let pid = running.child.id();
    // A second process on the folder (here `--resume`) is refused, naming the holder.
    let (code, _, stderr) = run(&[
        "--resume".into(),
        dir.display().to_string(),
        "--display".into(),
        "plain".into(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {} is in use: process {pid} holds its lock ({}); wait for that run to end or \
             stop it (a run folder takes one process at a time)",
            dir.display(),
            dir.join(".lock").display()
        )),
        "{stderr}"
    );
    running.signal("TERM");
    let (code, stdout, stderr) = running.finish();
    assert_eq!(code, Some(143), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("SIGTERM: stopping at the next step boundary and writing a checkpoint"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("; continue with: --resume {}", dir.display())),
        "{stdout}"
    );
    let latest = std::fs::read_to_string(dir.join("checkpoints/latest")).unwrap();
    assert!(dir
        .join("checkpoints")
        .join(latest.trim())
        .join("manifest.json")
        .is_file());

    let (code, stdout, stderr) = run(&[
        "--resume".into(),
        dir.display().to_string(),
        "--display".into(),
        "plain".into(),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let full = tmp("sigterm-full");
    let (code, stdout, stderr) = run(&sized(&full, 256, 1));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(json(&dir.join("metrics.json"))["global_step"], 8);
    let (resumed, uninterrupted) = (
        adapter_values(&dir.join("best")),
        adapter_values(&full.join("best")),
    );
    assert_eq!(resumed.len(), uninterrupted.len());
    for ((key, a), (_, b)) in resumed.iter().zip(&uninterrupted) {
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-4, "{key}: resumed run differs by {diff:e}");
    }

    // Killed after the final checkpoint, before metrics.json and summary.json, with
    // temporary folders of dead writers about: resume removes those and writes the outputs.
    std::fs::remove_file(full.join("metrics.json")).unwrap();
    std::fs::remove_file(full.join("summary.json")).unwrap();
    let stale_ckpt = full.join("checkpoints/.step-00000009.tmp-999999");
    std::fs::create_dir_all(stale_ckpt.join("trainable")).unwrap();
    let stale_best = full.join(".best.tmp-999999");
    std::fs::create_dir_all(&stale_best).unwrap();
    let (code, stdout, stderr) = run(&[
        "--resume".into(),
        full.display().to_string(),
        "--display".into(),
        "plain".into(),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for stale in [&stale_ckpt, &stale_best] {
        assert!(
            stderr.contains(&format!(
                "note: removed {} (left by process 999999, no longer running, which stopped \
                 while writing it)",
                stale.display()
            )),
            "{stderr}"
        );
        assert!(!stale.exists());
    }
    assert!(
        stdout.contains(
            "the run finished (8 steps) but was stopped before writing its outputs; writing them"
        ),
        "{stdout}"
    );
    assert_eq!(json(&full.join("metrics.json"))["global_step"], 8);
    assert_eq!(json(&full.join("summary.json"))["steps"], 8);
    // Now complete: a further resume is refused as before.
    let (code, _, stderr) = run(&["--resume".into(), full.display().to_string()]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("the run already finished (8 steps)"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(full);
}

#[test]
fn a_second_sigint_exits_at_once_with_130() {
    let dir = tmp("sigint");
    let mut running = Running::start(&tiny(&dir));
    running.wait_for(" · step 1 ");
    running.signal("INT");
    std::thread::sleep(Duration::from_millis(50));
    running.signal("INT");
    let (code, stdout, stderr) = running.finish();
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "SIGINT again: exiting at once; `--resume` continues from the last checkpoint written"
        ),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Ctrl-C on the dashboard: burn-train's TUI holds the terminal in raw mode (no `ISIG`), yet
/// the key reaches the run as SIGINT, which writes a checkpoint, leaves the dashboard, prints
/// the resume command and exits 130. The terminal is a pseudo-terminal of util-linux `script`;
/// the byte 0x03 written to it is what the Ctrl-C key sends.
#[test]
fn ctrl_c_on_the_dashboard_checkpoints_and_exits_130() {
    let dir = tmp("ctrl-c");
    let mut args = sized(&dir, 256, 1);
    set(&mut args, &["--display", "tui"]);
    let command_line: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_glue-sst2").to_string())
        .chain(args)
        .map(|a| format!("'{a}'"))
        .collect();
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("stty cols 120 rows 40; exec {}", command_line.join(" ")),
            "/dev/null",
        ])
        .env_remove("BONE_DATA_ROOT")
        .env_remove("BONE_DEVICE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs");
    // The dashboard's output must be drained, or the run blocks writing it.
    let mut stdout = child.stdout.take().unwrap();
    let screen = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let latest = dir.join("checkpoints/latest");
    let start = Instant::now();
    while !latest.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before its first checkpoint");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut keyboard = child.stdin.take().unwrap();
    keyboard.write_all(b"\x03").unwrap();
    keyboard.flush().unwrap();
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopped.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("Ctrl-C did not stop the run within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(keyboard);
    let screen = screen.join().unwrap();
    assert_eq!(status.code(), Some(130), "{screen}");
    assert!(
        screen.contains("SIGINT: stopping at the next step boundary and writing a checkpoint"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("; continue with: --resume {}", dir.display())),
        "{screen}"
    );
    let newest = std::fs::read_to_string(&latest).unwrap();
    assert!(dir
        .join("checkpoints")
        .join(newest.trim())
        .join("manifest.json")
        .is_file());
    let _ = std::fs::remove_dir_all(dir);
}

/// Sets flag `pair[0]` to `pair[1]` in `args` (replacing its value), or appends a lone flag.
fn set(args: &mut Vec<String>, pair: &[&str]) {
    match (args.iter().position(|a| a == pair[0]), pair.get(1)) {
        (Some(at), Some(value)) => args[at + 1] = value.to_string(),
        _ => args.extend(pair.iter().map(|s| s.to_string())),
    }
}

#[test]
fn limits_of_the_model_and_tokenizer_and_r_are_checked_at_load() {
    let dir = tmp("limits");
    let model = common::shared().join("models/all-MiniLM-L6-v2");
    let with = |extra: &[&str], out: &Path| -> String {
        let mut args = tiny(out);
        for pair in extra.chunks(2) {
            set(&mut args, pair);
        }
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, Some(1), "{extra:?}\n{stdout}\n{stderr}");
        stderr
    };
    let err = with(&["--max-seq-len", "1000"], &dir);
    assert!(
        err.contains(&format!(
            "error: --max-seq-len 1000: the model takes at most 512 tokens (max_position_embeddings \
             in {}); pass --max-seq-len 512 or less",
            model.join("config.json").display()
        )),
        "{err}"
    );
    let err = with(&["--r", "1000"], &dir);
    assert!(
        err.contains(
            "error: --r 1000: larger than the input of bert.encoder.layer.0.attention.self.query \
             (384 features); a Bone block wider than the layer's input only repeats it. Pass --r \
             384 or less, or --force-r to build it anyway"
        ),
        "{err}"
    );
    // Forced, the estimate (about 330 GiB) is refused before anything is allocated.
    let err = with(&["--r", "1000000", "--force-r"], &dir);
    assert!(
        err.contains("error: the adapters would need about ")
            && err.contains(
                "trainable parameters × 16 bytes for weights, gradients and AdamW moments) but "
            ),
        "{err}"
    );
    // A tokenizer with an id past the embedding table.
    let copy = tmp("limits-model");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&model).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    let mut tokenizer = json(&copy.join("tokenizer.json"));
    tokenizer["added_tokens"].as_array_mut().unwrap().push(
        serde_json::json!({"id": 30522, "content": "[EXTRA]", "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}),
    );
    std::fs::write(copy.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let mut args = tiny(&dir);
    let at = args.iter().position(|a| a == "--model").unwrap();
    args[at + 1] = copy.display().to_string();
    let (code, _, err) = run(&args);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: {}: the tokenizer has 30523 ids (added tokens included) but the model's \
             vocab_size is 30522 ({}); ids from 30522 on have no embedding",
            copy.join("tokenizer.json").display(),
            copy.join("config.json").display()
        )),
        "{err}"
    );
    assert!(!dir.join("config.toml").exists(), "nothing was started");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(copy);
}

#[test]
fn resume_refuses_a_train_file_changed_since_the_run_started() {
    let dir = tmp("inputs");
    let root = tmp("inputs-data");
    let sst = root.join("glue/SST-2");
    std::fs::create_dir_all(&sst).unwrap();
    for file in ["train.tsv", "dev.tsv"] {
        std::fs::copy(
            common::shared().join("datasets/glue/SST-2").join(file),
            sst.join(file),
        )
        .unwrap();
    }
    let mut args = tiny(&dir);
    let at = args.iter().position(|a| a == "--data-root").unwrap();
    args[at + 1] = root.display().to_string();
    args.extend(["--stop-after-steps".into(), "1".into()]);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    let recorded = json(&dir.join("inputs.json"));
    let names: Vec<&str> = recorded
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model.safetensors",
            "train.tsv",
            "dev.tsv"
        ]
    );
    // Every label flipped: same size, other content.
    let train = sst.join("train.tsv");
    let text = std::fs::read_to_string(&train).unwrap();
    let flipped: String = text
        .lines()
        .map(|l| match l.strip_suffix('0') {
            Some(rest) if rest.ends_with('\t') => format!("{rest}1\n"),
            _ => match l.strip_suffix('1') {
                Some(rest) if rest.ends_with('\t') => format!("{rest}0\n"),
                _ => format!("{l}\n"),
            },
        })
        .collect();
    assert_eq!(flipped.len(), text.len());
    std::fs::write(&train, flipped).unwrap();
    let (code, _, stderr) = run(&[
        "--resume".into(),
        dir.display().to_string(),
        "--display".into(),
        "plain".into(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: --resume {}: {} is not the file the run started with (same size, SHA-256 ",
            dir.display(),
            train.display()
        )) && stderr.contains(&format!(
            "recorded in {}); resume with the same model and data, or start a new run",
            dir.join("inputs.json").display()
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_memory_estimate_names_its_figures() {
    use experiments::train::limits::check_memory;
    check_memory(1000, Some(16_000)).unwrap();
    check_memory(usize::MAX, None).unwrap();
    let err = check_memory(2_000_000_000, Some(8 << 30)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the adapters would need about 29.8 GiB (2000000000 trainable parameters × 16 bytes \
         for weights, gradients and AdamW moments) but 8.0 GiB of memory is available; lower \
         --r or target fewer modules"
    );
}

#[test]
fn a_full_disk_is_reported_as_such() {
    let err = experiments::train::write_synced(Path::new("/dev/full"), b"checkpoint").unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "writing /dev/full: No space left on device (os error 28)"
    );
}

/// The state after `step` steps of a toy sequence.
fn state_at(step: usize) -> TrainerState {
    let mut state = TrainerState::new("prop".into(), 100);
    state.global_step = step;
    state
}

/// Saves the checkpoints of `steps` (a step twice is a re-save, as at an epoch end) in `store`,
/// the file of each holding its step; stops at the first error.
fn save_all(store: &CheckpointStore, steps: &[usize]) -> anyhow::Result<()> {
    for &step in steps {
        store.save(&state_at(step), |dir| {
            std::fs::create_dir_all(dir.join("trainable"))?;
            std::fs::write(dir.join("trainable/w.bin"), step.to_le_bytes().repeat(64))?;
            Ok(())
        })?;
    }
    Ok(())
}

/// The step and file contents of the newest complete checkpoint.
fn newest(store: &CheckpointStore) -> (usize, Vec<u8>) {
    let found = store.latest().unwrap().expect("a checkpoint");
    let bytes = std::fs::read(found.path.join("trainable/w.bin")).unwrap();
    (found.state.global_step, bytes)
}

#[test]
fn a_kill_at_every_rename_of_the_checkpoint_writer_resumes_to_the_uninterrupted_end() {
    let steps = [2, 4, 4, 6, 8, 8];
    let reference = tmp("prop-ref");
    let store = CheckpointStore::new(reference.clone(), 2);
    save_all(&store, &steps).unwrap();
    let expected = newest(&store);
    assert_eq!(expected.0, 8);
    // Two renames a save (the folder, then `latest`).
    for kill_at in 1..=2 * steps.len() {
        let dir = tmp(&format!("prop-{kill_at}"));
        let killed = CheckpointStore::new(dir.clone(), 2).with_fault_after_renames(kill_at);
        let result = save_all(&killed, &steps);
        assert!(result.is_err(), "kill at {kill_at}");
        // Resume: the newest complete checkpoint, at least the last one whose `latest` switch
        // (its second rename) was done.
        let reopened = CheckpointStore::new(dir.clone(), 2);
        let (step, bytes) = newest(&reopened);
        if let Some(&committed) = (kill_at / 2).checked_sub(1).and_then(|i| steps.get(i)) {
            assert!(
                step >= committed,
                "kill at {kill_at}: resumed at {step} < {committed}"
            );
        }
        assert_eq!(bytes, step.to_le_bytes().repeat(64), "kill at {kill_at}");
        // Continuing from there reaches the uninterrupted end.
        let rest: Vec<usize> = steps.iter().copied().filter(|&s| s > step).collect();
        save_all(&reopened, &rest).unwrap();
        assert_eq!(newest(&reopened), expected, "kill at {kill_at}");
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_dir_all(reference);
}

#[test]
fn bone_outputs_never_overwrite_what_the_user_had() {
    let bone = env!("CARGO_BIN_EXE_bone");
    let dir = tmp("outputs");
    let mine = dir.join("lora");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("adapter_config.json"), "mine").unwrap();
    let (model, adapter) = (
        common::shared_arg("models/stories260K"),
        common::shared_arg("golden/peft_mini_stories260k"),
    );
    let convert = |out: &Path| {
        vec![
            "convert-adapter".to_string(),
            "--model".into(),
            model.clone(),
            "--adapter".into(),
            adapter.clone(),
            "--to".into(),
            "lora".into(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let args = convert(&mine);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = common::fails(bone, &args, 1);
    assert!(
        err.contains(&format!(
            "--out {}: the folder already holds files; choose a new or empty folder",
            mine.display()
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("adapter_config.json")).unwrap(),
        "mine"
    );
    // Into a new folder: complete, and no temporary folder is left beside it.
    let fresh = dir.join("fresh");
    let args = convert(&fresh);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::ok(bone, &args);
    assert!(fresh.join("adapter_model.safetensors").is_file());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["fresh", "lora"]);
    let _ = std::fs::remove_dir_all(dir);
}
