//! `cargo xtask peak [--quick]`: the GEMM peak probe (crates/experiments/benches/peak.rs),
//! f32 GFLOP/s of large square products through NdArray's and Flex's matmul next to the
//! CPU's theoretical peak, written to `benchmarks/peak.md`.

use crate::cargo;

/// Runs the probe in release mode; `--quick` takes one round of fewer products.
pub fn peak(args: &[String]) -> Result<(), String> {
    let mut bench_args = vec!["bench", "-p", "experiments", "--bench", "peak", "--"];
    for arg in args {
        match arg.as_str() {
            "--quick" => bench_args.push("--quick"),
            other => return Err(format!("unknown option `{other}` for `peak`")),
        }
    }
    cargo(&bench_args, &[])
}
