//! Forward (prefill) and generation throughput of stories260K and all-MiniLM-L6-v2 on the
//! backend this build selects (NdArray by default; `--features wgpu` or `cuda`).
//!
//! ```text
//! cargo bench -p models --bench throughput                   # ndarray
//! cargo bench -p models --bench throughput --features wgpu   # wgpu
//! ```
//!
//! Results replace this backend's section of `benchmarks/models.md` (set
//! `BONE_BENCH_OUT` to write elsewhere). Models come from `../shared/models` (or
//! `BONE_SHARED_DIR`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use burn::tensor::{Device, Int, Tensor, TensorData};
use models::backend::{default_backend_name, DefaultBackend};
use models::{EncoderModel, GenerationConfig, LlamaForCausalLM, LoadOptions};

type B = DefaultBackend;

/// How long each measurement is repeated for (after warm-up).
const BUDGET: Duration = Duration::from_secs(3);

fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("BONE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    if !dir.join("models").is_dir() {
        eprintln!(
            "the shared models are missing: looked for {}/models (set BONE_SHARED_DIR)",
            dir.display()
        );
        std::process::exit(1);
    }
    dir
}

/// Runs `f` once to warm up, then repeatedly for [`BUDGET`] (at least 3 times); returns
/// the median seconds per call.
fn measure(mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed() < BUDGET && times.len() < 200) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn ids(batch: usize, seq: usize, vocab: usize, device: &Device<B>) -> Tensor<B, 2, Int> {
    let data: Vec<i64> = (0..batch * seq)
        .map(|i| (1 + (i * 7919) % (vocab - 1)) as i64)
        .collect();
    Tensor::from_data(TensorData::new(data, [batch, seq]), device)
}

fn sync(device: &Device<B>) {
    let _ = B::sync(device);
}

struct Row {
    model: &'static str,
    what: String,
    shape: String,
    tokens_per_s: f64,
    ms: f64,
}

fn main() {
    let shared = shared_dir();
    let device: Device<B> = Default::default();
    let backend = default_backend_name();
    let mut rows: Vec<Row> = Vec::new();

    let llama = LlamaForCausalLM::<B>::from_pretrained(
        shared.join("models/stories260K"),
        &LoadOptions::default(),
        &device,
    )
    .expect("stories260K loads");
    for (batch, seq) in [(1usize, 128usize), (8, 128), (1, 512)] {
        let input = ids(batch, seq, 512, &device);
        let secs = measure(|| {
            let _ = llama.forward(input.clone(), None, None);
            sync(&device);
        });
        rows.push(Row {
            model: "stories260K",
            what: "prefill (forward, all logits)".into(),
            shape: format!("{batch} × {seq}"),
            tokens_per_s: (batch * seq) as f64 / secs,
            ms: secs * 1e3,
        });
    }
    for (batch, use_cache) in [(1usize, true), (1, false), (8, true), (8, false)] {
        let prompt: Vec<u32> = vec![
            1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426,
        ];
        let prompts = vec![prompt; batch];
        let new = 128;
        let config = GenerationConfig {
            use_cache,
            eos_token_ids: Some(Vec::new()),
            ..GenerationConfig::greedy(new)
        };
        let secs = measure(|| {
            llama.generate(&prompts, &config).expect("generation runs");
        });
        rows.push(Row {
            model: "stories260K",
            what: format!(
                "generate greedy, {}",
                if use_cache { "KV cache" } else { "no cache" }
            ),
            shape: format!("{batch} × (16 + {new})"),
            tokens_per_s: (batch * new) as f64 / secs,
            ms: secs * 1e3,
        });
    }

    let bert = EncoderModel::<B>::from_pretrained(
        shared.join("models/all-MiniLM-L6-v2"),
        &LoadOptions::default(),
        &device,
    )
    .expect("all-MiniLM-L6-v2 loads");
    for (batch, seq) in [(1usize, 128usize), (8, 128), (32, 64)] {
        let input = ids(batch, seq, 30522, &device);
        let mask: Tensor<B, 2, Int> = input.ones_like();
        let secs = measure(|| {
            let hidden = bert.forward(input.clone(), Some(mask.clone()), None);
            let _ = bert.mean_pool(hidden, mask.clone());
            sync(&device);
        });
        rows.push(Row {
            model: "all-MiniLM-L6-v2",
            what: "forward + mean pooling".into(),
            shape: format!("{batch} × {seq}"),
            tokens_per_s: (batch * seq) as f64 / secs,
            ms: secs * 1e3,
        });
    }

    let mut section = String::new();
    section.push_str(&format!("## {backend}\n\n"));
    section.push_str(&format!(
        "{} · {} · {} profile · Burn 0.21, f32, backend `{backend}` · median of repeated runs after one warm-up\n\n",
        today(),
        machine(),
        if cfg!(debug_assertions) { "debug" } else { "release (cargo bench)" },
    ));
    section.push_str("| model | measurement | batch × tokens | tokens/s | ms per call |\n|---|---|---|---:|---:|\n");
    for r in &rows {
        section.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} |\n",
            r.model, r.what, r.shape, r.tokens_per_s, r.ms
        ));
        println!(
            "{:<18} {:<34} {:<16} {:>10.0} tok/s {:>9.2} ms",
            r.model, r.what, r.shape, r.tokens_per_s, r.ms
        );
    }
    let path = std::env::var_os("BONE_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks/models.md")
        });
    let text = update(
        &std::fs::read_to_string(&path).unwrap_or_default(),
        backend,
        &section,
    );
    bone_io::fs::write_atomic(&path, text.as_bytes()).expect("the results file is writable");
    println!("updated {}", path.display());
}

/// Replaces (or appends) the section of `backend` between its markers.
fn update(existing: &str, backend: &str, section: &str) -> String {
    let header = "# Model throughput\n\nForward (prefill) and generation throughput of the models crate, written by \
                  `cargo bench -p models --bench throughput [--features wgpu]` (crates/models/benches/throughput.rs). \
                  Prefill counts every input token; generation counts new tokens only (greedy, EOS ignored). \
                  \"no cache\" recomputes the whole sequence at every step.\n\n";
    let begin = format!("<!-- BEGIN {backend} -->");
    let end = format!("<!-- END {backend} -->");
    let block = format!("{begin}\n{section}{end}\n");
    let base = if existing.trim().is_empty() {
        header.to_string()
    } else {
        existing.to_string()
    };
    match (base.find(&begin), base.find(&end)) {
        (Some(b), Some(e)) if e > b => format!(
            "{}{}{}",
            &base[..b],
            block,
            &base[e + end.len()..].trim_start_matches('\n')
        ),
        _ => format!("{}\n{block}", base.trim_end()),
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{cpu}, {cores} cores")
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
