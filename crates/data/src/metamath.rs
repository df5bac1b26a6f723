//! MetaMathQA (`{"query", "response", "type", "original_question"}`), and GSM8K rendered into
//! the same shape for training where MetaMathQA is not available.

use std::path::Path;

use crate::error::{DataError, Result, RowIssue};
use crate::gsm8k::{extract_predicted_answer, Gsm8kExample};
use crate::json::take_string;
use crate::load::{decode, for_each_row, read_bytes, ExampleSet, LoadOptions, RowSink};
use crate::paths::DataRoot;

/// The six real MetaMathQA rows available offline, relative to the data root.
pub const METAMATHQA_SAMPLE: &str = "metamathqa/sample.json";
/// Where the full 395K-row release is expected, relative to the data root.
pub const METAMATHQA_FULL: &str = "metamathqa/MetaMathQA-395K.json";
/// The `type` given to GSM8K problems rendered with [`MathQaExample::from_gsm8k`].
pub const GSM8K_TYPE: &str = "GSM8K";

/// One MetaMathQA row.
#[derive(Debug, Clone, PartialEq)]
pub struct MathQaExample {
    /// The (possibly rephrased or augmented) question.
    pub query: String,
    /// The worked answer, ending in `The answer is: N`.
    pub response: String,
    /// The augmentation type (`GSM_AnsAug`, `GSM_Rephrased`, `MATH_FOBAR`, …); the JSON key is
    /// `type`.
    pub kind: String,
    /// The question it was derived from.
    pub original_question: String,
    /// 1-based line where the row starts in its file (0 for rows made in memory).
    pub line: usize,
}

impl MathQaExample {
    /// A GSM8K training problem in MetaMathQA's shape, as MetaMathQA's own `GSM_AnsAug` rows
    /// look: calculator annotations removed, the `#### N` line kept, and
    /// `The answer is: N` appended (N without thousands commas).
    pub fn from_gsm8k(example: &Gsm8kExample) -> Self {
        let solution = crate::gsm8k::strip_calculator_annotations(&example.answer);
        Self {
            query: example.question.clone(),
            response: format!(
                "{}\nThe answer is: {}",
                solution.trim_end(),
                format_number(example.final_answer)
            ),
            kind: GSM8K_TYPE.into(),
            original_question: example.question.clone(),
            line: example.line,
        }
    }

    /// The number the response answers with ([`extract_predicted_answer`] on the response).
    pub fn answer_number(&self) -> Option<f64> {
        extract_predicted_answer(&self.response)
    }
}

/// Formats a number the way GSM8K writes answers: integers without a decimal point.
pub fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// GSM8K problems rendered with [`MathQaExample::from_gsm8k`].
pub fn gsm8k_as_metamath(examples: &[Gsm8kExample]) -> Vec<MathQaExample> {
    examples.iter().map(MathQaExample::from_gsm8k).collect()
}

/// The rows of one MetaMathQA file.
pub type MathQaDataset = ExampleSet<MathQaExample>;

/// Loads `<root>/<rel>` (for example [`METAMATHQA_SAMPLE`] or [`METAMATHQA_FULL`]).
pub fn load_metamathqa(root: &DataRoot, rel: &str, opts: &LoadOptions) -> Result<MathQaDataset> {
    load_metamathqa_file(&root.file(rel)?, opts)
}

/// Loads a MetaMathQA file: a JSON array of objects (the released format) or JSON Lines.
///
/// # Errors
/// Missing or empty file, a document that is not JSON (line and column), or a row that lacks
/// a key or holds a non-string (file, line of the row, key), unless `opts.skip_bad_rows`.
pub fn load_metamathqa_file(path: &Path, opts: &LoadOptions) -> Result<MathQaDataset> {
    let bytes = read_bytes(path)?;
    let expected =
        "a JSON array of {\"query\", \"response\", \"type\", \"original_question\"} objects";
    let text = decode(path, &bytes)?;
    if text.trim_start().is_empty() {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
            detail: "the file is empty".into(),
            expected: expected.into(),
        });
    }
    let mut sink = RowSink::new(path, opts);
    for_each_row(path, text, |line, row| {
        if sink.full() {
            return Ok(false);
        }
        sink.push(line, row.and_then(|obj| parse_row(obj, line)))?;
        Ok(true)
    })?;
    let (examples, report) = sink.finish(expected)?;
    log::info!(
        "loaded MetaMathQA {}: {} rows",
        path.display(),
        examples.len()
    );
    Ok(ExampleSet::new(examples, report))
}

fn parse_row(
    mut obj: serde_json::Map<String, serde_json::Value>,
    line: usize,
) -> std::result::Result<MathQaExample, RowIssue> {
    Ok(MathQaExample {
        query: take_string(&mut obj, "query")?,
        response: take_string(&mut obj, "response")?,
        kind: take_string(&mut obj, "type")?,
        original_question: take_string(&mut obj, "original_question")?,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm8k_rendering_matches_metamath_gsm_ansaug() {
        let ex = Gsm8kExample {
            question: "Q?".into(),
            answer: "48/2 = <<48/2=24>>24 clips.\n#### 1,080".into(),
            final_answer_text: "1,080".into(),
            final_answer: 1080.0,
            line: 3,
        };
        let m = MathQaExample::from_gsm8k(&ex);
        assert_eq!(
            m.response,
            "48/2 = 24 clips.\n#### 1,080\nThe answer is: 1080"
        );
        assert_eq!(m.answer_number(), Some(1080.0));
        assert_eq!(m.kind, "GSM8K");
        assert_eq!(format_number(-3.0), "-3");
        assert_eq!(format_number(0.5), "0.5");
    }
}
