//! Dashboard metrics of causal-LM training: token-weighted perplexity and training tokens per
//! second. (burn-train's own `PerplexityMetric` needs the full logits of every step, which
//! for a 32K vocabulary is far more than the loss it is derived from.)

use std::sync::Arc;
use std::time::Instant;

use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    format_float, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};

/// A batch's mean loss and the number of tokens it is the mean of.
#[derive(Debug, Clone, Copy)]
pub struct TokenLossInput {
    /// Mean cross-entropy per scored token.
    pub mean_loss: f64,
    /// Scored tokens.
    pub tokens: usize,
}

/// Perplexity `exp(Σ nll / Σ tokens)` over the epoch so far, weighting batches by their
/// scored tokens.
#[derive(Clone)]
pub struct TokenPerplexityMetric {
    name: MetricName,
    nll: f64,
    tokens: usize,
}

impl Default for TokenPerplexityMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenPerplexityMetric {
    /// The metric, named "Perplexity".
    pub fn new() -> Self {
        Self {
            name: Arc::new("Perplexity".to_string()),
            nll: 0.0,
            tokens: 0,
        }
    }

    fn epoch_value(&self) -> f64 {
        if self.tokens == 0 {
            f64::NAN
        } else {
            (self.nll / self.tokens as f64).exp()
        }
    }
}

impl Metric for TokenPerplexityMetric {
    type Input = TokenLossInput;

    fn update(&mut self, item: &TokenLossInput, _metadata: &MetricMetadata) -> SerializedEntry {
        if item.mean_loss.is_finite() {
            self.nll += item.mean_loss * item.tokens as f64;
            self.tokens += item.tokens;
        }
        let batch = item.mean_loss.exp();
        let epoch = self.epoch_value();
        SerializedEntry::new(
            format!(
                "epoch {} - batch {}",
                format_float(epoch, 2),
                format_float(batch, 2)
            ),
            NumericEntry::Aggregated {
                aggregated_value: epoch,
                count: self.tokens,
            }
            .serialize(),
        )
    }

    fn clear(&mut self) {
        self.nll = 0.0;
        self.tokens = 0;
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
        .into()
    }
}

impl Numeric for TokenPerplexityMetric {
    fn value(&self) -> NumericEntry {
        NumericEntry::Aggregated {
            aggregated_value: self.epoch_value(),
            count: self.tokens,
        }
    }

    fn running_value(&self) -> NumericEntry {
        self.value()
    }
}

/// The non-padding tokens of a batch.
#[derive(Debug, Clone, Copy)]
pub struct TokenCountInput {
    /// Non-padding input tokens.
    pub tokens: usize,
}

/// Training throughput in non-padding tokens per second, measured from the first batch of the
/// epoch (that batch only starts the clock).
#[derive(Clone)]
pub struct TokensPerSecondMetric {
    name: MetricName,
    state: NumericMetricState,
    started: Option<Instant>,
    tokens: usize,
}

impl Default for TokensPerSecondMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl TokensPerSecondMetric {
    /// The metric, named "Tokens per Second".
    pub fn new() -> Self {
        Self {
            name: Arc::new("Tokens per Second".to_string()),
            state: NumericMetricState::default(),
            started: None,
            tokens: 0,
        }
    }
}

impl Metric for TokensPerSecondMetric {
    type Input = TokenCountInput;

    fn update(&mut self, item: &TokenCountInput, _metadata: &MetricMetadata) -> SerializedEntry {
        let rate = match self.started {
            Some(t) => {
                self.tokens += item.tokens;
                self.tokens as f64 / t.elapsed().as_secs_f64().max(1e-9)
            }
            None => {
                self.started = Some(Instant::now());
                0.0
            }
        };
        self.state
            .update(rate, 1, FormatOptions::new(self.name()).precision(1))
    }

    fn clear(&mut self) {
        self.state.reset();
        self.started = None;
        self.tokens = 0;
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("tokens/s".to_string()),
            higher_is_better: true,
        }
        .into()
    }
}

impl Numeric for TokensPerSecondMetric {
    fn value(&self) -> NumericEntry {
        self.state.current_value()
    }

    fn running_value(&self) -> NumericEntry {
        self.state.current_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataloader::Progress;

    fn meta() -> MetricMetadata {
        MetricMetadata {
            progress: Progress {
                items_processed: 1,
                items_total: 1,
            },
            global_progress: Progress {
                items_processed: 1,
                items_total: 1,
            },
            iteration: Some(1),
            lr: None,
        }
    }

    #[test]
    fn perplexity_weights_batches_by_tokens() {
        let mut m = TokenPerplexityMetric::new();
        m.update(
            &TokenLossInput {
                mean_loss: 1.0,
                tokens: 30,
            },
            &meta(),
        );
        m.update(
            &TokenLossInput {
                mean_loss: 2.0,
                tokens: 10,
            },
            &meta(),
        );
        let expected = ((30.0 + 20.0) / 40.0f64).exp();
        assert!((m.value().current() - expected).abs() < 1e-12);
        m.clear();
        assert!(m.value().current().is_nan());
    }
}
