//! GSM8K on the real files (row counts, every final answer parses) and malformed JSONL.

use crate::common;

use data::gsm8k::{
    extract_predicted_answer, load_gsm8k, load_gsm8k_file, parse_final_answer, Gsm8kSplit,
};
use data::metrics::gsm8k_exact_match;
use data::{DataError, LoadOptions, RowIssue};

fn load(split: Gsm8kSplit) -> data::gsm8k::Gsm8kDataset {
    load_gsm8k(&common::data_root(), split, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading GSM8K {split:?}: {e}"))
}

#[test]
fn real_files_load_and_all_8792_answers_parse() {
    let train = load(Gsm8kSplit::Train);
    let test = load(Gsm8kSplit::Test);
    assert_eq!(train.examples().len(), 7_473);
    assert_eq!(test.examples().len(), 1_319);
    let all: Vec<_> = train.examples().iter().chain(test.examples()).collect();
    assert_eq!(all.len(), 8_792);
    // Every answer parsed at load (a failure would have been an error); check the
    // population against numbers computed from the files with Python:
    // sum(float(a.split('####')[-1].replace(',', ''))) = 403114874 (train), 9009187 (test).
    let sum =
        |ds: &data::gsm8k::Gsm8kDataset| ds.examples().iter().map(|e| e.final_answer).sum::<f64>();
    assert_eq!(sum(&train), 403_114_874.0);
    assert_eq!(sum(&test), 9_009_187.0);
    let with_commas = all
        .iter()
        .filter(|e| e.final_answer_text.contains(','))
        .count();
    assert_eq!(with_commas, 93);
    let mut negatives: Vec<f64> = all
        .iter()
        .filter(|e| e.final_answer < 0.0)
        .map(|e| e.final_answer)
        .collect();
    negatives.sort_by(f64::total_cmp);
    assert_eq!(negatives, vec![-47.0, -12.0, -10.0, -7.0, -3.0]);
    for e in &all {
        assert_eq!(
            parse_final_answer(&e.answer),
            Some(e.final_answer),
            "line {}",
            e.line
        );
    }

    let first = &train.examples()[0];
    assert!(first
        .question
        .starts_with("Natalia sold clips to 48 of her friends in April"));
    assert_eq!(first.final_answer, 72.0);
    assert_eq!(
        first.rationale(),
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May."
    );
    assert!(test.examples()[0]
        .question
        .starts_with("Janet’s ducks lay 16 eggs per day."));
    assert_eq!(test.examples()[0].final_answer, 18.0);
}

#[test]
fn gold_solutions_score_100_percent_through_the_extractor() {
    // The reference solutions, read as a model's generation, must extract to their answers.
    let test = load(Gsm8kSplit::Test);
    let preds: Vec<Option<f64>> = test
        .examples()
        .iter()
        .map(|e| {
            extract_predicted_answer(&format!(
                "{}\nThe answer is: {}",
                e.rationale(),
                e.final_answer_text
            ))
        })
        .collect();
    let golds: Vec<f64> = test.examples().iter().map(|e| e.final_answer).collect();
    assert_eq!(gsm8k_exact_match(&preds, &golds).expect("metric"), 1.0);
}

fn load_text(contents: &str, opts: &LoadOptions) -> Result<data::gsm8k::Gsm8kDataset, DataError> {
    let (_d, path) = common::write_temp("g.jsonl", contents);
    load_gsm8k_file(&path, opts)
}

#[test]
fn malformed_lines_are_errors_with_line_and_reason() {
    let good = "{\"question\": \"1+1?\", \"answer\": \"1+1=2\\n#### 2\"}";
    let cases: [(&str, &str); 6] = [
        (
            "{\"question\": \"q\", \"answer\": \"#### 1",
            ":2: invalid JSON at column",
        ),
        ("{\"question\": \"q\"}", ":2: missing key `answer`"),
        (
            "{\"question\": 3, \"answer\": \"#### 3\"}",
            ":2: key `question`: expected a string, found number 3",
        ),
        (
            "{\"question\": \"q\", \"answer\": \"no final line\"}",
            ":2: key `answer`: expected a last line `#### <number>`, found no `####`",
        ),
        (
            "{\"question\": \"q\", \"answer\": \"#### twelve\"}",
            "found `#### twelve`",
        ),
        (
            "[\"question\", \"answer\"]",
            ":2: key `<row>`: expected a JSON object, found array",
        ),
    ];
    for (bad, expected) in cases {
        let err =
            load_text(&format!("{good}\n{bad}\n{good}\n"), &LoadOptions::default()).expect_err(bad);
        let msg = err.to_string();
        assert!(matches!(err, DataError::BadRow { line: 2, .. }), "{msg}");
        assert!(msg.contains(expected), "{bad}: {msg}");
        assert!(msg.contains("g.jsonl"), "{msg}");
    }
}

#[test]
fn skip_bad_rows_reports_the_count() {
    let good = "{\"question\": \"1+1?\", \"answer\": \"#### 2\"}";
    let text = format!("{good}\nnot json\n\n{good}\n{{\"question\": \"q\"}}\n");
    let ds = load_text(
        &text,
        &LoadOptions {
            skip_bad_rows: true,
            ..Default::default()
        },
    )
    .expect("lenient");
    assert_eq!(ds.examples().len(), 2);
    assert_eq!(ds.report().skipped_count(), 2);
    let lines: Vec<usize> = ds.report().skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![2, 5]);
    assert!(matches!(
        ds.report().skipped[1].issue,
        RowIssue::MissingKey { .. }
    ));
    assert_eq!(ds.examples()[1].line, 4);
}

#[test]
fn empty_file_is_an_error() {
    let err = load_text("", &LoadOptions::default()).expect_err("empty");
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err}");
    assert!(err.to_string().contains("\"question\""), "{err}");
}
