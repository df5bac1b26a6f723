//! Packed against padded causal-LM training steps: the same GSM8K problems (Alpaca prompt,
//! loss on the response, the `sft`/`metamath` step with Bone r=64 on all seven projections:
//! forward, backward, AdamW), once padded to the longest of each micro-batch and once packed
//! whole into rows of `--seq-len` tokens (`--packing`: positions restarting per example, a
//! block-diagonal causal mask). The two are measured interleaved, step by step, so load from
//! other work on the machine hits both alike. Throughput counts non-padding tokens.
//!
//! `cargo bench -p experiments --bench causal_lm_packing [--features wgpu|cuda] -- [--model DIR]
//! [--examples N] [--micro N] [--seq-len N] [--steps N] [--quick]` prints the table and writes it
//! into the `packing-<backend>` section of `benchmarks/causal_lm.md` (`$BONE_BENCHMARKS_DIR`
//! when set).

use std::path::{Path, PathBuf};
use std::time::Instant;

use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use burn::backend::Autodiff;
use burn::data::dataloader::batcher::Batcher;
use burn::optim::{AdamWConfig, Optimizer};
use burn::tensor::backend::Backend;
use burn::train::TrainStep;
use data::batcher::{EncodedSequence, PackedBatcher, PackingConfig, PaddingSide};
use data::gsm8k::{load_gsm8k, Gsm8kSplit};
use data::metamath::gsm8k_as_metamath;
use data::{DataRoot, LoadOptions};
use experiments::llama::{check_llama_folder, lm_batcher};
use experiments::lm::data::{encode, LmBatch, LmBatcher};
use experiments::lm::model::{scalar, CausalLmModel};
use experiments::train::with_stable_param_ids;
use models::backend::{default_backend_name, DefaultBackend};
use models::targets::all_block_linears;
use models::{LlamaForCausalLM, ModelFamily};

type IB = DefaultBackend;
type AD = Autodiff<IB>;

struct Options {
    model: Option<PathBuf>,
    examples: usize,
    micro: usize,
    seq_len: usize,
    steps: usize,
    quick: bool,
}

fn parse() -> Options {
    let mut o = Options {
        model: None,
        examples: 16,
        micro: 8,
        seq_len: 512,
        steps: 8,
        quick: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| -> String {
            it.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
                .clone()
        };
        match a.as_str() {
            "--model" => o.model = Some(PathBuf::from(value("--model"))),
            "--examples" => o.examples = value("--examples").parse().expect("--examples N"),
            "--micro" => o.micro = value("--micro").parse().expect("--micro N"),
            "--seq-len" => o.seq_len = value("--seq-len").parse().expect("--seq-len N"),
            "--steps" => o.steps = value("--steps").parse().expect("--steps N"),
            "--quick" => o.quick = true,
            _ => {} // cargo bench passes --bench
        }
    }
    if o.quick {
        o.steps = o.steps.min(2);
    }
    o
}

/// What one way of batching did.
struct Row {
    name: &'static str,
    parts: usize,
    positions: usize,
    median_ms: f64,
    loss: f64,
}

fn main() {
    let options = parse();
    let device = Default::default();
    let dir = options.model.clone().unwrap_or_else(|| {
        DataRoot::resolve_in(None, data::MODELS_ROOT_ENV, "models")
            .dir()
            .join("stories260K")
    });
    let llama = check_llama_folder(&dir, "--model").expect("a LLaMA checkpoint folder");
    let inner = lm_batcher(&dir, &llama, options.seq_len, PaddingSide::Right).expect("tokenizer");
    let sequences = sequences(&inner, options.examples);
    let tokens: usize = sequences.iter().map(|s| s.input_ids.len()).sum();
    let padded = LmBatcher::new(inner.clone(), options.micro);
    let packer =
        PackedBatcher::new(PackingConfig::new(options.seq_len).with_pad_id(inner.config().pad_id))
            .expect("packing");
    let packed = LmBatcher::packed(inner, packer, options.micro);

    let mut model = with_stable_param_ids(CausalLmModel::new(bone_model(&dir, &device)));
    let mut optimizer = AdamWConfig::new().init::<AD, CausalLmModel<AD>>();
    let mut rows = [("padded", &padded), ("packed", &packed)].map(|(name, batcher)| {
        let b: LmBatch<AD> = batcher.batch(sequences.clone(), &device);
        Row {
            name,
            parts: b.parts.len(),
            positions: b.parts.iter().map(|p| p.dims()[0] * p.dims()[1]).sum(),
            median_ms: 0.0,
            loss: 0.0,
        }
    });
    let batchers = [&padded, &packed];
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..options.steps + 1 {
        for (i, batcher) in batchers.iter().enumerate() {
            let start = Instant::now();
            let out = TrainStep::step(&model, batcher.batch(sequences.clone(), &device));
            let loss = scalar(&out.item.loss);
            // A tiny lr: the model barely moves, so both see (nearly) the same weights.
            model = optimizer.step(1e-9, model, out.grads);
            <IB as Backend>::sync(&device).expect("sync");
            if round > 0 {
                times[i].push(start.elapsed().as_secs_f64());
            } else {
                rows[i].loss = loss;
            }
        }
    }
    for (row, mut t) in rows.iter_mut().zip(times) {
        t.sort_by(f64::total_cmp);
        row.median_ms = t[t.len() / 2] * 1e3;
    }
    let table = render(&rows, &options, &dir, tokens);
    println!("{table}");
    if options.quick {
        println!("--quick: results not written");
        return;
    }
    let path = std::env::var_os("BONE_BENCHMARKS_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks"),
            PathBuf::from,
        )
        .join("causal_lm.md");
    update_section(
        &path,
        &format!("packing-{}", default_backend_name()),
        &table,
    );
    println!("wrote {}", path.display());
}

/// The model with Bone r=64 (random init, so the gradients are not trivially zero) on all
/// seven projections.
fn bone_model(dir: &Path, device: &burn::tensor::Device<IB>) -> LlamaForCausalLM<AD> {
    let mut llm =
        LlamaForCausalLM::<AD>::from_pretrained(dir, &models::LoadOptions::default(), device)
            .expect("the model loads");
    let spec = AdapterSpec::bone(64).with_random_init();
    let config = AdapterConfig::from_spec(&spec, all_block_linears(ModelFamily::Llama));
    llm.add_adapter("default", &config, device)
        .expect("the adapter fits");
    llm
}

/// The first `n` GSM8K training problems whose response fits, Alpaca-prompted.
fn sequences(batcher: &data::batcher::CausalLmBatcher, n: usize) -> Vec<EncodedSequence> {
    let problems = load_gsm8k(
        &DataRoot::resolve(None),
        Gsm8kSplit::Train,
        &LoadOptions::default(),
    )
    .expect("GSM8K train (../shared/datasets or $BONE_DATA_ROOT)");
    let rows = gsm8k_as_metamath(&problems.examples()[..4 * n]);
    let (encoded, _) = encode(batcher, &rows).expect("tokenising");
    encoded.into_iter().take(n).collect()
}

fn render(rows: &[Row], options: &Options, dir: &Path, tokens: usize) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut out = format!(
        "## Packing ({backend})\n\n{cpu}, {threads} threads · {build} build · {name}, Bone r=64 \
         on all seven projections · one step = {n} GSM8K problems ({tokens} tokens, Alpaca \
         prompt, loss on the response) in micro-batches of {micro} sequences (padded) or \
         {micro} rows of {seq} tokens (packed) · median of {steps} interleaved steps after a \
         warm-up; other work shared the machine\n\n\
         | batching | micro-batches | positions computed | padding share | ms/step | training tokens/s | first loss |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        backend = default_backend_name(),
        threads = std::thread::available_parallelism().map_or(1, |n| n.get()),
        build = if cfg!(debug_assertions) { "debug" } else { "release" },
        n = options.examples,
        micro = options.micro,
        seq = options.seq_len,
        steps = options.steps,
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} % | {:.1} | {:.0} | {:.5} |\n",
            r.name,
            r.parts,
            r.positions,
            100.0 * (1.0 - tokens as f64 / r.positions.max(1) as f64),
            r.median_ms,
            tokens as f64 / (r.median_ms / 1e3),
            r.loss
        ));
    }
    if let [padded, packed] = rows {
        out.push_str(&format!(
            "\npacked / padded tokens/s: {:.2}×\n",
            padded.median_ms / packed.median_ms
        ));
    }
    out
}

/// Replaces (or appends) the section between `<!-- BEGIN name -->` markers.
fn update_section(path: &Path, name: &str, table: &str) {
    let begin = format!("<!-- BEGIN {name} -->");
    let end = format!("<!-- END {name} -->");
    let old = std::fs::read_to_string(path)
        .unwrap_or_else(|_| "# Causal-LM training benchmark\n".to_string());
    let section = format!("{begin}\n{table}{end}");
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{}{}", &old[..b], section, &old[e + end.len()..])
        }
        _ => format!("{}\n\n{}\n", old.trim_end(), section),
    };
    bone_io::fs::write_atomic(path, new.as_bytes()).expect("write the benchmark file");
}
