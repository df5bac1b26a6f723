//! all-MiniLM-L6-v2 (BERT) and the random RoBERTa classifier against transformers.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests

use crate::common;

use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use common::*;
use models::encoder::{ClassificationHead, HeadInit};
use models::targets::{all_block_linears, default_target_modules};
use models::{
    ClassifierOptions, EncoderModel, LoadOptions, ModelFamily, SequenceClassificationModel,
    Tokenizer,
};

#[test]
fn minilm_hidden_states_and_mean_pooling_match_transformers() {
    let g = golden("bert_minilm_forward");
    let device = device();
    let m =
        EncoderModel::<TB>::from_pretrained(minilm(), &LoadOptions::default(), &device).unwrap();
    let input = int_tensor::<TB, 2>(&g["input_ids"], &device);
    let mask = int_tensor::<TB, 2>(&g["attention_mask"], &device);
    let types = int_tensor::<TB, 2>(&g["token_type_ids"], &device);
    let hidden = m.forward(input, Some(mask.clone()), Some(types));
    assert_eq!(hidden.dims(), [3, 9, 384]);
    assert_close(
        "MiniLM last_hidden_state",
        &values(&hidden),
        &f32s(&g["last_hidden_state"]),
        1e-4,
    );
    let pooled = m.mean_pool(hidden, mask);
    assert_close(
        "MiniLM mean_pooled",
        &values(&pooled),
        &f32s(&g["mean_pooled"]),
        1e-4,
    );
}

#[test]
fn minilm_tokenizer_ignores_the_fixed_padding_of_its_file() {
    let g = golden("bert_minilm_forward");
    let tok = Tokenizer::from_pretrained(minilm()).unwrap();
    let golden_ids = ids(&g["input_ids"]);
    let masks = ids(&g["attention_mask"]);
    for (i, s) in [
        "A man is playing a guitar.",
        "Someone is playing an instrument.",
        "The stock market fell sharply today.",
    ]
    .iter()
    .enumerate()
    {
        let expected: Vec<u32> = golden_ids[i * 9..(i + 1) * 9]
            .iter()
            .zip(&masks[i * 9..(i + 1) * 9])
            .filter(|(_, &m)| m == 1)
            .map(|(&t, _)| t)
            .collect();
        assert_eq!(tok.encode(s, true).unwrap(), expected, "sentence {i}");
    }
    let sp = tok.special_tokens();
    assert_eq!((sp.cls, sp.sep, sp.pad), (Some(101), Some(102), Some(0)));
    let (ids, types) = tok.encode_pair("a b", "c", true).unwrap();
    assert_eq!(ids.len(), types.len());
    assert_eq!(types.last(), Some(&1));
}

#[test]
fn roberta_classifier_logits_and_hidden_states_match_transformers() {
    let g = golden("roberta_tiny_forward");
    let device = device();
    let m = SequenceClassificationModel::<TB>::from_pretrained(
        roberta_tiny(),
        &ClassifierOptions::default(),
        &device,
    )
    .unwrap();
    assert_eq!(m.num_labels(), 2);
    assert!(matches!(m.head, ClassificationHead::Roberta(_)));
    let input = int_tensor::<TB, 2>(&g["input_ids"], &device);
    let mask = int_tensor::<TB, 2>(&g["attention_mask"], &device);
    let hidden = m.encoder.forward(input.clone(), Some(mask.clone()), None);
    assert_close(
        "RoBERTa last_hidden_state",
        &values(&hidden),
        &f32s(&g["last_hidden_state"]),
        1e-4,
    );
    let logits = m.forward(input.clone(), Some(mask.clone()), None);
    assert_eq!(logits.dims(), [2, 2]);
    assert_close(
        "RoBERTa logits",
        &values(&logits),
        &f32s(&g["logits"]),
        1e-4,
    );
    // The bare encoder reads the same prefixed checkpoint.
    let bare =
        EncoderModel::<TB>::from_pretrained(roberta_tiny(), &LoadOptions::default(), &device)
            .unwrap();
    assert_eq!(bare.checkpoint_prefix(), "roberta.");
    assert_eq!(
        bare.linear_paths()[0],
        "encoder.layer.0.attention.self.query"
    );
    let hidden = bare.forward(input, Some(mask), None);
    assert_close(
        "RoBERTa bare encoder",
        &values(&hidden),
        &f32s(&g["last_hidden_state"]),
        1e-4,
    );
}

#[test]
fn roberta_positions_start_after_the_padding_id() {
    let device = device();
    let m = EncoderModel::<TB>::from_pretrained(roberta_tiny(), &LoadOptions::default(), &device)
        .unwrap();
    let input = ids_tensor::<TB>(&[vec![0, 15, 27, 2, 1, 1]], &device);
    let positions: Vec<i64> = m
        .embeddings
        .position_ids(&input)
        .into_data()
        .iter::<i64>()
        .collect();
    assert_eq!(positions, vec![2, 3, 4, 5, 1, 1]);
}

#[test]
fn module_paths_targets_and_freezing() {
    let device = device();
    let mut bare =
        EncoderModel::<TB>::from_pretrained(minilm(), &LoadOptions::default(), &device).unwrap();
    let paths = bare.linear_paths();
    assert_eq!(paths.len(), 37, "36 block linears and the pooler");
    assert_eq!(paths[0], "encoder.layer.0.attention.self.query");
    assert_eq!(paths[36], "pooler.dense");
    assert_eq!(
        bare.trainable_params(),
        0,
        "everything is frozen after loading"
    );

    let config =
        AdapterConfig::from_spec(&AdapterSpec::bone(8), all_block_linears(ModelFamily::Bert));
    let targets = bare.add_adapter("bone", &config, &device).unwrap();
    assert_eq!(targets.len(), 36, "Bone on all 36 MiniLM encoder linears");
    assert!(!targets.iter().any(|t| t.contains("pooler")));
    // 6 × (4·8·384 + 8·1536 + 8·384)
    assert_eq!(
        bare.trainable_params(),
        6 * (4 * 8 * 384 + 8 * 1536 + 8 * 384)
    );

    let config = AdapterConfig::from_spec(
        &AdapterSpec::lora(4, 8.0),
        default_target_modules(ModelFamily::Bert),
    );
    let targets = bare.add_adapter("lora", &config, &device).unwrap();
    assert_eq!(targets.len(), 12, "query and value of 6 layers");

    // The task model uses transformers' task-model paths.
    let clf = SequenceClassificationModel::<TB>::from_pretrained(
        minilm(),
        &ClassifierOptions {
            seed: Some(1),
            ..ClassifierOptions::with_num_labels(3)
        },
        &device,
    )
    .unwrap();
    let paths = clf.linear_paths();
    assert_eq!(paths[0], "bert.encoder.layer.0.attention.self.query");
    assert_eq!(paths[36], "bert.pooler.dense");
    assert_eq!(clf.num_labels(), 3);
    assert_eq!(
        clf.trainable_params(),
        384 * 3 + 3,
        "only the head trains before adapters"
    );
    let full = clf.set_full_finetune(true);
    assert_eq!(full.trainable_params(), 22_713_216 + 384 * 3 + 3);
}

#[test]
fn fresh_heads_follow_transformers_init_and_regression_has_one_output() {
    let device = device();
    let clf = SequenceClassificationModel::<TB>::from_pretrained(
        minilm(),
        &ClassifierOptions {
            seed: Some(3),
            head: HeadInit::Fresh,
            ..ClassifierOptions::with_num_labels(1)
        },
        &device,
    )
    .unwrap();
    assert!(clf.is_regression());
    let t = clf.head_tensors();
    assert_eq!(t["classifier.weight"].shape.to_vec(), vec![1, 384]);
    let w = f32s(&t["classifier.weight"]);
    let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
    assert!((0.012..0.03).contains(&std), "std {std}");
    assert!(f32s(&t["classifier.bias"]).iter().all(|&b| b == 0.0));
    let input = ids_tensor::<TB>(&[vec![101, 2023, 102]], &device);
    assert_eq!(clf.forward(input, None, None).dims(), [1, 1]);
}
