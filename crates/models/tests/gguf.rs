//! GGUF: SmolLM2-135M-Instruct (Q4_1, token embeddings Q8_0) against transformers'
//! dequantised weights, tokenizer, logits and greedy answer; the HF folder `convert` writes;
//! and corrupt files written here, each refused with a message naming what is wrong.

use crate::common;

use std::path::{Path, PathBuf};

use burn::tensor::FloatDType;
use common::*;
use models::gguf::{self, GgufFile, GgufTokenizer, MetaValue};
use models::{Checkpoint, GenerationConfig, LlamaForCausalLM, LoadOptions, ModelError, Tokenizer};

const GOLDEN: &str = "smollm2_gguf_forward";

fn smollm_gguf() -> PathBuf {
    shared_dir().join("models/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn manifest() -> serde_json::Value {
    let path = shared_dir().join("golden/MANIFEST_FAMILIES.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["files"][GOLDEN].clone()
}

fn chat_text() -> String {
    manifest()["chat_text"].as_str().unwrap().to_string()
}

fn load(path: &Path) -> LlamaForCausalLM<TB> {
    LlamaForCausalLM::from_pretrained(path, &LoadOptions::default(), &device()).unwrap()
}

/// Logits `[t, vocab]` of the chat prompt.
fn chat_logits(model: &LlamaForCausalLM<TB>, ids: &[u32]) -> Vec<f32> {
    values(&model.forward(ids_tensor(&[ids.to_vec()], &device()), None, None))
}

#[test]
fn metadata_and_config_follow_llama_cpp() {
    let file = GgufFile::open(smollm_gguf()).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.tensors().len(), 272);
    assert_eq!(
        file.get("general.architecture"),
        Some(&MetaValue::String("llama".into()))
    );
    let q = file.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!(q.ggml_type, gguf::GgmlType::Q4_1);
    assert_eq!(
        (q.dims.clone(), q.shape()),
        (vec![576, 576], vec![576, 576])
    );
    let k = file.tensor("blk.0.attn_k.weight").unwrap();
    assert_eq!(k.shape(), vec![192, 576], "[out, in]: GGUF lists [in, out]");
    assert_eq!(
        file.tensor("token_embd.weight").unwrap().ggml_type,
        gguf::GgmlType::Q8_0
    );

    let checkpoint = Checkpoint::open(smollm_gguf()).unwrap();
    let models::ModelConfig::Llama(c) = checkpoint.model_config().clone() else {
        panic!("a llama config")
    };
    assert_eq!(
        (c.hidden_size, c.intermediate_size, c.num_hidden_layers),
        (576, 1536, 30)
    );
    assert_eq!(
        (c.num_attention_heads, c.num_kv_heads(), c.head_dim()),
        (9, 3, 64)
    );
    assert_eq!((c.vocab_size, c.max_position_embeddings), (49152, 8192));
    assert_eq!(c.rope_base(), 100_000.0);
    assert!((c.rms_norm_eps - 1e-5).abs() < 1e-12);
    assert!(c.tie_word_embeddings, "no output.weight: tied");
    assert_eq!((c.bos_token_id, c.pad_token_id), (Some(1), Some(2)));
    assert_eq!(c.eos_token_ids(), vec![2]);
    assert!(!checkpoint.contains("lm_head.weight"));
    assert_eq!(checkpoint.names().count(), 272);
}

#[test]
fn dequantised_weights_match_transformers() {
    let g = golden(GOLDEN);
    let checkpoint = Checkpoint::open(smollm_gguf()).unwrap();
    let mut checked = 0;
    for (key, expected) in g.iter().filter(|(k, _)| k.starts_with("weight.")) {
        let name = key.strip_prefix("weight.").unwrap();
        let ours = checkpoint.read(name).unwrap();
        assert_eq!(ours.shape, expected.shape, "{name}");
        assert_eq!(
            checkpoint.info(name).unwrap().shape,
            expected.shape.to_vec()
        );
        assert_close(name, &f32s(&ours), &f32s(expected), 1e-6);
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn tokenizer_matches_transformers() {
    let g = golden(GOLDEN);
    let m = manifest();
    let tok = Tokenizer::from_pretrained(smollm_gguf()).unwrap();
    for (i, text) in m["texts"].as_array().unwrap().iter().enumerate() {
        let text = text.as_str().unwrap();
        let ours = tok.encode(text, false).unwrap();
        assert_eq!(ours, ids(&g[&format!("text{i}_ids")]), "text {i}: {text:?}");
        assert_eq!(tok.decode(&ours, false).unwrap(), text, "round trip {i}");
    }
    assert_eq!(
        tok.encode(&chat_text(), false).unwrap(),
        ids(&g["chat_ids"])
    );
    // add_bos_token is false in the file: special tokens add nothing.
    assert_eq!(tok.encode(&chat_text(), true).unwrap(), ids(&g["chat_ids"]));
    let special = tok.special_tokens();
    assert_eq!(
        (special.bos, special.eos, special.pad, special.unk),
        (Some(1), Some(2), Some(2), Some(0))
    );
    assert_eq!(tok.token_to_id("<|im_end|>"), Some(2));

    let file = GgufFile::open(smollm_gguf()).unwrap();
    let gg = GgufTokenizer::from_file(&file).unwrap();
    let template = gg.chat_template.as_deref().unwrap();
    assert!(template.starts_with("{% for message in messages %}"));
    assert!(template.contains("<|im_start|>assistant\n"));
    assert!(!gg.add_bos_token);
    assert_eq!(gg.token(gg.special.bos), Some("<|im_start|>"));
}

#[test]
fn chat_logits_argmax_and_greedy_answer_match_transformers() {
    let g = golden(GOLDEN);
    let model = load(&smollm_gguf());
    let chat = ids(&g["chat_ids"]);
    let logits = chat_logits(&model, &chat);
    let vocab = 49152;
    assert_eq!(logits.len(), chat.len() * vocab);
    assert_close(
        "SmolLM2 GGUF chat logits (last 8)",
        &logits[(chat.len() - 8) * vocab..],
        &f32s(&g["chat_logits_last8"]),
        1e-4,
    );
    let argmax: Vec<u32> = logits
        .chunks(vocab)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0 as u32
        })
        .collect();
    assert_eq!(argmax, ids(&g["chat_argmax"]));

    let out = model
        .generate(std::slice::from_ref(&chat), &GenerationConfig::greedy(24))
        .unwrap();
    assert_eq!(out.sequences[0], ids(&g["generated_ids"]));
    let tok = Tokenizer::from_pretrained(smollm_gguf()).unwrap();
    assert_eq!(
        tok.decode(out.new_tokens(0), false).unwrap(),
        manifest()["greedy_text"].as_str().unwrap()
    );
}

#[test]
fn converted_folder_loads_with_the_same_logits_and_tokens() {
    let g = golden(GOLDEN);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("smollm2");
    let report = gguf::convert::convert(&smollm_gguf(), &out, FloatDType::F32).unwrap();
    assert_eq!(report.tensors, 272);
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tokenizer_config.json")).unwrap())
            .unwrap();
    assert!(config["chat_template"]
        .as_str()
        .unwrap()
        .contains("add_generation_prompt"));
    assert_eq!(config["eos_token"], "<|im_end|>");

    let chat = ids(&g["chat_ids"]);
    let converted = Checkpoint::open(&out).unwrap();
    assert_eq!(
        converted
            .info("model.layers.0.self_attn.q_proj.weight")
            .unwrap()
            .dtype,
        burn::tensor::DType::F32
    );
    let from_folder = chat_logits(&load(&out), &chat);
    let from_gguf = chat_logits(&load(&smollm_gguf()), &chat);
    assert_eq!(
        from_folder, from_gguf,
        "the same f32 weights give the same logits"
    );
    let tok = Tokenizer::from_pretrained(&out).unwrap();
    assert_eq!(tok.encode(&chat_text(), false).unwrap(), chat);
    assert_eq!(tok.special_tokens().eos, Some(2));

    // bf16: the weights are the f32 ones rounded.
    let bf = dir.path().join("bf16");
    gguf::convert::convert(&smollm_gguf(), &bf, FloatDType::BF16).unwrap();
    let name = "model.layers.12.self_attn.k_proj.weight";
    let checkpoint = Checkpoint::open(&bf).unwrap();
    assert_eq!(
        checkpoint.info(name).unwrap().dtype,
        burn::tensor::DType::BF16
    );
    let rounded: Vec<f32> = f32s(&g[&format!("weight.{name}")])
        .iter()
        .map(|&v| half::bf16::from_f32(v).to_f32())
        .collect();
    let stored: Vec<f32> = checkpoint
        .read(name)
        .unwrap()
        .convert::<f32>()
        .iter::<f32>()
        .collect();
    assert_eq!(stored, rounded);
}

#[test]
fn save_pretrained_asks_for_a_conversion_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "tiny.gguf",
        &write_gguf(&tiny_kv(), &tiny_tensors()),
    );
    let err = models::export::save_pretrained(&load(&path), &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "it was loaded from the GGUF file {}, not a checkpoint folder",
            path.display()
        )),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_folder_with_one_gguf_file_is_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("model.gguf");
    std::os::unix::fs::symlink(smollm_gguf(), &link).unwrap();
    assert_eq!(
        gguf::locate(dir.path(), "config.json").unwrap(),
        Some(link.clone())
    );
    let checkpoint = Checkpoint::open(dir.path()).unwrap();
    assert_eq!(checkpoint.dir(), link);
    std::os::unix::fs::symlink(smollm_gguf(), dir.path().join("other.gguf")).unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("exactly one .gguf file; found model.gguf, other.gguf"),
        "{err}"
    );
}

// ---- A tiny GGUF writer and corrupt files --------------------------------------------------

/// A metadata value to write.
enum V {
    U32(u32),
    F32(f32),
    Str(String),
    /// An array of strings.
    Strs(Vec<String>),
    /// An array of UINT32.
    U32s(Vec<u32>),
    /// An array of FLOAT32.
    F32s(Vec<f32>),
    /// Raw bytes after the type tag (for lying lengths).
    Raw(u32, Vec<u8>),
}

struct Tensor {
    name: String,
    dims: Vec<u64>,
    ty: u32,
    data: Vec<u8>,
    /// Overrides the computed offset.
    offset: Option<u64>,
}

fn tensor_f32(name: &str, dims: &[u64], values: &[f32]) -> Tensor {
    Tensor {
        name: name.into(),
        dims: dims.to_vec(),
        ty: 0,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        offset: None,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// GGUF v3 bytes: header, key/values, tensor infos, padding to 32, data (each tensor padded).
fn write_gguf(kv: &[(&str, V)], tensors: &[Tensor]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((kv.len() as u64).to_le_bytes());
    for (key, value) in kv {
        put_str(&mut out, key);
        match value {
            V::U32(v) => {
                out.extend(4u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            V::F32(v) => {
                out.extend(6u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            V::Str(s) => {
                out.extend(8u32.to_le_bytes());
                put_str(&mut out, s);
            }
            V::Strs(items) => {
                out.extend(9u32.to_le_bytes());
                out.extend(8u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for s in items {
                    put_str(&mut out, s);
                }
            }
            V::U32s(items) => {
                out.extend(9u32.to_le_bytes());
                out.extend(4u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|v| out.extend(v.to_le_bytes()));
            }
            V::F32s(items) => {
                out.extend(9u32.to_le_bytes());
                out.extend(6u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|v| out.extend(v.to_le_bytes()));
            }
            V::Raw(ty, bytes) => {
                out.extend(ty.to_le_bytes());
                out.extend(bytes);
            }
        }
    }
    let mut offset = 0u64;
    let mut data = Vec::new();
    for t in tensors {
        put_str(&mut out, &t.name);
        out.extend((t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend(d.to_le_bytes());
        }
        out.extend(t.ty.to_le_bytes());
        out.extend(t.offset.unwrap_or(offset).to_le_bytes());
        data.extend(&t.data);
        while !data.len().is_multiple_of(32) {
            data.push(0);
        }
        offset = data.len() as u64;
    }
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    out.extend(data);
    out
}

/// The metadata of a 1-layer llama: width 4, 2 heads of 2, 1 KV head, MLP 8, vocab 3.
fn tiny_kv() -> Vec<(&'static str, V)> {
    vec![
        ("general.architecture", V::Str("llama".into())),
        ("llama.context_length", V::U32(16)),
        ("llama.embedding_length", V::U32(4)),
        ("llama.block_count", V::U32(1)),
        ("llama.feed_forward_length", V::U32(8)),
        ("llama.attention.head_count", V::U32(2)),
        ("llama.attention.head_count_kv", V::U32(1)),
        ("llama.attention.layer_norm_rms_epsilon", V::F32(1e-5)),
        ("llama.rope.freq_base", V::F32(10000.0)),
        ("tokenizer.ggml.model", V::Str("gpt2".into())),
        (
            "tokenizer.ggml.tokens",
            V::Strs(vec!["a".into(), "b".into(), "ab".into()]),
        ),
        ("tokenizer.ggml.merges", V::Strs(vec!["a b".into()])),
    ]
}

fn seq(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| i as f32 * scale - 1.0).collect()
}

/// llama.cpp's `permute` (convert_hf_to_gguf.py) of the rows of a `[rows, cols]` matrix:
/// `w.reshape(heads, 2, rows / heads / 2, cols).swapaxes(1, 2)`.
fn llama_cpp_permute(w: &[f32], rows: usize, heads: usize) -> Vec<f32> {
    let cols = w.len() / rows;
    let half = rows / heads / 2;
    let mut out = Vec::with_capacity(w.len());
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let src = h * 2 * half + j * half + i;
                out.extend_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

fn tiny_tensors() -> Vec<Tensor> {
    let q = seq(16, 0.1);
    let k = seq(8, 0.3);
    vec![
        tensor_f32("token_embd.weight", &[4, 3], &seq(12, 0.2)),
        tensor_f32("blk.0.attn_q.weight", &[4, 4], &llama_cpp_permute(&q, 4, 2)),
        tensor_f32("blk.0.attn_k.weight", &[4, 2], &llama_cpp_permute(&k, 2, 1)),
        tensor_f32("blk.0.attn_v.weight", &[4, 2], &seq(8, 0.5)),
        tensor_f32("blk.0.attn_output.weight", &[4, 4], &seq(16, 0.05)),
        tensor_f32("blk.0.ffn_gate.weight", &[4, 8], &seq(32, 0.01)),
        tensor_f32("blk.0.ffn_up.weight", &[4, 8], &seq(32, 0.02)),
        tensor_f32("blk.0.ffn_down.weight", &[8, 4], &seq(32, 0.03)),
        tensor_f32("blk.0.attn_norm.weight", &[4], &[1.0; 4]),
        tensor_f32("blk.0.ffn_norm.weight", &[4], &[1.0; 4]),
        tensor_f32("output_norm.weight", &[4], &[1.0; 4]),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn open_err(path: &Path) -> String {
    let err = Checkpoint::open(path).unwrap_err();
    assert!(matches!(err, ModelError::Gguf { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&path.display().to_string()),
        "names the file: {text}"
    );
    text
}

#[test]
fn a_tiny_written_model_loads_with_hf_names_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "tiny.gguf",
        &write_gguf(&tiny_kv(), &tiny_tensors()),
    );
    let checkpoint = Checkpoint::open(&path).unwrap();
    let q = checkpoint
        .read("model.layers.0.self_attn.q_proj.weight")
        .unwrap();
    assert_eq!(q.shape.to_vec(), vec![4, 4]);
    assert_eq!(f32s(&q), seq(16, 0.1), "llama.cpp's permutation undone");
    let k = checkpoint
        .read("model.layers.0.self_attn.k_proj.weight")
        .unwrap();
    assert_eq!((k.shape.to_vec(), f32s(&k)), (vec![2, 4], seq(8, 0.3)));
    let down = checkpoint
        .read("model.layers.0.mlp.down_proj.weight")
        .unwrap();
    assert_eq!(
        down.shape.to_vec(),
        vec![4, 8],
        "[out, in] from GGUF's [in, out]"
    );
    assert_eq!(
        checkpoint
            .read("model.embed_tokens.weight")
            .unwrap()
            .shape
            .to_vec(),
        vec![3, 4]
    );
    // The whole model builds and runs (head_dim from width / heads, tied embeddings).
    let model = load(&path);
    let logits = model.forward(ids_tensor(&[vec![0, 2, 1]], &device()), None, None);
    assert_eq!(logits.dims(), [1, 3, 3]);
    assert!(values(&logits).iter().all(|v| v.is_finite()));
    let tok = Tokenizer::from_pretrained(&path).unwrap();
    assert_eq!(tok.encode("abba", false).unwrap(), vec![2, 1, 0]);
}

#[test]
fn an_unsupported_tensor_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = tiny_tensors();
    tensors[1].ty = 6; // Q5_0
    let path = write(dir.path(), "q50.gguf", &write_gguf(&tiny_kv(), &tensors));
    let err = open_err(&path);
    assert!(
        err.contains(
            "tensor `blk.0.attn_q.weight`: unsupported tensor type Q5_0 (type 6) (supported: F32"
        ),
        "{err}"
    );
}

#[test]
fn truncated_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = write_gguf(&tiny_kv(), &tiny_tensors());
    let path = write(dir.path(), "cut.gguf", &bytes[..bytes.len() - 40]);
    let err = open_err(&path);
    assert!(
        err.contains("tensor `output_norm.weight`: F32 data of 16 bytes at offsets"),
        "{err}"
    );
    assert!(err.contains("runs past the end of the file"), "{err}");
    // Cut inside the header: the key being read is named.
    let path = write(dir.path(), "header.gguf", &bytes[..60]);
    let err = open_err(&path);
    assert!(err.contains("metadata key `general.architecture`"), "{err}");
}

#[test]
fn lying_offsets_and_sizes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = tiny_tensors();
    tensors[3].offset = Some(1 << 40);
    let path = write(dir.path(), "far.gguf", &write_gguf(&tiny_kv(), &tensors));
    let err = open_err(&path);
    assert!(
        err.contains("tensor `blk.0.attn_v.weight`: F32 data of 32 bytes"),
        "{err}"
    );
    let mut tensors = tiny_tensors();
    tensors[3].offset = Some(7);
    let path = write(
        dir.path(),
        "misaligned.gguf",
        &write_gguf(&tiny_kv(), &tensors),
    );
    let err = open_err(&path);
    assert!(
        err.contains(
            "tensor `blk.0.attn_v.weight`: data offset 7 is not a multiple of the alignment 32"
        ),
        "{err}"
    );
    // Dimensions whose product overflows or exceeds what the file could hold.
    let mut tensors = tiny_tensors();
    tensors[0].dims = vec![u64::MAX / 2, 4];
    let path = write(dir.path(), "huge.gguf", &write_gguf(&tiny_kv(), &tensors));
    let err = open_err(&path);
    assert!(
        err.contains("tensor `token_embd.weight`: dimensions"),
        "{err}"
    );
    // A Q8_0 row that is not a whole number of blocks.
    let mut tensors = tiny_tensors();
    tensors[0].ty = 8;
    let path = write(dir.path(), "rows.gguf", &write_gguf(&tiny_kv(), &tensors));
    let err = open_err(&path);
    assert!(
        err.contains("tensor `token_embd.weight`: rows of 4 values are not a whole number of Q8_0 blocks of 32"),
        "{err}"
    );
    // A tensor count far beyond the file.
    let mut bytes = write_gguf(&tiny_kv(), &tiny_tensors());
    bytes[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let path = write(dir.path(), "count.gguf", &bytes);
    let err = open_err(&path);
    assert!(err.contains("of 1152921504606846976"), "{err}");
}

#[test]
fn an_unknown_architecture_or_a_missing_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = tiny_kv();
    kv[0].1 = V::Str("gptneox".into());
    let path = write(dir.path(), "arch.gguf", &write_gguf(&kv, &tiny_tensors()));
    let err = open_err(&path);
    assert!(
        err.ends_with(
            "metadata key `general.architecture`: unsupported architecture \"gptneox\" (supported: llama, qwen2, qwen3)"
        ),
        "{err}"
    );
    let kv: Vec<_> = tiny_kv()
        .into_iter()
        .filter(|(k, _)| *k != "llama.block_count")
        .collect();
    let path = write(
        dir.path(),
        "nolayers.gguf",
        &write_gguf(&kv, &tiny_tensors()),
    );
    let err = open_err(&path);
    assert!(
        err.ends_with(
            "metadata key `llama.block_count`: expected a non-negative integer, found nothing"
        ),
        "{err}"
    );
    let mut kv = tiny_kv();
    kv[9].1 = V::Str("bert".into());
    let path = write(dir.path(), "tok.gguf", &write_gguf(&kv, &tiny_tensors()));
    let err = Tokenizer::from_pretrained(&path).unwrap_err().to_string();
    assert!(
        err.contains("metadata key `tokenizer.ggml.model`: unsupported tokenizer model \"bert\" (supported: gpt2, llama)"),
        "{err}"
    );
}

#[test]
fn string_and_array_lengths_beyond_the_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = tiny_kv();
    let mut lying = (1u64 << 40).to_le_bytes().to_vec();
    lying.extend(b"short");
    kv.insert(1, ("general.name", V::Raw(8, lying)));
    let path = write(dir.path(), "string.gguf", &write_gguf(&kv, &tiny_tensors()));
    let err = open_err(&path);
    assert!(
        err.contains("metadata key `general.name`: string length 1099511627776 (at offset"),
        "{err}"
    );
    assert!(err.contains("is larger than the"), "{err}");

    let mut kv = tiny_kv();
    let mut array = 10u32.to_le_bytes().to_vec(); // UINT64 elements
    array.extend((u64::MAX / 4).to_le_bytes());
    kv.insert(1, ("general.tags", V::Raw(9, array)));
    let path = write(dir.path(), "array.gguf", &write_gguf(&kv, &tiny_tensors()));
    let err = open_err(&path);
    assert!(
        err.contains("metadata key `general.tags`: array length 4611686018427387903 (at offset"),
        "{err}"
    );

    let mut kv = tiny_kv();
    kv.insert(1, ("general.odd", V::Raw(13, vec![0; 8])));
    let path = write(dir.path(), "type.gguf", &write_gguf(&kv, &tiny_tensors()));
    let err = open_err(&path);
    assert!(
        err.contains("metadata key `general.odd`: unknown value type 13 (expected 0 to 12)"),
        "{err}"
    );

    let mut bytes = write_gguf(&tiny_kv(), &tiny_tensors());
    bytes[..4].copy_from_slice(b"GGML");
    let path = write(dir.path(), "magic.gguf", &bytes);
    let err = open_err(&path);
    assert!(
        err.contains("not a GGUF file: expected the magic bytes \"GGUF\", found \"GGML\""),
        "{err}"
    );
}

#[test]
fn a_sentencepiece_tokenizer_merges_by_score_with_byte_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = ["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "<0x21>"];
    let mut kv: Vec<_> = tiny_kv()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("tokenizer."))
        .collect();
    kv.extend([
        ("tokenizer.ggml.model", V::Str("llama".into())),
        (
            "tokenizer.ggml.tokens",
            V::Strs(tokens.iter().map(|t| t.to_string()).collect()),
        ),
        // No merges: rebuilt from the scores, "▁a" (-1) before "ab" (-2).
        (
            "tokenizer.ggml.scores",
            V::F32s(vec![0.0, 0.0, 0.0, -5.0, -3.0, -4.0, -1.0, -2.0, 0.0]),
        ),
        (
            "tokenizer.ggml.token_type",
            V::U32s(vec![2, 3, 3, 1, 1, 1, 1, 1, 6]),
        ),
        ("tokenizer.ggml.unknown_token_id", V::U32(0)),
        ("tokenizer.ggml.bos_token_id", V::U32(1)),
        ("tokenizer.ggml.eos_token_id", V::U32(2)),
    ]);
    let path = write(dir.path(), "spm.gguf", &write_gguf(&kv, &tiny_tensors()));
    let tok = Tokenizer::from_pretrained(&path).unwrap();
    // "ab a" → "▁ab▁a": "▁ a" merges first, so "a b" never meets; BOS by default.
    assert_eq!(tok.encode("ab a", true).unwrap(), vec![1, 6, 5, 6]);
    assert_eq!(tok.encode("ab a", false).unwrap(), vec![6, 5, 6]);
    assert_eq!(tok.encode("!", false).unwrap(), vec![3, 8], "byte fallback");
    assert_eq!(tok.decode(&[1, 6, 5, 6], true).unwrap(), "ab a");
    assert_eq!(tok.decode(&[3, 8], true).unwrap(), "!");
    assert_eq!(tok.special_tokens().bos, Some(1));
    let gg = GgufTokenizer::open(&path).unwrap();
    assert!(gg.add_bos_token && !gg.add_eos_token && gg.chat_template.is_none());
    assert_eq!(gg.tokenizer_config(None)["bos_token"], "<s>");
}

/// The llama.cpp name of a Hugging Face tensor name (the inverse of `gguf::llama::hf_name`).
fn gguf_name(hf: &str) -> String {
    match hf {
        "model.embed_tokens.weight" => return "token_embd.weight".into(),
        "model.norm.weight" => return "output_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.").unwrap();
    let (layer, rest) = rest.split_once('.').unwrap();
    let (module, suffix) = rest.rsplit_once('.').unwrap();
    let short = match module {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        other => panic!("no llama.cpp name for {other}"),
    };
    format!("blk.{layer}.{short}.{suffix}")
}

/// A golden tiny checkpoint written as llama.cpp's converter would (F32): `arch` metadata
/// from its config.json, tensors renamed with their dimensions reversed, q/k rows (weights
/// and biases) permuted when `arch` is `llama`.
fn family_gguf(dir: &Path, family: &str, arch: &str, extra: Vec<(&'static str, V)>) -> PathBuf {
    let src = shared_dir().join(format!("golden/{family}_tiny_random"));
    let checkpoint = Checkpoint::open(&src).unwrap();
    let config = checkpoint.config().clone();
    let n = |k: &str| config[k].as_u64().unwrap() as u32;
    let (heads, kv_heads) = (n("num_attention_heads"), n("num_key_value_heads"));
    let key = |k: &str| -> &'static str { Box::leak(format!("{arch}.{k}").into_boxed_str()) };
    let mut kv = vec![
        ("general.architecture", V::Str(arch.into())),
        (key("context_length"), V::U32(n("max_position_embeddings"))),
        (key("embedding_length"), V::U32(n("hidden_size"))),
        (key("block_count"), V::U32(n("num_hidden_layers"))),
        (key("feed_forward_length"), V::U32(n("intermediate_size"))),
        (key("attention.head_count"), V::U32(heads)),
        (key("attention.head_count_kv"), V::U32(kv_heads)),
        (
            key("attention.layer_norm_rms_epsilon"),
            V::F32(config["rms_norm_eps"].as_f64().unwrap() as f32),
        ),
        (
            key("rope.freq_base"),
            V::F32(config["rope_parameters"]["rope_theta"].as_f64().unwrap() as f32),
        ),
        (key("vocab_size"), V::U32(n("vocab_size"))),
        ("tokenizer.ggml.bos_token_id", V::U32(n("bos_token_id"))),
        ("tokenizer.ggml.eos_token_id", V::U32(n("eos_token_id"))),
    ];
    if let Some(head_dim) = config["head_dim"].as_u64() {
        kv.push((key("attention.key_length"), V::U32(head_dim as u32)));
        kv.push((key("attention.value_length"), V::U32(head_dim as u32)));
    }
    kv.extend(extra);
    let mut names: Vec<String> = checkpoint.names().map(String::from).collect();
    names.sort();
    let tensors: Vec<Tensor> = names
        .iter()
        .map(|name| {
            let data = checkpoint.read(name).unwrap();
            let shape = data.shape.to_vec();
            let mut values = f32s(&data);
            let head_rows = if name.contains("q_proj") {
                Some(heads)
            } else if name.contains("k_proj") {
                Some(kv_heads)
            } else {
                None
            };
            if let (Some(h), "llama") = (head_rows, arch) {
                values = llama_cpp_permute(&values, shape[0], h as usize);
            }
            let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
            tensor_f32(&gguf_name(name), &dims, &values)
        })
        .collect();
    write(dir, &format!("{family}.gguf"), &write_gguf(&kv, &tensors))
}

/// Qwen2 (q/k/v biases), Qwen3 (q_norm/k_norm, head_dim from `attention.key_length`) and
/// Mistral (written as `llama`, q/k permuted, with its window) from GGUF files give
/// transformers' logits of the golden right-padded batch.
#[test]
fn qwen2_qwen3_and_mistral_gguf_files_match_transformers() {
    let dir = tempfile::tempdir().unwrap();
    for (family, arch, extra, model_type) in [
        ("qwen2", "qwen2", vec![], "qwen2"),
        ("qwen3", "qwen3", vec![], "qwen3"),
        (
            "mistral",
            "llama",
            vec![("llama.attention.sliding_window", V::U32(4096))],
            "mistral",
        ),
    ] {
        let path = family_gguf(dir.path(), family, arch, extra);
        let checkpoint = Checkpoint::open(&path).unwrap();
        assert_eq!(checkpoint.config()["model_type"], model_type, "{family}");
        let g = golden(&format!("{family}_tiny_forward"));
        let model = load(&path);
        let device = device();
        let input = int_tensor::<TB, 2>(&g["input_ids"], &device);
        let mask = int_tensor::<TB, 2>(&g["attention_mask"], &device);
        let [b, t] = input.dims();
        let positions =
            burn::tensor::Tensor::<TB, 1, burn::tensor::Int>::arange(0..t as i64, &device)
                .reshape([1, t])
                .expand([b, t]);
        let hidden = model.forward_hidden(input, Some(mask), Some(positions), None);
        assert_close(
            &format!("{family} logits from GGUF"),
            &values(&model.lm_logits(hidden)),
            &f32s(&g["logits"]),
            1e-4,
        );
        let generated = ids(&g["generated_ids"]);
        let out = model
            .generate(&[generated[..t].to_vec()], &GenerationConfig::greedy(12))
            .unwrap();
        assert_eq!(
            out.sequences[0], generated,
            "{family} greedy tokens from GGUF"
        );
    }
    // Qwen files keep Hugging Face's row order: the loader reads q rows and biases as stored
    // (undoing llama's permutation on them would scramble the heads).
    let qwen2 = Checkpoint::open(family_gguf(dir.path(), "qwen2", "qwen2", vec![])).unwrap();
    let hf = Checkpoint::open(shared_dir().join("golden/qwen2_tiny_random")).unwrap();
    let name = "model.layers.0.self_attn.q_proj.weight";
    assert_eq!(
        f32s(&qwen2.read(name).unwrap()),
        f32s(&hf.read(name).unwrap())
    );
    let bias = "model.layers.0.self_attn.q_proj.bias";
    assert_eq!(
        f32s(&qwen2.read(bias).unwrap()),
        f32s(&hf.read(bias).unwrap())
    );
}
