//! `bone forward`: one forward pass, outputs written to a safetensors file.

use std::collections::BTreeMap;

use anyhow::bail;
use bone_io::tensors::write_safetensors;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use models::tokenizer::Tokenizer;
use models::AutoModel;

use super::common::{pad_right, parse_ids};
use super::ForwardArgs;

pub fn run<B: Backend>(args: ForwardArgs, device: &B::Device) -> anyhow::Result<()> {
    let loaded = args.model.load::<B>(device)?;
    let model = loaded.model;
    let (rows, pad) = if args.text.is_empty() {
        let rows = args
            .ids
            .iter()
            .map(|s| parse_ids(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        (rows, pad_id(&model, None))
    } else {
        let tokenizer = Tokenizer::from_pretrained(&args.model.model)?;
        let rows = args
            .text
            .iter()
            .map(|t| tokenizer.encode(t, !args.no_special_tokens))
            .collect::<models::Result<Vec<_>>>()?;
        (rows, pad_id(&model, Some(&tokenizer)))
    };
    if rows.iter().any(Vec::is_empty) {
        bail!("an input has no tokens; give some text or ids");
    }
    match &model {
        AutoModel::CausalLm(m) => {
            let vocab = m.config().vocab_size;
            if let Some(bad) = rows.iter().flatten().find(|&&t| t as usize >= vocab) {
                bail!("token id {bad} is outside the vocabulary of {vocab}");
            }
        }
        AutoModel::Encoder(m) => m.check_input(&rows)?,
        AutoModel::Classifier(m) => m.encoder.check_input(&rows)?,
    }
    let (ids, mask) = pad_right::<B>(&rows, pad, device);
    let mut out: BTreeMap<String, TensorData> = BTreeMap::new();
    out.insert("input_ids".into(), ids.to_data().convert::<i64>());
    out.insert("attention_mask".into(), mask.to_data().convert::<i64>());
    let padded = rows.iter().any(|r| r.len() != rows[0].len());
    let mask = padded.then_some(mask);
    match &model {
        AutoModel::CausalLm(m) => {
            put(&mut out, "logits", m.forward(ids, mask, None));
        }
        AutoModel::Encoder(m) => {
            let hidden = m.forward(ids.clone(), mask.clone(), None);
            let full_mask = mask.unwrap_or_else(|| ids.ones_like());
            put(
                &mut out,
                "mean_pooled",
                m.mean_pool(hidden.clone(), full_mask),
            );
            if let Some(pooled) = m.pool(hidden.clone()) {
                put(&mut out, "pooler_output", pooled);
            }
            put(&mut out, "last_hidden_state", hidden);
        }
        AutoModel::Classifier(m) => {
            let hidden = m.encoder.forward(ids.clone(), mask.clone(), None);
            put(
                &mut out,
                "mean_pooled",
                m.encoder.mean_pool(
                    hidden.clone(),
                    mask.clone().unwrap_or_else(|| ids.ones_like()),
                ),
            );
            put(&mut out, "last_hidden_state", hidden);
            put(&mut out, "logits", m.forward(ids, mask, None));
        }
    }
    write_safetensors(&args.out, &out, &[("format", "pt")])?;
    let summary: Vec<String> = out
        .iter()
        .map(|(k, v)| format!("{k} {:?}", v.shape.to_vec()))
        .collect();
    println!("wrote {}: {}", args.out.display(), summary.join(", "));
    Ok(())
}

fn put<B: Backend, const D: usize>(
    out: &mut BTreeMap<String, TensorData>,
    name: &str,
    t: Tensor<B, D>,
) {
    out.insert(name.into(), t.into_data().convert::<f32>());
}

/// The padding id: the tokenizer's, else the config's, else 0.
fn pad_id<B: Backend>(model: &AutoModel<B>, tokenizer: Option<&Tokenizer>) -> u32 {
    tokenizer
        .and_then(|t| t.special_tokens().pad)
        .or(match model {
            AutoModel::CausalLm(m) => m.config().pad_token_id,
            AutoModel::Encoder(m) => m.config().pad_token_id,
            AutoModel::Classifier(m) => m.encoder.config().pad_token_id,
        })
        .unwrap_or(0)
}
