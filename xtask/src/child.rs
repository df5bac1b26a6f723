//! Child processes with a deadline: spawn in their own process group, copy their output to a
//! log (and the terminal), poll until they exit or the deadline passes, then kill the group.
//! Also a sampler of the GPU's used memory (`nvidia-smi -lms`), run the same way.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a child ended.
pub struct Outcome {
    /// Its exit status; `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Whether the deadline killed it.
    pub timed_out: bool,
    /// Wall time from spawn to exit (or kill).
    pub elapsed: Duration,
    /// Everything it wrote to stdout.
    pub stdout: String,
}

impl Outcome {
    /// Exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `command` until it exits or `deadline` passes (then its whole process group is
/// killed), appending its stdout and stderr to `log`; its stderr goes to this terminal too,
/// its stdout with `echo`.
pub fn run_with_deadline(
    mut command: Command,
    log: &Path,
    deadline: Duration,
    echo: bool,
) -> Result<Outcome, String> {
    let file = File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let file = Arc::new(Mutex::new(file));
    let line = format!("{command:?}");
    if let Ok(mut f) = file.lock() {
        let _ = writeln!(f, "$ {line}");
    }
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start {line}: {e}"))?;
    let out = copy_output(child.stdout.take(), Arc::clone(&file), echo, true);
    let err = copy_output(child.stderr.take(), Arc::clone(&file), true, false);
    let (status, timed_out) = wait_or_kill(&mut child, start + deadline)?;
    let stdout = out.join().unwrap_or_default();
    let _ = err.join();
    let elapsed = start.elapsed();
    if let Ok(mut f) = file.lock() {
        let end = match status {
            Some(s) => format!("exited: {s}"),
            None => format!("killed after {:.0} s (deadline)", deadline.as_secs_f64()),
        };
        let _ = writeln!(f, "# {end}, {:.1} s", elapsed.as_secs_f64());
    }
    Ok(Outcome {
        status,
        timed_out,
        elapsed,
        stdout,
    })
}

/// Polls `child` until it exits or `until`; at `until` kills its process group.
fn wait_or_kill(child: &mut Child, until: Instant) -> Result<(Option<ExitStatus>, bool), String> {
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("waiting: {e}"))? {
            return Ok((Some(status), false));
        }
        if Instant::now() >= until {
            kill_group(child);
            let _ = child.wait();
            return Ok((None, true));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILL to the child's process group (it leads one: `process_group(0)`), so that its own
/// children (cargo's rustc, a test harness's helpers) go too.
fn kill_group(child: &mut Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
    let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    if rc != 0 {
        let _ = child.kill();
    }
}

/// A thread copying `stream` line by line into `log` (and the terminal with `echo`); it
/// returns the text when `keep`.
fn copy_output(
    stream: Option<impl Read + Send + 'static>,
    log: Arc<Mutex<File>>,
    echo: bool,
    keep: bool,
) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = String::new();
        let Some(stream) = stream else {
            return kept;
        };
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
            let text = String::from_utf8_lossy(&buf);
            if let Ok(mut f) = log.lock() {
                let _ = f.write_all(text.as_bytes());
            }
            if echo {
                if keep {
                    print!("{text}");
                    let _ = std::io::stdout().flush();
                } else {
                    eprint!("{text}");
                }
            }
            if keep {
                kept.push_str(&text);
            }
            buf.clear();
        }
        kept
    })
}

/// Samples the GPU's used memory every 200 ms with `nvidia-smi -lms` while it lives.
pub struct MemorySampler {
    child: Child,
    reader: JoinHandle<Vec<u64>>,
}

impl MemorySampler {
    /// Starts `nvidia-smi`; `None` where it cannot run.
    pub fn start() -> Option<Self> {
        let mut child = Command::new("nvidia-smi")
            .args([
                "--query-gpu=memory.used",
                "--format=csv,noheader,nounits",
                "-lms",
                "200",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()?;
        let stdout = child.stdout.take()?;
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| parse_mib(&l))
                .collect()
        });
        Some(Self { child, reader })
    }

    /// Stops sampling: (the first sample, the largest), in MiB; `None` without samples.
    pub fn stop(mut self) -> Option<(u64, u64)> {
        kill_group(&mut self.child);
        let _ = self.child.wait();
        let samples = self.reader.join().ok()?;
        Some((*samples.first()?, *samples.iter().max()?))
    }
}

/// `memory.used` of the first GPU, from one `nvidia-smi` line (`"1234"`, or `"1234, 5"`).
fn parse_mib(line: &str) -> Option<u64> {
    line.split(',').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn a_child_past_its_deadline_is_killed_with_its_children() {
        let dir = tempdir();
        let log = dir.join("log");
        // The grandchild `sleep` would keep the pipe open if only `sh` were killed.
        let start = Instant::now();
        let outcome = run_with_deadline(
            shell("echo started; sleep 30 & sleep 30"),
            &log,
            Duration::from_millis(500),
            false,
        )
        .unwrap();
        assert!(outcome.timed_out);
        assert!(outcome.status.is_none());
        assert!(!outcome.success());
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(outcome.stdout, "started\n");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("killed after 0 s (deadline)"), "{text}");
    }

    #[test]
    fn a_finished_child_reports_its_status_and_output() {
        let dir = tempdir();
        let log = dir.join("log");
        let outcome = run_with_deadline(
            shell("echo out; echo err >&2; exit 3"),
            &log,
            Duration::from_secs(30),
            false,
        )
        .unwrap();
        assert!(!outcome.timed_out);
        assert_eq!(outcome.status.and_then(|s| s.code()), Some(3));
        assert_eq!(outcome.stdout, "out\n");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("out\n") && text.contains("err\n"), "{text}");
        assert!(text.contains("exited: exit status: 3"), "{text}");
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        let dir = tempdir();
        let err = run_with_deadline(
            Command::new("/nonexistent/program"),
            &dir.join("log"),
            Duration::from_secs(1),
            false,
        )
        .err()
        .unwrap();
        assert!(err.contains("/nonexistent/program"), "{err}");
    }

    #[test]
    fn nvidia_smi_lines_parse_as_mib() {
        assert_eq!(parse_mib("1234"), Some(1234));
        assert_eq!(parse_mib(" 81559, 3"), Some(81559));
        assert_eq!(parse_mib("[N/A]"), None);
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "xtask-child-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
