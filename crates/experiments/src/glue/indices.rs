//! `--train-indices FILE`: the training rows of a run, listed by another tool, so that two
//! implementations (this crate and the PyTorch + PEFT peer) train on the same examples.

use std::path::Path;

use anyhow::{bail, Context};

/// The 0-based row indices of `path`, one per line, in file order; blank lines and text after
/// `#` are ignored.
///
/// # Errors
/// An unreadable file, a line that is not a non-negative integer, an index not below `rows`
/// (the train split's size), or a file that lists no index; each names the file and line.
pub fn read_train_indices(path: &Path, rows: usize) -> anyhow::Result<Vec<usize>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--train-indices {}: cannot read the file", path.display()))?;
    parse_train_indices(&text, rows).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
}

/// [`read_train_indices`] on the text of a file; errors start with `LINE: `.
pub fn parse_train_indices(text: &str, rows: usize) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let value = line.split('#').next().unwrap_or_default().trim();
        if value.is_empty() {
            continue;
        }
        let Ok(index) = value.parse::<usize>() else {
            bail!(
                "{}: {value:?} is not a row index (expected a non-negative integer)",
                i + 1
            );
        };
        if index >= rows {
            bail!(
                "{}: row index {index} is out of range (the train split has {rows} rows)",
                i + 1
            );
        }
        out.push(index);
    }
    if out.is_empty() {
        bail!("1: no row index in the file (expected one per line)");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_keep_the_file_order_and_skip_comments() {
        let got = parse_train_indices("# drawn by xtask\n3\n\n0  # first row\n2\n", 4).unwrap();
        assert_eq!(got, vec![3, 0, 2]);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_train_indices("1\nx\n", 4).unwrap_err().to_string();
        assert_eq!(
            e,
            "2: \"x\" is not a row index (expected a non-negative integer)"
        );
        let e = parse_train_indices("1\n4\n", 4).unwrap_err().to_string();
        assert_eq!(
            e,
            "2: row index 4 is out of range (the train split has 4 rows)"
        );
        let e = parse_train_indices("# nothing\n", 4)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "1: no row index in the file (expected one per line)");
    }
}
