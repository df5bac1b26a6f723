//! Dev-set evaluation of a causal LM: the loss and perplexity over the held-out examples'
//! response tokens.

use burn::tensor::backend::Backend;

use super::model::{scalar, LmOutput};
use crate::train::Evaluation;

/// Accumulates the negative log-likelihood and the scored tokens over the dev set.
#[derive(Debug, Default)]
pub struct LmEvaluation {
    nll: f64,
    tokens: usize,
}

impl LmEvaluation {
    /// The metrics an evaluation reports.
    pub const KEYS: &'static [&'static str] = &["loss", "perplexity"];

    /// An empty evaluation.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B: Backend> Evaluation<LmOutput<B>> for LmEvaluation {
    fn observe(&mut self, output: &LmOutput<B>) {
        self.nll += scalar(&output.loss) * output.target_tokens as f64;
        self.tokens += output.target_tokens;
    }

    /// `loss` (mean cross-entropy per response token) and `perplexity` (its exponential).
    fn finish(&mut self) -> Vec<(String, f64)> {
        let loss = if self.tokens == 0 {
            f64::NAN
        } else {
            self.nll / self.tokens as f64
        };
        vec![("loss".into(), loss), ("perplexity".into(), loss.exp())]
    }
}
