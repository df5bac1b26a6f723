//! What the CPU can do: its model, cores, clock and SIMD width, the theoretical f32 peak
//! they give, and a GEMM probe that measures what a backend's matrix product reaches.
//!
//! The peak is `cores × clock × FLOP/cycle`, with FLOP/cycle = f32 lanes × 2 (a fused
//! multiply-add is two FLOPs) × [`FMA_UNITS_PER_CORE`]. The clock is the highest one the
//! system reports: `/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq` when the kernel
//! has cpufreq (bare metal), else the `cpu MHz` of `/proc/cpuinfo` (what a VM's hypervisor
//! reports, usually the nominal clock; boost clocks are higher, so the measured share of the
//! peak can exceed what the figure suggests).

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

/// FMA units per core assumed for the peak: 2, as on Intel Xeon Gold/Platinum (two AVX-512
/// FMA ports), AMD Zen 4 (two 256-bit pipes, AVX-512 double-pumped: counted as 2 units of
/// AVX2 width would be exact there, so the AVX-512 peak overstates Zen 4 by 2×) and Zen 5
/// (two full 512-bit pipes). Xeon Silver/Bronze have one AVX-512 unit: their peak is half.
pub const FMA_UNITS_PER_CORE: usize = 2;

/// The widest f32 SIMD the CPU has (what the GEMM kernels can use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SimdWidth {
    /// AVX-512F: 16 f32 lanes, with FMA.
    Avx512,
    /// AVX2 with FMA3: 8 f32 lanes.
    Avx2,
    /// Anything narrower (SSE, NEON): 4 f32 lanes, counted with FMA.
    Narrow,
}

impl SimdWidth {
    /// The running CPU's width.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2;
            }
        }
        Self::Narrow
    }

    /// f32 lanes per vector.
    pub fn lanes(self) -> usize {
        match self {
            Self::Avx512 => 16,
            Self::Avx2 => 8,
            Self::Narrow => 4,
        }
    }

    /// f32 FLOPs one core can issue per cycle: lanes × 2 (FMA) × [`FMA_UNITS_PER_CORE`].
    pub fn flop_per_cycle(self) -> usize {
        self.lanes() * 2 * FMA_UNITS_PER_CORE
    }

    /// The name as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "AVX-512",
            Self::Avx2 => "AVX2+FMA",
            Self::Narrow => "SSE/NEON",
        }
    }
}

/// The CPU a run lands on.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CpuInfo {
    /// `model name` of `/proc/cpuinfo` (`unknown` elsewhere).
    pub model: String,
    /// Cores the process may use (`available_parallelism`).
    pub cores: usize,
    /// Clock in MHz (see the module's doc for where it comes from).
    pub mhz: f64,
    /// Where [`Self::mhz`] was read.
    pub mhz_source: String,
    /// The widest f32 SIMD.
    pub simd: SimdWidth,
}

impl CpuInfo {
    /// Reads the running machine.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let max_khz =
            std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok());
        let (mhz, mhz_source) = match max_khz {
            Some(khz) => (khz / 1000.0, "cpufreq cpuinfo_max_freq".to_string()),
            None => match cpuinfo_field(&cpuinfo, "cpu MHz").and_then(|v| v.parse().ok()) {
                Some(mhz) => (mhz, "/proc/cpuinfo cpu MHz".to_string()),
                None => (0.0, "unknown".to_string()),
            },
        };
        Self {
            model: cpuinfo_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mhz,
            mhz_source,
            simd: SimdWidth::detect(),
        }
    }

    /// Theoretical f32 peak in GFLOP/s: cores × GHz × [`SimdWidth::flop_per_cycle`].
    pub fn peak_gflops(&self) -> f64 {
        self.cores as f64 * self.mhz / 1000.0 * self.simd.flop_per_cycle() as f64
    }

    /// One line: model, cores, clock, SIMD, peak.
    pub fn describe(&self) -> String {
        format!(
            "{} · {} cores · {:.0} MHz ({}) · {} · peak {:.0} GFLOP/s f32 ({} FLOP/cycle/core, {} FMA units/core assumed)",
            self.model,
            self.cores,
            self.mhz,
            self.mhz_source,
            self.simd.name(),
            self.peak_gflops(),
            self.simd.flop_per_cycle(),
            FMA_UNITS_PER_CORE
        )
    }
}

/// The value of the first `key : value` line of `/proc/cpuinfo` text.
fn cpuinfo_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// f32 GFLOP/s of `[n, n] · [n, n]` products on backend `B`: the best of `reps` timed
/// products after one warm-up (2·n³ FLOPs each, the result read back to the host so lazy
/// backends finish).
pub fn gemm_gflops<B: Backend>(n: usize, reps: usize, device: &B::Device) -> f64 {
    let a = Tensor::<B, 2>::random([n, n], Distribution::Uniform(-1.0, 1.0), device);
    let b = Tensor::<B, 2>::random([n, n], Distribution::Uniform(-1.0, 1.0), device);
    let _ = a.clone().matmul(b.clone()).into_data();
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let _ = a.clone().matmul(b.clone()).into_data();
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (n as f64).powi(3) / best / 1e9
}

/// f32 GFLOP/s of `[n, n]` products run concurrently on `threads` threads (each its own
/// product, as the threads of a training step run theirs), summed: the GEMM peak a step on
/// that many threads can reach. One thread is [`gemm_gflops`].
pub fn gemm_gflops_on_threads<B: Backend>(
    n: usize,
    reps: usize,
    threads: usize,
    device: &B::Device,
) -> f64 {
    if threads <= 1 {
        return gemm_gflops::<B>(n, reps, device);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| gemm_gflops::<B>(n, reps, device)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_cores_times_clock_times_flop_per_cycle() {
        let cpu = CpuInfo {
            model: "test".into(),
            cores: 2,
            mhz: 2100.0,
            mhz_source: "test".into(),
            simd: SimdWidth::Avx512,
        };
        // 2 cores × 2.1 GHz × 16 lanes × 2 (FMA) × 2 units
        assert!((cpu.peak_gflops() - 268.8).abs() < 1e-9);
        assert_eq!(SimdWidth::Avx2.flop_per_cycle(), 32);
    }

    #[test]
    fn reads_cpuinfo_fields() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 9B45\ncpu MHz\t\t: 2596.108\n";
        assert_eq!(
            cpuinfo_field(text, "model name").as_deref(),
            Some("AMD EPYC 9B45")
        );
        assert_eq!(cpuinfo_field(text, "cpu MHz").as_deref(), Some("2596.108"));
        assert_eq!(cpuinfo_field(text, "flags"), None);
    }

    #[test]
    fn gemm_probe_measures_a_positive_rate() {
        let rate = gemm_gflops::<burn::backend::Flex>(64, 2, &Default::default());
        assert!(rate.is_finite() && rate > 0.0, "{rate}");
    }
}
