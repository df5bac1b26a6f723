//! `bone inspect`: architecture, parameter counts and the trainable share.

use bone_module::{AdaptedLinear, AdapterHost, AdapterHostExt};
use burn::module::Module;
use burn::tensor::backend::Backend;
use models::encoder::{ClassificationHead, EncoderModel};
use models::AutoModel;

use super::common::thousands;
use super::InspectArgs;
use crate::device::BackendKind;

/// `writeln!` into a `String` (which cannot fail).
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

pub fn run<B: Backend>(
    args: InspectArgs,
    device: &B::Device,
    backend: BackendKind,
) -> anyhow::Result<()> {
    let mut o = String::new();
    let loaded = args.model.load::<B>(device)?;
    let model = &loaded.model;
    let dtype = first_dtype(model);
    w!(o, "model         {}", args.model.model.display());
    w!(
        o,
        "architecture  {} (model_type {}), backend {backend}, dtype {dtype}",
        model.architecture(),
        model.model_type()
    );
    let mut parts: Vec<(&str, String)> = Vec::new();
    match model {
        AutoModel::CausalLm(m) => {
            let c = m.config();
            w!(o,
                "shape         {} layers, hidden {}, {} heads ({} key/value), head_dim {}, intermediate {}, vocab {}, \
                 max positions {}, rope_theta {}, {}",
                c.num_hidden_layers,
                c.hidden_size,
                c.num_attention_heads,
                c.num_kv_heads(),
                c.head_dim(),
                c.intermediate_size,
                c.vocab_size,
                c.max_position_embeddings,
                c.rope_base(),
                if c.tie_word_embeddings { "tied embeddings" } else { "separate lm_head" }
            );
            let (mut attn, mut mlp, mut norms) = (0, 0, m.model.norm.num_params());
            for layer in &m.model.layers {
                let a = &layer.self_attn;
                attn += [&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj]
                    .iter()
                    .map(|l| l.base_params())
                    .sum::<usize>();
                let p = &layer.mlp;
                mlp += [&p.gate_proj, &p.up_proj, &p.down_proj]
                    .iter()
                    .map(|l| l.base_params())
                    .sum::<usize>();
                norms += layer.input_layernorm.num_params()
                    + layer.post_attention_layernorm.num_params();
            }
            parts.push(("embeddings", thousands(m.model.embed_tokens.num_params())));
            parts.push(("attention", thousands(attn)));
            parts.push(("mlp", thousands(mlp)));
            parts.push(("norms", thousands(norms)));
            parts.push((
                "lm_head",
                m.lm_head
                    .as_ref()
                    .map_or("tied to the embeddings".into(), |h| {
                        thousands(h.num_params())
                    }),
            ));
        }
        AutoModel::Encoder(m) => encoder_parts(m, &mut parts, &mut o),
        AutoModel::Classifier(m) => {
            encoder_parts(&m.encoder, &mut parts, &mut o);
            let kind = match &m.head {
                ClassificationHead::Bert(_) => "dropout + classifier on the pooler output",
                ClassificationHead::Roberta(_) => "dense + tanh + out_proj on <s>",
            };
            parts.push((
                "head",
                format!(
                    "{} ({} labels{}; {kind}; {})",
                    thousands(m.head.num_params()),
                    m.num_labels(),
                    if m.is_regression() {
                        ", regression"
                    } else {
                        ""
                    },
                    if m.is_head_trainable() {
                        "trained"
                    } else {
                        "frozen"
                    }
                ),
            ));
        }
    }
    let adapter_params: usize = {
        let mut n = 0;
        model.visit_linears(&mut |l| n += l.num_params() - l.base_params());
        n
    };
    let total = model.num_params();
    w!(
        o,
        "parameters    {} (base {})",
        thousands(total),
        thousands(total - adapter_params)
    );
    for (name, value) in &parts {
        w!(o, "  {name:<12}{value}");
    }
    let paths = model.linear_paths();
    let mut kinds: Vec<String> = Vec::new();
    for p in &paths {
        let leaf = leaf_name(p);
        if !kinds.contains(&leaf) {
            kinds.push(leaf);
        }
    }
    w!(
        o,
        "linear layers {} adaptable ({})",
        paths.len(),
        kinds.join(", ")
    );
    match &loaded.adapter {
        Some(a) => w!(
            o,
            "adapter       {} ({}, r={}) on {} layers, {} parameters; target_modules {}{}",
            a.config.peft_type.as_str(),
            a.config.method(),
            a.config.r(),
            a.layers.len(),
            thousands(adapter_params),
            a.config.target_modules,
            if a.extra_tensors.is_empty() {
                String::new()
            } else {
                format!("; modules_to_save {}", a.extra_tensors.len())
            }
        ),
        None => w!(o, "adapter       none (add one with --adapter DIR)"),
    }
    let trainable = model.trainable_params();
    w!(
        o,
        "trainable     {} of {} ({:.4}%)",
        thousands(trainable),
        thousands(total),
        100.0 * trainable as f64 / total.max(1) as f64
    );
    w!(
        o,
        "trainable params: {} || all params: {} || trainable%: {:.4}",
        thousands(trainable),
        thousands(total),
        100.0 * trainable as f64 / total.max(1) as f64
    );
    if args.layers {
        w!(o, "layers:");
        model.visit_linears(&mut |l: &AdaptedLinear<B>| {
            let adapters: Vec<String> = l
                .adapters()
                .map(|(name, a)| format!("{name}: {} r={}", a.kind(), a.rank()))
                .collect();
            w!(
                o,
                "  {:<52} {:>6} -> {:<6} {}",
                l.path(),
                l.d_input(),
                l.d_output(),
                adapters.join(", ")
            );
        });
    }
    super::common::print_stdout(&o)
}

fn encoder_parts<B: Backend>(m: &EncoderModel<B>, parts: &mut Vec<(&str, String)>, o: &mut String) {
    let c = m.config();
    w!(o,
        "shape         {} layers, hidden {}, {} heads, intermediate {}, vocab {}, max positions {}, type vocab {}, {}",
        c.num_hidden_layers,
        c.hidden_size,
        c.num_attention_heads,
        c.intermediate_size,
        c.vocab_size,
        c.max_position_embeddings,
        c.type_vocab_size,
        if m.pooler.is_some() { "pooler" } else { "no pooler" }
    );
    let (mut attn, mut ffn, mut norms) = (0, 0, 0);
    for layer in &m.layers {
        let a = &layer.attention;
        attn += [
            &a.self_attn.query,
            &a.self_attn.key,
            &a.self_attn.value,
            &a.output.dense,
        ]
        .iter()
        .map(|l| l.base_params())
        .sum::<usize>();
        ffn += layer.intermediate.dense.base_params() + layer.output.dense.base_params();
        norms += a.output.layer_norm.num_params() + layer.output.layer_norm.num_params();
    }
    parts.push(("embeddings", thousands(m.embeddings.num_params())));
    parts.push(("attention", thousands(attn)));
    parts.push(("ffn", thousands(ffn)));
    parts.push(("norms", thousands(norms)));
    if let Some(p) = &m.pooler {
        parts.push(("pooler", thousands(p.dense.base_params())));
    }
}

fn leaf_name(path: &str) -> String {
    // `attention.output.dense`, `intermediate.dense` and `output.dense` are different layers.
    let parts: Vec<&str> = path.split('.').collect();
    let n = parts.len();
    if n >= 2 && parts[n - 1] == "dense" {
        let from = if n >= 3 && parts[n - 3] == "attention" {
            n - 3
        } else {
            n - 2
        };
        return parts[from..].join(".");
    }
    parts[n - 1].to_string()
}

fn first_dtype<B: Backend>(model: &AutoModel<B>) -> String {
    let mut dtype = None;
    model.visit_linears(&mut |l| {
        if dtype.is_none() {
            dtype = Some(format!("{:?}", l.base.weight.val().dtype()));
        }
    });
    dtype.unwrap_or_else(|| "?".into())
}
