//! Checks made when the model, tokenizer and adapters of a run are set up, before anything
//! large is allocated or a forward pass can index out of bounds: the sequence length against
//! the model's position table, the tokenizer's ids against the model's vocabulary, the
//! adapter's `r` against each targeted layer, and the memory the adapters will need.

use std::path::Path;

use anyhow::bail;
use bone_module::{AdapterConfig, AdapterHost, AdapterKind};
use burn::tensor::backend::Backend;

/// Bytes per trainable parameter while training in f32: the weight, its gradient and AdamW's
/// two moments.
pub const TRAIN_BYTES_PER_PARAM: u64 = 16;

/// Refuses `--max-seq-len` above what the model's position table holds.
///
/// # Errors
/// `max_seq_len > limit`, naming the limit and `model_dir/config.json`.
pub fn check_max_seq_len(max_seq_len: usize, limit: usize, model_dir: &Path) -> anyhow::Result<()> {
    if max_seq_len > limit {
        bail!(
            "--max-seq-len {max_seq_len}: the model takes at most {limit} tokens \
             (max_position_embeddings in {}); pass --max-seq-len {limit} or less",
            model_dir.join("config.json").display()
        );
    }
    Ok(())
}

/// The warning for a rotary decoder asked for `max_seq_len` tokens when its config says
/// `max_position_embeddings` is `limit` (`None` within it). Rotary positions past the limit
/// compute (nothing indexes out of bounds) but were never trained: quality usually drops.
pub fn rope_position_warning(max_seq_len: usize, limit: usize, model: &Path) -> Option<String> {
    (max_seq_len > limit).then(|| {
        format!(
            "--max-seq-len {max_seq_len} is above the model's max_position_embeddings {limit} \
             ({}); positions past {limit} were not trained",
            config_source(model).display()
        )
    })
}

/// Where a model's config comes from: `config.json` of a folder, or the GGUF file itself.
fn config_source(model: &Path) -> std::path::PathBuf {
    if model.is_file() {
        model.to_path_buf()
    } else {
        model.join("config.json")
    }
}

/// Refuses a tokenizer with more ids than the model's embedding table has rows.
///
/// # Errors
/// `tokenizer_ids > vocab_size`, naming both numbers and both files.
pub fn check_tokenizer_vocab(
    tokenizer_ids: usize,
    tokenizer: &Path,
    vocab_size: usize,
    model_dir: &Path,
) -> anyhow::Result<()> {
    if tokenizer_ids > vocab_size {
        bail!(
            "{}: the tokenizer has {tokenizer_ids} ids (added tokens included) but the model's \
             vocab_size is {vocab_size} ({}); ids from {vocab_size} on have no embedding",
            tokenizer.display(),
            config_source(model_dir).display()
        );
    }
    Ok(())
}

/// Checks the adapter `config` would add to `host`, before any of it is allocated: a Bone or
/// mini `r` larger than a targeted layer's input (unless `force_r`), and the memory training
/// the adapters needs ([`TRAIN_BYTES_PER_PARAM`] per trainable parameter) against the memory
/// available. Returns the trainable parameters of the adapters. (Bat's `r` must divide each
/// layer's sizes: the adapter's own check names the layer.)
///
/// # Errors
/// The first layer whose input is smaller than `r`, or an estimate above the available memory;
/// each says how to proceed.
pub fn check_adapter_plan<B: Backend, H: AdapterHost<B>>(
    host: &H,
    config: &AdapterConfig,
    force_r: bool,
) -> anyhow::Result<usize> {
    let selector = config.selector()?;
    let mut params = 0usize;
    let mut too_wide: Option<(String, usize, usize)> = None;
    host.visit_linears(&mut |layer| {
        if !selector.selects(layer.path()) {
            return;
        }
        let spec = selector.spec_for(layer.path());
        let (d_in, d_out) = (layer.d_input(), layer.d_output());
        let wide =
            matches!(spec.kind(), AdapterKind::Bone | AdapterKind::Mini) && spec.rank() > d_in;
        if wide && too_wide.is_none() {
            too_wide = Some((layer.path().to_string(), spec.rank(), d_in));
        }
        params = params.saturating_add(spec.trainable_params(d_in, d_out));
    });
    if let Some((layer, r, d_in)) = too_wide.filter(|_| !force_r) {
        bail!(
            "--r {r}: larger than the input of {layer} ({d_in} features); a Bone block wider \
             than the layer's input only repeats it. Pass --r {d_in} or less, or --force-r to \
             build it anyway"
        );
    }
    check_memory(params, available_memory())?;
    Ok(params)
}

/// Refuses training `params` trainable parameters when the estimate exceeds `available`
/// bytes (`None`: unknown, not checked).
///
/// # Errors
/// The estimate, in GiB, above the available memory.
pub fn check_memory(params: usize, available: Option<u64>) -> anyhow::Result<()> {
    let need = (params as u64).saturating_mul(TRAIN_BYTES_PER_PARAM);
    if let Some(available) = available.filter(|&a| need > a) {
        bail!(
            "the adapters would need about {:.1} GiB ({params} trainable parameters × \
             {TRAIN_BYTES_PER_PARAM} bytes for weights, gradients and AdamW moments) but {:.1} \
             GiB of memory is available; lower --r or target fewer modules",
            gib(need),
            gib(available)
        );
    }
    Ok(())
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// The memory available to a new allocation: Linux `MemAvailable`; `None` elsewhere.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
