//! Model FLOPs of a training step, counted from shapes and real (non-padding) tokens, and the
//! model FLOP utilisation (MFU) they give against a measured GEMM peak.
//!
//! # The count
//! Only matrix products are counted (2 FLOPs per multiply-add); embeddings, layer norms,
//! softmax, activations and the optimiser are element-wise and left out. For a sequence of
//! `L` real tokens and a linear layer `d_in → d_out`:
//!
//! - frozen base: forward `2·L·d_in·d_out`; backward only `dX = dY·Wᵀ`, another
//!   `2·L·d_in·d_out` (no `dW`: the weight is frozen). Counted for every layer, also those
//!   of the first block whose `dX` autodiff may skip (nothing trainable lies below them).
//!   Full fine-tuning adds `dW`, `2·L·d_in·d_out`; training the head alone has no backward
//!   through the encoder ([`BaseBackward`]).
//! - Bone (block `[r, w]`, `w = d_out`, or `mini_r` for MiSS "mini"): forward `2·L·r·w`
//!   (the fold's `L·d_in` additions are not products); backward `dBlock = sᵀ·dY` and
//!   `ds = dY·blockᵀ`, `2·2·L·r·w`.
//! - LoRA (rank `r`): forward `2·L·r·(d_in + d_out)`; backward twice that (`dA`, `dB` and the
//!   two `dX` products).
//! - Bat (block `r`): the product with the adapted weight now needs `dW' = Xᵀ·dY` too,
//!   `+2·L·d_in·d_out` in the backward; building `ΔW = W·B + B` costs `2·d_in·d_out·r` per
//!   step forward and as much backward (`dB`), counted once per step.
//! - attention over the `L` real tokens (hidden `h`): forward `QKᵀ` and `PV`, `2·2·L²·h`;
//!   backward `dQ, dK, dP, dV`, `2·4·L²·h` (none when only the head trains). Padding
//!   positions are not counted.
//! - a trainable head `[h → h]` (pooler) and `[h → classes]` on the first token: forward
//!   `2·(h² + h·classes)`, backward twice that.
//!
//! - a decoder (LLaMA family) counts its seven block linears the same way, attention over
//!   `num_attention_heads · head_dim` (all of `L²`, though causal: the products are computed
//!   whole), and the output projection `h → vocab` at every position as one more frozen
//!   layer (trainable with full fine-tuning; tied to the embeddings or not, one product).
//!
//! So a step's FLOPs are `Σ_sequences Σ_layers (4·L·d_in·d_out + adapter terms) +
//! Σ_sequences layers·12·L²·h + per-step Bat terms + head`.

use bone_module::{AdaptedLinear, Adapter, AdapterHost};
use burn::tensor::backend::Backend;
use models::{LlamaForCausalLM, SequenceClassificationModel};

use super::job::RunSummary;
use crate::cpu::CpuInfo;
use crate::device::BackendKind;

/// How far the backward pass goes into the frozen base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseBackward {
    /// Adapters train: `dX` through every layer, no `dW`.
    Input,
    /// Full fine-tuning: `dX` and `dW`.
    Full,
    /// Only the head trains: the encoder runs forward only.
    None,
}

impl BaseBackward {
    /// Products per `2·L·d_in·d_out` of a base layer: forward 1, plus `dX`, plus `dW`.
    fn base_products(self) -> f64 {
        match self {
            Self::Input => 2.0,
            Self::Full => 3.0,
            Self::None => 1.0,
        }
    }
}

/// The adapter on one linear layer, as far as FLOPs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterFlops {
    /// Bone with a block `[r, width]` (width = d_out, or mini_r for MiSS "mini").
    Bone {
        /// Block rows.
        r: usize,
        /// Block columns.
        width: usize,
    },
    /// LoRA of rank `r`.
    Lora {
        /// Rank.
        r: usize,
    },
    /// Bat with blocks `r × r`.
    Bat {
        /// Block side.
        r: usize,
    },
}

/// One linear layer of the model: its shape and the adapters it trains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearFlops {
    /// Input features.
    pub d_in: usize,
    /// Output features.
    pub d_out: usize,
    /// Its pending adapters (none for a frozen layer).
    pub adapters: Vec<AdapterFlops>,
}

impl LinearFlops {
    /// The layer's shape and adapters.
    pub fn of<B: Backend>(layer: &AdaptedLinear<B>) -> Self {
        let adapters = layer
            .active_adapters()
            .iter()
            .filter(|name| !layer.merged_adapters().contains(name))
            .filter_map(|name| layer.adapter(name))
            .map(|adapter| match adapter {
                Adapter::Bone(bone) => AdapterFlops::Bone {
                    r: bone.rank(),
                    width: bone.mini_r().unwrap_or(bone.d_output()),
                },
                Adapter::Lora(lora) => AdapterFlops::Lora { r: lora.rank() },
                Adapter::Bat(bat) => AdapterFlops::Bat { r: bat.rank() },
            })
            .collect();
        Self {
            d_in: layer.d_input(),
            d_out: layer.d_output(),
            adapters,
        }
    }

    /// Forward + backward FLOPs of `tokens` rows through this layer.
    pub fn token_flops(&self, tokens: f64, base: BaseBackward) -> f64 {
        let (i, o) = (self.d_in as f64, self.d_out as f64);
        let base = base.base_products() * 2.0 * tokens * i * o;
        let adapters: f64 = self
            .adapters
            .iter()
            .map(|a| match *a {
                AdapterFlops::Bone { r, width } => 6.0 * tokens * r as f64 * width as f64,
                AdapterFlops::Lora { r } => 6.0 * tokens * r as f64 * (i + o),
                AdapterFlops::Bat { .. } => 2.0 * tokens * i * o,
            })
            .sum();
        base + adapters
    }

    /// FLOPs of this layer paid once per step whatever the tokens (building Bat's `ΔW`).
    pub fn step_flops(&self) -> f64 {
        let (i, o) = (self.d_in as f64, self.d_out as f64);
        self.adapters
            .iter()
            .map(|a| match *a {
                AdapterFlops::Bat { r } => 4.0 * i * o * r as f64,
                _ => 0.0,
            })
            .sum()
    }
}

/// What a training step's FLOPs depend on: the model's linear layers, its attention and its
/// head.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFlops {
    /// Every linear layer of the encoder/decoder blocks (all blocks).
    pub linears: Vec<LinearFlops>,
    /// Number of attention blocks.
    pub attention_layers: usize,
    /// Model width.
    pub hidden: usize,
    /// Trainable head `(d_in, d_out)` layers applied to one position per sequence.
    pub head: Vec<(usize, usize)>,
    /// How far the backward pass goes into the base.
    pub base: BaseBackward,
}

impl ModelFlops {
    /// The count for a BERT/RoBERTa sequence classifier as it is (its adapters attached),
    /// with a trainable two-layer head (`h → h`, `h → labels`).
    pub fn sequence_classifier<B: Backend>(
        model: &SequenceClassificationModel<B>,
        base: BaseBackward,
    ) -> Self {
        let mut linears = Vec::new();
        model.visit_linears(&mut |layer| linears.push(LinearFlops::of(layer)));
        let config = model.encoder.config();
        let h = config.hidden_size;
        Self {
            linears,
            attention_layers: config.num_hidden_layers,
            hidden: h,
            head: vec![(h, h), (h, model.num_labels())],
            base,
        }
    }

    /// The count for a LLaMA-family decoder as it is (its adapters attached); no head beyond
    /// the output projection, which is counted among the linears.
    pub fn causal_lm<B: Backend>(model: &LlamaForCausalLM<B>, base: BaseBackward) -> Self {
        let mut linears = Vec::new();
        model.visit_linears(&mut |layer| linears.push(LinearFlops::of(layer)));
        let config = model.config();
        linears.push(LinearFlops {
            d_in: config.hidden_size,
            d_out: config.vocab_size,
            adapters: Vec::new(),
        });
        Self {
            linears,
            attention_layers: config.num_hidden_layers,
            hidden: config.num_attention_heads * config.head_dim(),
            head: Vec::new(),
            base,
        }
    }

    /// Forward + backward FLOPs of one step over sequences of the given real lengths.
    pub fn step_flops(&self, lengths: &[usize]) -> f64 {
        let tokens: f64 = lengths.iter().map(|&l| l as f64).sum();
        let squares: f64 = lengths.iter().map(|&l| (l as f64).powi(2)).sum();
        let linears: f64 = self
            .linears
            .iter()
            .map(|l| l.token_flops(tokens, self.base) + l.step_flops())
            .sum();
        let attention_products = if self.base == BaseBackward::None {
            4.0
        } else {
            12.0
        };
        let attention =
            attention_products * squares * self.hidden as f64 * self.attention_layers as f64;
        let head: f64 = self
            .head
            .iter()
            .map(|&(i, o)| 6.0 * lengths.len() as f64 * i as f64 * o as f64)
            .sum();
        linears + attention + head
    }

    /// Mean FLOPs of a step when `lengths` (one epoch's real sequence lengths) are cut into
    /// batches of `batch_size`. Every term but Bat's per-step one is a sum over sequences,
    /// so the order of the epoch does not change it. `None` when there are no sequences.
    pub fn mean_step_flops(&self, lengths: &[usize], batch_size: usize) -> Option<f64> {
        let batches: Vec<f64> = lengths
            .chunks(batch_size.max(1))
            .map(|batch| self.step_flops(batch))
            .collect();
        (!batches.is_empty()).then(|| batches.iter().sum::<f64>() / batches.len() as f64)
    }
}

/// Model FLOP/s of a run and its share of a GEMM peak.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mfu {
    /// Mean model FLOPs of a training step (see the module's doc).
    pub flops_per_step: f64,
    /// Model FLOPs per second of training time.
    pub flops_per_second: f64,
    /// The GEMM peak it is measured against, GFLOP/s (see [`crate::cpu`]); `None` off the
    /// CPU.
    pub peak_gflops: Option<f64>,
    /// `flops_per_second / peak` (0–1); `None` without a peak.
    pub mfu: Option<f64>,
    /// The CPU's theoretical f32 peak, GFLOP/s (see [`crate::cpu::CpuInfo::peak_gflops`]);
    /// `None` off the CPU.
    pub theoretical_peak_gflops: Option<f64>,
}

impl Mfu {
    /// The figures of `flops_per_step` done every `seconds_per_step`, against `peak_gflops`.
    pub fn new(flops_per_step: f64, seconds_per_step: f64, peak_gflops: Option<f64>) -> Self {
        let flops_per_second = if seconds_per_step > 0.0 {
            flops_per_step / seconds_per_step
        } else {
            0.0
        };
        let peak_gflops = peak_gflops.filter(|p| *p > 0.0);
        Self {
            flops_per_step,
            flops_per_second,
            peak_gflops,
            mfu: peak_gflops.map(|p| flops_per_second / (p * 1e9)),
            theoretical_peak_gflops: None,
        }
    }

    /// The same figures with the CPU's theoretical peak noted beside.
    pub fn with_theoretical_peak(self, gflops: Option<f64>) -> Self {
        Self {
            theoretical_peak_gflops: gflops.filter(|p| *p > 0.0),
            ..self
        }
    }

    /// The figures of a finished run: `flops_per_step` (`None`: unknown) over its steps and
    /// training time, against `gemm_peak` and, on the CPU, its theoretical peak. `None` when
    /// no step ran.
    pub fn of_run(
        flops_per_step: Option<f64>,
        run: &RunSummary,
        gemm_peak: Option<f64>,
        backend: BackendKind,
    ) -> Option<Self> {
        let flops = flops_per_step.filter(|_| run.steps > 0)?;
        let seconds_per_step = run.train_seconds / run.steps as f64;
        Some(
            Self::new(flops, seconds_per_step, gemm_peak)
                .with_theoretical_peak(backend.is_cpu().then(|| CpuInfo::detect().peak_gflops())),
        )
    }

    /// `0.12 GFLOP/step, 12.3 GFLOP/s model (…)`: the end line's part.
    pub fn describe_step(&self) -> String {
        format!(
            "{:.2} GFLOP/step, {}",
            self.flops_per_step / 1e9,
            self.describe()
        )
    }

    /// `12.3 GFLOP/s model (9 % of the 140 GFLOP/s GEMM peak)`.
    pub fn describe(&self) -> String {
        let rate = format!("{:.1} GFLOP/s model", self.flops_per_second / 1e9);
        let rate = match (self.mfu, self.peak_gflops) {
            (Some(mfu), Some(peak)) => {
                format!(
                    "{rate} ({:.0} % of the {peak:.0} GFLOP/s GEMM peak)",
                    100.0 * mfu
                )
            }
            _ => rate,
        };
        match self.theoretical_peak_gflops {
            Some(peak) => format!(
                "{rate}, {:.0} % of the CPU's {peak:.0} GFLOP/s",
                100.0 * self.flops_per_second / (peak * 1e9)
            ),
            None => rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(adapters: Vec<AdapterFlops>) -> LinearFlops {
        LinearFlops {
            d_in: 1024,
            d_out: 1024,
            adapters,
        }
    }

    #[test]
    fn bone_costs_three_products_of_its_block() {
        let frozen = square(vec![]).token_flops(2048.0, BaseBackward::Input);
        assert_eq!(frozen, 4.0 * 2048.0 * 1024.0 * 1024.0);
        let bone = square(vec![AdapterFlops::Bone { r: 64, width: 1024 }])
            .token_flops(2048.0, BaseBackward::Input);
        // r=64 on 1024²: 6·r/d_in = 6·64/4096 of the frozen layer's 4·d_in products.
        assert!((bone / frozen - 1.09375).abs() < 1e-12, "{}", bone / frozen);
        let lora =
            square(vec![AdapterFlops::Lora { r: 32 }]).token_flops(2048.0, BaseBackward::Input);
        assert!((lora / frozen - 1.09375).abs() < 1e-12);
    }

    #[test]
    fn attention_counts_real_tokens_only() {
        let model = ModelFlops {
            linears: vec![],
            attention_layers: 2,
            hidden: 8,
            head: vec![],
            base: BaseBackward::Input,
        };
        assert_eq!(model.step_flops(&[3, 1]), 12.0 * (9.0 + 1.0) * 8.0 * 2.0);
        assert_eq!(
            model.mean_step_flops(&[3, 1, 2], 2),
            Some((1920.0 + 768.0) / 2.0)
        );
        assert_eq!(model.mean_step_flops(&[], 2), None);
        let forward_only = ModelFlops {
            base: BaseBackward::None,
            ..model
        };
        assert_eq!(forward_only.step_flops(&[3, 1]), 4.0 * 10.0 * 8.0 * 2.0);
    }

    #[test]
    fn full_fine_tuning_adds_the_weight_gradient() {
        let layer = square(vec![]);
        assert_eq!(
            layer.token_flops(1.0, BaseBackward::Full) / layer.token_flops(1.0, BaseBackward::None),
            3.0
        );
    }

    #[test]
    fn bat_pays_the_weight_gradient_and_its_delta_once_per_step() {
        let bat = square(vec![AdapterFlops::Bat { r: 64 }]);
        assert_eq!(
            bat.token_flops(1.0, BaseBackward::Input),
            6.0 * 1024.0 * 1024.0
        );
        assert_eq!(bat.step_flops(), 4.0 * 1024.0 * 1024.0 * 64.0);
    }

    #[test]
    fn a_decoder_counts_its_block_linears_attention_and_output_projection() {
        use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
        type B = burn::backend::Flex;
        // stories260K's shape: 2 layers of width 64, 8 heads of 8 (4 KV heads), MLP 172.
        let config = models::LlamaConfig::from_value(
            &serde_json::json!({
                "model_type": "llama", "hidden_size": 64, "intermediate_size": 172,
                "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 4,
                "vocab_size": 512, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
                "tie_word_embeddings": true
            }),
            std::path::Path::new("config.json"),
        )
        .unwrap();
        let mut model = config.init::<B>(&Default::default());
        let products_per_layer = 64 * 64 + 64 * 32 + 64 * 32 + 64 * 64 + 3 * 64 * 172;
        let linears = (2 * products_per_layer + 64 * 512) as f64;
        let frozen = ModelFlops::causal_lm(&model, BaseBackward::Input);
        assert_eq!(frozen.hidden, 64);
        assert_eq!(frozen.linears.len(), 2 * 7 + 1);
        assert_eq!(
            frozen.step_flops(&[3, 1]),
            4.0 * 4.0 * linears + 12.0 * 10.0 * 64.0 * 2.0
        );
        let targets = models::targets::parse_targets("q_proj", models::ModelFamily::Llama);
        let adapter = AdapterConfig::from_spec(&AdapterSpec::bone(16), targets);
        model
            .add_adapter("a", &adapter, &Default::default())
            .unwrap();
        let bone = ModelFlops::causal_lm(&model, BaseBackward::Input).step_flops(&[3, 1]);
        // Two q_proj blocks [16, 64], 6 products each per token, over 4 tokens.
        assert_eq!(
            bone - frozen.step_flops(&[3, 1]),
            2.0 * 6.0 * 4.0 * 16.0 * 64.0
        );
    }

    #[test]
    fn mfu_is_the_share_of_the_peak() {
        let m = Mfu::new(1e9, 0.1, Some(200.0));
        assert!((m.flops_per_second - 1e10).abs() < 1e-3);
        assert!((m.mfu.unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(
            m.describe(),
            "10.0 GFLOP/s model (5 % of the 200 GFLOP/s GEMM peak)"
        );
        assert_eq!(Mfu::new(1e9, 0.1, None).mfu, None);
        assert_eq!(
            m.describe_step(),
            "1.00 GFLOP/step, 10.0 GFLOP/s model (5 % of the 200 GFLOP/s GEMM peak)"
        );
        assert_eq!(
            m.with_theoretical_peak(Some(400.0)).describe(),
            "10.0 GFLOP/s model (5 % of the 200 GFLOP/s GEMM peak), 2 % of the CPU's 400 GFLOP/s"
        );
    }
}
