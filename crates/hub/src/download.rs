//! Plain-URL downloads for the data files (GLUE, GSM8K): written to `<file>.part`, resumed
//! with an HTTP `Range` after an interrupted body, checked against a pinned sha256 (a
//! mismatch deletes the file and downloads it again), then renamed into place. A progress
//! bar is drawn on stderr when it is a terminal.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::error::{io, HubError, Result};

/// Downloads (whole bodies, counting checksum failures) before giving up.
pub const ATTEMPTS: usize = 3;
/// Resumptions of one interrupted body before it counts as a failed attempt.
const RESUMES: usize = 5;

/// How a download went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The file was already there with the right sha256.
    Present,
    /// It was downloaded; `resumed` interrupted bodies were continued with a Range request,
    /// `retried` complete downloads were thrown away for a wrong sha256.
    Downloaded {
        /// Range resumptions.
        resumed: usize,
        /// Checksum retries.
        retried: usize,
    },
}

/// The sha256 of a file, lowercase hex.
///
/// # Errors
/// [`HubError::Io`] when it cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The sha256 of `bytes`, lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads `url` to `dest` unless `dest` already has `sha256` (`None`: no check, used for
/// archives whose members are checked instead).
///
/// # Errors
/// [`HubError::Download`] naming the URL and file when the server cannot be reached or
/// answers an error; [`HubError::Checksum`] when every attempt brought other bytes.
pub fn download_verified(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    sha256: Option<&str>,
    progress: bool,
) -> Result<Outcome> {
    if dest.is_file() && sha256.is_none_or(|want| sha256_file(dest).ok().as_deref() == Some(want)) {
        return Ok(Outcome::Present);
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let part = part_path(dest);
    let mut resumed = 0;
    let mut found = String::new();
    for attempt in 0..ATTEMPTS {
        resumed += fetch_resuming(agent, url, &part, progress)?;
        found = sha256_file(&part)?;
        if sha256.is_none_or(|want| want == found) {
            std::fs::rename(&part, dest).map_err(io(dest))?;
            return Ok(Outcome::Downloaded {
                resumed,
                retried: attempt,
            });
        }
        eprintln!(
            "{}: sha256 {found}, expected {}; downloading it again",
            dest.display(),
            sha256.unwrap_or_default()
        );
        std::fs::remove_file(&part).map_err(io(&part))?;
    }
    Err(HubError::Checksum {
        url: url.to_string(),
        file: dest.to_path_buf(),
        expected: sha256.unwrap_or_default().to_string(),
        found,
        attempts: ATTEMPTS,
    })
}

/// `<dest>.part`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Completes `part` from `url`, resuming after interruptions; returns how many resumptions.
fn fetch_resuming(agent: &ureq::Agent, url: &str, part: &Path, progress: bool) -> Result<usize> {
    let mut resumed = 0;
    loop {
        match fetch_once(agent, url, part, progress) {
            Ok(()) => return Ok(resumed),
            Err(Fetch::Interrupted(message)) => {
                if resumed == RESUMES {
                    return Err(download_error(url, part, message));
                }
                resumed += 1;
                std::thread::sleep(Duration::from_millis(100 * resumed as u64));
            }
            Err(Fetch::Fatal(e)) => return Err(e),
        }
    }
}

enum Fetch {
    /// The body stopped early: resume with a Range.
    Interrupted(String),
    /// Anything else.
    Fatal(HubError),
}

fn download_error(url: &str, file: &Path, message: impl Into<String>) -> HubError {
    HubError::Download {
        url: url.to_string(),
        file: file.to_path_buf(),
        message: message.into(),
    }
}

/// One request: `Range: bytes=<have>-` when `part` has bytes; a `200` answer (a server that
/// ignores ranges) starts the file again.
fn fetch_once(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    progress: bool,
) -> std::result::Result<(), Fetch> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        // The part already holds the whole file.
        Err(ureq::Error::Status(416, _)) if have > 0 => return Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            let message = format!("HTTP {code} {}", r.status_text());
            return Err(Fetch::Fatal(download_error(url, part, message)));
        }
        Err(e) => return Err(Fetch::Fatal(download_error(url, part, e.to_string()))),
    };
    let append = response.status() == 206 && have > 0;
    let start = if append { have } else { 0 };
    let total = response
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|n| n + start);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| Fetch::Fatal(io(part)(e)))?;
    let bar = progress_bar(progress, total, start, part);
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                bar.abandon();
                return Err(Fetch::Interrupted(format!("body interrupted: {e}")));
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| Fetch::Fatal(io(part)(e)))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

fn progress_bar(on: bool, total: Option<u64>, start: u64, part: &Path) -> ProgressBar {
    if !on {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let style = ProgressStyle::with_template(
        "{msg:40!} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    let name = part.file_name().unwrap_or_default().to_string_lossy();
    bar.set_message(name.trim_end_matches(".part").to_string());
    bar.set_position(start);
    bar
}
