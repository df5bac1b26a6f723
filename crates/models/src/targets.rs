//! Which layers adapters go on: PEFT's default `target_modules` per family, and every linear
//! projection of the transformer blocks.

use bone_module::TargetModules;

use crate::config::ModelFamily;

/// The projections of a LLaMA block.
pub const LLAMA_PROJECTIONS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// PEFT's default `target_modules` for a family
/// (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`, the same for MiSS/Bone):
/// `["q_proj", "v_proj"]` for LLaMA, `["query", "value"]` for BERT and RoBERTa.
pub fn default_target_modules(family: ModelFamily) -> TargetModules {
    match family {
        ModelFamily::Llama => TargetModules::names(&["q_proj", "v_proj"]),
        ModelFamily::Bert | ModelFamily::Roberta => TargetModules::names(&["query", "value"]),
    }
}

/// Every linear projection inside the transformer blocks: LLaMA's seven projections; for
/// BERT/RoBERTa `query`, `key`, `value`, `attention.output.dense`, `intermediate.dense` and
/// `output.dense` of every layer (36 layers on a 6-layer MiniLM), but not the pooler or the
/// classification head.
///
/// Encoders get a regular expression over full module paths (PEFT matches a string
/// `target_modules` with `re.fullmatch`), since the name `dense` alone would also select
/// `pooler.dense`.
pub fn all_block_linears(family: ModelFamily) -> TargetModules {
    match family {
        ModelFamily::Llama => TargetModules::names(&LLAMA_PROJECTIONS),
        ModelFamily::Bert | ModelFamily::Roberta => TargetModules::Regex(
            r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
                .into(),
        ),
    }
}

/// Target modules from a command-line word: `default` (PEFT's default for the family),
/// `all-block-linears`, `all-linear` (every adaptable linear, as PEFT), a comma-separated
/// list of names, or `re:<regex>` over full module paths.
pub fn parse_targets(text: &str, family: ModelFamily) -> TargetModules {
    match text.trim() {
        "default" => default_target_modules(family),
        "all-block-linears" | "all" => all_block_linears(family),
        other => TargetModules::parse_cli(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_block_regex_skips_the_pooler() {
        let m = all_block_linears(ModelFamily::Bert)
            .matcher("<test>", "target_modules")
            .unwrap();
        for path in [
            "encoder.layer.0.attention.self.query",
            "bert.encoder.layer.5.attention.self.value",
            "bert.encoder.layer.11.attention.output.dense",
            "roberta.encoder.layer.1.intermediate.dense",
            "encoder.layer.2.output.dense",
        ] {
            assert!(m.matches(path), "{path}");
        }
        for path in ["pooler.dense", "bert.pooler.dense", "classifier.dense"] {
            assert!(!m.matches(path), "{path}");
        }
    }

    #[test]
    fn defaults_follow_peft() {
        assert_eq!(
            default_target_modules(ModelFamily::Llama),
            TargetModules::names(&["q_proj", "v_proj"])
        );
        assert_eq!(
            parse_targets("default", ModelFamily::Roberta),
            TargetModules::names(&["query", "value"])
        );
        assert_eq!(
            parse_targets("q_proj,k_proj", ModelFamily::Llama),
            TargetModules::names(&["q_proj", "k_proj"])
        );
    }
}
