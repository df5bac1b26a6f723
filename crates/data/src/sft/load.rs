//! Loading fine-tuning files: a JSON array of row objects or JSON Lines, any [`SftFormat`].

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::rows::{keys_of, parse_row};
use super::{split_fraction, EvalSplit, FieldMap, SftFormat, SftRecord};
use crate::error::{DataError, Result, RowIssue};
use crate::load::{decode, for_each_row, read_bytes, ExampleSet, LoadOptions, LoadReport, RowSink};

/// The records of one file (or of one side of a split), the format they were read as, and
/// the [`LoadReport`]; implements Burn's [`Dataset`](burn::data::dataset::Dataset).
#[derive(Debug, Clone)]
pub struct SftDataset {
    set: ExampleSet<SftRecord>,
    format: SftFormat,
}

impl SftDataset {
    /// Wraps records read as `format`.
    pub fn new(set: ExampleSet<SftRecord>, format: SftFormat) -> Self {
        Self { set, format }
    }

    /// The records, in file order.
    pub fn examples(&self) -> &[SftRecord] {
        self.set.examples()
    }

    /// Takes the records out.
    pub fn into_examples(self) -> Vec<SftRecord> {
        self.set.into_examples()
    }

    /// How the file was read (rows kept, rows skipped with their line and issue).
    pub fn report(&self) -> &LoadReport {
        self.set.report()
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        self.set.path()
    }

    /// The format the rows were read as (the detected one for [`SftFormat::Auto`]).
    pub fn format(&self) -> SftFormat {
        self.format
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.set.examples().len()
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.set.examples().is_empty()
    }
}

impl burn::data::dataset::Dataset<SftRecord> for SftDataset {
    fn get(&self, index: usize) -> Option<SftRecord> {
        self.set.examples().get(index).cloned()
    }

    fn len(&self) -> usize {
        self.set.examples().len()
    }
}

/// Training and evaluation records.
#[derive(Debug, Clone)]
pub struct SftSplits {
    /// The training records.
    pub train: SftDataset,
    /// The evaluation records (`None` for [`EvalSplit::None`]).
    pub eval: Option<SftDataset>,
}

/// Loads `train` and the eval set `eval` says: another file (same `format` and `fields`,
/// `Auto` detected afresh), or a seeded fraction of `train` ([`split_fraction`]; each side's
/// report counts its own rows, the skipped rows stay on the train side's report).
///
/// # Errors
/// Those of [`load_sft_file`] for either file, and [`DataError::Config`] for a fraction
/// outside (0, 1) or one that leaves either side empty.
pub fn load_sft(
    train: &Path,
    eval: &EvalSplit,
    format: SftFormat,
    fields: &FieldMap,
    opts: &LoadOptions,
) -> Result<SftSplits> {
    let all = load_sft_file(train, format, fields, opts)?;
    match eval {
        EvalSplit::None => Ok(SftSplits {
            train: all,
            eval: None,
        }),
        EvalSplit::File(path) => Ok(SftSplits {
            eval: Some(load_sft_file(path, format, fields, opts)?),
            train: all,
        }),
        EvalSplit::Fraction { fraction, seed } => {
            let format = all.format();
            let report = all.report().clone();
            let (train_rows, eval_rows) = split_fraction(all.into_examples(), *fraction, *seed)?;
            let side = |rows: Vec<SftRecord>, skipped| {
                let report = LoadReport {
                    path: report.path.clone(),
                    rows: rows.len(),
                    skipped,
                };
                SftDataset::new(ExampleSet::new(rows, report), format)
            };
            Ok(SftSplits {
                eval: Some(side(eval_rows, Vec::new())),
                train: side(train_rows, report.skipped.clone()),
            })
        }
    }
}

/// Loads one fine-tuning file: a JSON array of objects, or JSON Lines (one object per line;
/// which one is decided by the first non-blank character). `fields` renames columns first;
/// [`SftFormat::Auto`] takes the shape from the first row that is an object with known keys.
///
/// # Errors
/// Missing or empty file ([`DataError::EmptyFile`]), a JSON array that does not parse
/// ([`DataError::Json`] with line and column), or, unless `opts.skip_bad_rows`, a row that is
/// not valid JSON, fits no shape ([`RowIssue::UnknownShape`] with the keys found), does not
/// fit the file's shape ([`RowIssue::WrongShape`]), has an unknown role or no assistant turn
/// ([`RowIssue::BadKey`] naming `messages[i].role`) — each a [`DataError::BadRow`] naming
/// file and line.
pub fn load_sft_file(
    path: &Path,
    format: SftFormat,
    fields: &FieldMap,
    opts: &LoadOptions,
) -> Result<SftDataset> {
    let bytes = read_bytes(path)?;
    let expected = match format {
        SftFormat::Auto => format!(
            "a JSON array or JSON Lines of rows shaped as one of {}",
            SftFormat::describe_all()
        ),
        f => format!(
            "a JSON array or JSON Lines of {f} rows {{{}}}",
            f.required_keys().join(", ")
        ),
    };
    let text = decode(path, &bytes)?;
    if text.trim_start().is_empty() {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
            detail: "the file is empty".into(),
            expected,
        });
    }
    let shared_path: Arc<Path> = Arc::from(path);
    let mut reader = RowReader {
        format,
        detected_at: None,
        fields,
    };
    let mut sink = RowSink::new(path, opts);
    for_each_row(path, text, |line, row| {
        if sink.full() {
            return Ok(false);
        }
        let record = row
            .and_then(|obj| reader.read(obj, line))
            .map(|sample| SftRecord {
                sample,
                path: shared_path.clone(),
                line,
            });
        sink.push(line, record)?;
        Ok(true)
    })?;
    let (records, report) = sink.finish(&expected)?;
    log::info!(
        "loaded {} ({} format): {} rows, {} skipped",
        path.display(),
        reader.format,
        records.len(),
        report.skipped_count()
    );
    Ok(SftDataset::new(
        ExampleSet::new(records, report),
        reader.format,
    ))
}

/// Resolves `Auto` on the first row with a known shape, then reads rows in that shape.
struct RowReader<'a> {
    format: SftFormat,
    detected_at: Option<usize>,
    fields: &'a FieldMap,
}

impl RowReader<'_> {
    fn read(
        &mut self,
        mut row: Map<String, Value>,
        line: usize,
    ) -> std::result::Result<super::Sample, RowIssue> {
        self.fields.apply_row(&mut row);
        if self.format == SftFormat::Auto {
            self.format = SftFormat::detect(&row).ok_or_else(|| RowIssue::UnknownShape {
                found: keys_of(&row),
                expected: SftFormat::describe_all(),
            })?;
            self.detected_at = Some(line);
        }
        let origin = self
            .detected_at
            .map(|l| format!(" (detected from line {l})"))
            .unwrap_or_default();
        parse_row(row, self.format, self.fields, &origin)
    }
}
