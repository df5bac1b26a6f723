//! The hyper-parameters of an adapter, independent of the layer it is put on.

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::adapter::{Adapter, AdapterKind};
use crate::bat::BatConfig;
use crate::bone::{BlockInit, BoneConfig};
use crate::error::Result;
use crate::lora::LoraConfig;

/// What adapter to build on a layer: the method and its hyper-parameters, without the layer's
/// shapes (which [`AdapterSpec::build`] takes from the layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum AdapterSpec {
    /// Bone with block `[r, out]`.
    Bone {
        /// Block rank.
        r: usize,
        /// Initial block.
        init: BlockInit,
        /// Input dropout.
        dropout: f64,
    },
    /// PEFT's MiSS "mini": Bone with a block `[r, mini_r]` repeated along the outputs.
    Mini {
        /// Block rank.
        r: usize,
        /// Width of the block; divides every targeted layer's output features.
        mini_r: usize,
        /// Initial block.
        init: BlockInit,
        /// Input dropout.
        dropout: f64,
    },
    /// Bat with blocks `[out/r, r, r]`.
    Bat {
        /// Block size.
        r: usize,
        /// Initial blocks.
        init: BlockInit,
    },
    /// LoRA with `A [r, in]`, `B [out, r]`.
    Lora {
        /// Rank.
        r: usize,
        /// Scaling numerator.
        alpha: f64,
        /// `α / √r` instead of `α / r`.
        use_rslora: bool,
        /// Initial `B`.
        init_b: BlockInit,
        /// Input dropout.
        dropout: f64,
    },
}

impl AdapterSpec {
    /// Bone of rank `r`, zero-initialised (the adapted layer starts equal to the base).
    pub fn bone(r: usize) -> Self {
        Self::Bone {
            r,
            init: BlockInit::Zeros,
            dropout: 0.0,
        }
    }

    /// MiSS "mini" of rank `r` and block width `mini_r`, zero-initialised.
    pub fn mini(r: usize, mini_r: usize) -> Self {
        Self::Mini {
            r,
            mini_r,
            init: BlockInit::Zeros,
            dropout: 0.0,
        }
    }

    /// Bat of block size `r`, zero-initialised.
    pub fn bat(r: usize) -> Self {
        Self::Bat {
            r,
            init: BlockInit::Zeros,
        }
    }

    /// LoRA of rank `r` and scaling `alpha / r`, with `B` zero-initialised.
    pub fn lora(r: usize, alpha: f64) -> Self {
        Self::Lora {
            r,
            alpha,
            use_rslora: false,
            init_b: BlockInit::Zeros,
            dropout: 0.0,
        }
    }

    /// The same spec with random (kaiming-uniform) trainable blocks instead of zeros, so the
    /// adapter changes the output from the start (PEFT `init_weights=False`).
    pub fn with_random_init(self) -> Self {
        match self {
            Self::Bone { r, dropout, .. } => Self::Bone {
                r,
                init: BlockInit::KaimingUniform,
                dropout,
            },
            Self::Mini {
                r, mini_r, dropout, ..
            } => Self::Mini {
                r,
                mini_r,
                init: BlockInit::KaimingUniform,
                dropout,
            },
            Self::Bat { r, .. } => Self::Bat {
                r,
                init: BlockInit::KaimingUniform,
            },
            Self::Lora {
                r,
                alpha,
                use_rslora,
                dropout,
                ..
            } => Self::Lora {
                r,
                alpha,
                use_rslora,
                init_b: BlockInit::KaimingUniform,
                dropout,
            },
        }
    }

    /// The same spec with another input dropout (ignored by Bat, which has none).
    pub fn with_dropout(self, prob: f64) -> Self {
        match self {
            Self::Bone { r, init, .. } => Self::Bone {
                r,
                init,
                dropout: prob,
            },
            Self::Mini {
                r, mini_r, init, ..
            } => Self::Mini {
                r,
                mini_r,
                init,
                dropout: prob,
            },
            Self::Lora {
                r,
                alpha,
                use_rslora,
                init_b,
                ..
            } => Self::Lora {
                r,
                alpha,
                use_rslora,
                init_b,
                dropout: prob,
            },
            bat => bat,
        }
    }

    /// The same spec with another rank / block size.
    pub fn with_rank(self, r: usize) -> Self {
        match self {
            Self::Bone { init, dropout, .. } => Self::Bone { r, init, dropout },
            Self::Mini {
                mini_r,
                init,
                dropout,
                ..
            } => Self::Mini {
                r,
                mini_r,
                init,
                dropout,
            },
            Self::Bat { init, .. } => Self::Bat { r, init },
            Self::Lora {
                alpha,
                use_rslora,
                init_b,
                dropout,
                ..
            } => Self::Lora {
                r,
                alpha,
                use_rslora,
                init_b,
                dropout,
            },
        }
    }

    /// The same spec with another LoRA scaling numerator (ignored by Bone and Bat).
    pub fn with_alpha(self, alpha: f64) -> Self {
        match self {
            Self::Lora {
                r,
                use_rslora,
                init_b,
                dropout,
                ..
            } => Self::Lora {
                r,
                alpha,
                use_rslora,
                init_b,
                dropout,
            },
            other => other,
        }
    }

    /// How the trainable tensor starts (Bone's and Bat's block, LoRA's `B`).
    pub fn init(&self) -> BlockInit {
        match self {
            Self::Bone { init, .. } | Self::Mini { init, .. } | Self::Bat { init, .. } => *init,
            Self::Lora { init_b, .. } => *init_b,
        }
    }

    /// LoRA's scaling numerator `α`; `None` for Bone and Bat.
    pub fn alpha(&self) -> Option<f64> {
        match self {
            Self::Lora { alpha, .. } => Some(*alpha),
            _ => None,
        }
    }

    /// The method.
    pub fn kind(&self) -> AdapterKind {
        match self {
            Self::Bone { .. } => AdapterKind::Bone,
            Self::Mini { .. } => AdapterKind::Mini,
            Self::Bat { .. } => AdapterKind::Bat,
            Self::Lora { .. } => AdapterKind::Lora,
        }
    }

    /// The rank / block size.
    pub fn rank(&self) -> usize {
        match self {
            Self::Bone { r, .. }
            | Self::Mini { r, .. }
            | Self::Bat { r, .. }
            | Self::Lora { r, .. } => *r,
        }
    }

    /// Trainable parameters this spec adds to a `d_input → d_output` layer.
    pub fn trainable_params(&self, d_input: usize, d_output: usize) -> usize {
        match self {
            Self::Bone { r, .. } => r * d_output,
            Self::Mini { r, mini_r, .. } => r * mini_r,
            Self::Bat { r, .. } => d_output * r,
            Self::Lora { r, .. } => r * (d_input + d_output),
        }
    }

    /// Builds the adapter for the `d_input → d_output` layer at module path `layer`.
    ///
    /// # Errors
    /// Invalid rank, Bat or MiSS-mini divisibility, invalid alpha or dropout, naming `layer`.
    pub fn build<B: Backend>(
        &self,
        layer: &str,
        d_input: usize,
        d_output: usize,
        device: &B::Device,
    ) -> Result<Adapter<B>> {
        Ok(match *self {
            Self::Bone { r, init, dropout } => Adapter::Bone(
                BoneConfig::new(d_input, d_output, r)
                    .with_init(init)
                    .with_dropout(dropout)
                    .init(layer, device)?,
            ),
            Self::Mini {
                r,
                mini_r,
                init,
                dropout,
            } => Adapter::Bone(
                BoneConfig::new(d_input, d_output, r)
                    .with_init(init)
                    .with_dropout(dropout)
                    .with_mini_r(Some(mini_r))
                    .init(layer, device)?,
            ),
            Self::Bat { r, init } => Adapter::Bat(
                BatConfig::new(d_input, d_output, r)
                    .with_init(init)
                    .init(layer, device)?,
            ),
            Self::Lora {
                r,
                alpha,
                use_rslora,
                init_b,
                dropout,
            } => Adapter::Lora(
                LoraConfig::new(d_input, d_output, r)
                    .with_alpha(alpha)
                    .with_use_rslora(use_rslora)
                    .with_init_b(init_b)
                    .with_dropout(dropout)
                    .init(layer, device)?,
            ),
        })
    }
}
