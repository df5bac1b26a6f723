//! llama.cpp's LLaMA-family conventions, undone: the `<arch>.*` metadata (`llama`, which
//! Mistral files also use, `qwen2`, `qwen3`) as a Hugging Face `config.json`, tensor names,
//! and the row order of `attn_q`/`attn_k` (permuted by llama.cpp's converter for `llama`
//! only; Qwen files keep Hugging Face's order, llama.cpp runs them with NeoX RoPE).

use serde_json::{json, Map, Value};

use super::reader::GgufFile;
use super::value::MetaValue;
use crate::error::Result;

/// The architectures (`general.architecture`) this module maps to a Hugging Face model.
pub const SUPPORTED_ARCHITECTURES: [&str; 3] = ["llama", "qwen2", "qwen3"];

/// Whether llama.cpp's converter permuted the q/k rows of `arch` (`LlamaModel.permute`,
/// used for `llama` and the Mistral files written as `llama`; not for Qwen).
pub fn permutes_qk(arch: &str) -> bool {
    arch == "llama"
}

/// How the rows of a stored matrix are reordered into Hugging Face's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOrder {
    /// As stored.
    Same,
    /// llama.cpp's `permute` of q/k rows for `heads` heads, undone (transformers'
    /// `reverse_permute_weights`): within a head, stored row `2 i + j` is row `j d/2 + i`.
    Interleaved {
        /// The heads the rows are split into.
        heads: usize,
    },
}

/// The Hugging Face name of a llama.cpp tensor name, and how its rows are ordered; `None`
/// for names with no Hugging Face counterpart (e.g. `rope_freqs.weight`).
pub fn hf_name(name: &str, heads: usize, kv_heads: usize) -> Option<(String, RowOrder)> {
    let simple = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(n) = simple {
        return Some((n.into(), RowOrder::Same));
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = rest.split_once('.')?;
    let (hf, order) = match module {
        "attn_q" => ("self_attn.q_proj", RowOrder::Interleaved { heads }),
        "attn_k" => (
            "self_attn.k_proj",
            RowOrder::Interleaved { heads: kv_heads },
        ),
        "attn_v" => ("self_attn.v_proj", RowOrder::Same),
        "attn_output" => ("self_attn.o_proj", RowOrder::Same),
        "ffn_gate" => ("mlp.gate_proj", RowOrder::Same),
        "ffn_up" => ("mlp.up_proj", RowOrder::Same),
        "ffn_down" => ("mlp.down_proj", RowOrder::Same),
        "attn_q_norm" => ("self_attn.q_norm", RowOrder::Same),
        "attn_k_norm" => ("self_attn.k_norm", RowOrder::Same),
        "attn_norm" => ("input_layernorm", RowOrder::Same),
        "ffn_norm" => ("post_attention_layernorm", RowOrder::Same),
        _ => return None,
    };
    if !matches!(suffix, "weight" | "bias") {
        return None;
    }
    Some((format!("model.layers.{layer}.{hf}.{suffix}"), order))
}

/// Reorders the rows of `values` (a row-major `[rows, cols]` matrix, or a `[rows]` bias)
/// from llama.cpp's order to Hugging Face's.
///
/// Returns `None` when the rows do not split into `heads` heads of an even size.
pub fn reorder_rows(values: Vec<f32>, rows: usize, order: RowOrder) -> Option<Vec<f32>> {
    let RowOrder::Interleaved { heads } = order else {
        return Some(values);
    };
    if heads == 0 || rows == 0 || !rows.is_multiple_of(2 * heads) {
        return None;
    }
    let cols = values.len() / rows;
    let head = rows / heads;
    let half = head / 2;
    let mut out = vec![0.0; values.len()];
    for h in 0..heads {
        for j in 0..2 {
            for i in 0..half {
                let dst = h * head + j * half + i;
                let src = h * head + 2 * i + j;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&values[src * cols..(src + 1) * cols]);
            }
        }
    }
    Some(out)
}

/// The Hugging Face `config.json` of a llama.cpp LLaMA-family file: `model_type` `llama`
/// (`mistral` when the file has `llama.attention.sliding_window`), `qwen2` or `qwen3`.
///
/// # Errors
/// An architecture outside [`SUPPORTED_ARCHITECTURES`], or a missing or mistyped `<arch>.*`
/// key, naming the key and the expected type.
pub fn hf_config(file: &GgufFile) -> Result<Value> {
    let arch = string(file, "general.architecture")?;
    if !SUPPORTED_ARCHITECTURES.contains(&arch) {
        return Err(file.error(format!(
            "metadata key `general.architecture`: unsupported architecture \"{arch}\" (supported: {})",
            SUPPORTED_ARCHITECTURES.join(", ")
        )));
    }
    let key = |k: &str| format!("{arch}.{k}");
    let uint = |k: &str| integer(file, &key(k));
    let heads = uint("attention.head_count")?;
    let kv_heads = match file.get(&key("attention.head_count_kv")) {
        Some(_) => uint("attention.head_count_kv")?,
        None => heads,
    };
    let vocab = match file
        .get("tokenizer.ggml.tokens")
        .and_then(MetaValue::as_array)
    {
        Some(tokens) => tokens.len() as u64,
        None => uint("vocab_size")?,
    };
    let sliding_window = match file.get(&key("attention.sliding_window")) {
        Some(_) => Some(uint("attention.sliding_window")?),
        None => None,
    };
    // A Mistral checkpoint is written as `llama`; its window (when the file keeps it) tells.
    let (model_type, class) = match (arch, sliding_window) {
        ("qwen2", _) => ("qwen2", "Qwen2ForCausalLM"),
        ("qwen3", _) => ("qwen3", "Qwen3ForCausalLM"),
        (_, Some(_)) => ("mistral", "MistralForCausalLM"),
        _ => ("llama", "LlamaForCausalLM"),
    };
    let mut config = Map::new();
    config.insert("architectures".into(), json!([class]));
    config.insert("model_type".into(), json!(model_type));
    if let Some(window) = sliding_window {
        config.insert("sliding_window".into(), json!(window));
        if arch != "llama" {
            config.insert("use_sliding_window".into(), json!(true));
        }
    }
    config.insert("hidden_size".into(), json!(uint("embedding_length")?));
    config.insert(
        "intermediate_size".into(),
        json!(uint("feed_forward_length")?),
    );
    config.insert("num_hidden_layers".into(), json!(uint("block_count")?));
    config.insert("num_attention_heads".into(), json!(heads));
    config.insert("num_key_value_heads".into(), json!(kv_heads));
    config.insert("vocab_size".into(), json!(vocab));
    config.insert(
        "max_position_embeddings".into(),
        json!(uint("context_length")?),
    );
    config.insert(
        "rms_norm_eps".into(),
        json!(float(file, &key("attention.layer_norm_rms_epsilon"))?),
    );
    // The head size: `attention.key_length` (Qwen3 writes it; its heads are not
    // hidden / heads), else the rotated dimensions.
    for k in ["attention.key_length", "rope.dimension_count"] {
        if file.get(&key(k)).is_some() {
            config.insert("head_dim".into(), json!(uint(k)?));
            break;
        }
    }
    let theta = match file.get(&key("rope.freq_base")) {
        Some(_) => float(file, &key("rope.freq_base"))?,
        None => 10_000.0,
    };
    config.insert("rope_theta".into(), json!(theta));
    config.insert("hidden_act".into(), json!("silu"));
    config.insert(
        "tie_word_embeddings".into(),
        json!(file.tensor("output.weight").is_none()),
    );
    for (field, k) in [
        ("bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("eos_token_id", "tokenizer.ggml.eos_token_id"),
        ("pad_token_id", "tokenizer.ggml.padding_token_id"),
    ] {
        if file.get(k).is_some() {
            config.insert(field.into(), json!(integer(file, k)?));
        }
    }
    config.insert("torch_dtype".into(), json!("float32"));
    Ok(Value::Object(config))
}

fn expected(file: &GgufFile, key: &str, what: &str) -> crate::ModelError {
    let found = match file.get(key) {
        Some(v) => format!("a {} value", v.type_name()),
        None => "nothing".into(),
    };
    file.error(format!(
        "metadata key `{key}`: expected {what}, found {found}"
    ))
}

/// Metadata `key` as a non-negative integer.
pub fn integer(file: &GgufFile, key: &str) -> Result<u64> {
    file.get(key)
        .and_then(MetaValue::as_u64)
        .ok_or_else(|| expected(file, key, "a non-negative integer"))
}

/// Metadata `key` as a number.
pub fn float(file: &GgufFile, key: &str) -> Result<f64> {
    file.get(key)
        .and_then(MetaValue::as_f64)
        .ok_or_else(|| expected(file, key, "a number"))
}

/// Metadata `key` as a string.
pub fn string<'a>(file: &'a GgufFile, key: &str) -> Result<&'a str> {
    file.get(key)
        .and_then(MetaValue::as_str)
        .ok_or_else(|| expected(file, key, "a string"))
}
