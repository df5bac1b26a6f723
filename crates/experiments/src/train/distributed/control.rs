//! The ranks' control connections: each rank keeps one TCP connection to rank 0 (at
//! `MASTER_ADDR:MASTER_PORT`) over which the ranks check they run the same configuration,
//! and which tells a rank, within `--peer-timeout`, that another one is gone.
//!
//! Lines of text: `HELLO <rank> <world_size> <config json>` from each rank, `OK` or
//! `ERR <message>` from rank 0, then `HB` heartbeats both ways, `DONE` when a rank finished
//! training, and `LOST <rank>` from rank 0 when a rank's connection ended without `DONE`.
//! A lost rank stops this process with exit code [`LOST_EXIT`] and an error naming it
//! (burn-collective would wait for it forever).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use super::world::{World, LOST_EXIT};

/// Set once this rank finished training: a peer that leaves afterwards is no fault.
static DONE: AtomicBool = AtomicBool::new(false);
/// The connections heartbeats and `DONE` go to.
static LINKS: Mutex<Vec<Arc<Mutex<TcpStream>>>> = Mutex::new(Vec::new());
/// The data connections (rank 0: one per other rank, by rank; others: the one to rank 0).
static DATA: Mutex<Vec<(usize, TcpStream)>> = Mutex::new(Vec::new());

/// Meets the other ranks: rank 0 listens and waits for every other rank, the others connect
/// to it; each sends its configuration (`config`, the keys that must agree) and rank 0
/// compares them. Then the heartbeats start.
///
/// # Errors
/// The port is taken, a rank does not come within `--peer-timeout`, two ranks claim one rank
/// or disagree on the world size, or a key of the configuration differs (named, with both
/// values).
pub fn join<C: Serialize>(world: &World, config: &C) -> anyhow::Result<()> {
    if world.world_size == 1 {
        return Ok(());
    }
    let keys = flatten(&serde_json::to_value(config)?);
    let (links, data) = if world.rank == 0 {
        host(world, &keys)?
    } else {
        let (link, data) = connect(world, &keys)?;
        (vec![link], vec![data])
    };
    *DATA.lock().unwrap_or_else(|p| p.into_inner()) = data;
    let links: Vec<_> = links
        .into_iter()
        .map(|(r, s)| (r, Arc::new(Mutex::new(s))))
        .collect();
    for (peer, link) in &links {
        watch(world, *peer, Arc::clone(link), &links)?;
    }
    LINKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(links.iter().map(|(_, l)| Arc::clone(l)));
    heartbeat(world.peer_timeout);
    Ok(())
}

/// Tells the other ranks this one finished training: from now on a rank that leaves is
/// no fault.
pub fn finish() {
    DONE.store(true, Ordering::SeqCst);
    for link in LINKS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let mut stream = link.lock().unwrap_or_else(|p| p.into_inner());
        let _ = stream.write_all(b"DONE\n");
    }
}

/// Rank 0: accepts the other ranks until all came or the timeout passed, and checks them.
/// A control and a data connection per rank.
type Joined = (Vec<(usize, TcpStream)>, Vec<(usize, TcpStream)>);

fn host(world: &World, keys: &BTreeMap<String, String>) -> anyhow::Result<Joined> {
    let address = format!("{}:{}", world.master_addr, world.master_port);
    let listener = TcpListener::bind(&address).with_context(|| {
        format!("rank 0: cannot listen on MASTER_ADDR:MASTER_PORT {address} (is the port already taken by another run?)")
    })?;
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + world.peer_timeout;
    let mut peers: Vec<(usize, TcpStream)> = Vec::new();
    let mut data: Vec<(usize, TcpStream)> = Vec::new();
    let mut failure: Option<String> = None;
    while peers.len() + 1 < world.world_size || data.len() + 1 < world.world_size {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(world.peer_timeout))?;
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut line = String::new();
                reader.read_line(&mut line)?;
                if let Some(rank) = line.trim_end().strip_prefix("DATA ") {
                    stream.set_read_timeout(None)?;
                    stream.set_nodelay(true)?;
                    data.push((rank.parse()?, stream));
                    continue;
                }
                let (rank, size, theirs) = parse_hello(&line)?;
                if failure.is_none() {
                    failure = check_peer(world, &peers, rank, size, keys, &theirs);
                }
                peers.push((rank, stream));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    let mut missing: Vec<usize> = (1..world.world_size)
                        .filter(|r| !peers.iter().any(|(p, _)| p == r))
                        .collect();
                    missing.sort_unstable();
                    bail!(
                        "rank 0: rank(s) {missing:?} of WORLD_SIZE {} did not connect to {address} within {:.0} s (--peer-timeout)",
                        world.world_size,
                        world.peer_timeout.as_secs_f64()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).context("rank 0: accepting a rank"),
        }
    }
    let reply = match &failure {
        Some(message) => format!("ERR {message}\n"),
        None => "OK\n".to_string(),
    };
    for (_, stream) in &mut peers {
        stream.write_all(reply.as_bytes())?;
    }
    if let Some(message) = failure {
        bail!("{message}");
    }
    data.sort_by_key(|(rank, _)| *rank);
    Ok((peers, data))
}

/// The first disagreement of a joining rank with rank 0 or the ranks already in.
fn check_peer(
    world: &World,
    peers: &[(usize, TcpStream)],
    rank: usize,
    size: usize,
    ours: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
) -> Option<String> {
    if size != world.world_size {
        return Some(format!(
            "rank {rank} runs with WORLD_SIZE {size}, rank 0 with {}",
            world.world_size
        ));
    }
    if rank == 0 || rank >= size || peers.iter().any(|(p, _)| *p == rank) {
        return Some(format!("two processes claim RANK {rank}"));
    }
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for key in keys {
        let (a, b) = (ours.get(key), theirs.get(key));
        if a != b {
            let show = |v: Option<&String>| v.map_or("unset".to_string(), |v| v.clone());
            return Some(format!(
                "rank {rank}'s configuration differs from rank 0's: `{key}` is {} on rank {rank}, {} on rank 0",
                show(b),
                show(a)
            ));
        }
    }
    None
}

/// A rank other than 0: connects to rank 0 (retrying until the timeout), says hello and
/// waits for rank 0's verdict.
fn connect(
    world: &World,
    keys: &BTreeMap<String, String>,
) -> anyhow::Result<((usize, TcpStream), (usize, TcpStream))> {
    let address = format!("{}:{}", world.master_addr, world.master_port);
    let deadline = Instant::now() + world.peer_timeout;
    let mut stream = loop {
        let attempt = address
            .to_socket_addrs()
            .with_context(|| {
                format!(
                    "rank {}: resolving MASTER_ADDR:MASTER_PORT {address}",
                    world.rank
                )
            })?
            .next()
            .map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)));
        match attempt {
            Some(Ok(stream)) => break stream,
            _ if Instant::now() > deadline => bail!(
                "rank {}: nobody answered at MASTER_ADDR:MASTER_PORT {address} within {:.0} s (--peer-timeout): is rank 0 running?",
                world.rank,
                world.peer_timeout.as_secs_f64()
            ),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    stream.set_read_timeout(Some(world.peer_timeout))?;
    let hello = format!(
        "HELLO {} {} {}\n",
        world.rank,
        world.world_size,
        serde_json::to_string(keys)?
    );
    stream.write_all(hello.as_bytes())?;
    let data_address = stream.peer_addr()?;
    let mut data =
        TcpStream::connect_timeout(&data_address, world.peer_timeout).with_context(|| {
            format!(
                "rank {}: opening the data connection to {address}",
                world.rank
            )
        })?;
    data.set_nodelay(true)?;
    data.write_all(format!("DATA {}\n", world.rank).as_bytes())?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    let read = reader.read_line(&mut line);
    match line.trim_end().split_once(' ').map_or((line.trim_end(), ""), |p| p) {
        ("OK", _) => Ok(((0, stream), (0, data))),
        ("ERR", message) => bail!("{message}"),
        _ => bail!(
            "rank {}: rank 0 at {address} did not confirm within {:.0} s (--peer-timeout) ({read:?})",
            world.rank,
            world.peer_timeout.as_secs_f64()
        ),
    }
}

fn parse_hello(line: &str) -> anyhow::Result<(usize, usize, BTreeMap<String, String>)> {
    let mut it = line.trim_end().splitn(4, ' ');
    let (Some("HELLO"), Some(rank), Some(size), Some(json)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        bail!("rank 0: a process at MASTER_PORT sent `{}`, expected `HELLO <rank> <world size> <config>`", line.trim_end());
    };
    Ok((rank.parse()?, size.parse()?, serde_json::from_str(json)?))
}

/// Reads `link` (to `peer`) on a thread: a `LOST` relayed by rank 0, or the connection ending
/// or falling silent before this rank finished, stops the process.
fn watch(
    world: &World,
    peer: usize,
    link: Arc<Mutex<TcpStream>>,
    all: &[(usize, Arc<Mutex<TcpStream>>)],
) -> anyhow::Result<()> {
    let reader = link.lock().unwrap_or_else(|p| p.into_inner()).try_clone()?;
    let others: Vec<_> = all
        .iter()
        .filter(|(p, _)| *p != peer)
        .map(|(_, l)| Arc::clone(l))
        .collect();
    let (rank, size, timeout) = (world.rank, world.world_size, world.peer_timeout);
    std::thread::Builder::new()
        .name(format!("bone-watch-rank{peer}"))
        .spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut peer_done = false;
            loop {
                let mut line = String::new();
                let read = reader.read_line(&mut line);
                let line = line.trim_end();
                if let Some(lost) = line.strip_prefix("LOST ") {
                    lost_rank(
                        rank,
                        size,
                        lost.parse().unwrap_or(peer),
                        "rank 0 reported it gone",
                    );
                }
                match read {
                    Ok(0) | Err(_) => {
                        if peer_done || DONE.load(Ordering::SeqCst) {
                            return;
                        }
                        let why = match read {
                            Err(ref e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) =>
                            {
                                format!(
                                    "silent for {:.0} s (--peer-timeout)",
                                    timeout.as_secs_f64()
                                )
                            }
                            _ => "its connection closed".to_string(),
                        };
                        for other in &others {
                            let mut s = other.lock().unwrap_or_else(|p| p.into_inner());
                            let _ = s.write_all(format!("LOST {peer}\n").as_bytes());
                        }
                        lost_rank(rank, size, peer, &why);
                    }
                    Ok(_) if line == "DONE" => peer_done = true,
                    Ok(_) => {}
                }
            }
        })?;
    Ok(())
}

/// Stops this process: `lost` is gone.
fn lost_rank(rank: usize, size: usize, lost: usize, why: &str) -> ! {
    eprintln!(
        "error: rank {lost} of WORLD_SIZE {size} was lost ({why}); rank {rank} stops. The last complete checkpoint is intact: restart every rank with --resume"
    );
    for link in LINKS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if let Ok(s) = link.try_lock() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
    std::process::exit(i32::from(LOST_EXIT))
}

/// Sends `HB` on every link a few times per timeout.
fn heartbeat(timeout: Duration) {
    let every = (timeout / 4).max(Duration::from_millis(50));
    let _ = std::thread::Builder::new()
        .name("bone-heartbeat".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            for link in LINKS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let mut s = link.lock().unwrap_or_else(|p| p.into_inner());
                let _ = s.write_all(b"HB\n");
            }
        });
}

/// A JSON value as `key.path → value` strings.
fn flatten(value: &serde_json::Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            serde_json::Value::Null => {}
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

/// Sums `values` over the ranks, through rank 0 over the data connections: every rank sends
/// its buffer, rank 0 adds them in rank order and sends the sum back (so every rank holds the
/// same bits). A rank lost meanwhile stops the process through its control connection.
///
/// # Panics
/// A data connection that fails (the control connection reports a lost rank first).
pub fn sum_over_ranks(world: &World, values: &mut [f32]) {
    let mut data = DATA.lock().unwrap_or_else(|p| p.into_inner());
    let io = |e: std::io::Error| -> ! {
        // Give the control connection's watcher the time to name the lost rank.
        std::thread::sleep(world.peer_timeout + Duration::from_secs(1));
        panic!("rank {}: data connection failed: {e}", world.rank)
    };
    if world.rank == 0 {
        let mut buffer = vec![0f32; values.len()];
        for (_, stream) in data.iter_mut() {
            read_f32s(stream, &mut buffer).unwrap_or_else(|e| io(e));
            for (v, b) in values.iter_mut().zip(&buffer) {
                *v += b;
            }
        }
        for (_, stream) in data.iter_mut() {
            write_f32s(stream, values).unwrap_or_else(|e| io(e));
        }
    } else if let Some((_, stream)) = data.first_mut() {
        write_f32s(stream, values).unwrap_or_else(|e| io(e));
        read_f32s(stream, values).unwrap_or_else(|e| io(e));
    }
}

fn write_f32s(stream: &mut TcpStream, values: &[f32]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(8 + values.len() * 4);
    bytes.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    stream.write_all(&bytes)
}

fn read_f32s(stream: &mut TcpStream, values: &mut [f32]) -> std::io::Result<()> {
    use std::io::Read;
    let mut len = [0u8; 8];
    stream.read_exact(&mut len)?;
    if u64::from_le_bytes(len) != values.len() as u64 {
        return Err(std::io::Error::other(format!(
            "a rank sent {} values, expected {} (the ranks train different tensors)",
            u64::from_le_bytes(len),
            values.len()
        )));
    }
    let mut bytes = vec![0u8; values.len() * 4];
    stream.read_exact(&mut bytes)?;
    for (v, b) in values.iter_mut().zip(bytes.chunks_exact(4)) {
        *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    Ok(())
}
