//! GSM8K: grade-school math word problems in JSONL (`{"question", "answer"}`), the final
//! answer after `####`, and the extraction of a predicted number from generated text.

use std::path::Path;

use crate::error::{preview, Result, RowIssue};
use crate::json::{parse_object, take_string};
use crate::load::{lines, read_bytes, ExampleSet, LoadOptions, RowSink};
use crate::paths::DataRoot;

/// The marker MetaMath's generations put before the final answer.
pub const ANSWER_MARKER: &str = "The answer is:";

/// A GSM8K split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gsm8kSplit {
    /// `gsm8k/train.jsonl`, 7,473 problems.
    Train,
    /// `gsm8k/test.jsonl`, 1,319 problems.
    Test,
}

impl Gsm8kSplit {
    /// Path relative to the data root.
    pub fn relative_path(self) -> &'static str {
        match self {
            Self::Train => "gsm8k/train.jsonl",
            Self::Test => "gsm8k/test.jsonl",
        }
    }
}

/// One GSM8K problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Gsm8kExample {
    /// The word problem.
    pub question: String,
    /// The worked solution, with `<<…>>` calculator annotations, ending in `#### N`.
    pub answer: String,
    /// The final answer as written after `####` (for example `1,080`).
    pub final_answer_text: String,
    /// The final answer as a number (commas removed).
    pub final_answer: f64,
    /// 1-based line in the file.
    pub line: usize,
}

impl Gsm8kExample {
    /// The solution with calculator annotations (`<<48/2=24>>`) and the `#### N` line removed.
    pub fn rationale(&self) -> String {
        let body = match self.answer.rfind("####") {
            Some(i) => &self.answer[..i],
            None => &self.answer,
        };
        strip_calculator_annotations(body).trim_end().to_string()
    }
}

/// The problems of one GSM8K file.
pub type Gsm8kDataset = ExampleSet<Gsm8kExample>;

/// Loads a GSM8K split from `<root>/gsm8k/{train,test}.jsonl`.
pub fn load_gsm8k(root: &DataRoot, split: Gsm8kSplit, opts: &LoadOptions) -> Result<Gsm8kDataset> {
    load_gsm8k_file(&root.file(split.relative_path())?, opts)
}

/// Loads a GSM8K JSONL file: one `{"question": str, "answer": str}` object per line, the answer
/// ending in `#### <number>`. Blank lines are ignored.
///
/// # Errors
/// Missing or empty file; a line that is not JSON, lacks a key, or whose answer has no number
/// after `####` (file, line and reason), unless `opts.skip_bad_rows` is on.
pub fn load_gsm8k_file(path: &Path, opts: &LoadOptions) -> Result<Gsm8kDataset> {
    let bytes = read_bytes(path)?;
    let mut sink = RowSink::new(path, opts);
    for (line, text) in lines(&bytes) {
        if sink.full() {
            break;
        }
        let row = text.and_then(|t| parse_row(t, line));
        sink.push(line, row)?;
    }
    let (examples, report) =
        sink.finish("one JSON object {\"question\": …, \"answer\": \"… #### N\"} per line")?;
    log::info!(
        "loaded GSM8K {}: {} problems",
        path.display(),
        examples.len()
    );
    Ok(ExampleSet::new(examples, report))
}

fn parse_row(text: &str, line: usize) -> std::result::Result<Gsm8kExample, RowIssue> {
    let mut obj = parse_object(text)?;
    let question = take_string(&mut obj, "question")?;
    let answer = take_string(&mut obj, "answer")?;
    let (final_answer_text, final_answer) =
        split_final_answer(&answer).map_err(|found| RowIssue::BadKey {
            key: "answer".into(),
            expected: "a last line `#### <number>`".into(),
            found,
        })?;
    Ok(Gsm8kExample {
        question,
        answer,
        final_answer_text,
        final_answer,
        line,
    })
}

/// The text after the last `####` and its value; the error is a description of what was found.
fn split_final_answer(answer: &str) -> std::result::Result<(String, f64), String> {
    let Some(i) = answer.rfind("####") else {
        return Err(format!("no `####` in {:?}", preview(answer, 60)));
    };
    let text = answer[i + 4..].trim();
    parse_number(text)
        .map(|v| (text.to_string(), v))
        .ok_or_else(|| format!("`#### {}`", preview(text, 40)))
}

/// The final answer of a GSM8K solution: the number after the last `####`, with thousands
/// commas removed (`#### 1,080` → 1080, `#### -3` → -3, `#### 0.5` → 0.5).
pub fn parse_final_answer(answer: &str) -> Option<f64> {
    split_final_answer(answer).ok().map(|(_, v)| v)
}

/// Parses a whole string as a plain decimal number: an optional sign, digits with optional
/// commas, an optional fractional part (`-1,234.5`). No exponents, `inf` or `NaN`.
pub fn parse_number(text: &str) -> Option<f64> {
    let cleaned: String = text.trim().chars().filter(|&c| c != ',').collect();
    let unsigned = cleaned.strip_prefix(['-', '+']).unwrap_or(&cleaned);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let ok = digits(int)
        && digits(frac)
        && (!int.is_empty() || !frac.is_empty())
        && (!unsigned.contains('.') || !frac.is_empty());
    if !ok {
        return None;
    }
    cleaned.parse().ok()
}

/// The number a generation answers with, the way MetaMath's GSM8K evaluation reads it: the
/// first number after the last `The answer is:` when the marker is present (`None` if no
/// number follows it), otherwise the last number in the text.
///
/// Numbers may have a sign (a `-` right after a letter or digit is a hyphen, not a sign),
/// thousands commas (`1,080`; a comma must be followed by exactly three digits), a decimal
/// part, or be a fraction `a/b` (returned as a/b). A trailing period is punctuation
/// (`42.` → 42). Unlike MetaMath, the value is not rounded to an integer.
pub fn extract_predicted_answer(text: &str) -> Option<f64> {
    match text.rfind(ANSWER_MARKER) {
        Some(i) => numbers(&text[i + ANSWER_MARKER.len()..]).next(),
        None => numbers(text).last(),
    }
}

/// The numbers in `text`, left to right (see [`extract_predicted_answer`] for the syntax).
pub fn numbers(text: &str) -> impl Iterator<Item = f64> + '_ {
    let bytes = text.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < bytes.len() {
            if let Some((value, end)) = number_at(bytes, pos) {
                pos = end;
                return Some(value);
            }
            pos += 1;
        }
        None
    })
}

/// Parses a number starting exactly at `start`, returning it and the end position.
fn number_at(b: &[u8], start: usize) -> Option<(f64, usize)> {
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let prev_alnum = start > 0 && b[start - 1].is_ascii_alphanumeric();
    let prev_digit = start > 0 && b[start - 1].is_ascii_digit();
    let mut i = start;
    let negative = match b[i] {
        b'-' | b'+'
            if !prev_alnum && (digit(i + 1) || (b.get(i + 1) == Some(&b'.') && digit(i + 2))) =>
        {
            i += 1;
            b[start] == b'-'
        }
        b'-' | b'+' => return None,
        _ => false,
    };
    if prev_digit || !(digit(i) || (b[i] == b'.' && digit(i + 1))) {
        return None;
    }
    let mut int = String::new();
    while digit(i) {
        int.push(b[i] as char);
        i += 1;
        // Thousands groups: a comma followed by exactly three digits.
        if b.get(i) == Some(&b',') && digit(i + 1) && digit(i + 2) && digit(i + 3) && !digit(i + 4)
        {
            i += 1;
        }
    }
    let mut frac = String::new();
    if b.get(i) == Some(&b'.') && digit(i + 1) {
        i += 1;
        while digit(i) {
            frac.push(b[i] as char);
            i += 1;
        }
    }
    let int_value = if int.is_empty() { "0" } else { &int };
    let mut value: f64 = format!("{int_value}.{}", if frac.is_empty() { "0" } else { &frac })
        .parse()
        .ok()?;
    if frac.is_empty() && b.get(i) == Some(&b'/') && digit(i + 1) {
        let mut j = i + 1;
        let mut den = String::new();
        while digit(j) {
            den.push(b[j] as char);
            j += 1;
        }
        let den: f64 = den.parse().ok()?;
        if den != 0.0 {
            value /= den;
            i = j;
        }
    }
    Some((if negative { -value } else { value }, i))
}

/// Removes GSM8K's calculator annotations `<<expr=result>>`.
pub fn strip_calculator_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("<<") {
        match rest[open..].find(">>") {
            Some(close) => {
                out.push_str(&rest[..open]);
                rest = &rest[open + close + 2..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_answers() {
        assert_eq!(parse_final_answer("a\n#### 72"), Some(72.0));
        assert_eq!(parse_final_answer("a\n#### 1,080"), Some(1080.0));
        assert_eq!(parse_final_answer("#### -3"), Some(-3.0));
        assert_eq!(parse_final_answer("#### 0.5"), Some(0.5));
        assert_eq!(parse_final_answer("#### .5"), Some(0.5));
        assert_eq!(parse_final_answer("no marker 5"), None);
        assert_eq!(parse_final_answer("#### five"), None);
        assert_eq!(parse_final_answer("#### 5."), None);
        assert_eq!(parse_final_answer("#### inf"), None);
        assert_eq!(parse_final_answer("#### 1e3"), None);
        assert_eq!(parse_final_answer("####"), None);
    }

    #[test]
    fn predicted_answers() {
        let p = extract_predicted_answer;
        assert_eq!(p("So 3 + 4 = 7.\nThe answer is: 7"), Some(7.0));
        assert_eq!(p("The answer is: 42. Then 9 more"), Some(42.0));
        assert_eq!(p("He pays $1,080 in total."), Some(1080.0));
        assert_eq!(p("The temperature is -12 degrees"), Some(-12.0));
        assert_eq!(p("a 3-4 split"), Some(4.0));
        assert_eq!(p("It costs 2.50 dollars, so 42."), Some(42.0));
        assert_eq!(p("half is 1/2"), Some(0.5));
        assert_eq!(p("list 1, 2, 3"), Some(3.0));
        assert_eq!(p("about .75 of it"), Some(0.75));
        assert_eq!(p("The answer is: none"), None);
        assert_eq!(p("no numbers"), None);
        assert_eq!(p("x = 5\nThe answer is: 1,000,000"), Some(1_000_000.0));
        assert_eq!(p("The answer is: 5\nThe answer is: 6"), Some(6.0));
        assert_eq!(p("in 2x-3"), Some(3.0));
        assert_eq!(p("1,0800"), Some(800.0));
    }

    #[test]
    fn annotations_are_stripped() {
        assert_eq!(
            strip_calculator_annotations("48/2 = <<48/2=24>>24 clips"),
            "48/2 = 24 clips"
        );
        assert_eq!(strip_calculator_annotations("a <<b"), "a <<b");
    }
}
