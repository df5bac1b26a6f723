//! PEFT's tensor key names.

/// The prefix PEFT puts before every module path in `adapter_model.safetensors`.
pub const PEFT_KEY_PREFIX: &str = "base_model.model.";

/// `base_model.model.<path>.<suffix>`.
pub fn peft_key(path: &str, suffix: &str) -> String {
    format!("{PEFT_KEY_PREFIX}{path}.{suffix}")
}

/// The suffixes adapter tensors end with, longest first.
pub(crate) const ADAPTER_SUFFIXES: [&str; 4] =
    ["lora_A.weight", "lora_B.weight", "miss_block", "bone_block"];

/// Splits a key into the module path and the adapter suffix (`miss_block`, `bone_block`,
/// `lora_A.weight`, `lora_B.weight`); `None` for keys that are not adapter tensors (such as
/// `modules_to_save` weights). The `base_model.model.` prefix is optional.
pub fn split_peft_key(key: &str) -> Option<(&str, &'static str)> {
    let key = key.strip_prefix(PEFT_KEY_PREFIX).unwrap_or(key);
    ADAPTER_SUFFIXES.iter().find_map(|suffix| {
        key.strip_suffix(suffix)
            .and_then(|rest| rest.strip_suffix('.'))
            .map(|path| (path, *suffix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_peft_keys() {
        assert_eq!(
            split_peft_key("base_model.model.model.layers.0.self_attn.q_proj.miss_block"),
            Some(("model.layers.0.self_attn.q_proj", "miss_block"))
        );
        assert_eq!(
            split_peft_key("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"),
            Some(("model.layers.0.mlp.down_proj", "lora_B.weight"))
        );
        assert_eq!(
            split_peft_key("base_model.model.classifier.dense.weight"),
            None
        );
        assert_eq!(
            peft_key("model.layers.1.mlp.up_proj", "miss_block"),
            "base_model.model.model.layers.1.mlp.up_proj.miss_block"
        );
    }
}
