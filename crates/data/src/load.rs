//! Options shared by every loader, the report of what a load did, and line-oriented reading.

use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{DataError, Result, RowIssue};
use crate::json::{into_object, parse_object};

/// Options for every loader in this crate.
///
/// ```
/// let opts = data::LoadOptions { skip_bad_rows: true, ..Default::default() };
/// assert!(opts.max_rows.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// When `false` (the default) the first malformed row is an error naming file, line and
    /// reason. When `true` malformed rows are dropped, counted and listed in
    /// [`LoadReport::skipped`], and a warning with the count is logged. A file whose rows are
    /// all malformed is still an error.
    pub skip_bad_rows: bool,
    /// Keep only the first `n` good rows (the rest of the file is not read).
    pub max_rows: Option<usize>,
}

/// One row dropped because `skip_bad_rows` was on.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedRow {
    /// 1-based line in the file.
    pub line: usize,
    /// Why it was dropped.
    pub issue: RowIssue,
}

/// What a load did: where from, how many rows were kept, which were dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// The file read.
    pub path: PathBuf,
    /// Rows kept.
    pub rows: usize,
    /// Rows dropped as malformed (only when `skip_bad_rows` was on).
    pub skipped: Vec<SkippedRow>,
}

impl LoadReport {
    /// Number of rows dropped.
    pub fn skipped_count(&self) -> usize {
        self.skipped.len()
    }
}

/// The examples of one file and the report of how it was read; implements Burn's
/// [`Dataset`](burn::data::dataset::Dataset).
#[derive(Debug, Clone)]
pub struct ExampleSet<T> {
    examples: Vec<T>,
    report: LoadReport,
}

impl<T> ExampleSet<T> {
    /// Wraps examples and their report.
    pub fn new(examples: Vec<T>, report: LoadReport) -> Self {
        Self { examples, report }
    }

    /// The examples, in file order.
    pub fn examples(&self) -> &[T] {
        &self.examples
    }

    /// Takes the examples out.
    pub fn into_examples(self) -> Vec<T> {
        self.examples
    }

    /// How the file was read.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.report.path
    }
}

impl<T: Clone + Send + Sync> burn::data::dataset::Dataset<T> for ExampleSet<T> {
    fn get(&self, index: usize) -> Option<T> {
        self.examples.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.examples.len()
    }
}

/// Collects rows, applying [`LoadOptions`]: bad rows become errors or skipped entries.
pub(crate) struct RowSink<'a, T> {
    path: &'a Path,
    opts: &'a LoadOptions,
    items: Vec<T>,
    skipped: Vec<SkippedRow>,
}

impl<'a, T> RowSink<'a, T> {
    pub(crate) fn new(path: &'a Path, opts: &'a LoadOptions) -> Self {
        Self {
            path,
            opts,
            items: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// True once `max_rows` good rows are in.
    pub(crate) fn full(&self) -> bool {
        self.opts.max_rows.is_some_and(|m| self.items.len() >= m)
    }

    /// Takes the outcome of parsing the row on `line`.
    pub(crate) fn push(
        &mut self,
        line: usize,
        row: std::result::Result<T, RowIssue>,
    ) -> Result<()> {
        match row {
            Ok(item) => {
                self.items.push(item);
                Ok(())
            }
            Err(issue) if self.opts.skip_bad_rows => {
                self.skipped.push(SkippedRow { line, issue });
                Ok(())
            }
            Err(issue) => Err(DataError::BadRow {
                path: self.path.to_path_buf(),
                line,
                issue: Box::new(issue),
            }),
        }
    }

    /// Finishes the load. `expected` describes the layout, for the empty-file message.
    pub(crate) fn finish(self, expected: &str) -> Result<(Vec<T>, LoadReport)> {
        if self.items.is_empty() {
            if let Some(first) = self.skipped.first() {
                return Err(DataError::NoValidRows {
                    path: self.path.to_path_buf(),
                    skipped: self.skipped.len(),
                    first_line: first.line,
                    first_issue: Box::new(first.issue.clone()),
                });
            }
            if self.opts.max_rows != Some(0) {
                return Err(DataError::EmptyFile {
                    path: self.path.to_path_buf(),
                    detail: "no data rows".into(),
                    expected: expected.into(),
                });
            }
        }
        if !self.skipped.is_empty() {
            log::warn!(
                "{}: skipped {} malformed rows (first at line {}: {})",
                self.path.display(),
                self.skipped.len(),
                self.skipped[0].line,
                self.skipped[0].issue
            );
        }
        let report = LoadReport {
            path: self.path.to_path_buf(),
            rows: self.items.len(),
            skipped: self.skipped,
        };
        Ok((self.items, report))
    }
}

/// Reads a whole file, naming it in the error; a file that does not exist is a
/// [`DataError::Missing`] with the hint for its kind of data.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                what: format!("`{}`", path.display()),
                looked: vec![(path.to_path_buf(), "path given to the loader".into())],
                hint: crate::paths::how_to_get(
                    &path.to_string_lossy(),
                    crate::paths::DATA_ROOT_ENV,
                ),
            }
        } else {
            DataError::io(path, e)
        }
    })
}

/// Splits a file into `(1-based line number, line)` pairs: `\n` separated, a trailing `\r`
/// removed, a UTF-8 byte-order mark removed from the first line, and empty lines left out
/// (they carry no row). A line that is not UTF-8 comes back as its issue.
pub(crate) fn lines(
    bytes: &[u8],
) -> impl Iterator<Item = (usize, std::result::Result<&str, RowIssue>)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, raw)| (i + 1, raw.strip_suffix(b"\r").unwrap_or(raw)))
        .filter(|(_, raw)| !raw.is_empty())
        .map(|(n, raw)| {
            let line = std::str::from_utf8(raw).map_err(|e| RowIssue::InvalidUtf8 {
                byte: e.valid_up_to(),
            });
            (n, line)
        })
}

/// The file as UTF-8 without a byte-order mark; invalid UTF-8 is a bad row at its line.
pub(crate) fn decode<'b>(path: &Path, bytes: &'b [u8]) -> Result<&'b str> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let bad = e.valid_up_to();
        let line_start = bytes[..bad]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        DataError::BadRow {
            path: path.to_path_buf(),
            line: bytes[..bad].iter().filter(|&&b| b == b'\n').count() + 1,
            issue: Box::new(RowIssue::InvalidUtf8 {
                byte: bad - line_start,
            }),
        }
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Calls `row(line, object)` for every row of a JSON array (`[` first) or JSON Lines file,
/// until it returns `Ok(false)`.
pub(crate) fn for_each_row(
    path: &Path,
    text: &str,
    mut row: impl FnMut(usize, std::result::Result<Map<String, Value>, RowIssue>) -> Result<bool>,
) -> Result<()> {
    if text.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        for raw in items {
            let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            let line = text.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            let obj = serde_json::from_str(raw.get())
                .map_err(|e| RowIssue::InvalidJson {
                    column: e.column(),
                    message: e.to_string(),
                })
                .and_then(into_object);
            if !row(line, obj)? {
                break;
            }
        }
    } else {
        for (line, row_text) in lines(text.as_bytes()) {
            if !row(line, row_text.and_then(parse_object))? {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_strip_bom_cr_and_blank_lines() {
        let data = b"\xEF\xBB\xBFa\tb\r\n\nc\n\xFF\n";
        let got: Vec<_> = lines(data).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (1, Ok("a\tb")));
        assert_eq!(got[1], (3, Ok("c")));
        assert_eq!(got[2], (4, Err(RowIssue::InvalidUtf8 { byte: 0 })));
    }

    #[test]
    fn sink_errors_or_skips() {
        let path = Path::new("f.tsv");
        let strict = LoadOptions::default();
        let mut sink = RowSink::<u8>::new(path, &strict);
        let issue = RowIssue::MissingKey { key: "k".into() };
        let err = sink.push(7, Err(issue.clone())).unwrap_err();
        assert_eq!(err.to_string(), "f.tsv:7: missing key `k`");

        let lenient = LoadOptions {
            skip_bad_rows: true,
            ..Default::default()
        };
        let mut sink = RowSink::<u8>::new(path, &lenient);
        sink.push(1, Ok(3)).unwrap();
        sink.push(2, Err(issue.clone())).unwrap();
        let (items, report) = sink.finish("x").unwrap();
        assert_eq!(items, vec![3]);
        assert_eq!(report.skipped_count(), 1);
        assert_eq!(report.skipped[0].line, 2);

        let mut sink = RowSink::<u8>::new(path, &lenient);
        sink.push(1, Err(issue)).unwrap();
        assert!(matches!(
            sink.finish("x"),
            Err(DataError::NoValidRows { skipped: 1, .. })
        ));
        let sink = RowSink::<u8>::new(path, &lenient);
        assert!(matches!(sink.finish("x"), Err(DataError::EmptyFile { .. })));
    }
}
