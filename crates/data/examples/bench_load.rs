//! Times loading and tokenising all of SST-2 train (MiniLM tokenizer) and all of GSM8K train
//! (stories260K tokenizer, Alpaca prompt), prints a markdown table and writes it to
//! `benchmarks/data.md` in the workspace.
//!
//! ```text
//! cargo run -p data --example bench_load [-- --data-root DIR --models-root DIR --out FILE --repeats N]
//! ```
//! The dev profile builds dependencies (tokenizers, Burn) at opt-level 2 and this crate at 1;
//! `--release` gives the fully optimised figures.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use burn::data::dataloader::batcher::Batcher;
use burn_ndarray::NdArray;
use data::batcher::{
    CausalLmBatch, CausalLmBatcher, CausalLmBatcherConfig, ClassificationBatch,
    ClassificationBatcher, ClassificationBatcherConfig,
};
use data::glue::{GlueSplit, GlueTask};
use data::gsm8k::{load_gsm8k, Gsm8kSplit};
use data::prompt::SftExample;
use data::{load_tokenizer, DataRoot, LoadOptions, Manifest, MODELS_ROOT_ENV};

const BATCH: usize = 32;

struct Args {
    data_root: Option<PathBuf>,
    models_root: Option<PathBuf>,
    out: PathBuf,
    repeats: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data_root: None,
        models_root: None,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks/data.md"),
        repeats: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data-root" => args.data_root = Some(value()?.into()),
            "--models-root" => args.models_root = Some(value()?.into()),
            "--out" => args.out = value()?.into(),
            "--repeats" => {
                let v = value()?;
                args.repeats = v.parse().ok().filter(|&n| n > 0).ok_or(format!(
                    "--repeats: expected a positive integer, found {v:?}"
                ))?;
            }
            "-h" | "--help" => {
                println!(
                    "bench_load [--data-root DIR] [--models-root DIR] [--out FILE] [--repeats N]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

/// Timings of one dataset, one entry per repeat.
#[derive(Default)]
struct Runs {
    rows: usize,
    tokens: usize,
    truncated: usize,
    load: Vec<Duration>,
    tokenise: Vec<Duration>,
    collate: Vec<Duration>,
}

fn median(xs: &[Duration]) -> Duration {
    let mut v = xs.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

fn sst2(
    root: &DataRoot,
    tokenizer: &Path,
    repeats: usize,
) -> Result<Runs, Box<dyn std::error::Error>> {
    let mut runs = Runs::default();
    let device = Default::default();
    for _ in 0..repeats {
        let t = Instant::now();
        let train = GlueTask::Sst2.load(root, GlueSplit::Train, &LoadOptions::default())?;
        runs.load.push(t.elapsed());

        let t = Instant::now();
        let batcher = ClassificationBatcher::new(
            load_tokenizer(tokenizer)?,
            ClassificationBatcherConfig::default(),
        )?;
        let encoded = batcher.encode_all(train.examples())?;
        runs.tokenise.push(t.elapsed());

        let t = Instant::now();
        for chunk in encoded.chunks(BATCH) {
            let _: ClassificationBatch<NdArray> = batcher.batch(chunk.to_vec(), &device);
        }
        runs.collate.push(t.elapsed());
        runs.rows = encoded.len();
        runs.tokens = encoded.iter().map(|e| e.input_ids.len()).sum();
        runs.truncated = encoded.iter().filter(|e| e.truncated).count();
    }
    Ok(runs)
}

fn gsm8k(
    root: &DataRoot,
    tokenizer: &Path,
    repeats: usize,
) -> Result<Runs, Box<dyn std::error::Error>> {
    let mut runs = Runs::default();
    let device = Default::default();
    for _ in 0..repeats {
        let t = Instant::now();
        let train = load_gsm8k(root, Gsm8kSplit::Train, &LoadOptions::default())?;
        let sft: Vec<SftExample> = train
            .examples()
            .iter()
            .map(SftExample::from_gsm8k)
            .collect();
        runs.load.push(t.elapsed());

        let t = Instant::now();
        let batcher =
            CausalLmBatcher::new(load_tokenizer(tokenizer)?, CausalLmBatcherConfig::default())?;
        let encoded = batcher.encode_all(&sft)?;
        runs.tokenise.push(t.elapsed());

        let t = Instant::now();
        for chunk in encoded.chunks(BATCH) {
            let _: CausalLmBatch<NdArray> = batcher.batch(chunk.to_vec(), &device);
        }
        runs.collate.push(t.elapsed());
        runs.rows = encoded.len();
        runs.tokens = encoded.iter().map(|e| e.input_ids.len()).sum();
        runs.truncated = encoded.iter().filter(|e| e.truncated).count();
    }
    Ok(runs)
}

/// `YYYY-MM-DD HH:MM UTC` from the system clock (civil-from-days, H. Hinnant).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn row(name: &str, tok: &str, r: &Runs) -> String {
    let (load, tokenise, collate) = (median(&r.load), median(&r.tokenise), median(&r.collate));
    let total = load + tokenise;
    format!(
        "| {name} | {tok} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
        r.rows,
        r.tokens,
        r.truncated,
        ms(load),
        ms(tokenise),
        ms(total),
        ms(collate),
        r.rows as f64 / total.as_secs_f64(),
    )
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let root = DataRoot::resolve(args.data_root.as_deref());
    let models = DataRoot::resolve_in(args.models_root.as_deref(), MODELS_ROOT_ENV, "models");
    let minilm = models.file("all-MiniLM-L6-v2/tokenizer.json")?;
    let stories = models.file("stories260K/tokenizer.json")?;

    // Checksums once, outside the timed loads.
    let t = Instant::now();
    let verified = root.clone().with_manifest(Manifest::bundled()?);
    verified.file("glue/SST-2/train.tsv")?;
    verified.file("gsm8k/train.jsonl")?;
    let verify = t.elapsed();

    let s = sst2(&root, &minilm, args.repeats)?;
    let g = gsm8k(&root, &stories, args.repeats)?;

    let profile = if cfg!(debug_assertions) {
        "dev (dependencies at opt-level 2, this crate at opt-level 1)"
    } else {
        "release"
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let table = format!(
        "# Data loading benchmark\n\n\
         Load = read and parse the file into examples (GSM8K: also render each problem as \
         MetaMathQA + Alpaca prompt). Tokenise = `encode_all` (MiniLM: `[CLS] s [SEP]`, max_len 128; \
         stories260K: `<s> prompt response </s>`, max_len 512, prompt masked). Collate = pad every \
         batch of {BATCH} into NdArray tensors (not part of the total). Median of {} runs, \
         single-threaded tokenisation (`tokenizers` without its `parallel` feature).\n\n\
         | dataset | tokenizer | rows | tokens | truncated | load (ms) | tokenise (ms) | load + tokenise (ms) | collate (ms) | rows/s (load + tokenise) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         {}\n{}\n\n\
         sha256 check of both files against datasets/SHA256SUMS: {} ms.\n\n\
         Machine: {} ({cores} cores available), {}. Profile: {profile}. Date: {}. The machine is \
         shared with other builds, so figures are indicative.\n\n\
         Reproduce: `cargo run -p data --example bench_load` (add `--release` for optimised figures).\n",
        args.repeats,
        row("SST-2 train", "all-MiniLM-L6-v2", &s),
        row("GSM8K train", "stories260K", &g),
        ms(verify),
        cpu_model(),
        std::env::consts::OS,
        utc_now(),
    );
    print!("{table}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(&args.out, &table)
        .map_err(|e| format!("writing {}: {e}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
