//! The GEMM peak probe: f32 GFLOP/s of large square matrix products on all cores through each
//! CPU backend's matmul (NdArray: matrixmultiply; Flex: gemm), next to the CPU's theoretical
//! peak (see [`experiments::cpu`]). Rounds alternate the backends, so background load hits
//! both alike; each cell is the best product of its round.
//!
//! `cargo bench -p experiments --bench peak [-- --quick] [-- --label TEXT]` (or
//! `cargo xtask peak`) prints the table and writes `benchmarks/peak.md` (the folder is
//! `$BONE_BENCHMARKS_DIR` when set). `--label` names the build in the table (e.g. which
//! matrixmultiply features it has); `--no-write` only prints.

use experiments::cpu::{gemm_gflops, CpuInfo};

type NdArray = burn::backend::NdArray;
type Flex = burn::backend::Flex;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let write = !args.iter().any(|a| a == "--no-write");
    let label = args
        .iter()
        .position(|a| a == "--label")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "this build".into());
    let (rounds, reps) = if quick { (1, 2) } else { (3, 4) };
    let cpu = CpuInfo::detect();
    println!("{}", cpu.describe());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut rows = Vec::new();
    for n in [1024usize, 2048] {
        let (mut nd, mut flex) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            nd.push(gemm_gflops::<NdArray>(n, reps, &Default::default()));
            flex.push(gemm_gflops::<Flex>(n, reps, &Default::default()));
        }
        println!("n={n}: ndarray {nd:.1?} GFLOP/s · flex {flex:.1?} GFLOP/s");
        rows.push((n, nd, flex));
    }
    let table = render(&cpu, &rows, &label, load.trim());
    print!("{table}");
    if write {
        let dir = std::env::var_os("BONE_BENCHMARKS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks")
            });
        let path = dir.join("peak.md");
        bone_io::fs::write_atomic(&path, table.as_bytes()).expect("write benchmarks/peak.md");
        println!("wrote {}", path.display());
    }
}

fn best(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn render(cpu: &CpuInfo, rows: &[(usize, Vec<f64>, Vec<f64>)], label: &str, load: &str) -> String {
    let peak = cpu.peak_gflops();
    let mut out = format!(
        "# GEMM peak\n\n\
         f32 `[n, n] · [n, n]` products on all cores through each CPU backend's matmul \
         (`cargo xtask peak`, crates/experiments/benches/peak.rs): NdArray → matrixmultiply, \
         Flex → gemm. Rounds alternate the backends; each figure is the best product of a \
         round (2·n³ FLOPs over its wall time), rounds separated by `/`.\n\n\
         Machine: {}.\n\n\
         Theoretical peak = cores × clock × FLOP/cycle = {} × {:.3} GHz × {} = **{:.0} GFLOP/s** \
         ({}: {} f32 lanes × 2 for the FMA × {} FMA units per core, an assumption: true of \
         Zen 5 and Xeon Gold/Platinum, half of it on Xeon Silver, and AVX-512 on Zen 4 runs \
         at the AVX2 rate). Clock from {}.\n\n\
         Build: {label}. Load average at the start: {load} (other builds were running on the \
         same cores).\n\n\
         | n | NdArray GFLOP/s | share of peak | Flex GFLOP/s | share of peak |\n\
         |---:|---:|---:|---:|---:|\n",
        cpu.model,
        cpu.cores,
        cpu.mhz / 1000.0,
        cpu.simd.flop_per_cycle(),
        peak,
        cpu.simd.name(),
        cpu.simd.lanes(),
        experiments::cpu::FMA_UNITS_PER_CORE,
        cpu.mhz_source,
    );
    let join = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    for (n, nd, flex) in rows {
        out.push_str(&format!(
            "| {n} | {} | {:.0} % | {} | {:.0} % |\n",
            join(nd),
            100.0 * best(nd) / peak,
            join(flex),
            100.0 * best(flex) / peak,
        ));
    }
    out
}
