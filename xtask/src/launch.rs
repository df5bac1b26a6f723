//! `cargo xtask launch --nproc N [--master-port P] [--release] [--features F] -- JOB ARGS…`:
//! N ranks of a training job on this machine, with torchrun's environment (`WORLD_SIZE`,
//! `RANK`, `LOCAL_RANK`, `MASTER_ADDR=127.0.0.1`, `MASTER_PORT`). Builds the job's binary,
//! starts the ranks, prefixes each line they print with `[rank K]`, and returns the first
//! failing rank's exit code; when a rank fails, the others stop on their own within their
//! `--peer-timeout` (they are killed if they outlive it by 30 s).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the launcher with the arguments after `launch`.
pub fn launch(args: &[String]) -> Result<(), String> {
    let split = args
        .iter()
        .position(|a| a == "--")
        .ok_or("usage: cargo xtask launch --nproc N [--master-port P] [--release] [--features F] -- JOB ARGS...")?;
    let (options, job) = (&args[..split], &args[split + 1..]);
    let (mut nproc, mut port, mut release, mut features) = (2usize, 29500u16, false, None);
    let mut it = options.iter();
    while let Some(option) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{option} needs a value"));
        match option.as_str() {
            "--nproc" => nproc = value()?.parse().map_err(|e| format!("--nproc: {e}"))?,
            "--master-port" => {
                port = value()?
                    .parse()
                    .map_err(|e| format!("--master-port: {e}"))?
            }
            "--features" => features = Some(value()?),
            "--release" => release = true,
            other => return Err(format!("unknown option `{other}` for `launch`")),
        }
    }
    if nproc == 0 {
        return Err("--nproc 0: expected at least 1".into());
    }
    let (name, job_args) = job
        .split_first()
        .ok_or("launch: name the job after `--` (glue-sst2, glue, metamath)")?;
    let mut build = vec!["build", "-p", "experiments", "--bin", name.as_str()];
    if release {
        build.push("--release");
    }
    if let Some(f) = &features {
        build.extend(["--features", f.as_str()]);
    }
    super::cargo(&build, &[])?;
    let exe = super::target_dir()
        .join(if release { "release" } else { "debug" })
        .join(name);
    let mut children: Vec<(usize, Child)> = Vec::new();
    for rank in 0..nproc {
        let mut command = Command::new(&exe);
        command
            .args(job_args)
            .env("WORLD_SIZE", nproc.to_string())
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        prefix(child.stdout.take(), rank, false);
        prefix(child.stderr.take(), rank, true);
        children.push((rank, child));
    }
    wait_all(children)
}

/// Copies a rank's output to ours, each line prefixed with `[rank K]`.
fn prefix<R: std::io::Read + Send + 'static>(pipe: Option<R>, rank: usize, stderr: bool) {
    let Some(pipe) = pipe else { return };
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if stderr {
                let _ = writeln!(std::io::stderr(), "[rank {rank}] {line}");
            } else {
                let _ = writeln!(std::io::stdout(), "[rank {rank}] {line}");
            }
        }
    });
}

/// Waits for every rank; after the first failure, gives the others 90 s to stop.
fn wait_all(mut children: Vec<(usize, Child)>) -> Result<(), String> {
    let mut failure: Option<(usize, i32)> = None;
    let mut failed_at: Option<Instant> = None;
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            match children[i].1.try_wait() {
                Ok(Some(status)) => {
                    let (rank, _) = children.remove(i);
                    if !status.success() && failure.is_none() {
                        failure = Some((rank, status.code().unwrap_or(1)));
                        failed_at = Some(Instant::now());
                    }
                }
                _ => i += 1,
            }
        }
        if failed_at.is_some_and(|t| t.elapsed() > Duration::from_secs(90)) {
            for (rank, child) in &mut children {
                eprintln!("launch: killing rank {rank}, still running 90 s after a rank failed");
                let _ = child.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match failure {
        Some((rank, code)) => Err(format!("rank {rank} exited with code {code}")),
        None => Ok(()),
    }
}
