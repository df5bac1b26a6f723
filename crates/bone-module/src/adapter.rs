//! One adapter of any method, as a single Burn module type.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::bat::Bat;
use crate::bone::Bone;
use crate::lora::Lora;

/// The fine-tuning method of an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    /// Block-affine adaptation with a shared `[r, out]` block.
    Bone,
    /// PEFT's MiSS "mini": Bone with a `[r, mini_r]` block repeated along the outputs.
    Mini,
    /// Block-affine transformation with `[out/r, r, r]` blocks that multiply the weight.
    Bat,
    /// Low-rank adaptation `B A`.
    Lora,
}

impl std::fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bone => "bone",
            Self::Mini => "mini",
            Self::Bat => "bat",
            Self::Lora => "lora",
        })
    }
}

/// An adapter of any method, held by an [`AdaptedLinear`](crate::AdaptedLinear).
#[derive(Module, Debug)]
pub enum Adapter<B: Backend> {
    /// See [`Bone`].
    Bone(Bone<B>),
    /// See [`Bat`].
    Bat(Bat<B>),
    /// See [`Lora`].
    Lora(Lora<B>),
}

impl<B: Backend> Adapter<B> {
    /// The method of this adapter.
    pub fn kind(&self) -> AdapterKind {
        match self {
            Self::Bone(a) if a.mini => AdapterKind::Mini,
            Self::Bone(_) => AdapterKind::Bone,
            Self::Bat(_) => AdapterKind::Bat,
            Self::Lora(_) => AdapterKind::Lora,
        }
    }

    /// The rank / block size `r`.
    pub fn rank(&self) -> usize {
        match self {
            Self::Bone(a) => a.rank(),
            Self::Bat(a) => a.rank(),
            Self::Lora(a) => a.rank(),
        }
    }

    /// Output features of the layer the adapter was built for.
    pub fn d_output(&self) -> usize {
        match self {
            Self::Bone(a) => a.d_output(),
            Self::Bat(a) => a.d_output(),
            Self::Lora(a) => a.d_output(),
        }
    }

    /// Whether the adapter adds a weight-independent term (Bone, LoRA) rather than
    /// transforming the weight (Bat).
    pub fn is_additive(&self) -> bool {
        !matches!(self, Self::Bat(_))
    }

    /// The additive term's contribution to the output, for Bone and LoRA; `None` for Bat.
    ///
    /// # Shapes
    /// - x: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward_additive<const D: usize>(&self, x: Tensor<B, D>) -> Option<Tensor<B, D>> {
        match self {
            Self::Bone(a) => Some(a.forward(x)),
            Self::Lora(a) => Some(a.forward(x)),
            Self::Bat(_) => None,
        }
    }

    /// The weight update in Burn's layout `[d_input, d_output]` given the weight it applies to
    /// (only Bat reads `w`).
    pub fn delta_weight(&self, w: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Self::Bone(a) => a.delta_weight(),
            Self::Lora(a) => a.delta_weight(),
            Self::Bat(a) => a.delta_weight(w),
        }
    }

    /// Marks every parameter of the adapter trainable or frozen.
    pub(crate) fn with_require_grad(self, require_grad: bool) -> Self {
        if require_grad {
            self.train_all()
        } else {
            self.no_grad()
        }
    }

    fn train_all(self) -> Self {
        match self {
            Self::Bone(mut a) => {
                a.block = a.block.set_require_grad(true);
                Self::Bone(a)
            }
            Self::Bat(mut a) => {
                a.block = a.block.set_require_grad(true);
                Self::Bat(a)
            }
            Self::Lora(mut a) => {
                a.lora_a = a.lora_a.set_require_grad(true);
                a.lora_b = a.lora_b.set_require_grad(true);
                Self::Lora(a)
            }
        }
    }
}
