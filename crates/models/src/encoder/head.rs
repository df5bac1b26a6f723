//! Sequence-classification heads as transformers builds them, with their tensors under
//! PEFT's `modules_to_save` names.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor, TensorData};

use super::config::EncoderConfig;
use crate::config::ModelFamily;
use bone_io::FileError;

use crate::error::Result;
use crate::nn::Dropout;
use crate::weights::{HfModule, WeightLoader};

/// A `d_in → d_out` linear layer as transformers initialises one: weight normal(0, `std`),
/// bias zero; in `dtype` (the device default when `None`).
pub fn fresh_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    std: f64,
    device: &B::Device,
) -> Linear<B> {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    linear.bias = Some(Param::from_tensor(Tensor::zeros([d_out], device)));
    linear
}

/// `classifier(dropout(pooled))` on the pooler output (`BertForSequenceClassification`).
#[derive(Module, Debug)]
pub struct BertClassificationHead<B: Backend> {
    /// Dropout before the classifier (training only).
    pub dropout: Dropout,
    /// `[hidden, num_labels]`; PEFT/transformers name `classifier`.
    pub classifier: Linear<B>,
}

/// `out_proj(dropout(tanh(dense(dropout(h[:, 0])))))` on the first token (`<s>`)
/// (`RobertaClassificationHead`).
#[derive(Module, Debug)]
pub struct RobertaClassificationHead<B: Backend> {
    /// `[hidden, hidden]`; name `classifier.dense`.
    pub dense: Linear<B>,
    /// Dropout (training only), before `dense` and before `out_proj`.
    pub dropout: Dropout,
    /// `[hidden, num_labels]`; name `classifier.out_proj`.
    pub out_proj: Linear<B>,
}

/// The head of a [`SequenceClassificationModel`](super::SequenceClassificationModel).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // Burn modules cannot be boxed
pub enum ClassificationHead<B: Backend> {
    /// BERT: on the pooler output.
    Bert(BertClassificationHead<B>),
    /// RoBERTa: on the first token.
    Roberta(RobertaClassificationHead<B>),
}

/// `(name, PyTorch shape)` of the head tensors of `family`.
fn head_shapes(
    family: ModelFamily,
    hidden: usize,
    labels: usize,
) -> Vec<(&'static str, Vec<usize>)> {
    match family {
        ModelFamily::Roberta => vec![
            ("classifier.dense.weight", vec![hidden, hidden]),
            ("classifier.dense.bias", vec![hidden]),
            ("classifier.out_proj.weight", vec![labels, hidden]),
            ("classifier.out_proj.bias", vec![labels]),
        ],
        _ => vec![
            ("classifier.weight", vec![labels, hidden]),
            ("classifier.bias", vec![labels]),
        ],
    }
}

impl<B: Backend> ClassificationHead<B> {
    /// A freshly initialised head for `num_labels` labels (1 = regression), as transformers
    /// builds one: weights normal(0, `initializer_range`), biases zero.
    pub fn fresh(
        config: &EncoderConfig,
        num_labels: usize,
        dtype: Option<FloatDType>,
        device: &B::Device,
    ) -> Self {
        let h = config.hidden_size;
        let std = config.initializer_range;
        let dropout = Dropout::new(config.classifier_dropout_prob());
        let cast = |l: Linear<B>| cast_linear(l, dtype);
        match config.family {
            ModelFamily::Roberta => Self::Roberta(RobertaClassificationHead {
                dense: cast(fresh_linear(h, h, std, device)),
                dropout,
                out_proj: cast(fresh_linear(h, num_labels, std, device)),
            }),
            _ => Self::Bert(BertClassificationHead {
                dropout,
                classifier: cast(fresh_linear(h, num_labels, std, device)),
            }),
        }
    }

    /// The head stored in the checkpoint (`classifier.*`), if it has one with `num_labels`
    /// outputs; `Ok(None)` when it has none.
    ///
    /// # Errors
    /// A head whose tensors are partly missing or misshaped.
    pub fn load(
        loader: &WeightLoader<'_, B>,
        config: &EncoderConfig,
        num_labels: usize,
    ) -> Result<Option<Self>> {
        let shapes = head_shapes(config.family, config.hidden_size, num_labels);
        if !loader.contains(shapes[0].0) {
            return Ok(None);
        }
        // Lazily initialised modules of the right shapes (no random draws), then filled.
        let h = config.hidden_size;
        let dropout = Dropout::new(config.classifier_dropout_prob());
        let linear = |d_out: usize| LinearConfig::new(h, d_out).init(loader.device());
        let mut head = match config.family {
            ModelFamily::Roberta => Self::Roberta(RobertaClassificationHead {
                dense: linear(h),
                dropout,
                out_proj: linear(num_labels),
            }),
            _ => Self::Bert(BertClassificationHead {
                dropout,
                classifier: linear(num_labels),
            }),
        };
        head.visit_hf_modules(&mut |name, module| loader.fill(name, module))?;
        Ok(Some(match head {
            Self::Roberta(h) => Self::Roberta(RobertaClassificationHead {
                dense: trainable(h.dense),
                out_proj: trainable(h.out_proj),
                ..h
            }),
            Self::Bert(h) => Self::Bert(BertClassificationHead {
                classifier: trainable(h.classifier),
                ..h
            }),
        }))
    }

    /// Lists the head's linears under their Hugging Face names (`classifier`, or
    /// `classifier.dense` and `classifier.out_proj`; see [`HfModules`](crate::weights::HfModules)).
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn visit_hf_modules(
        &mut self,
        f: &mut dyn FnMut(&str, HfModule<'_, B>) -> Result<()>,
    ) -> Result<()> {
        match self {
            Self::Bert(h) => f("classifier", HfModule::Linear(&mut h.classifier)),
            Self::Roberta(h) => {
                f("classifier.dense", HfModule::Linear(&mut h.dense))?;
                f("classifier.out_proj", HfModule::Linear(&mut h.out_proj))
            }
        }
    }

    /// The number of outputs.
    pub fn num_labels(&self) -> usize {
        let last = match self {
            Self::Bert(h) => &h.classifier,
            Self::Roberta(h) => &h.out_proj,
        };
        last.weight.shape().dims::<2>()[1]
    }

    /// Logits `[b, num_labels]` from the last hidden state `[b, s, hidden]` (RoBERTa) or the
    /// pooler output `[b, hidden]` (BERT; `pooled` must then be `Some`).
    ///
    /// # Panics
    /// A BERT head called without `pooled` (the model always passes it).
    pub fn forward(&self, hidden: Tensor<B, 3>, pooled: Option<Tensor<B, 2>>) -> Tensor<B, 2> {
        match self {
            Self::Bert(head) => {
                let pooled = pooled.unwrap_or_else(|| {
                    let [b, _, h] = hidden.dims();
                    hidden.narrow(1, 0, 1).reshape([b, h])
                });
                head.classifier.forward(head.dropout.forward(pooled))
            }
            Self::Roberta(head) => {
                let [b, _, h] = hidden.dims();
                let first = hidden.narrow(1, 0, 1).reshape([b, h]);
                let x = head.dense.forward(head.dropout.forward(first)).tanh();
                head.out_proj.forward(head.dropout.forward(x))
            }
        }
    }

    /// The head's tensors in PyTorch layout (`[out, in]` weights) under the names PEFT saves
    /// `modules_to_save` with: `classifier.weight`/`classifier.bias` (BERT), or
    /// `classifier.dense.*`/`classifier.out_proj.*` (RoBERTa). f32.
    pub fn tensors(&self) -> BTreeMap<String, TensorData> {
        let mut out = BTreeMap::new();
        let mut put = |name: &str, linear: &Linear<B>| {
            out.insert(
                format!("{name}.weight"),
                f32_data(linear.weight.val().transpose()),
            );
            if let Some(b) = &linear.bias {
                out.insert(format!("{name}.bias"), f32_data(b.val()));
            }
        };
        match self {
            Self::Bert(h) => put("classifier", &h.classifier),
            Self::Roberta(h) => {
                put("classifier.dense", &h.dense);
                put("classifier.out_proj", &h.out_proj);
            }
        }
        out
    }

    /// Replaces the head's weights by `tensors` (names and layout of [`tensors`](Self::tensors)),
    /// converted to the head's dtype; `source` names the file in errors.
    ///
    /// # Errors
    /// A missing tensor or one whose shape differs from the head's; nothing changes then.
    pub fn load_tensors(
        &mut self,
        tensors: &BTreeMap<String, TensorData>,
        source: &Path,
    ) -> Result<()> {
        let (family, hidden) = match self {
            Self::Bert(h) => (
                ModelFamily::Bert,
                h.classifier.weight.shape().dims::<2>()[0],
            ),
            Self::Roberta(h) => (ModelFamily::Roberta, h.dense.weight.shape().dims::<2>()[0]),
        };
        for (name, shape) in head_shapes(family, hidden, self.num_labels()) {
            let data = tensors.get(name).ok_or_else(|| FileError::MissingTensor {
                file: source.to_path_buf(),
                key: name.into(),
                layer: None,
            })?;
            if data.shape.to_vec() != shape {
                return Err(FileError::ShapeMismatch {
                    file: source.to_path_buf(),
                    key: name.into(),
                    layer: None,
                    expected: shape,
                    found: data.shape.to_vec(),
                }
                .into());
            }
        }
        let set = |linear: &mut Linear<B>, name: &str| {
            let device = linear.weight.device();
            let dtype = linear.weight.val().dtype();
            let w: Tensor<B, 2> =
                Tensor::from_data(tensors[&format!("{name}.weight")].clone(), (&device, dtype));
            let require = linear.weight.val().is_require_grad();
            linear.weight = Param::from_tensor(w.transpose()).set_require_grad(require);
            if let Some(bias) = &mut linear.bias {
                let b: Tensor<B, 1> =
                    Tensor::from_data(tensors[&format!("{name}.bias")].clone(), (&device, dtype));
                *bias = Param::from_tensor(b).set_require_grad(require);
            }
        };
        match self {
            Self::Bert(h) => set(&mut h.classifier, "classifier"),
            Self::Roberta(h) => {
                set(&mut h.dense, "classifier.dense");
                set(&mut h.out_proj, "classifier.out_proj");
            }
        }
        Ok(())
    }

    /// The number of labels of the head stored in `loader`'s checkpoint, if any.
    pub fn stored_num_labels(loader: &WeightLoader<'_, B>, family: ModelFamily) -> Option<usize> {
        let name = match family {
            ModelFamily::Roberta => "classifier.out_proj.weight",
            _ => "classifier.weight",
        };
        loader
            .source()
            .info(&loader.full_name(name))
            .and_then(|i| i.shape.first().copied())
    }
}

/// The number of labels of a head among PEFT `modules_to_save` tensors, if present.
pub fn head_num_labels(
    tensors: &BTreeMap<String, TensorData>,
    family: ModelFamily,
) -> Option<usize> {
    let name = match family {
        ModelFamily::Roberta => "classifier.out_proj.weight",
        _ => "classifier.weight",
    };
    tensors.get(name).and_then(|d| d.shape.first().copied())
}

fn trainable<B: Backend>(mut linear: Linear<B>) -> Linear<B> {
    linear.weight = linear.weight.set_require_grad(true);
    linear.bias = linear.bias.map(|b| b.set_require_grad(true));
    linear
}

fn cast_linear<B: Backend>(mut linear: Linear<B>, dtype: Option<FloatDType>) -> Linear<B> {
    if let Some(dtype) = dtype {
        if linear.weight.val().dtype() != DType::from(dtype) {
            linear.weight = linear.weight.map(|w| w.cast(dtype));
            linear.bias = linear.bias.map(|b| b.map(|b| b.cast(dtype)));
        }
    }
    linear
}

fn f32_data<B: Backend, const D: usize>(t: Tensor<B, D>) -> TensorData {
    t.into_data().convert::<f32>()
}
