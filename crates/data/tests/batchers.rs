//! The batchers on the real MiniLM (BERT WordPiece) and stories260K (LLaMA BPE, byte
//! fallback) tokenizers. Reference ids come from ../shared/golden (Hugging Face transformers).

use crate::common;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::tensor::{backend::Backend, Int, Tensor};
use burn_ndarray::NdArray;

use data::batcher::{
    CausalLmBatcher, CausalLmBatcherConfig, ClassificationBatcher, ClassificationBatcherConfig,
    PaddingSide, IGNORE_INDEX,
};
use data::glue::{GlueExample, GlueSplit, GlueTask, Label};
use data::prompt::{alpaca_prompt, SftExample};
use data::{load_tokenizer, DataError, LoadOptions, Tokenizer};

type B = NdArray;

fn minilm() -> Tokenizer {
    load_tokenizer(&common::tokenizer_path("all-MiniLM-L6-v2")).expect("MiniLM tokenizer")
}

fn stories() -> Tokenizer {
    load_tokenizer(&common::tokenizer_path("stories260K")).expect("stories260K tokenizer")
}

fn rows<Bk: Backend>(t: Tensor<Bk, 2, Int>) -> Vec<Vec<i64>> {
    let [_, s] = t.dims();
    let flat: Vec<i64> = t.into_data().iter::<i64>().collect();
    flat.chunks(s.max(1)).map(<[i64]>::to_vec).collect()
}

fn single(text: &str, label: Option<Label>) -> GlueExample {
    GlueExample {
        text_a: text.into(),
        text_b: None,
        label,
        line: 0,
    }
}

#[test]
fn minilm_file_pads_to_128_but_load_tokenizer_turns_it_off() {
    let raw = Tokenizer::from_file(common::tokenizer_path("all-MiniLM-L6-v2")).expect("raw");
    assert_eq!(raw.encode("Hi", true).expect("enc").get_ids().len(), 128);
    let tok = minilm();
    assert!(tok.get_padding().is_none() && tok.get_truncation().is_none());
    assert_eq!(
        tok.encode("Hi", true).expect("enc").get_ids(),
        &[101, 7632, 102]
    );
}

#[test]
fn minilm_batch_matches_the_transformers_golden_batch() {
    // golden/bert_minilm_forward: the tokenizer output of transformers for these sentences,
    // padded to the longest (9).
    let sentences = [
        "A man is playing a guitar.",
        "Someone is playing an instrument.",
        "The stock market fell sharply today.",
    ];
    let expected_ids = vec![
        vec![101, 1037, 2158, 2003, 2652, 1037, 2858, 1012, 102],
        vec![101, 2619, 2003, 2652, 2019, 6602, 1012, 102, 0],
        vec![101, 1996, 4518, 3006, 3062, 9249, 2651, 1012, 102],
    ];
    let expected_mask = vec![vec![1; 9], [vec![1; 8], vec![0]].concat(), vec![1; 9]];
    let batcher = ClassificationBatcher::new(minilm(), ClassificationBatcherConfig::default())
        .expect("batcher");
    let examples: Vec<_> = sentences
        .iter()
        .zip([1, 1, 0])
        .map(|(s, c)| single(s, Some(Label::Class(c))))
        .collect();
    let encoded = batcher.encode_all(&examples).expect("encode");
    let batch: data::batcher::ClassificationBatch<B> = batcher.batch(encoded, &Default::default());
    assert_eq!(batch.input_ids.dims(), [3, 9]);
    assert_eq!(rows(batch.input_ids.clone()), expected_ids);
    assert_eq!(rows(batch.attention_mask.clone()), expected_mask);
    assert_eq!(rows(batch.token_type_ids.clone()), vec![vec![0; 9]; 3]);
    let labels: Vec<i64> = batch
        .labels
        .clone()
        .expect("labels")
        .into_data()
        .iter::<i64>()
        .collect();
    assert_eq!(labels, vec![1, 1, 0]);
    assert!(batch.scores.is_none());
    let pad: Vec<bool> = batch.pad_mask().into_data().iter::<bool>().collect();
    assert_eq!(pad.iter().filter(|&&p| p).count(), 1);
    assert!(pad[17], "row 1, position 8 is padding");
}

#[test]
fn minilm_pairs_token_types_truncation_and_multiple_of_8() {
    let root = common::data_root();
    let rte = GlueTask::Rte
        .load(&root, GlueSplit::Dev, &LoadOptions::default())
        .expect("rte");
    let config = ClassificationBatcherConfig::default()
        .with_max_len(32)
        .with_pad_to_multiple_of(Some(8));
    let batcher = ClassificationBatcher::new(minilm(), config).expect("batcher");
    let encoded = batcher.encode_all(&rte.examples()[..8]).expect("encode");
    for e in &encoded {
        assert!(e.input_ids.len() <= 32);
        assert_eq!(e.input_ids[0], 101, "[CLS]");
        assert_eq!(e.input_ids.last(), Some(&102), "[SEP]");
        let seps: Vec<usize> = (0..e.input_ids.len())
            .filter(|&i| e.input_ids[i] == 102)
            .collect();
        assert_eq!(seps.len(), 2, "[CLS] a [SEP] b [SEP]");
        // Types: 0 through the first [SEP], 1 after it.
        for (i, &t) in e.token_type_ids.iter().enumerate() {
            assert_eq!(t, u32::from(i > seps[0]), "position {i}");
        }
        assert!(seps[0] > 1 && seps[1] > seps[0] + 1, "both texts kept");
    }
    // RTE premises are long: the first example is cut to exactly 32 (longest first).
    assert!(encoded[0].truncated);
    assert_eq!(encoded[0].input_ids.len(), 32);

    let short = batcher
        .encode(&GlueExample {
            text_a: "A dog runs.".into(),
            text_b: Some("An animal moves.".into()),
            label: Some(Label::Class(0)),
            line: 0,
        })
        .expect("short");
    assert!(!short.truncated);
    let n = short.input_ids.len();
    assert!(n < 16);
    let batch: data::batcher::ClassificationBatch<B> =
        batcher.batch(vec![short.clone()], &Default::default());
    // Longest is n (< 16): rounded up to 16.
    assert_eq!(batch.input_ids.dims(), [1, 16]);
    let mask = &rows(batch.attention_mask)[0];
    assert_eq!(mask.iter().sum::<i64>(), n as i64);
    assert!(mask[n..].iter().all(|&m| m == 0));
    let types = &rows(batch.token_type_ids)[0];
    assert!(types[n..].iter().all(|&t| t == 0), "pad type 0");
}

#[test]
fn regression_and_unlabelled_targets_and_custom_pad_id() {
    let batcher = ClassificationBatcher::new(
        minilm(),
        ClassificationBatcherConfig::default().with_pad_id(1),
    )
    .expect("batcher");
    let items = batcher
        .encode_all(&[
            single("short", Some(Label::Score(4.5))),
            single("a somewhat longer sentence", Some(Label::Score(0.25))),
        ])
        .expect("encode");
    let batch: data::batcher::ClassificationBatch<B> = batcher.batch(items, &Default::default());
    let scores: Vec<f32> = batch
        .scores
        .expect("scores")
        .into_data()
        .iter::<f32>()
        .collect();
    assert_eq!(scores, vec![4.5, 0.25]);
    assert!(batch.labels.is_none());
    assert_eq!(
        rows(batch.input_ids)[0].last(),
        Some(&1),
        "RoBERTa-style pad id"
    );

    let items = batcher
        .encode_all(&[single("no label", None)])
        .expect("encode");
    let batch: data::batcher::ClassificationBatch<B> = batcher.batch(items, &Default::default());
    assert!(batch.labels.is_none() && batch.scores.is_none());
}

#[test]
fn split_cuts_rows_evenly_and_drops_trailing_padding_columns() {
    let batcher = ClassificationBatcher::new(minilm(), ClassificationBatcherConfig::default())
        .expect("batcher");
    let texts = [
        "short",
        "a much longer sentence that sets the padded length of the batch",
        "two words",
        "three small words",
        "ok",
    ];
    let items = batcher
        .encode_all(
            &texts
                .iter()
                .enumerate()
                .map(|(i, t)| single(t, Some(Label::Class(i % 2))))
                .collect::<Vec<_>>(),
        )
        .expect("encode");
    let whole: data::batcher::ClassificationBatch<B> =
        batcher.batch(items.clone(), &Default::default());
    let ids = rows(whole.input_ids.clone());
    let lens: Vec<usize> = items.iter().map(|e| e.input_ids.len()).collect();
    let parts = whole.split(2);
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        vec![3, 2]
    );
    assert_eq!(
        parts[0].input_ids.dims()[1],
        lens[..3].iter().max().copied().unwrap()
    );
    assert_eq!(
        parts[1].input_ids.dims()[1],
        lens[3..].iter().max().copied().unwrap()
    );
    for (part, offset) in parts.iter().zip([0, 3]) {
        let got = rows(part.input_ids.clone());
        for (r, row) in got.iter().enumerate() {
            assert_eq!(row[..], ids[offset + r][..row.len()], "row {}", offset + r);
        }
        let labels: Vec<i64> = part
            .labels
            .clone()
            .unwrap()
            .into_data()
            .iter::<i64>()
            .collect();
        let want: Vec<i64> = (offset..offset + part.len())
            .map(|i| (i % 2) as i64)
            .collect();
        assert_eq!(labels, want);
    }
    let batch: data::batcher::ClassificationBatch<B> = batcher.batch(items, &Default::default());
    let singles = batch.split(9);
    assert_eq!(singles.len(), 5, "never more parts than rows");
    assert!(singles
        .iter()
        .zip(&lens)
        .all(|(p, &n)| p.input_ids.dims() == [1, n]));
}

#[test]
fn sst2_dev_through_burns_dataloader() {
    let dev = GlueTask::Sst2
        .load(
            &common::data_root(),
            GlueSplit::Dev,
            &LoadOptions::default(),
        )
        .expect("sst2 dev");
    let batcher = ClassificationBatcher::new(minilm(), ClassificationBatcherConfig::default())
        .expect("batcher");
    let encoded = batcher.encode_all(dev.examples()).expect("encode");
    assert_eq!(encoded.len(), 872);
    let loader = DataLoaderBuilder::<B, _, _>::new(batcher)
        .batch_size(32)
        .build(InMemDataset::new(encoded));
    let (mut batches, mut items, mut positives) = (0, 0, 0);
    for batch in loader.iter() {
        let [b, s] = batch.input_ids.dims();
        assert!(b <= 32 && s <= 128);
        batches += 1;
        items += b;
        let labels: Vec<i64> = batch
            .labels
            .expect("labels")
            .into_data()
            .iter::<i64>()
            .collect();
        positives += labels.iter().filter(|&&l| l == 1).count();
    }
    assert_eq!((batches, items, positives), (28, 872, 444));
}

#[test]
fn classification_config_errors() {
    let err = ClassificationBatcher::new(
        minilm(),
        ClassificationBatcherConfig::default().with_max_len(3),
    )
    .expect_err("too short");
    assert!(matches!(err, DataError::Config { .. }), "{err}");
    assert!(err.to_string().contains("expected at least 5"), "{err}");
    let err = ClassificationBatcher::new(
        minilm(),
        ClassificationBatcherConfig::default().with_pad_to_multiple_of(Some(0)),
    )
    .expect_err("zero multiple");
    assert!(err.to_string().contains("pad_to_multiple_of"), "{err}");
}

#[test]
fn stories_prompt_matches_the_transformers_golden_ids() {
    // golden/llama_stories260k_forward: input_ids of "Once upon a time" (BOS = 1).
    let batcher =
        CausalLmBatcher::new(stories(), CausalLmBatcherConfig::default()).expect("batcher");
    let enc = batcher.encode_prompt("Once upon a time").expect("encode");
    assert_eq!(enc.input_ids, vec![1, 403, 407, 261, 378]);
    assert!(enc.labels.iter().all(|&l| l == IGNORE_INDEX));
    assert!(!enc.has_targets());
}

#[test]
fn sft_labels_mask_the_prompt_and_end_with_eos() {
    let tok = stories();
    let batcher =
        CausalLmBatcher::new(tok.clone(), CausalLmBatcherConfig::default()).expect("batcher");
    let ex = SftExample::alpaca("What is 2+2?", "2+2 = 4.\nThe answer is: 4");
    let enc = batcher.encode(&ex).expect("encode");
    let prompt = batcher.encode_prompt(&ex.prompt).expect("prompt");
    let p = prompt.input_ids.len();
    // The training sequence starts with exactly the generation-time prompt.
    assert_eq!(&enc.input_ids[..p], &prompt.input_ids[..]);
    assert_eq!(enc.input_ids[0], 1, "BOS");
    assert_eq!(enc.input_ids.last(), Some(&2), "EOS");
    assert!(enc.labels[..p].iter().all(|&l| l == IGNORE_INDEX));
    let targets: Vec<u32> = enc.labels[p..].iter().map(|&l| l as u32).collect();
    assert_eq!(&targets[..], &enc.input_ids[p..]);
    // The targets decode back to the response (the tokenizer's decoder drops the leading space).
    let response_ids = &targets[..targets.len() - 1];
    assert_eq!(tok.decode(response_ids, true).expect("decode"), ex.response);
    assert!(!enc.truncated);
    assert_eq!(ex.prompt, alpaca_prompt("What is 2+2?"));
}

#[test]
fn byte_fallback_round_trips() {
    let tok = stories();
    let batcher =
        CausalLmBatcher::new(tok.clone(), CausalLmBatcherConfig::default()).expect("batcher");
    let text = "Zoë ate 3 crêpes 🙂";
    let enc = batcher
        .encode(&SftExample {
            prompt: "Q".into(),
            response: text.into(),
        })
        .expect("encode");
    // Bytes are tokens 3..=258 (<0x00>..<0xFF>) in a LLaMA vocabulary with byte fallback.
    assert!(
        enc.input_ids.iter().any(|&t| (3..=258).contains(&t)),
        "{:?}",
        enc.input_ids
    );
    let targets: Vec<u32> = enc
        .labels
        .iter()
        .filter(|&&l| l != IGNORE_INDEX)
        .map(|&l| l as u32)
        .collect();
    assert_eq!(tok.decode(&targets, true).expect("decode"), text);
}

#[test]
fn causal_right_and_left_padding() {
    let config = CausalLmBatcherConfig::default();
    let right = CausalLmBatcher::new(stories(), config.clone()).expect("batcher");
    let a = right
        .encode(&SftExample {
            prompt: "Once upon".into(),
            response: "a time".into(),
        })
        .expect("a");
    let b = right
        .encode(&SftExample {
            prompt: "Once upon a time there".into(),
            response: "was a cat".into(),
        })
        .expect("b");
    let (la, lb) = (a.input_ids.len(), b.input_ids.len());
    assert!(la < lb);
    let batch: data::batcher::CausalLmBatch<B> =
        right.batch(vec![a.clone(), b.clone()], &Default::default());
    assert_eq!(batch.input_ids.dims(), [2, lb]);
    let ids = rows(batch.input_ids);
    let mask = rows(batch.attention_mask);
    let labels = rows(batch.labels);
    let pos = rows(batch.position_ids);
    assert_eq!(
        &ids[0][..la],
        &a.input_ids.iter().map(|&t| t as i64).collect::<Vec<_>>()[..]
    );
    assert!(ids[0][la..].iter().all(|&t| t == 0), "pad id 0");
    assert!(mask[0][la..].iter().all(|&m| m == 0) && mask[0][..la].iter().all(|&m| m == 1));
    assert!(labels[0][la..].iter().all(|&l| l == IGNORE_INDEX));
    assert_eq!(pos[1], (0..lb as i64).collect::<Vec<_>>());

    let left =
        CausalLmBatcher::new(stories(), config.with_padding_side(PaddingSide::Left)).expect("left");
    let pa = left.encode_prompt("Once upon a time").expect("pa");
    let pb = left.encode_prompt("Once").expect("pb");
    let batch: data::batcher::CausalLmBatch<B> =
        left.batch(vec![pa.clone(), pb.clone()], &Default::default());
    let ids = rows(batch.input_ids);
    let mask = rows(batch.attention_mask);
    let pos = rows(batch.position_ids);
    let n_pad = pa.input_ids.len() - pb.input_ids.len();
    assert!(n_pad > 0);
    assert!(ids[1][..n_pad].iter().all(|&t| t == 0) && mask[1][..n_pad].iter().all(|&m| m == 0));
    assert_eq!(ids[1][n_pad], 1, "BOS right after the left padding");
    assert_eq!(pos[1][n_pad], 0, "positions start at the first real token");
    assert_eq!(
        *ids[1].last().expect("last"),
        *pb.input_ids.last().expect("last") as i64
    );
    assert!(rows(batch.labels)
        .iter()
        .flatten()
        .all(|&l| l == IGNORE_INDEX));
}

#[test]
fn causal_truncation_and_multiple_of_8() {
    let config = CausalLmBatcherConfig::default()
        .with_max_len(24)
        .with_pad_to_multiple_of(Some(8));
    let batcher = CausalLmBatcher::new(stories(), config).expect("batcher");
    let long = "Once upon a time there was a little girl named Lily who loved to play outside in the park every day.";
    let enc = batcher
        .encode(&SftExample {
            prompt: "Tell a story:".into(),
            response: long.into(),
        })
        .expect("encode");
    assert_eq!(enc.input_ids.len(), 24);
    assert_eq!(enc.labels.len(), 24);
    assert!(enc.truncated && enc.has_targets());
    assert_ne!(enc.input_ids.last(), Some(&2), "EOS was cut with the tail");

    // A prompt too long for generation keeps BOS and its end.
    let prompt = alpaca_prompt(long);
    let p = batcher.encode_prompt(&prompt).expect("prompt");
    assert_eq!(p.input_ids.len(), 24);
    assert!(p.truncated);
    assert_eq!(p.input_ids[0], 1);
    let tail = batcher
        .tokenizer()
        .decode(&p.input_ids[1..], true)
        .expect("decode");
    assert!(tail.ends_with("### Response:"), "{tail}");

    let short = batcher
        .encode(&SftExample {
            prompt: "Hi".into(),
            response: "there".into(),
        })
        .expect("short");
    assert!(short.input_ids.len() < 8);
    let batch: data::batcher::CausalLmBatch<B> = batcher.batch(vec![short], &Default::default());
    assert_eq!(batch.input_ids.dims(), [1, 8]);
}

#[test]
fn gsm8k_train_encodes_with_the_alpaca_prompt() {
    let train = data::gsm8k::load_gsm8k(
        &common::data_root(),
        data::gsm8k::Gsm8kSplit::Train,
        &LoadOptions {
            max_rows: Some(64),
            ..Default::default()
        },
    )
    .expect("gsm8k");
    let sft: Vec<SftExample> = train
        .examples()
        .iter()
        .map(SftExample::from_gsm8k)
        .collect();
    let batcher =
        CausalLmBatcher::new(stories(), CausalLmBatcherConfig::default()).expect("batcher");
    let encoded = batcher.encode_all(&sft).expect("encode");
    assert_eq!(encoded.len(), 64);
    assert!(encoded
        .iter()
        .all(|e| e.has_targets() && e.labels.len() == e.input_ids.len()));
    let batch: data::batcher::CausalLmBatch<B> = batcher.batch(encoded, &Default::default());
    assert_eq!(batch.labels.dims()[0], 64);
}

#[test]
fn tokenizer_and_causal_config_errors() {
    let err =
        load_tokenizer(std::path::Path::new("/nonexistent/tokenizer.json")).expect_err("missing");
    assert!(matches!(err, DataError::Missing { .. }));
    assert!(
        err.to_string().contains("/nonexistent/tokenizer.json"),
        "{err}"
    );
    let (_d, path) = common::write_temp("tokenizer.json", "{ not json");
    let err = load_tokenizer(&path).expect_err("bad json");
    assert!(matches!(err, DataError::Tokenizer { .. }));
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    let err = CausalLmBatcher::new(stories(), CausalLmBatcherConfig::default().with_max_len(2))
        .expect_err("too short");
    assert!(err.to_string().contains("expected at least 3"), "{err}");
}

#[test]
fn empty_batches_do_not_panic() {
    let cls = ClassificationBatcher::new(minilm(), ClassificationBatcherConfig::default())
        .expect("batcher");
    let batch: data::batcher::ClassificationBatch<B> = cls.batch(Vec::new(), &Default::default());
    assert_eq!(batch.input_ids.dims(), [0, 0]);
    assert!(batch.labels.is_none());
    let lm = CausalLmBatcher::new(stories(), CausalLmBatcherConfig::default()).expect("batcher");
    let batch: data::batcher::CausalLmBatch<B> = lm.batch(Vec::new(), &Default::default());
    assert_eq!(batch.labels.dims(), [0, 0]);
}
