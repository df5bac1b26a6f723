//! The flags (and torchrun's environment variables) of data-parallel training.

use clap::Args;

/// `--devices`, `--world-size`, `--rank`, `--local-rank`, `--master-addr`, `--master-port`,
/// `--node-addr`, `--peer-timeout`; each rank flag reads torchrun's environment variable
/// when not given.
#[derive(Debug, Clone, Default, Args)]
pub struct DistributedArgs {
    /// Devices of this process, one model replica each, gradients all-reduced by
    /// burn-collective: `cuda:0,cuda:1`, `wgpu:0,wgpu:1`, or `cpu:0,cpu:1` (replicas on the
    /// CPU, for testing) [default: the --device backend's device LOCAL_RANK]
    #[arg(long, value_delimiter = ',', value_name = "DEVICES")]
    pub devices: Vec<String>,
    /// Processes in the run (torchrun's WORLD_SIZE) [default: 1]
    #[arg(long, env = "WORLD_SIZE", value_name = "N")]
    pub world_size: Option<usize>,
    /// This process's rank, 0..WORLD_SIZE (RANK); rank 0 writes the run folder
    #[arg(long, env = "RANK", value_name = "R")]
    pub rank: Option<usize>,
    /// This process's rank on its machine (LOCAL_RANK): picks its GPU when --devices is not
    /// given
    #[arg(long, env = "LOCAL_RANK", value_name = "R")]
    pub local_rank: Option<usize>,
    /// Host of rank 0, where the ranks meet (MASTER_ADDR) [default: 127.0.0.1]
    #[arg(long, env = "MASTER_ADDR", value_name = "HOST")]
    pub master_addr: Option<String>,
    /// Port of rank 0 (MASTER_PORT), where the ranks connect
    /// [default: 29500]
    #[arg(long, env = "MASTER_PORT", value_name = "PORT")]
    pub master_port: Option<u16>,
    /// The address the other ranks reach this one at (NODE_ADDR) [default: 127.0.0.1 when
    /// MASTER_ADDR is a loopback address, else this machine's address on the route to it]
    #[arg(long, env = "NODE_ADDR", value_name = "HOST")]
    pub node_addr: Option<String>,
    /// Seconds to wait for the other ranks (to start, to answer) before stopping with an
    /// error naming the rank that is missing [default: 60]
    #[arg(long, env = "BONE_PEER_TIMEOUT", value_name = "SECONDS")]
    pub peer_timeout: Option<f64>,
}
