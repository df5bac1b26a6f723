//! A bounded-time fuzz harness over the parsers of user files: the safetensors header
//! (bone-io), config.json (models), adapter_config.json (bone-module), GLUE TSV and GSM8K
//! JSONL rows (data) and GGUF (models). Each seed (a real file of `../shared`, or a small GGUF
//! built here) is mutated at random (bit flips, bytes set to edge values, chunks cut, repeated
//! or truncated, 8-byte length fields set to huge values) and parsed: a parser must return an
//! error or a value, never panic, and its peak memory must stay bounded (an allocation of a
//! length read from the file would abort the process or raise its peak).
//!
//! `fuzz::smoke` runs about a second of it in `cargo test`; `cargo xtask fuzz --secs N` runs
//! `fuzz::long` (ignored otherwise) for N seconds per parser, with `BONE_FUZZ_SECS=N`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common;

/// A parser under test: reads the file at the path, returns whether it parsed.
type Parser = fn(&Path) -> bool;

/// A small deterministic PRNG (xorshift64*): the harness needs no dependency and a run is
/// reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random mutation of `input`.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    if input.is_empty() {
        input.push(rng.next() as u8);
        return;
    }
    let at = rng.below(input.len());
    match rng.below(7) {
        0 => input[at] ^= 1 << rng.below(8),
        1 => {
            input[at] = [0u8, 0xff, 0x7f, 0x80, b'0', b'9', b'"', b'{', b'\t', b'\n'][rng.below(10)]
        }
        2 => {
            let end = (at + 1 + rng.below(64)).min(input.len());
            input.drain(at..end);
        }
        3 => {
            let end = (at + 1 + rng.below(64)).min(input.len());
            let chunk = input[at..end].to_vec();
            let to = rng.below(input.len());
            input.splice(to..to, chunk);
        }
        4 => input.truncate(at),
        5 => {
            // A length or count field set to something huge.
            let value: u64 = [u64::MAX, u64::MAX / 2, 1 << 40, 1 << 32, 0xffff_ffff][rng.below(5)];
            let end = (at + 8).min(input.len());
            let bytes = value.to_le_bytes();
            input[at..end].copy_from_slice(&bytes[..end - at]);
        }
        _ => {
            let digits = b"99999999999999999999";
            input.splice(
                at..at,
                digits[..1 + rng.below(digits.len())].iter().copied(),
            );
        }
    }
}

/// Peak resident memory of this process, bytes (Linux `VmHWM`; 0 elsewhere).
fn peak_memory() -> u64 {
    experiments::train::job::peak_memory_bytes()
}

/// Fuzzes `parse` from `seed` for `time`; returns (inputs tried, inputs that parsed). Panics
/// naming the input (saved under the temp folder) when the parser panics or, with
/// `memory_limit` (only when the harness runs alone: other tests share the process), the
/// process's peak memory grows by more than that many bytes.
fn fuzz(
    name: &str,
    seed: &[u8],
    parse: Parser,
    time: Duration,
    rng_seed: u64,
    memory_limit: Option<u64>,
) -> (usize, usize) {
    let dir = common::tmp("fuzz", name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    let mut rng = Rng(rng_seed | 1);
    let (mut tried, mut parsed) = (0, 0);
    let start = Instant::now();
    let base_memory = peak_memory();
    while start.elapsed() < time {
        let mut input = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut input);
        }
        std::fs::write(&file, &input).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| parse(&file)));
        tried += 1;
        let keep = || {
            let kept = dir.with_extension(format!("crash-{tried}"));
            std::fs::write(&kept, &input).unwrap();
            kept
        };
        match result {
            Ok(ok) => parsed += usize::from(ok),
            Err(_) => panic!("{name}: the parser panicked on input {}", keep().display()),
        }
        let grown = peak_memory().saturating_sub(base_memory);
        assert!(
            memory_limit.is_none_or(|limit| grown <= limit),
            "{name}: peak memory grew by {grown} bytes on input {}",
            keep().display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    (tried, parsed)
}

/// A small valid GGUF v3 file: two metadata keys and one 2×2 f32 tensor.
fn tiny_gguf() -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(1u64.to_le_bytes()); // tensors
    out.extend(2u64.to_le_bytes()); // metadata keys
    string(&mut out, "general.architecture");
    out.extend(8u32.to_le_bytes()); // string
    string(&mut out, "llama");
    string(&mut out, "general.alignment");
    out.extend(4u32.to_le_bytes()); // u32
    out.extend(32u32.to_le_bytes());
    string(&mut out, "w");
    out.extend(2u32.to_le_bytes()); // dims
    out.extend(2u64.to_le_bytes());
    out.extend(2u64.to_le_bytes());
    out.extend(0u32.to_le_bytes()); // f32
    out.extend(0u64.to_le_bytes()); // offset
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    for v in [1.0f32, 2.0, 3.0, 4.0] {
        out.extend(v.to_le_bytes());
    }
    out
}

fn first_lines(path: &Path, n: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .take(n)
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Every parser with its seed.
fn targets() -> Vec<(&'static str, Vec<u8>, Parser)> {
    let shared = common::shared();
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    vec![
        (
            "adapter_model.safetensors",
            read(shared.join("golden/peft_bone_stories260k/adapter_model.safetensors")),
            (|p: &Path| bone_io::tensors::read_safetensors(p).is_ok()) as Parser,
        ),
        (
            "config.json",
            read(shared.join("models/all-MiniLM-L6-v2/config.json")),
            (|p: &Path| {
                models::config::read_json(p)
                    .and_then(|v| models::ModelConfig::from_value(&v, p))
                    .is_ok()
            }) as Parser,
        ),
        (
            "llama-config.json",
            read(shared.join("models/stories260K/config.json")),
            (|p: &Path| {
                models::config::read_json(p)
                    .and_then(|v| models::ModelConfig::from_value(&v, p))
                    .is_ok()
            }) as Parser,
        ),
        (
            "adapter_config.json",
            read(shared.join("golden/peft_bone_stories260k/adapter_config.json")),
            (|p: &Path| {
                let text = String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
                bone_module::AdapterConfig::from_json_str(&text, "adapter_config.json").is_ok()
            }) as Parser,
        ),
        (
            "train.tsv",
            first_lines(&shared.join("datasets/glue/SST-2/train.tsv"), 40),
            (|p: &Path| {
                data::glue::GlueTask::Sst2
                    .load_file(p, data::glue::GlueSplit::Train, &Default::default())
                    .is_ok()
            }) as Parser,
        ),
        (
            "train.jsonl",
            first_lines(&shared.join("datasets/gsm8k/train.jsonl"), 5),
            (|p: &Path| data::gsm8k::load_gsm8k_file(p, &Default::default()).is_ok()) as Parser,
        ),
        (
            "tiny.gguf",
            tiny_gguf(),
            (|p: &Path| {
                models::gguf::GgufFile::open(p)
                    .map(|f| {
                        let _ = models::gguf::GgufTokenizer::from_file(&f);
                    })
                    .is_ok()
            }) as Parser,
        ),
    ]
}

/// Fuzzes every target for `per_target`; prints a line each.
fn run_all(per_target: Duration, memory_limit: Option<u64>) {
    for (i, (name, seed, parse)) in targets().into_iter().enumerate() {
        assert!(
            parse(&{
                let dir = common::tmp("fuzz-seed", name);
                std::fs::create_dir_all(&dir).unwrap();
                let file = dir.join(name);
                std::fs::write(&file, &seed).unwrap();
                file
            }),
            "{name}: the seed itself must parse"
        );
        let (tried, parsed) = fuzz(
            name,
            &seed,
            parse,
            per_target,
            0x9e37_79b9 + i as u64,
            memory_limit,
        );
        println!("fuzz {name}: {tried} inputs in {per_target:?}, {parsed} parsed, no panic");
    }
}

#[test]
fn smoke() {
    run_all(Duration::from_millis(150), None);
}

/// `cargo xtask fuzz --secs N`: N seconds per parser (`BONE_FUZZ_SECS`, default 30).
#[test]
#[ignore = "long; run by `cargo xtask fuzz`"]
fn long() {
    let secs = std::env::var("BONE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    run_all(Duration::from_secs(secs), Some(1 << 30));
}
