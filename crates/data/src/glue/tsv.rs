//! Parsing of GLUE's tab-separated files.
//!
//! Fields are split on tabs with no quoting (GLUE's texts contain unbalanced `"`), trimmed
//! (SST-2 leaves a space before the tab), and located by header name where the file has a
//! header, so a file whose columns moved is read correctly and a file with other columns is a
//! [`DataError::WrongHeader`]. CoLA's train and dev files have no header and four columns.

use std::path::Path;

use super::example::{GlueDataset, GlueExample, Label};
use super::task::{GlueSplit, GlueTask, LabelFormat, Layout};
use crate::error::{DataError, Result, RowIssue};
use crate::load::{lines, LoadOptions, RowSink};

/// Where the needed fields are in the rows of one file.
struct Columns {
    names: Vec<String>,
    text_a: usize,
    text_b: Option<usize>,
    label: Option<usize>,
}

/// Parses the bytes of a GLUE file. When `require_labels` is true a header without the label
/// column is a [`DataError::WrongHeader`]; otherwise such a file loads unlabelled.
pub(crate) fn parse_glue(
    task: GlueTask,
    split: Option<GlueSplit>,
    path: &Path,
    bytes: &[u8],
    require_labels: bool,
    opts: &LoadOptions,
) -> Result<GlueDataset> {
    let layout = task.layout();
    let expected = describe_layout(&layout, require_labels);
    let mut rows = lines(bytes).peekable();
    let Some(&(first_line, ref first)) = rows.peek() else {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
            detail: "the file is empty".into(),
            expected,
        });
    };
    let first = first.clone().map_err(|issue| DataError::BadRow {
        path: path.to_path_buf(),
        line: first_line,
        issue: Box::new(issue),
    })?;
    let first_fields: Vec<String> = first.split('\t').map(|f| f.trim().to_string()).collect();

    let columns = match (layout.labelled_header, layout.headerless) {
        (None, Some(headerless)) if first_fields != layout.test_header => Columns {
            names: headerless.columns.iter().map(|s| s.to_string()).collect(),
            text_a: headerless.text_a,
            text_b: None,
            label: Some(headerless.label),
        },
        _ => {
            rows.next();
            header_columns(
                task,
                &layout,
                path,
                first_line,
                first_fields,
                require_labels,
            )?
        }
    };

    let mut sink = RowSink::new(path, opts);
    for (line, text) in rows {
        if sink.full() {
            break;
        }
        let row = text.and_then(|t| parse_row(task, &layout, &columns, line, t));
        sink.push(line, row)?;
    }
    let (examples, report) = sink.finish(&expected)?;
    Ok(GlueDataset::new(task, split, examples, report))
}

/// Locates the needed columns in a header line.
fn header_columns(
    task: GlueTask,
    layout: &Layout,
    path: &Path,
    line: usize,
    found: Vec<String>,
    require_labels: bool,
) -> Result<Columns> {
    let find = |name: &str| found.iter().position(|f| f == name);
    let label = find(layout.label);
    let expected: &[&str] = match layout.labelled_header {
        // CoLA train/dev have no header: a header where labels are needed means the wrong file.
        None if require_labels => layout.headerless.map(|h| h.columns).unwrap_or(&[]),
        Some(h) if require_labels || label.is_some() => h,
        _ => layout.test_header,
    };
    let wrong = || DataError::WrongHeader {
        path: path.to_path_buf(),
        line,
        task: task.dir_name(),
        expected: expected.iter().map(|s| s.to_string()).collect(),
        found: found.clone(),
    };
    if layout.labelled_header.is_none() && require_labels {
        return Err(wrong());
    }
    let text_a = find(layout.text_a).ok_or_else(wrong)?;
    let text_b = match layout.text_b {
        Some(name) => Some(find(name).ok_or_else(wrong)?),
        None => None,
    };
    if require_labels && label.is_none() {
        return Err(wrong());
    }
    Ok(Columns {
        names: found.clone(),
        text_a,
        text_b,
        label,
    })
}

/// Parses one data row.
fn parse_row(
    task: GlueTask,
    layout: &Layout,
    columns: &Columns,
    line: usize,
    text: &str,
) -> std::result::Result<GlueExample, RowIssue> {
    let fields: Vec<&str> = text.split('\t').collect();
    if fields.len() != columns.names.len() {
        return Err(RowIssue::ColumnCount {
            expected: columns.names.len(),
            found: fields.len(),
            layout: Some(columns.names.join(", ")),
        });
    }
    let text = |i: usize| -> std::result::Result<String, RowIssue> {
        let t = fields[i].trim();
        if t.is_empty() {
            return Err(RowIssue::BadValue {
                column: columns.names[i].clone(),
                index: i + 1,
                expected: "non-empty text".into(),
                found: fields[i].to_string(),
            });
        }
        Ok(t.to_string())
    };
    let text_a = text(columns.text_a)?;
    let text_b = columns.text_b.map(text).transpose()?;
    let label = match columns.label {
        Some(i) => Some(parse_label(
            task,
            layout.label_format,
            &columns.names[i],
            i,
            fields[i],
        )?),
        None => None,
    };
    Ok(GlueExample {
        text_a,
        text_b,
        label,
        line,
    })
}

/// Parses a label field according to the task's format.
fn parse_label(
    task: GlueTask,
    format: LabelFormat,
    column: &str,
    index: usize,
    raw: &str,
) -> std::result::Result<Label, RowIssue> {
    let value = raw.trim();
    let names = task.label_names();
    let bad = |expected: String| RowIssue::BadValue {
        column: column.to_string(),
        index: index + 1,
        expected,
        found: raw.to_string(),
    };
    match format {
        LabelFormat::Index => value
            .parse::<usize>()
            .ok()
            .filter(|&c| c < names.len())
            .map(Label::Class)
            .ok_or_else(|| {
                let ids: Vec<String> = (0..names.len()).map(|i| i.to_string()).collect();
                bad(format!("a class index, one of {}", ids.join(", ")))
            }),
        LabelFormat::Names => names
            .iter()
            .position(|n| *n == value)
            .map(Label::Class)
            .ok_or_else(|| bad(format!("a label, one of {}", names.join(", ")))),
        LabelFormat::Score => value
            .parse::<f32>()
            .ok()
            .filter(|s| s.is_finite() && (0.0..=5.0).contains(s))
            .map(Label::Score)
            .ok_or_else(|| bad("a similarity score from 0 to 5".into())),
    }
}

/// A description of the expected layout, for messages.
fn describe_layout(layout: &Layout, require_labels: bool) -> String {
    match (layout.labelled_header, layout.headerless) {
        (None, Some(h)) if require_labels => format!(
            "{} tab-separated columns [{}] and no header",
            h.columns.len(),
            h.columns.join(", ")
        ),
        (Some(h), _) if require_labels => {
            format!("a header [{}] and tab-separated rows", h.join(", "))
        }
        _ => format!(
            "a header [{}] and tab-separated rows",
            layout.test_header.join(", ")
        ),
    }
}
