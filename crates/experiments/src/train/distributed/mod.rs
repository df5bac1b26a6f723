//! Data parallelism over devices and processes, on Burn's collective engine
//! (`burn-collective`): one replica per device, several devices per process (`--devices`),
//! several processes per machine and several machines (torchrun's `WORLD_SIZE`, `RANK`,
//! `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`).
//!
//! Every rank loads every global batch in the same order (the order does not depend on the
//! world size, so a run resumes under another one) and trains on its own contiguous share of
//! its rows ([`share`]); the gradients of the trainable tensors (never the frozen base),
//! flattened into one buffer, are summed over the devices of a process by burn-collective
//! (its local all-reduce, a tree) and over the processes through rank 0, each part's mean
//! loss weighted by its share of the global batch, so a step equals the one-process step on
//! the whole batch. burn-collective's global (multi-node) level is not used: in 0.21.0 its
//! second all-reduce in a process hangs (see `collective::register`).
//!
//! Around the sum, [`control`] keeps TCP connections from each rank to rank 0
//! (`MASTER_ADDR:MASTER_PORT`, the only port used): the ranks check their configurations
//! against each other before training, the sums go over a data connection, and a rank that
//! dies stops the others within `--peer-timeout` with an error naming it.

mod args;
mod collective;
mod control;
mod world;

use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;

pub use args::DistributedArgs;
pub use collective::{all_reduce_grads, all_reduce_sum, traffic, Traffic};
pub use control::{finish, sum_over_ranks};
pub use world::{active, current, init, rank_out_dir, share, DeviceSpec, World, LOST_EXIT};

use crate::device::BackendKind;

/// Joins the run before training, when more than one replica trains: checks `--devices`
/// against `backend`, meets the other ranks and compares `config` (the keys that must agree:
/// a run configuration's essential part) with rank 0's, then registers this process's
/// devices with burn-collective. Does nothing in a one-replica run.
///
/// # Errors
/// See [`World::check_backend`], the control connection's and the registration's errors;
/// each names the rank, the port or the key.
pub fn start<B: AutodiffBackend, C: Serialize>(
    config: &C,
    backend: BackendKind,
    device: &B::Device,
) -> anyhow::Result<()> {
    let Some(world) = active() else {
        return Ok(());
    };
    world.check_backend(backend)?;
    control::join(world, config)?;
    let devices = world.devices_on::<B::InnerBackend>(device);
    collective::register::<B::InnerBackend>(world, &devices)
}

/// The line a data-parallel rank prints at the end: its place and what it all-reduced.
pub fn report_line() -> Option<String> {
    let world = active()?;
    let t = traffic();
    Some(format!(
        "data parallel: rank {} of {} · {} device(s) · {} all-reduces, {} bytes, {:.3} s",
        world.rank,
        world.world_size,
        world.local_devices(),
        t.ops,
        t.bytes,
        t.seconds
    ))
}
