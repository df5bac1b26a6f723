//! The tokenizer stored in GGUF metadata (`tokenizer.ggml.*`), rebuilt as a Hugging Face
//! fast tokenizer the way transformers' GGUF loader does:
//!
//! - `tokenizer.ggml.model = "gpt2"`: byte-level BPE over `tokens` and `merges`, with the
//!   GPT-2 pre-tokenizer regex and no normalizer (transformers' llama-3 path);
//! - `"llama"`: SentencePiece-style BPE with byte fallback (`▁` for spaces, a `▁` prefix),
//!   merges from `merges` or, when absent, rebuilt from the token scores.
//!
//! Tokens of type 3 (control) become special added tokens, type 4 (user-defined) plain
//! added tokens. BOS/EOS are added by the post-processor when `add_bos_token` /
//! `add_eos_token` say so (defaults: BOS for `llama`, nothing for `gpt2`).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use serde_json::{json, Value};

use super::reader::GgufFile;
use super::value::MetaValue;
use crate::error::{ModelError, Result};
use crate::tokenizer::SpecialTokens;

/// ggml's token type of control tokens (`LLAMA_TOKEN_TYPE_CONTROL`).
const CONTROL: u64 = 3;
/// ggml's token type of user-defined tokens.
const USER_DEFINED: u64 = 4;

/// The tokenizer of a GGUF file.
#[derive(Debug, Clone)]
pub struct GgufTokenizer {
    /// The tokenizer.
    pub tokenizer: tokenizers::Tokenizer,
    /// Its `tokenizer.json`.
    pub json: Value,
    /// BOS, EOS, padding and unknown ids from `tokenizer.ggml.*_token_id`.
    pub special: SpecialTokens,
    /// `tokenizer.chat_template`, the Jinja chat template.
    pub chat_template: Option<String>,
    /// Whether encoding with special tokens prepends BOS.
    pub add_bos_token: bool,
    /// Whether encoding with special tokens appends EOS.
    pub add_eos_token: bool,
    tokens: Vec<String>,
}

impl GgufTokenizer {
    /// Builds the tokenizer of `file`.
    ///
    /// # Errors
    /// A missing or mistyped `tokenizer.ggml.*` key, an unsupported tokenizer model, or a
    /// special token id outside the vocabulary; each names the key.
    pub fn from_file(file: &GgufFile) -> Result<Self> {
        let model = str_key(file, "tokenizer.ggml.model")?;
        let tokens = strings(file, "tokenizer.ggml.tokens")?;
        let types = match file.get("tokenizer.ggml.token_type") {
            Some(_) => Some(uints(file, "tokenizer.ggml.token_type", tokens.len())?),
            None => None,
        };
        let id = |key: &str| -> Result<Option<u32>> {
            let Some(v) = file.get(key) else {
                return Ok(None);
            };
            match v.as_u64() {
                Some(i) if (i as usize) < tokens.len() => Ok(Some(i as u32)),
                _ => Err(file.error(format!(
                    "metadata key `{key}`: expected a token id below the vocabulary size {}, found {v:?}",
                    tokens.len()
                ))),
            }
        };
        let special = SpecialTokens {
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            pad: id("tokenizer.ggml.padding_token_id")?,
            unk: id("tokenizer.ggml.unknown_token_id")?,
            ..SpecialTokens::default()
        };
        let flag = |key: &str, default: bool| match file.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| {
                file.error(format!(
                    "metadata key `{key}`: expected a BOOL, found a {} value",
                    v.type_name()
                ))
            }),
        };
        let byte_level = match model {
            "gpt2" => true,
            "llama" => false,
            other => {
                return Err(file.error(format!(
                    "metadata key `tokenizer.ggml.model`: unsupported tokenizer model \"{other}\" \
                     (supported: gpt2, llama)"
                )))
            }
        };
        let add_bos_token = flag("tokenizer.ggml.add_bos_token", !byte_level)?;
        let add_eos_token = flag("tokenizer.ggml.add_eos_token", false)?;
        let add_prefix_space = flag("tokenizer.ggml.add_space_prefix", !byte_level)?;
        let merges = match file.get("tokenizer.ggml.merges") {
            Some(_) => split_merges(file, &strings(file, "tokenizer.ggml.merges")?)?,
            None if byte_level => {
                return Err(file.error(
                    "metadata key `tokenizer.ggml.merges`: expected the BPE merges of a gpt2 \
                     tokenizer, found nothing",
                ))
            }
            None => merges_from_scores(
                &tokens,
                &floats(file, "tokenizer.ggml.scores", tokens.len())?,
            ),
        };
        let unk = special.unk.map(|i| tokens[i as usize].clone());
        let mut json = if byte_level {
            byte_level_json(&tokens, &merges)
        } else {
            sentencepiece_json(&tokens, &merges, unk.as_deref(), add_prefix_space)
        };
        json["added_tokens"] = added_tokens(&tokens, types.as_deref());
        json["post_processor"] =
            post_processor(&tokens, &special, add_bos_token, add_eos_token, byte_level);
        let mut tokenizer = tokenizers::Tokenizer::from_str(&json.to_string())
            .map_err(|e| file.error(format!("the tokenizer built from `tokenizer.ggml.*`: {e}")))?;
        tokenizer.with_padding(None);
        let chat_template = match file.get("tokenizer.chat_template") {
            Some(_) => Some(str_key(file, "tokenizer.chat_template")?.to_string()),
            None => None,
        };
        Ok(Self {
            tokenizer,
            json,
            special,
            chat_template,
            add_bos_token,
            add_eos_token,
            tokens,
        })
    }

    /// The tokenizer of the GGUF file `path`.
    ///
    /// # Errors
    /// See [`GgufFile::open`] and [`from_file`](Self::from_file).
    pub fn open(path: &Path) -> Result<Self> {
        Self::from_file(&GgufFile::open(path)?)
    }

    /// The text of token `id`, if in the vocabulary.
    pub fn token(&self, id: Option<u32>) -> Option<&str> {
        id.and_then(|i| self.tokens.get(i as usize))
            .map(String::as_str)
    }

    /// As this crate's [`Tokenizer`](crate::Tokenizer); `path` names it in errors.
    pub fn into_tokenizer(self, path: &Path) -> crate::Tokenizer {
        crate::Tokenizer::from_parts(self.tokenizer, path.to_path_buf(), self.special)
    }

    /// The `tokenizer_config.json` transformers would save: special tokens by name, the
    /// BOS/EOS flags, the chat template.
    pub fn tokenizer_config(&self, max_length: Option<u64>) -> Value {
        let mut config = json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "add_bos_token": self.add_bos_token,
            "add_eos_token": self.add_eos_token,
            "clean_up_tokenization_spaces": false,
        });
        for (field, id) in [
            ("bos_token", self.special.bos),
            ("eos_token", self.special.eos),
            ("pad_token", self.special.pad),
            ("unk_token", self.special.unk),
        ] {
            if let Some(t) = self.token(id) {
                config[field] = json!(t);
            }
        }
        if let Some(t) = &self.chat_template {
            config["chat_template"] = json!(t);
        }
        if let Some(n) = max_length {
            config["model_max_length"] = json!(n);
        }
        config
    }
}

fn str_key<'a>(file: &'a GgufFile, key: &str) -> Result<&'a str> {
    super::llama::string(file, key)
}

fn array<'a>(file: &'a GgufFile, key: &str, what: &str) -> Result<&'a [MetaValue]> {
    file.get(key).and_then(MetaValue::as_array).ok_or_else(|| {
        let found = file.get(key).map_or_else(
            || "nothing".to_string(),
            |v| format!("a {} value", v.type_name()),
        );
        file.error(format!(
            "metadata key `{key}`: expected an array of {what}, found {found}"
        ))
    })
}

fn element_error(file: &GgufFile, key: &str, i: usize, what: &str, v: &MetaValue) -> ModelError {
    file.error(format!(
        "metadata key `{key}`: element {i}: expected {what}, found a {} value",
        v.type_name()
    ))
}

fn strings(file: &GgufFile, key: &str) -> Result<Vec<String>> {
    array(file, key, "strings")?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .map(String::from)
                .ok_or_else(|| element_error(file, key, i, "a STRING", v))
        })
        .collect()
}

fn check_len(file: &GgufFile, key: &str, found: usize, expected: usize) -> Result<()> {
    if found != expected {
        return Err(file.error(format!(
            "metadata key `{key}`: expected {expected} elements (one per token), found {found}"
        )));
    }
    Ok(())
}

fn uints(file: &GgufFile, key: &str, n: usize) -> Result<Vec<u64>> {
    let values = array(file, key, "integers")?;
    check_len(file, key, values.len(), n)?;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .ok_or_else(|| element_error(file, key, i, "an integer", v))
        })
        .collect()
}

fn floats(file: &GgufFile, key: &str, n: usize) -> Result<Vec<f64>> {
    let values = array(file, key, "numbers")?;
    check_len(file, key, values.len(), n)?;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_f64()
                .ok_or_else(|| element_error(file, key, i, "a number", v))
        })
        .collect()
}

fn split_merges(file: &GgufFile, merges: &[String]) -> Result<Vec<(String, String)>> {
    merges
        .iter()
        .enumerate()
        .map(|(i, m)| match m.split_once(' ') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
            _ => Err(file.error(format!(
                "metadata key `tokenizer.ggml.merges`: element {i}: expected two tokens \
                 separated by a space, found {m:?}"
            ))),
        })
        .collect()
}

/// BPE merges rebuilt from SentencePiece scores, as transformers' `GGUFTokenizerSkeleton`
/// does: every split of every token into two vocabulary pieces, ordered by the token's
/// score (then by the pieces' scores), highest first.
fn merges_from_scores(tokens: &[String], scores: &[f64]) -> Vec<(String, String)> {
    let score: HashMap<&str, f64> = tokens
        .iter()
        .zip(scores)
        .map(|(t, &s)| (t.as_str(), s))
        .collect();
    let mut merges: Vec<(String, String, f64)> = Vec::new();
    for (token, &piece_score) in tokens.iter().zip(scores) {
        let mut local: Vec<(&str, &str)> = token
            .char_indices()
            .skip(1)
            .map(|(i, _)| token.split_at(i))
            .filter(|(l, r)| score.contains_key(l) && score.contains_key(r))
            .collect();
        local.sort_by(|a, b| {
            (score[b.0], score[b.1])
                .partial_cmp(&(score[a.0], score[a.1]))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        merges.extend(
            local
                .into_iter()
                .map(|(l, r)| (l.into(), r.into(), piece_score)),
        );
    }
    merges.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap_or(std::cmp::Ordering::Equal));
    merges.into_iter().map(|(l, r, _)| (l, r)).collect()
}

fn vocab(tokens: &[String]) -> Value {
    let mut map = serde_json::Map::new();
    for (i, t) in tokens.iter().enumerate() {
        // A duplicated token keeps its last id, as in transformers' dict comprehension.
        map.insert(t.clone(), json!(i));
    }
    Value::Object(map)
}

fn merges_json(merges: &[(String, String)]) -> Value {
    Value::Array(merges.iter().map(|(a, b)| json!([a, b])).collect())
}

fn byte_level_json(tokens: &[String], merges: &[(String, String)]) -> Value {
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab(tokens), "merges": merges_json(merges),
        },
    })
}

fn sentencepiece_json(
    tokens: &[String],
    merges: &[(String, String)],
    unk: Option<&str>,
    add_prefix_space: bool,
) -> Value {
    let mut normalizers = Vec::new();
    if add_prefix_space {
        normalizers.push(json!({"type": "Prepend", "prepend": "▁"}));
    }
    normalizers.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"}));
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if add_prefix_space {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab(tokens), "merges": merges_json(merges),
        },
    })
}

fn added_tokens(tokens: &[String], types: Option<&[u64]>) -> Value {
    let Some(types) = types else {
        return json!([]);
    };
    let added = tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, &t))| t == CONTROL || t == USER_DEFINED)
        .map(|(id, (content, &t))| {
            json!({
                "id": id, "content": content, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": t == CONTROL,
            })
        })
        .collect();
    Value::Array(added)
}

fn post_processor(
    tokens: &[String],
    special: &SpecialTokens,
    bos: bool,
    eos: bool,
    byte_level: bool,
) -> Value {
    let bos = special
        .bos
        .filter(|_| bos)
        .map(|i| (tokens[i as usize].clone(), i));
    let eos = special
        .eos
        .filter(|_| eos)
        .map(|i| (tokens[i as usize].clone(), i));
    if bos.is_none() && eos.is_none() {
        return if byte_level {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true})
        } else {
            Value::Null
        };
    }
    let piece = |(t, _): &(String, u32), type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
    let seq = |type_id: u32| json!({"Sequence": {"id": if type_id == 0 { "A" } else { "B" }, "type_id": type_id}});
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = serde_json::Map::new();
    for (t, i) in bos.iter().chain(eos.iter()) {
        specials.insert(t.clone(), json!({"id": t, "ids": [i], "tokens": [t]}));
    }
    for (list, ids) in [(&mut single, vec![0]), (&mut pair, vec![0, 1])] {
        for type_id in ids {
            if let Some(b) = &bos {
                list.push(piece(b, type_id));
            }
            list.push(seq(type_id));
            if let Some(e) = &eos {
                list.push(piece(e, type_id));
            }
        }
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials})
}
