//! MetaMathQA: the real sample, JSON Lines, GSM8K rendered in its shape, malformed input.

use crate::common;

use data::gsm8k::{load_gsm8k, Gsm8kSplit};
use data::metamath::{
    gsm8k_as_metamath, load_metamathqa, load_metamathqa_file, METAMATHQA_FULL, METAMATHQA_SAMPLE,
};
use data::prompt::SftExample;
use data::{DataError, LoadOptions};

#[test]
fn real_sample_loads() {
    let ds = load_metamathqa(
        &common::data_root(),
        METAMATHQA_SAMPLE,
        &LoadOptions::default(),
    )
    .expect("sample");
    assert_eq!(ds.examples().len(), 6);
    let kinds: Vec<&str> = ds.examples().iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "MATH_AnsAug",
            "GSM_Rephrased",
            "GSM_Rephrased",
            "GSM_AnsAug",
            "GSM_FOBAR",
            "GSM_FOBAR"
        ]
    );
    assert!(ds.examples()[0]
        .query
        .starts_with("Gracie and Joe are choosing numbers"));
    // The first object starts on line 2 (after "[").
    assert_eq!(ds.examples()[0].line, 2);
    let answers: Vec<Option<f64>> = ds.examples().iter().map(|e| e.answer_number()).collect();
    // `\sqrt{5}` has the number 5 after the marker, as MetaMath's extractor would read it.
    assert_eq!(
        answers,
        [
            Some(5.0),
            Some(752.0),
            Some(1200.0),
            Some(240.0),
            Some(75.0),
            Some(7.0)
        ]
    );
}

#[test]
fn full_release_missing_says_where_to_get_it() {
    let err = load_metamathqa(
        &common::data_root(),
        METAMATHQA_FULL,
        &LoadOptions::default(),
    )
    .expect_err("not available offline");
    let msg = err.to_string();
    assert!(msg.contains("meta-math/MetaMathQA"), "{msg}");
    assert!(msg.contains("gsm8k_as_metamath"), "{msg}");
}

#[test]
fn gsm8k_rendered_as_metamath_for_training() {
    let train = load_gsm8k(
        &common::data_root(),
        Gsm8kSplit::Train,
        &LoadOptions::default(),
    )
    .expect("gsm8k");
    let rows = gsm8k_as_metamath(train.examples());
    assert_eq!(rows.len(), 7_473);
    assert_eq!(rows[0].query, train.examples()[0].question);
    assert_eq!(
        rows[0].response,
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April \
         and May.\n#### 72\nThe answer is: 72"
    );
    for (row, ex) in rows.iter().zip(train.examples()) {
        assert_eq!(
            row.answer_number(),
            Some(ex.final_answer),
            "line {}",
            ex.line
        );
        assert!(!row.response.contains("<<"));
    }
    let sft = SftExample::from_metamath(&rows[0]);
    assert!(sft.prompt.ends_with(&format!(
        "### Instruction:\n{}\n\n### Response:",
        rows[0].query
    )));
    assert_eq!(sft.response, rows[0].response);
}

fn load_text(
    name: &str,
    contents: &str,
    skip: bool,
) -> Result<data::metamath::MathQaDataset, DataError> {
    let (_d, path) = common::write_temp(name, contents);
    load_metamathqa_file(
        &path,
        &LoadOptions {
            skip_bad_rows: skip,
            ..Default::default()
        },
    )
}

const ROW: &str = r#"{"query": "q", "response": "The answer is: 1", "type": "GSM_AnsAug", "original_question": "o"}"#;

#[test]
fn json_lines_also_load() {
    let ds = load_text("m.jsonl", &format!("{ROW}\n{ROW}\n"), false).expect("jsonl");
    assert_eq!(ds.examples().len(), 2);
    assert_eq!(ds.examples()[1].line, 2);
}

#[test]
fn malformed_rows_name_line_and_key() {
    let missing = r#"{"query": "q", "response": "r", "original_question": "o"}"#;
    let text = format!("[\n {ROW},\n {missing}\n]\n");
    let err = load_text("m.json", &text, false).expect_err("missing type");
    assert!(matches!(err, DataError::BadRow { line: 3, .. }), "{err}");
    assert!(
        err.to_string().ends_with("m.json:3: missing key `type`"),
        "{err}"
    );

    let ds = load_text("m.json", &text, true).expect("lenient");
    assert_eq!(ds.examples().len(), 1);
    assert_eq!(ds.report().skipped_count(), 1);

    let err = load_text("m.json", "[\n {\"query\": \n", false).expect_err("truncated");
    assert!(matches!(err, DataError::Json { .. }), "{err}");
    assert!(err.to_string().contains("m.json:3:"), "{err}");

    let err = load_text("m.json", "[]", false).expect_err("empty array");
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err}");
    let err = load_text("m.json", "  \n", false).expect_err("empty");
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err}");
}
