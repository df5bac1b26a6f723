//! A small HTTP/1.1 server on 127.0.0.1 for the download tests: it serves registered bodies
//! with `Range` support, the headers the Hub's `resolve` endpoint sends, scripted faults
//! (a body cut short, corrupted bytes), and logs every request. It answers only loopback
//! connections, closes each after one response, and stops when dropped.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to do to the next full-body response of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Send the headers of the whole body but close after this many body bytes.
    CloseAfter(usize),
    /// Send a body of the right length with its bytes changed.
    Corrupt,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The path, `/a/b`.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct Entry {
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    faults: VecDeque<Fault>,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<String, Entry>,
    log: Vec<Logged>,
}

/// The running server.
pub struct Server {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = handle(stream, &state);
                    });
                }
            })
        };
        Self {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `body` at `path` (which starts with `/`).
    pub fn serve(&self, path: &str, body: Vec<u8>) {
        self.serve_with(path, body, Vec::new());
    }

    /// Serves `body` at `path` with extra response headers.
    pub fn serve_with(&self, path: &str, body: Vec<u8>, headers: Vec<(String, String)>) {
        let entry = Entry {
            body,
            headers,
            faults: VecDeque::new(),
        };
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), entry);
    }

    /// Serves `file` of Hub repository `repo` at `revision` as the Hub's `resolve` endpoint
    /// does: `x-repo-commit`, a quoted `etag` (the sha256, as the Hub gives for LFS files)
    /// and `x-linked-etag`.
    pub fn serve_hub(&self, repo: &str, revision: &str, commit: &str, file: &str, body: Vec<u8>) {
        let etag = sha256_hex(&body);
        let headers = vec![
            ("x-repo-commit".to_string(), commit.to_string()),
            ("etag".to_string(), format!("\"{etag}\"")),
            ("x-linked-etag".to_string(), format!("\"{etag}\"")),
        ];
        self.serve_with(&format!("/{repo}/resolve/{revision}/{file}"), body, headers);
    }

    /// Queues a fault for the next full-body response of `path`.
    pub fn fault(&self, path: &str, fault: Fault) {
        let mut state = self.state.lock().unwrap();
        let entry = state.files.get_mut(path).expect("fault on a served path");
        entry.faults.push_back(fault);
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// The requests for `path`.
    pub fn requests(&self, path: &str) -> Vec<Logged> {
        self.log().into_iter().filter(|l| l.path == path).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (mut range, mut authorization) = (None, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.trim_end().split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(value.trim().to_string()),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let (status, head, body) = respond(state, &path, range.as_deref());
    state.lock().unwrap().log.push(Logged {
        path,
        range,
        authorization,
        status,
    });
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()?;
    stream.shutdown(Shutdown::Both)
}

/// The status, the head and the bytes to send.
fn respond(state: &Mutex<State>, path: &str, range: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut state = state.lock().unwrap();
    let Some(entry) = state.files.get_mut(path) else {
        let head = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return (404, head.to_string(), Vec::new());
    };
    let total = entry.body.len();
    let (start, end) = match range.and_then(parse_range) {
        Some((s, e)) => (
            s,
            e.unwrap_or(total.saturating_sub(1))
                .min(total.saturating_sub(1)),
        ),
        None => (0, total.saturating_sub(1)),
    };
    if range.is_some() && start >= total {
        let head = format!(
            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return (416, head, Vec::new());
    }
    let mut body = entry.body[start..=end].to_vec();
    let length = body.len();
    // A metadata probe (`bytes=0-0`) never consumes a fault.
    let probe = range == Some("bytes=0-0");
    if !probe {
        match entry.faults.pop_front() {
            Some(Fault::CloseAfter(n)) => body.truncate(n.min(length)),
            Some(Fault::Corrupt) => body.iter_mut().for_each(|b| *b ^= 0x5a),
            None => {}
        }
    }
    let (status, reason) = if range.is_some() {
        (206, "Partial Content")
    } else {
        (200, "OK")
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {length}\r\nConnection: close\r\n\
         Accept-Ranges: bytes\r\n"
    );
    if range.is_some() {
        head.push_str(&format!("Content-Range: bytes {start}-{end}/{total}\r\n"));
    }
    for (name, value) in &entry.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    (status, head, body)
}

/// `bytes=N-` or `bytes=N-M`.
fn parse_range(value: &str) -> Option<(usize, Option<usize>)> {
    let spec = value.strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some((start, end))
}

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
