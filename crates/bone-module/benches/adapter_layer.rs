//! Forward + backward time and peak memory of one adapted linear layer: the frozen base alone,
//! Bone r=64, Bat r=64 and LoRA r=32 (equal trainable parameters on square layers), 2048
//! tokens, on the backend this build selects (NdArray by default; `--features wgpu` or
//! `--features cuda` for the GPU backends).
//!
//! `cargo bench -p bone-module --bench adapter_layer [--features wgpu]` prints a table and
//! writes it into `benchmarks/adapter_layer.md` (one section per backend; the folder is
//! `$BONE_BENCHMARKS_DIR` when set).

use std::time::Instant;

use bone_module::{AdaptedLinear, AdapterSpec};
use burn::backend::Autodiff;
use burn::nn::LinearConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

/// The heap counter shared with the other benches (one copy: see the file's header).
#[path = "support/peak_alloc.rs"]
mod peak_alloc;

#[global_allocator]
static ALLOCATOR: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

/// The backend this build selects: CUDA, then WGPU, then NdArray (bone-module is generic and
/// owns no backend choice; models::backend makes the same one for the other crates).
#[cfg(feature = "cuda")]
type DefaultBackend = burn::backend::Cuda;
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
type DefaultBackend = burn::backend::Wgpu;
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
type DefaultBackend = burn::backend::NdArray;

/// The short name of [`DefaultBackend`], for the section of the results file.
fn default_backend_name() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda"
    } else if cfg!(feature = "wgpu") {
        "wgpu"
    } else {
        "ndarray"
    }
}

type B = Autodiff<DefaultBackend>;

const TOKENS: usize = 2048;

struct Row {
    shape: String,
    method: String,
    params: usize,
    median_ms: f64,
    min_ms: f64,
    peak_mib: f64,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let iterations = if quick { 3 } else { 10 };
    let device = Default::default();
    let mut rows = Vec::new();
    for (d_in, d_out) in [(1024, 1024), (1024, 4096)] {
        let methods: [(&str, Option<AdapterSpec>); 4] = [
            ("frozen base", None),
            ("Bone r=64", Some(AdapterSpec::bone(64))),
            ("Bat r=64", Some(AdapterSpec::bat(64))),
            ("LoRA r=32", Some(AdapterSpec::lora(32, 64.0))),
        ];
        for (label, spec) in methods {
            let mut layer = AdaptedLinear::<B>::new(
                LinearConfig::new(d_in, d_out).init(&device),
                "bench.layer",
            );
            if let Some(spec) = &spec {
                layer
                    .add_adapter("a", spec, &device)
                    .expect("valid adapter");
            }
            let x: Tensor<B, 2> =
                Tensor::random([TOKENS, d_in], Distribution::Normal(0.0, 1.0), &device);
            // One forward + backward; with `sample`, the device bytes in use once the forward
            // has run and again while the gradients are alive (GPU backends).
            let step = |sample: Option<&mut u64>| {
                // The input requires a gradient, as any hidden state inside a network does.
                let x = x.clone().detach().require_grad();
                let loss = layer.forward(x).sum();
                let after_forward = sample.is_some().then(|| device_bytes_in_use(&device));
                let grads = loss.backward();
                if let (Some(peak), Some(forward)) = (sample, after_forward) {
                    *peak = (*peak).max(forward).max(device_bytes_in_use(&device));
                }
                drop(grads);
                <B as Backend>::sync(&device).expect("sync");
            };
            for _ in 0..2 {
                step(None);
            }
            let mut times = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let start = Instant::now();
                step(None);
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
            // Memory in a separate, untimed step: sampling the GPU pools synchronises.
            let baseline = peak_alloc::reset_peak();
            let device_baseline = device_bytes_in_use(&device);
            let mut device_peak = device_baseline;
            step(Some(&mut device_peak));
            let peak = if is_gpu() {
                device_peak.saturating_sub(device_baseline) as usize
            } else {
                peak_alloc::peak().saturating_sub(baseline)
            };
            times.sort_by(f64::total_cmp);
            let row = Row {
                shape: format!("{d_in}→{d_out}"),
                method: label.into(),
                params: layer.trainable_params(),
                median_ms: times[times.len() / 2],
                min_ms: times[0],
                peak_mib: peak as f64 / (1024.0 * 1024.0),
            };
            println!(
                "{:<10} {:<12} params {:>8}  median {:>8.2} ms  min {:>8.2} ms  peak +{:.1} MiB",
                row.shape, row.method, row.params, row.median_ms, row.min_ms, row.peak_mib
            );
            rows.push(row);
        }
    }
    let table = render(&rows, iterations);
    if quick {
        println!("--quick: results not written");
        return;
    }
    let path = std::env::var_os("BONE_BENCHMARKS_DIR")
        .map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks"),
            std::path::PathBuf::from,
        )
        .join("adapter_layer.md");
    update_section(&path, default_backend_name(), &table);
    println!("wrote {}", path.display());
}

fn render(rows: &[Row], iterations: usize) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "### {} — {} tokens, median of {iterations} forward+backward steps\n\n",
        default_backend_name(),
        TOKENS
    ));
    out.push_str(&format!(
        "Machine: {} CPU threads; {}; built {}.\n\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "without optimisations"
        } else {
            "in release mode"
        }
    ));
    out.push_str(if is_gpu() {
        "Peak memory: device bytes in use by live tensors, sampled after the forward and during \
         the backward, above those held before the step.\n\n"
    } else {
        "Peak memory: the heap's high-water mark during the step, above what was live before it.\n\n"
    });
    out.push_str("| layer | method | trainable params | median ms | min ms | overhead vs base | peak extra memory MiB |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for chunk in rows.chunks(4) {
        let base = chunk[0].median_ms;
        for row in chunk {
            let overhead = if row.method == "frozen base" {
                "—".to_string()
            } else {
                format!("{:+.0} %", (row.median_ms / base - 1.0) * 100.0)
            };
            let memory = format!("{:.1}", row.peak_mib);
            out.push_str(&format!(
                "| {} | {} | {} | {:.2} | {:.2} | {} | {} |\n",
                row.shape, row.method, row.params, row.median_ms, row.min_ms, overhead, memory
            ));
        }
    }
    out
}

/// Replaces (or appends) the section between `<!-- backend -->` markers.
fn update_section(path: &std::path::Path, backend: &str, table: &str) {
    let begin = format!("<!-- begin {backend} -->");
    let end = format!("<!-- end {backend} -->");
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Adapter layer benchmark\n\nForward + backward of one adapted linear layer \
         (`cargo bench -p bone-module --bench adapter_layer`, add `--features wgpu` or \
         `--features cuda` for the GPU backends). Bone r=64, Bat r=64 and LoRA r=32 have equal \
         trainable parameters on the square layer. The paper's claim: Bone's overhead over the \
         frozen base is below LoRA's, and Bat costs more than both.\n\n"
            .to_string()
    });
    let section = format!("{begin}\n{table}{end}");
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if e > b => format!("{}{}{}", &old[..b], section, &old[e + end.len()..]),
        _ => format!("{}\n{}\n", old.trim_end(), section),
    };
    std::fs::write(path, new).expect("write the benchmark file");
}

/// Whether the build runs on a GPU backend (memory then lives in the device's pools).
fn is_gpu() -> bool {
    cfg!(any(feature = "wgpu", feature = "cuda"))
}

/// Bytes the GPU backend's memory pools hand out to live tensors right now; 0 on CPU backends.
fn device_bytes_in_use(device: &burn::tensor::Device<B>) -> u64 {
    <B as Backend>::sync(device).expect("sync");
    #[cfg(feature = "cuda")]
    let usage = {
        use burn::cubecl::Runtime;
        burn::cubecl::cuda::CudaRuntime::client(device).memory_usage()
    };
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    let usage = {
        use burn::cubecl::Runtime;
        burn::backend::wgpu::WgpuRuntime::client(device).memory_usage()
    };
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    return usage.map_or(0, |u| u.bytes_in_use);
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    {
        let _ = device;
        0
    }
}
