//! The exclusive lock on a run folder, held for the life of the run: `<run>/.lock`, an OS file
//! lock (flock/LockFileEx through fs4) on a file holding the holder's PID. A second process
//! (a new run or `--resume` on the same folder) is refused, naming the holder; the lock goes
//! with the process, however it ends, so a killed run never leaves the folder locked.
//!
//! Within one process the lock is shared: taking it again for a folder already held returns
//! the same lock (OS locks are per open file, so a second open would refuse its own process).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{bail, Context};

/// The lock file inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// A held lock on a run folder; released when the last clone is dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

/// The locks this process holds, by canonical folder.
static HELD: Mutex<Option<HashMap<PathBuf, Weak<RunLock>>>> = Mutex::new(None);

impl RunLock {
    /// Takes the lock on `root` (created when missing), or the one this process already holds.
    ///
    /// # Errors
    /// Another process holds it (the message names its PID), or the folder or lock file cannot
    /// be created.
    pub fn acquire(root: &Path) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating run folder {}", root.display()))?;
        let key = root
            .canonicalize()
            .with_context(|| format!("resolving {}", root.display()))?;
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        let held = held.get_or_insert_with(HashMap::new);
        if let Some(lock) = held.get(&key).and_then(Weak::upgrade) {
            return Ok(lock);
        }
        let lock = Arc::new(Self::take(root)?);
        held.insert(key, Arc::downgrade(&lock));
        Ok(lock)
    }

    fn take(root: &Path) -> anyhow::Result<Self> {
        let path = root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = text.trim();
                let holder = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("process {holder}")
                };
                bail!(
                    "{} is in use: {holder} holds its lock ({}); wait for that run to end or stop \
                     it (a run folder takes one process at a time)",
                    root.display(),
                    path.display()
                );
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| write!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether process `pid` is running (Linux: `/proc/<pid>` exists; elsewhere assumed so).
pub fn pid_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}
