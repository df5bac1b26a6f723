//! Skipping the padding: `EncoderModel::forward_unpadded` (and the classifier, which uses it
//! whenever there is an attention mask) computes exactly what the padded forward computes on
//! the real tokens, in values and in gradients; and the exact-gradient GELU.

use crate::common;

use bone_module::{Adapter, AdapterConfig, AdapterHost, AdapterHostExt, AdapterSpec};
use burn::backend::Autodiff;
use burn::tensor::activation;
use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use models::encoder::ClassificationHead;
use models::nn::Dropout;
use models::targets::default_target_modules;
use models::{ClassifierOptions, EncoderModel, LoadOptions, ModelFamily};
use models::{SequenceClassificationModel, Tokenizer};

type AB = Autodiff<TB>;

/// Rows padded on the right with `pad`, and their attention mask.
fn padded<B: burn::tensor::backend::Backend>(
    rows: &[Vec<u32>],
    pad: u32,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
    let s = rows.iter().map(Vec::len).max().unwrap();
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for row in rows {
        for j in 0..s {
            ids.push(row.get(j).copied().unwrap_or(pad) as i64);
            mask.push(i64::from(j < row.len()));
        }
    }
    let shape = [rows.len(), s];
    (
        Tensor::from_data(TensorData::new(ids, shape), device),
        Tensor::from_data(TensorData::new(mask, shape), device),
    )
}

fn minilm_rows() -> Vec<Vec<u32>> {
    let tokenizer = Tokenizer::from_pretrained(minilm()).unwrap();
    [
        "a gripping, beautifully shot film",
        "dull",
        "the plot wanders for two hours before it goes anywhere at all , and nobody cares",
    ]
    .iter()
    .map(|t| tokenizer.encode(t, true).unwrap())
    .collect()
}

#[test]
fn unpadded_encoder_equals_padded_on_real_tokens_and_zeroes_padding() {
    let device = device();
    let model =
        EncoderModel::<TB>::from_pretrained(minilm(), &LoadOptions::default(), &device).unwrap();
    let rows = minilm_rows();
    let (ids, mask) = padded::<TB>(&rows, 0, &device);
    let [b, s] = ids.dims();
    let h = model.config().hidden_size;
    let full = values(&model.forward(ids.clone(), Some(mask.clone()), None));
    let unpadded = values(&model.forward_unpadded(ids, mask, None));
    let (mut real_full, mut real_unpadded, mut pads) = (Vec::new(), Vec::new(), Vec::new());
    for (i, row) in rows.iter().enumerate() {
        for j in 0..s {
            let at = (i * s + j) * h..(i * s + j + 1) * h;
            if j < row.len() {
                real_full.extend_from_slice(&full[at.clone()]);
                real_unpadded.extend_from_slice(&unpadded[at]);
            } else {
                pads.extend_from_slice(&unpadded[at]);
            }
        }
    }
    assert_eq!(unpadded.len(), b * s * h);
    assert!(pads.len() >= 10 * h, "the batch has padding to skip");
    assert!(pads.iter().all(|&v| v == 0.0), "padding rows are zero");
    assert_close("real tokens", &real_unpadded, &real_full, 1e-5);
}

fn without_dropout<B: burn::tensor::backend::Backend>(
    mut model: SequenceClassificationModel<B>,
) -> SequenceClassificationModel<B> {
    let off = || Dropout::new(0.0);
    let encoder = &mut model.encoder;
    encoder.embeddings.dropout = off();
    for layer in &mut encoder.layers {
        layer.attention.self_attn.dropout = off();
        layer.attention.output.dropout = off();
        layer.output.dropout = off();
    }
    match &mut model.head {
        ClassificationHead::Bert(head) => head.dropout = off(),
        ClassificationHead::Roberta(head) => head.dropout = off(),
    }
    model
}

/// Block gradients of every Bone adapter, in visiting order.
fn adapter_grads(
    model: &SequenceClassificationModel<AB>,
    grads: &<AB as burn::tensor::backend::AutodiffBackend>::Gradients,
) -> Vec<f32> {
    let mut out = Vec::new();
    model.visit_linears(&mut |l| {
        for (_, adapter) in l.adapters() {
            if let Adapter::Bone(bone) = adapter {
                let grad = bone
                    .block
                    .val()
                    .grad(grads)
                    .expect("the block has a gradient");
                out.extend(values(&grad));
            }
        }
    });
    out
}

/// A padded batch through the classifier (unpadded path) gives each sentence the logits and
/// the gradient it gets alone, without any padding (the plain path): RoBERTa numbers its
/// positions from the ids, so this also checks the packed position ids.
#[test]
fn padded_batch_logits_and_adapter_gradients_equal_one_sentence_at_a_time() {
    let device = device();
    let options = ClassifierOptions {
        seed: Some(3),
        ..ClassifierOptions::with_num_labels(2)
    };
    let mut model =
        SequenceClassificationModel::<AB>::from_pretrained(roberta_tiny(), &options, &device)
            .unwrap();
    let config = AdapterConfig::from_spec(
        &AdapterSpec::bone(4).with_random_init(),
        default_target_modules(ModelFamily::Roberta),
    );
    model.add_adapter("a", &config, &device).unwrap();
    let model = without_dropout(model);
    let rows = vec![
        vec![0, 15, 27, 99, 2],
        vec![0, 250, 2],
        vec![0, 7, 8, 9, 10, 11, 12, 2],
    ];
    let labels = [1i64, 0, 1];

    let (ids, mask) = padded::<AB>(&rows, 1, &device);
    let logits = model.forward(ids, Some(mask), None);
    let target = Tensor::<AB, 1, Int>::from_data(TensorData::new(labels.to_vec(), [3]), &device);
    let loss = SequenceClassificationModel::classification_loss(logits.clone(), target);
    let batched = adapter_grads(&model, &loss.backward());

    let mut alone_logits = Vec::new();
    let mut alone_grads = vec![0.0f32; batched.len()];
    for (row, &label) in rows.iter().zip(&labels) {
        let ids = ids_tensor::<AB>(std::slice::from_ref(row), &device);
        let logits = model.forward(ids, None, None);
        alone_logits.extend(values(&logits));
        let target = Tensor::<AB, 1, Int>::from_data(TensorData::new(vec![label], [1]), &device);
        let loss = SequenceClassificationModel::classification_loss(logits, target);
        for (sum, g) in alone_grads
            .iter_mut()
            .zip(adapter_grads(&model, &loss.backward()))
        {
            *sum += g / rows.len() as f32;
        }
    }
    assert_close("logits", &values(&logits), &alone_logits, 1e-5);
    assert!(alone_grads.iter().any(|&g| g.abs() > 1e-4));
    assert_close("adapter gradients", &batched, &alone_grads, 1e-4);
}

/// The exact derivative of GELU, Φ(x) + x·φ(x), in f64.
fn gelu_slope(x: f64) -> f64 {
    let cdf = 0.5 * (1.0 + libm_erf(x / std::f64::consts::SQRT_2));
    let density = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    cdf + x * density
}

/// erf by its Maclaurin series (converges quickly for the |x| ≤ 3 used here).
fn libm_erf(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * std::f64::consts::FRAC_2_SQRT_PI
}

#[test]
fn gelu_has_burns_value_and_the_exact_gradient() {
    let device = device();
    let xs: Vec<f32> = (0..61).map(|i| -3.0 + 0.1 * i as f32).collect();
    let plain = Tensor::<TB, 1>::from_data(TensorData::new(xs.clone(), [61]), &device);
    let x = Tensor::<AB, 1>::from_data(TensorData::new(xs.clone(), [61]), &device).require_grad();
    let y = models::nn::gelu(x.clone());
    assert_eq!(
        values(&y),
        values(&activation::gelu(plain.clone())),
        "same values as Burn's gelu"
    );
    assert_eq!(
        values(&models::nn::gelu(plain.clone())),
        values(&activation::gelu(plain))
    );
    let grads = y.sum().backward();
    let ours = values(&x.grad(&grads).unwrap());
    let exact: Vec<f32> = xs.iter().map(|&v| gelu_slope(v as f64) as f32).collect();
    assert_close("d gelu / dx", &ours, &exact, 1e-6);
}
