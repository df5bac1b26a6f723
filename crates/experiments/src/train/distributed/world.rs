//! Where this process stands in a data-parallel run: its rank, the world size, its devices.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context};
use burn::tensor::backend::{Backend, DeviceId};

use super::args::DistributedArgs;
use crate::device::BackendKind;

/// Exit code of a rank stopped because another one was lost.
pub const LOST_EXIT: u8 = 4;

/// One device of this process: `cuda:1`, `wgpu:0`, `cpu:0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Whether it is the CPU (`cpu:N`: replicas that share the CPU, for testing).
    pub cpu: bool,
    /// The device index.
    pub index: u16,
    /// The backend it names (`None` for `cpu`, which any CPU backend takes).
    pub backend: Option<BackendKind>,
}

impl DeviceSpec {
    /// Parses `cuda:N`, `wgpu:N` or `cpu:N` (`N` defaults to 0).
    ///
    /// # Errors
    /// Another name or a bad index, quoting the text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (name, index) = text.split_once(':').unwrap_or((text, "0"));
        let index: u16 = index.trim().parse().with_context(|| {
            format!("--devices: `{text}`: expected a device index after `:` (cuda:0)")
        })?;
        let (cpu, backend) = match name.trim() {
            "cuda" => (false, Some(BackendKind::Cuda)),
            "wgpu" => (false, Some(BackendKind::Wgpu)),
            "cpu" => (true, None),
            other => bail!("--devices: `{other}` in `{text}`: expected cuda:N, wgpu:N or cpu:N"),
        };
        Ok(Self {
            cpu,
            index,
            backend,
        })
    }

    /// The device on backend `B`: `cuda:N` and `wgpu:N` (a discrete GPU) by index; every
    /// `cpu:N` is the CPU backend's one device.
    pub fn device<B: Backend>(&self) -> B::Device {
        if self.cpu {
            Default::default()
        } else {
            <B::Device as burn::tensor::backend::Device>::from_id(DeviceId::new(0, self.index))
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.backend.map_or("cpu", BackendKind::name);
        write!(f, "{name}:{}", self.index)
    }
}

/// This process's place in the run.
#[derive(Debug, Clone)]
pub struct World {
    /// Rank of this process, `0..world_size`.
    pub rank: usize,
    /// Processes in the run.
    pub world_size: usize,
    /// Rank of this process on its machine.
    pub local_rank: usize,
    /// Host of rank 0.
    pub master_addr: String,
    /// Port of rank 0's listener.
    pub master_port: u16,
    /// The address the other ranks reach this one at.
    pub node_addr: String,
    /// How long to wait for another rank before giving up on it.
    pub peer_timeout: Duration,
    /// This process's devices, one replica each (`--devices`); empty: the job's device.
    pub devices: Vec<DeviceSpec>,
}

impl World {
    /// Whether more than one replica trains (several processes or several devices).
    pub fn is_parallel(&self) -> bool {
        self.world_size > 1 || self.devices.len() > 1
    }

    /// Replicas (devices) in this process: at least one.
    pub fn local_devices(&self) -> usize {
        self.devices.len().max(1)
    }

    /// burn-collective's id of this process's device `d`: unique over the whole run.
    pub fn peer_id(&self, d: usize) -> u32 {
        (self.rank * self.local_devices() + d) as u32
    }

    /// The devices of this process on backend `B` (the job's `device` when none were named).
    pub fn devices_on<B: Backend>(&self, device: &B::Device) -> Vec<B::Device> {
        if self.devices.is_empty() {
            vec![device.clone()]
        } else {
            self.devices.iter().map(DeviceSpec::device::<B>).collect()
        }
    }

    /// The device this process's model lives on, by index, for backend `backend`: the first
    /// of `--devices`, else device `LOCAL_RANK` on a GPU backend (torchrun's one process per
    /// GPU), else `None` (the backend's default).
    pub fn model_device_index(&self, backend: BackendKind) -> Option<u16> {
        if let Some(first) = self.devices.first() {
            return (!first.cpu).then_some(first.index);
        }
        (!backend.is_cpu() && self.world_size > 1).then_some(self.local_rank as u16)
    }

    /// Checks `--devices` against the backend the job runs on.
    ///
    /// # Errors
    /// A GPU device of another backend than `backend`, or `cpu:N` on a GPU backend.
    pub fn check_backend(&self, backend: BackendKind) -> anyhow::Result<()> {
        for spec in &self.devices {
            match spec.backend {
                None if !backend.is_cpu() => bail!(
                    "--devices {spec}: the job runs on {backend}; cpu:N replicas need --device ndarray or flex"
                ),
                Some(kind) if kind != backend => bail!(
                    "--devices {spec}: the job runs on {backend}; name {backend}:N devices or pass --device {kind}"
                ),
                _ => {}
            }
        }
        Ok(())
    }
}

static WORLD: OnceLock<World> = OnceLock::new();

/// Reads the flags and torchrun's variables; call once, before the job starts.
///
/// # Errors
/// A rank outside `0..WORLD_SIZE`, a zero world size, a bad device list or timeout, or a
/// second call.
pub fn init(args: &DistributedArgs) -> anyhow::Result<&'static World> {
    let world_size = args.world_size.unwrap_or(1);
    if world_size == 0 {
        bail!("--world-size (WORLD_SIZE) 0: expected at least 1");
    }
    let rank = args.rank.unwrap_or(0);
    if rank >= world_size {
        bail!("--rank (RANK) {rank}: expected 0..{world_size} (WORLD_SIZE {world_size})");
    }
    let devices = args
        .devices
        .iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| DeviceSpec::parse(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let timeout = args.peer_timeout.unwrap_or(60.0);
    if !(timeout.is_finite() && timeout > 0.0) {
        bail!("--peer-timeout {timeout}: expected a positive number of seconds");
    }
    let master_addr = args
        .master_addr
        .clone()
        .unwrap_or_else(|| "127.0.0.1".into());
    let node_addr = match &args.node_addr {
        Some(addr) => addr.clone(),
        None => default_node_addr(&master_addr),
    };
    let world = World {
        rank,
        world_size,
        local_rank: args.local_rank.unwrap_or(rank),
        master_addr,
        master_port: args.master_port.unwrap_or(29500),
        node_addr,
        peer_timeout: Duration::from_secs_f64(timeout),
        devices,
    };
    WORLD
        .set(world)
        .map_err(|_| anyhow::anyhow!("the data-parallel world was set twice"))?;
    Ok(WORLD.get().expect("set above"))
}

/// The world of this process when more than one replica trains.
pub fn active() -> Option<&'static World> {
    WORLD.get().filter(|w| w.is_parallel())
}

/// The world of this process, parallel or not.
pub fn current() -> Option<&'static World> {
    WORLD.get()
}

/// This machine's address on the route to `master` (no packet is sent), or 127.0.0.1 when
/// `master` is a loopback address or cannot be resolved.
fn default_node_addr(master: &str) -> String {
    use std::net::{ToSocketAddrs, UdpSocket};
    let Some(target) = (master, 9)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return "127.0.0.1".into();
    };
    if target.ip().is_loopback() {
        return "127.0.0.1".into();
    }
    UdpSocket::bind(("0.0.0.0", 0))
        .and_then(|s| s.connect(target).and_then(|()| s.local_addr()))
        .map_or_else(|_| "127.0.0.1".into(), |a| a.ip().to_string())
}

/// Rows `rank` trains on of a global batch of `rows`: contiguous, near-equal shares, the
/// first `rows % world_size` ranks one row more (what `ClassificationBatch::split` cuts).
pub fn share(rows: usize, world_size: usize, rank: usize) -> Range<usize> {
    let world_size = world_size.max(1);
    let (base, extra) = (rows / world_size, rows % world_size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// The run folder this rank writes: `out` on rank 0; elsewhere a private scratch folder
/// (removed when a run starts), holding for `--resume` a copy of rank 0's configuration and
/// checkpoints, so every rank resumes from the same checkpoint while rank 0 alone writes
/// `out`.
///
/// # Errors
/// The scratch folder cannot be made, or `out` cannot be copied.
pub fn rank_out_dir(out: &Path, resume: bool) -> anyhow::Result<PathBuf> {
    let Some(world) = current().filter(|w| w.rank > 0) else {
        return Ok(out.to_path_buf());
    };
    let scratch = std::env::temp_dir().join(format!(
        "bone-rank{}-port{}-{}",
        world.rank,
        world.master_port,
        std::process::id()
    ));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("removing {}", scratch.display()))?;
    }
    let run = scratch.join("run");
    if resume {
        copy_run(out, &run).with_context(|| {
            format!(
                "rank {}: copying rank 0's run folder {} to {}",
                world.rank,
                out.display(),
                run.display()
            )
        })?;
    } else {
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
    }
    Ok(run)
}

/// Copies the files of a run folder (not its lock files).
fn copy_run(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".lock") {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            copy_run(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_in_order_unevenly() {
        let shares: Vec<_> = (0..3).map(|r| share(10, 3, r)).collect();
        assert_eq!(shares, vec![0..4, 4..7, 7..10]);
        assert_eq!(share(1, 2, 1), 1..1);
        assert_eq!(share(8, 1, 0), 0..8);
    }

    #[test]
    fn device_lists_parse_and_name_bad_entries() {
        assert_eq!(DeviceSpec::parse("cuda:1").unwrap().to_string(), "cuda:1");
        assert_eq!(DeviceSpec::parse("cpu").unwrap().to_string(), "cpu:0");
        let e = DeviceSpec::parse("tpu:0").unwrap_err().to_string();
        assert_eq!(
            e,
            "--devices: `tpu` in `tpu:0`: expected cuda:N, wgpu:N or cpu:N"
        );
    }
}
