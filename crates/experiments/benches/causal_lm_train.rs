//! Causal-LM training throughput and memory: Bone r=64, LoRA r=32 (α=64) and Bat (the largest
//! r ≤ 64 dividing every projection: 4 on stories260K) on all seven LLaMA projections, against
//! two references: the frozen base with the gradient taken down to the token embeddings (the
//! backward pass every method pays) and full fine-tuning; plus the inference forward alone.
//! Each training step is the `metamath` step: forward, backward, AdamW; batches of GSM8K
//! problems in the Alpaca prompt, loss on the response.
//!
//! `cargo bench -p experiments --bench causal_lm_train [--features wgpu|cuda] -- [--model DIR]
//! [--synthetic] [--synthetic-1b] [--skip-stories] [--methods LIST] [--gradient-checkpointing]
//! [--precision f32|f16|bf16] [--batch N] [--seq-len N] [--steps N] [--quick]`
//! prints a table and writes it into `benchmarks/causal_lm.md` (one section per backend; the
//! folder is `$BONE_BENCHMARKS_DIR` when set). stories260K runs unless `--skip-stories`;
//! `--model` adds a LLaMA folder (512 tokens), `--synthetic` a random-weight LLaMA with
//! realistic projection sizes (hidden 1024, batches of 4), `--synthetic-1b` one of about 1B
//! shape (hidden 2048, 16 layers, MLP 5632, 512 tokens, batches of 4). `--methods` keeps some
//! rows (`forward,frozen,bone,lora,bat,full`); `--gradient-checkpointing` trains on
//! `Autodiff<_, BalancedCheckpointing>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bone_io::tensors::write_safetensors;
use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::Autodiff;
use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::TensorData;
use burn::train::{InferenceStep, TrainStep};
use data::batcher::{EncodedSequence, PaddingSide};
use data::gsm8k::{load_gsm8k, Gsm8kSplit};
use data::metamath::gsm8k_as_metamath;
use data::{DataRoot, LoadOptions};
use experiments::llama::Precision;
use experiments::llama::{check_llama_folder, lm_batcher};
use experiments::lm::data::{encode, LmBatch, LmBatcher};
use experiments::lm::model::{scalar, CausalLmModel};
use experiments::train::with_stable_param_ids;
use models::backend::{default_backend_name, DefaultBackend};
use models::targets::all_block_linears;
use models::train::set_all_trainable;
use models::{LlamaConfig, LlamaForCausalLM, ModelFamily};

/// The heap counter shared with bone-module's bench (one copy: see the file's header).
#[path = "../../bone-module/benches/support/peak_alloc.rs"]
mod peak_alloc;

#[global_allocator]
static ALLOCATOR: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

type IB = DefaultBackend;
/// The training backend; `--gradient-checkpointing` recomputes activations in the backward
/// pass (`BalancedCheckpointing`).
type Trained<C> = Autodiff<IB, C>;

/// What a row trains.
#[derive(Debug, Clone, Copy)]
enum Method {
    /// The inference forward only (no autodiff graph).
    Forward,
    /// Frozen base; the token embeddings are trainable so the gradient flows through every
    /// layer (the backward pass every method pays).
    FrozenBackward,
    Bone,
    Lora,
    Bat(usize),
    Full,
}

impl Method {
    fn label(self) -> String {
        match self {
            Self::Forward => "forward only (inference)".into(),
            Self::FrozenBackward => "frozen base, grad to embeddings".into(),
            Self::Bone => "Bone r=64".into(),
            Self::Lora => "LoRA r=32 α=64".into(),
            Self::Bat(r) => format!("Bat r={r}"),
            Self::Full => "full fine-tuning".into(),
        }
    }

    /// The `--methods` name.
    fn key(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::FrozenBackward => "frozen",
            Self::Bone => "bone",
            Self::Lora => "lora",
            Self::Bat(_) => "bat",
            Self::Full => "full",
        }
    }
}

/// A random-weight LLaMA written by [`synthetic_llama`].
struct SyntheticShape {
    name: &'static str,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    intermediate: usize,
    layers: usize,
    seq_len: usize,
}

/// `--synthetic`: hidden 1024, 16 heads / 8 KV heads, MLP 2816, 2 layers.
const SYNTHETIC: SyntheticShape = SyntheticShape {
    name: "random LLaMA h1024 (2 layers)",
    hidden: 1024,
    heads: 16,
    kv_heads: 8,
    intermediate: 2816,
    layers: 2,
    seq_len: 256,
};

/// `--synthetic-1b`: hidden 2048, 32 heads / 4 KV heads, MLP 5632, 16 layers (TinyLlama's
/// block with Llama-3.2-1B's depth; about 0.7B parameters with the 512-token vocabulary).
const SYNTHETIC_1B: SyntheticShape = SyntheticShape {
    name: "random LLaMA h2048 (16 layers)",
    hidden: 2048,
    heads: 32,
    kv_heads: 4,
    intermediate: 5632,
    layers: 16,
    seq_len: 512,
};

struct Options {
    models: Vec<PathBuf>,
    precision: Precision,
    batch: usize,
    seq_len: Option<usize>,
    steps: usize,
    quick: bool,
    synthetic: bool,
    synthetic_1b: bool,
    skip_stories: bool,
    methods: Option<Vec<String>>,
    gradient_checkpointing: bool,
}

struct Row {
    model: String,
    method: String,
    batch: usize,
    trainable: usize,
    tokens_per_step: f64,
    median_ms: f64,
    tokens_per_second: f64,
    peak_mib: f64,
    over_base_mib: f64,
}

fn parse() -> Options {
    let mut o = Options {
        models: Vec::new(),
        precision: Precision::F32,
        batch: 8,
        seq_len: None,
        steps: 10,
        quick: false,
        synthetic: false,
        synthetic_1b: false,
        skip_stories: false,
        methods: None,
        gradient_checkpointing: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
                .clone()
        };
        match a.as_str() {
            "--model" => o.models.push(PathBuf::from(value("--model"))),
            "--precision" => {
                o.precision = match value("--precision").as_str() {
                    "f16" => Precision::F16,
                    "bf16" => Precision::Bf16,
                    _ => Precision::F32,
                }
            }
            "--batch" => o.batch = value("--batch").parse().expect("--batch N"),
            "--seq-len" => o.seq_len = Some(value("--seq-len").parse().expect("--seq-len N")),
            "--steps" => o.steps = value("--steps").parse().expect("--steps N"),
            "--quick" => o.quick = true,
            "--synthetic" => o.synthetic = true,
            "--synthetic-1b" => o.synthetic_1b = true,
            "--skip-stories" => o.skip_stories = true,
            "--gradient-checkpointing" => o.gradient_checkpointing = true,
            "--methods" => {
                o.methods = Some(
                    value("--methods")
                        .split(',')
                        .map(|m| m.trim().to_string())
                        .collect(),
                )
            }
            // cargo bench passes --bench
            _ => {}
        }
    }
    if o.quick {
        o.steps = o.steps.min(3);
    }
    o
}

fn main() {
    let options = parse();
    let device = Default::default();
    let models_root = DataRoot::resolve_in(None, data::MODELS_ROOT_ENV, "models");
    let stories = models_root.dir().join("stories260K");
    // (folder, name, sequence length, batch size)
    let mut models = Vec::new();
    if !options.skip_stories {
        models.push((
            stories.clone(),
            "stories260K".to_string(),
            256,
            options.batch,
        ));
    }
    let mut temporary = Vec::new();
    for (wanted, shape) in [
        (options.synthetic, &SYNTHETIC),
        (options.synthetic_1b, &SYNTHETIC_1B),
    ] {
        if wanted {
            let dir = synthetic_llama(&stories, shape);
            temporary.push(dir.clone());
            models.push((dir, shape.name.to_string(), shape.seq_len, 4));
        }
    }
    for dir in &options.models {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        models.push((dir.clone(), name, 512, options.batch));
    }
    let mut rows = Vec::new();
    for (dir, name, default_len, batch) in &models {
        let llama = check_llama_folder(dir, "--model").expect("a LLaMA checkpoint folder");
        let seq_len = options.seq_len.unwrap_or(*default_len);
        let sequences = sequences(dir, &llama, seq_len, *batch);
        let batcher = LmBatcher::new(
            lm_batcher(dir, &llama, seq_len, PaddingSide::Right).expect("tokenizer"),
            *batch,
        );
        let bat_r = bat_rank(&llama);
        for method in [
            Method::Forward,
            Method::FrozenBackward,
            Method::Bone,
            Method::Lora,
            Method::Bat(bat_r),
            Method::Full,
        ] {
            if let Some(keep) = &options.methods {
                if !keep.iter().any(|k| k == method.key()) {
                    continue;
                }
            }
            let row = if options.gradient_checkpointing {
                measure::<BalancedCheckpointing>(
                    name, dir, method, &options, &batcher, &sequences, &device,
                )
            } else {
                measure::<NoCheckpointing>(
                    name, dir, method, &options, &batcher, &sequences, &device,
                )
            };
            println!(
                "{:<14} {:<34} params {:>10}  {:>7.0} tokens/step  median {:>9.2} ms  {:>9.0} tokens/s  peak heap {:>8.1} MiB (+{:.1} over the base)",
                row.model, row.method, row.trainable, row.tokens_per_step, row.median_ms,
                row.tokens_per_second, row.peak_mib, row.over_base_mib
            );
            rows.push(row);
        }
    }
    for dir in temporary {
        let _ = std::fs::remove_dir_all(dir);
    }
    let table = render(&rows, &options);
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
    update_section(&path, default_backend_name(), &table);
    println!("wrote {}", path.display());
}

/// `--synthetic`, `--synthetic-1b`: a LLaMA-shaped checkpoint with random weights and realistic
/// projection sizes (stories260K's 512-token vocabulary and tokenizer), written to a temporary
/// folder. No larger LLaMA exists offline; this shows the methods' costs at dimensions where
/// the projections dominate.
fn synthetic_llama(stories: &Path, shape: &SyntheticShape) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bone-bench-llama-h{}-l{}-{}",
        shape.hidden,
        shape.layers,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let (h, inter, layers, vocab) = (shape.hidden, shape.intermediate, shape.layers, 512usize);
    let kv = h / shape.heads * shape.kv_heads;
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
        "intermediate_size": inter, "num_hidden_layers": layers,
        "num_attention_heads": shape.heads, "num_key_value_heads": shape.kv_heads,
        "vocab_size": vocab, "max_position_embeddings": 1024,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
        "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": "float32"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(stories.join(file), dir.join(file)).expect("the stories260K tokenizer");
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = |shape: Vec<usize>, scale: f32| {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                // Sum of four uniforms: roughly normal, variance 1/3.
                let mut sum = 0.0f32;
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    sum += (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                }
                sum * scale
            })
            .collect();
        TensorData::new(values, shape)
    };
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "model.embed_tokens.weight".to_string(),
        random(vec![vocab, h], 0.035),
    );
    tensors.insert("lm_head.weight".to_string(), random(vec![vocab, h], 0.035));
    tensors.insert(
        "model.norm.weight".to_string(),
        TensorData::new(vec![1f32; h], [h]),
    );
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        for (name, out, inp) in [
            ("self_attn.q_proj", h, h),
            ("self_attn.k_proj", kv, h),
            ("self_attn.v_proj", kv, h),
            ("self_attn.o_proj", h, h),
            ("mlp.gate_proj", inter, h),
            ("mlp.up_proj", inter, h),
            ("mlp.down_proj", h, inter),
        ] {
            let scale = 1.7 / (inp as f32).sqrt();
            tensors.insert(format!("{p}.{name}.weight"), random(vec![out, inp], scale));
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            tensors.insert(
                format!("{p}.{norm}.weight"),
                TensorData::new(vec![1f32; h], [h]),
            );
        }
    }
    write_safetensors(
        &dir.join("model.safetensors"),
        &tensors,
        &[("format", "pt")],
    )
    .expect("model.safetensors");
    dir
}

/// The largest r ≤ 64 dividing every projection's in and out sizes.
fn bat_rank(c: &LlamaConfig) -> usize {
    let kv = c.num_kv_heads() * c.head_dim();
    let g = [c.hidden_size, kv, c.intermediate_size]
        .into_iter()
        .fold(0, gcd);
    (1..=64).rev().find(|r| g.is_multiple_of(*r)).unwrap_or(1)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `batch` GSM8K training problems (the first whose response fits), Alpaca-prompted.
fn sequences(
    dir: &Path,
    llama: &LlamaConfig,
    seq_len: usize,
    batch: usize,
) -> Vec<EncodedSequence> {
    let batcher = lm_batcher(dir, llama, seq_len, PaddingSide::Right).expect("tokenizer");
    let problems = load_gsm8k(
        &DataRoot::resolve(None),
        Gsm8kSplit::Train,
        &LoadOptions::default(),
    )
    .expect("GSM8K train (../shared/datasets or $BONE_DATA_ROOT)");
    let rows = gsm8k_as_metamath(&problems.examples()[..4 * batch]);
    let (encoded, _) = encode(&batcher, &rows).expect("tokenising");
    encoded.into_iter().take(batch).collect()
}

fn measure<C: CheckpointStrategy>(
    name: &str,
    dir: &Path,
    method: Method,
    options: &Options,
    batcher: &LmBatcher,
    sequences: &[EncodedSequence],
    device: &burn::tensor::Device<IB>,
) -> Row {
    let before = peak_alloc::current();
    let load = models::LoadOptions {
        dtype: (options.precision != Precision::F32).then(|| options.precision.dtype()),
    };
    let mut llm = LlamaForCausalLM::<Trained<C>>::from_pretrained(dir, &load, device)
        .expect("the model loads");
    let targets = all_block_linears(ModelFamily::Llama);
    let spec = match method {
        Method::Bone => Some(AdapterSpec::bone(64)),
        Method::Lora => Some(AdapterSpec::lora(32, 64.0)),
        Method::Bat(r) => Some(AdapterSpec::bat(r)),
        _ => None,
    };
    if let Some(spec) = &spec {
        llm.add_adapter("default", &AdapterConfig::from_spec(spec, targets), device)
            .expect("the adapter fits");
    }
    match method {
        Method::Full => llm = llm.set_full_finetune(true),
        Method::FrozenBackward => {
            llm.model.embed_tokens = set_all_trainable(llm.model.embed_tokens.clone(), true)
        }
        _ => {}
    }
    let trainable = match method {
        Method::Forward => 0,
        Method::FrozenBackward => llm.model.embed_tokens.weight.val().shape().num_elements(),
        _ => llm.trainable_params(),
    };
    let mut model = with_stable_param_ids(CausalLmModel::new(llm));
    let mut optimizer = AdamWConfig::new().init::<Trained<C>, CausalLmModel<Trained<C>>>();
    let batch = || -> LmBatch<Trained<C>> { batcher.batch(sequences.to_vec(), device) };
    let tokens = sequences.iter().map(|s| s.input_ids.len()).sum::<usize>() as f64;
    let valid = matches!(method, Method::Forward).then(|| model.valid());
    let base = peak_alloc::current();

    let mut step = |model: CausalLmModel<Trained<C>>| -> CausalLmModel<Trained<C>> {
        match method {
            Method::Forward => {
                let b: LmBatch<IB> = batcher.batch(sequences.to_vec(), device);
                let out = valid.as_ref().expect("the inference model").step(b);
                std::hint::black_box(scalar(&out.loss));
                model
            }
            _ => {
                let out = TrainStep::step(&model, batch());
                std::hint::black_box(scalar(&out.item.loss));
                let model = optimizer.step(1e-5, model, out.grads);
                <IB as Backend>::sync(device).expect("sync");
                model
            }
        }
    };
    for _ in 0..2 {
        model = step(model);
    }
    peak_alloc::reset_peak();
    let mut times = Vec::with_capacity(options.steps);
    for _ in 0..options.steps {
        let start = Instant::now();
        model = step(model);
        times.push(start.elapsed().as_secs_f64());
    }
    let peak = peak_alloc::peak();
    drop(model);
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    Row {
        model: name.into(),
        method: method.label(),
        batch: sequences.len(),
        trainable,
        tokens_per_step: tokens,
        median_ms: median * 1e3,
        tokens_per_second: tokens / median,
        peak_mib: mib(peak.saturating_sub(before)),
        over_base_mib: mib(peak.saturating_sub(base)),
    }
}

fn render(rows: &[Row], options: &Options) -> String {
    let gpu = default_backend_name() != "ndarray";
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mut out = format!(
        "## {}\n\n{} · {cpu}, {} threads · {} build · Burn 0.21, base weights {} · GSM8K \
         problems (Alpaca prompt, loss on the response) · median of {} steps after 2 warm-up \
         steps\n\n",
        default_backend_name(),
        today(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        options.precision.name(),
        options.steps,
    );
    out.push_str(
        "| model | method | trainable params | batch | tokens/step | ms/step | training tokens/s | peak heap MiB | over the loaded model MiB |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let (peak, over) = if gpu {
            ("n/a (GPU)".to_string(), "n/a (GPU)".to_string())
        } else {
            (
                format!("{:.1}", r.peak_mib),
                format!("{:.1}", r.over_base_mib),
            )
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {:.1} | {:.0} | {peak} | {over} |\n",
            r.model,
            r.method,
            r.trainable,
            r.batch,
            r.tokens_per_step,
            r.median_ms,
            r.tokens_per_second
        ));
    }
    out
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil-from-days.
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

/// Replaces (or appends) the section between `<!-- BEGIN backend -->` markers.
fn update_section(path: &Path, backend: &str, table: &str) {
    let begin = format!("<!-- BEGIN {backend} -->");
    let end = format!("<!-- END {backend} -->");
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Causal-LM training benchmark\n\n\
         One `metamath` training step (forward, backward, AdamW) on batches of GSM8K problems, \
         written by `cargo bench -p experiments --bench causal_lm_train [--features wgpu|cuda] \
         [-- --synthetic] [-- --model DIR]` (crates/experiments/benches/causal_lm_train.rs). \
         stories260K always runs; `--synthetic` adds a LLaMA-shaped model with random weights \
         and realistic projection sizes (hidden 1024, 16/8 heads, MLP 2816, 2 layers, \
         stories260K's 512-token vocabulary; no larger LLaMA exists offline) and `--model` any \
         LLaMA folder. Adapters sit on all seven LLaMA projections; Bone r=64 and LoRA r=32 have equal trainable parameters on \
         square layers; Bat uses the largest r ≤ 64 dividing every projection (4 on \
         stories260K: k/v are 32 wide, the MLP 172). Training tokens/s counts non-padding \
         tokens. Memory is the heap high-water mark (CPU backends keep tensors on the heap) \
         from before the model is loaded, and above the loaded model (activations, gradients, \
         optimiser state). PEFT's own benchmark (Llama-3.2-3B, r=64 on q,v) for comparison: \
         Bone 931 s / 20.3 GB, Bat 1433 s / 25.2 GB, LoRA r=32 942 s / 22.3 GB.\n\n"
            .to_string()
    });
    let section = format!("{begin}\n{table}{end}");
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{}{}", &old[..b], section, &old[e + end.len()..])
        }
        _ => format!("{}\n{}\n", old.trim_end(), section),
    };
    bone_io::fs::write_atomic(path, new.as_bytes()).expect("write the benchmark file");
}
