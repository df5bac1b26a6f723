//! Prompting for causal LMs: the Alpaca template used by the MetaMath scripts, and
//! prompt/response pairs whose loss is taken on the response only.

use crate::gsm8k::Gsm8kExample;
use crate::metamath::MathQaExample;

/// The Alpaca prompt (no input field) used by the MetaMath training and evaluation scripts;
/// `{query}` is replaced by the question. It ends right after `### Response:`.
pub const ALPACA_TEMPLATE: &str = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{query}\n\n### Response:";

/// The Alpaca prompt for `query`.
pub fn alpaca_prompt(query: &str) -> String {
    ALPACA_TEMPLATE.replace("{query}", query)
}

/// A supervised fine-tuning example: the loss falls on `response` only.
///
/// [`crate::batcher::CausalLmBatcher::encode`] tokenises the prompt and the response
/// separately, so the prompt's tokens are exactly those seen at generation time, and labels
/// the prompt positions with [`crate::batcher::IGNORE_INDEX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftExample {
    /// The full prompt (template applied).
    pub prompt: String,
    /// The target continuation (without EOS; the batcher appends it).
    pub response: String,
}

impl SftExample {
    /// Alpaca prompt for `query`, with `response` as target.
    pub fn alpaca(query: &str, response: &str) -> Self {
        Self {
            prompt: alpaca_prompt(query),
            response: response.to_string(),
        }
    }

    /// A MetaMathQA row: Alpaca prompt on `query`, target `response`.
    pub fn from_metamath(example: &MathQaExample) -> Self {
        Self::alpaca(&example.query, &example.response)
    }

    /// A GSM8K problem rendered as MetaMathQA ([`MathQaExample::from_gsm8k`]) and prompted.
    pub fn from_gsm8k(example: &Gsm8kExample) -> Self {
        Self::from_metamath(&MathQaExample::from_gsm8k(example))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_the_metamath_one() {
        assert_eq!(
            alpaca_prompt("What is 2+2?"),
            "Below is an instruction that describes a task. Write a response that appropriately \
             completes the request.\n\n### Instruction:\nWhat is 2+2?\n\n### Response:"
        );
        // A query that itself contains the placeholder text is inserted verbatim.
        assert!(alpaca_prompt("{query}").contains("### Instruction:\n{query}\n\n"));
    }
}
