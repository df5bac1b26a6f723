//! GLUE's MRPC files, written as GLUE's `download_glue_data.py` writes them (`format_mrpc`):
//! no archive holds them, so the script downloads the MSR Paraphrase Corpus files
//! `msr_paraphrase_train.txt` and `msr_paraphrase_test.txt` and GLUE's dev id list
//! `mrpc_dev_ids.tsv`, then
//!
//! - `train.tsv` / `dev.tsv`: the train file's first line as it is (its UTF-8 BOM included),
//!   then every row, stripped of surrounding white space and split into exactly five tab
//!   fields, written back with `\t` and `\n` — to `dev.tsv` when its `(#1 ID, #2 ID)` pair is a
//!   line of the dev id list, else to `train.tsv`;
//! - `test.tsv`: the header `index\t#1 ID\t#2 ID\t#1 String\t#2 String`, then each row of the
//!   test file without its label, numbered from 0.
//!
//! Lines end in `\n`, `\r\n` or `\r` (Python's universal newlines); the text must be UTF-8.
//! The results are checked against `datasets/SHA256SUMS` by [`crate::assets`].
//!
//! The pinned hashes are those of the files the script writes from the **untokenized** corpus
//! of `MSRParaphraseCorpus.msi`. The copy the script downloads by default (SentEval's, at
//! [`TRAIN_URL`] / [`TEST_URL`]) is tokenized (the script says so), so its results differ; such
//! sources are recognised by [`SENTEVAL_SHA256`] and the error says what to serve instead.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::assets::{DataAsset, DataSource, Fetched};
use crate::download::{download_verified, part_path, sha256_bytes, sha256_file, Outcome, ATTEMPTS};
use crate::error::{io, HubError, Result};

/// SentEval's copy of the MSR train file (the URL of GLUE's script).
pub const TRAIN_URL: &str =
    "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt";
/// SentEval's copy of the MSR test file (the URL of GLUE's script).
pub const TEST_URL: &str =
    "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt";
/// GLUE's list of the `(#1 ID, #2 ID)` pairs of the dev split (the URL of GLUE's script).
pub const DEV_IDS_URL: &str = "https://dl.fbaipublicfiles.com/glue/data/mrpc_dev_ids.tsv";

/// The sha256 of SentEval's tokenized train and test files, as Hugging Face `datasets`
/// records them for its `glue/mrpc` download (used only to explain a mismatch).
pub const SENTEVAL_SHA256: [&str; 2] = [
    "60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89",
    "a04e271090879aaba6423d65b94950c089298587d9c084bf9cd7439bd785f784",
];

/// Where the three sources come from (`$BONE_MRPC_TRAIN_URL`, `$BONE_MRPC_TEST_URL`,
/// `$BONE_MRPC_DEV_IDS_URL`, else the URLs of GLUE's script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrpcSources {
    /// `msr_paraphrase_train.txt`.
    pub train: String,
    /// `msr_paraphrase_test.txt`.
    pub test: String,
    /// `mrpc_dev_ids.tsv`.
    pub dev_ids: String,
}

impl Default for MrpcSources {
    fn default() -> Self {
        Self {
            train: TRAIN_URL.into(),
            test: TEST_URL.into(),
            dev_ids: DEV_IDS_URL.into(),
        }
    }
}

impl MrpcSources {
    /// `(url, file name in the download folder)` of train, test and dev ids.
    fn files(&self) -> [(&str, &'static str); 3] {
        [
            (&self.train, "msr_paraphrase_train.txt"),
            (&self.test, "msr_paraphrase_test.txt"),
            (&self.dev_ids, "mrpc_dev_ids.tsv"),
        ]
    }

    fn describe(&self) -> String {
        format!(
            "{} + {} + {} through GLUE's format_mrpc",
            self.train, self.test, self.dev_ids
        )
    }
}

/// Fetches the MRPC files among `assets` (all with [`DataSource::Mrpc`] of the same
/// sources): unless each is already in place with its sha256, downloads the three sources
/// into `<data_root>/.downloads/mrpc/` (resumable), derives the files with [`format_mrpc`]
/// and writes those asked for once every one has its pinned sha256. Unparsable sources or
/// wrong results throw the sources away and download them again, [`ATTEMPTS`] times in all.
///
/// # Errors
/// [`HubError::Download`] naming the URL and file; [`HubError::Format`] or
/// [`HubError::Checksum`] after the last attempt; [`HubError::Derived`] at once when the
/// sources are SentEval's tokenized copy, saying what to serve instead.
pub fn fetch(
    agent: &ureq::Agent,
    assets: &[&DataAsset],
    data_root: &Path,
    progress: bool,
) -> Result<Vec<Fetched>> {
    let Some(DataSource::Mrpc(sources)) = assets.first().map(|a| &a.source) else {
        return Ok(Vec::new());
    };
    let dest = |a: &DataAsset| data_root.join(&a.rel);
    let mut present = true;
    for asset in assets {
        present &= dest(asset).is_file() && sha256_file(&dest(asset))? == asset.sha256;
    }
    if present {
        return Ok(assets
            .iter()
            .map(|a| Fetched {
                path: dest(a),
                outcome: Outcome::Present,
            })
            .collect());
    }
    let dir = data_root.join(".downloads").join("mrpc");
    let local: Vec<PathBuf> = sources.files().iter().map(|(_, f)| dir.join(f)).collect();
    let mut resumed = 0;
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        for ((url, _), path) in sources.files().iter().zip(&local) {
            if let Outcome::Downloaded { resumed: r, .. } =
                download_verified(agent, url, path, None, progress)?
            {
                resumed += r;
            }
        }
        let failure = match format_mrpc_files(&local[0], &local[1], &local[2]) {
            Ok(files) => match check(&files, assets, sources, &local, data_root)? {
                None => {
                    write(&files, assets, data_root)?;
                    let outcome = Outcome::Downloaded {
                        resumed,
                        retried: attempt,
                    };
                    return Ok(assets
                        .iter()
                        .map(|a| Fetched {
                            path: dest(a),
                            outcome,
                        })
                        .collect());
                }
                Some(e @ HubError::Derived { .. }) => {
                    remove_all(&local)?;
                    return Err(e);
                }
                Some(e) => e,
            },
            Err(e) => e,
        };
        eprintln!("{failure}; downloading the MRPC sources again");
        remove_all(&local)?;
        last = Some(failure);
    }
    Err(last.unwrap_or_else(|| HubError::Derived {
        message: "MRPC: nothing was attempted".into(),
    }))
}

/// `None` when every asked-for file has its sha256; else the error for the first that has
/// not ([`HubError::Derived`] when the sources are SentEval's tokenized copy).
fn check(
    files: &MrpcFiles,
    assets: &[&DataAsset],
    sources: &MrpcSources,
    local: &[PathBuf],
    data_root: &Path,
) -> Result<Option<HubError>> {
    for asset in assets {
        let name = asset.rel.rsplit('/').next().unwrap_or_default();
        let Some((_, bytes)) = files.named().into_iter().find(|(n, _)| *n == name) else {
            return Ok(Some(HubError::Derived {
                message: format!("{}: format_mrpc writes no such file", asset.rel),
            }));
        };
        let found = sha256_bytes(bytes);
        if found == asset.sha256 {
            continue;
        }
        let file = data_root.join(&asset.rel);
        let mut senteval = false;
        for path in &local[..2] {
            senteval |= SENTEVAL_SHA256.contains(&sha256_file(path)?.as_str());
        }
        if senteval {
            return Ok(Some(HubError::Derived {
                message: format!(
                    "{}: sha256 {found} but {} was expected (derived from {}): these are \
                     SentEval's tokenized copies of the MSR Paraphrase Corpus, while \
                     datasets/SHA256SUMS pins the files GLUE's script writes from the untokenized \
                     corpus of MSRParaphraseCorpus.msi. Extract msr_paraphrase_train.txt and \
                     msr_paraphrase_test.txt from it (e.g. with cabextract), serve them and set \
                     $BONE_MRPC_TRAIN_URL and $BONE_MRPC_TEST_URL to them, or copy glue/MRPC \
                     into the data folder yourself",
                    file.display(),
                    asset.sha256,
                    sources.describe()
                ),
            }));
        }
        return Ok(Some(HubError::Checksum {
            url: sources.describe(),
            file,
            expected: asset.sha256.clone(),
            found,
            attempts: ATTEMPTS,
        }));
    }
    Ok(None)
}

/// Writes the asked-for files through `<file>.part`.
fn write(files: &MrpcFiles, assets: &[&DataAsset], data_root: &Path) -> Result<()> {
    for asset in assets {
        let name = asset.rel.rsplit('/').next().unwrap_or_default();
        let Some((_, bytes)) = files.named().into_iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let dest = data_root.join(&asset.rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let part = part_path(&dest);
        std::fs::write(&part, bytes).map_err(io(&part))?;
        std::fs::rename(&part, &dest).map_err(io(&dest))?;
    }
    Ok(())
}

fn remove_all(paths: &[PathBuf]) -> Result<()> {
    for path in paths.iter().filter(|p| p.exists()) {
        std::fs::remove_file(path).map_err(io(path))?;
    }
    Ok(())
}

/// The header `format_mrpc` writes on `test.tsv`.
const TEST_HEADER: &str = "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n";

/// The three files of GLUE's MRPC folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrpcFiles {
    /// `train.tsv`.
    pub train: Vec<u8>,
    /// `dev.tsv`.
    pub dev: Vec<u8>,
    /// `test.tsv`.
    pub test: Vec<u8>,
}

impl MrpcFiles {
    /// `(file name, bytes)` in the order train, dev, test.
    pub fn named(&self) -> [(&'static str, &[u8]); 3] {
        [
            ("train.tsv", &self.train),
            ("dev.tsv", &self.dev),
            ("test.tsv", &self.test),
        ]
    }
}

/// The MSR files read from disk: `train`, `test` (`msr_paraphrase_*.txt`) and `dev_ids`.
///
/// # Errors
/// [`HubError::Io`] for an unreadable file, [`HubError::Format`] as [`format_mrpc`].
pub fn format_mrpc_files(train: &Path, test: &Path, dev_ids: &Path) -> Result<MrpcFiles> {
    let read = |p: &Path| std::fs::read(p).map_err(io(p));
    format_mrpc(
        (train, &read(train)?),
        (test, &read(test)?),
        (dev_ids, &read(dev_ids)?),
    )
}

/// GLUE's `format_mrpc` on the bytes of the three sources (each named by its path in errors).
///
/// # Errors
/// [`HubError::Format`] naming the file and line: text that is not UTF-8, a train or test row
/// without exactly five tab-separated fields, a file without a header line.
pub fn format_mrpc(
    train: (&Path, &[u8]),
    test: (&Path, &[u8]),
    dev_ids: (&Path, &[u8]),
) -> Result<MrpcFiles> {
    let dev_pairs: HashSet<(String, String)> = lines(dev_ids.0, dev_ids.1)?
        .into_iter()
        .filter_map(|line| {
            let fields: Vec<&str> = python_strip(line).split('\t').collect();
            match fields.as_slice() {
                [a, b] => Some((a.to_string(), b.to_string())),
                _ => None,
            }
        })
        .collect();

    let mut train_lines = lines(train.0, train.1)?.into_iter();
    let head = header(train.0, train_lines.next())?;
    let (mut train_out, mut dev_out) = (head.clone(), head);
    for (n, line) in train_lines.enumerate() {
        let [label, id1, id2, s1, s2] = fields(train.0, n + 2, line)?;
        let row = format!("{label}\t{id1}\t{id2}\t{s1}\t{s2}\n");
        if dev_pairs.contains(&(id1.to_string(), id2.to_string())) {
            dev_out.push_str(&row);
        } else {
            train_out.push_str(&row);
        }
    }

    let mut test_lines = lines(test.0, test.1)?.into_iter();
    header(test.0, test_lines.next())?;
    let mut test_out = TEST_HEADER.to_string();
    for (index, line) in test_lines.enumerate() {
        let [_, id1, id2, s1, s2] = fields(test.0, index + 2, line)?;
        test_out.push_str(&format!("{index}\t{id1}\t{id2}\t{s1}\t{s2}\n"));
    }
    Ok(MrpcFiles {
        train: train_out.into_bytes(),
        dev: dev_out.into_bytes(),
        test: test_out.into_bytes(),
    })
}

/// The header line as Python's `readline()` returns it in text mode: its ending made `\n`.
fn header(file: &Path, line: Option<&str>) -> Result<String> {
    match line {
        Some(h) => Ok(format!("{h}\n")),
        None => Err(format_error(
            file,
            1,
            "the file is empty; expected a header line",
        )),
    }
}

/// The five fields of a row, as `row.strip().split('\t')` unpacked into five names.
fn fields<'a>(file: &Path, line_no: usize, line: &'a str) -> Result<[&'a str; 5]> {
    let parts: Vec<&str> = python_strip(line).split('\t').collect();
    <[&str; 5]>::try_from(parts.as_slice()).map_err(|_| {
        format_error(
            file,
            line_no,
            &format!(
                "expected 5 tab-separated fields (Quality, #1 ID, #2 ID, #1 String, #2 String), \
                 found {}",
                parts.len()
            ),
        )
    })
}

/// The lines of `bytes` without their endings (`\n`, `\r\n`, `\r`); a final ending does not
/// start another line.
fn lines<'a>(file: &Path, bytes: &'a [u8]) -> Result<Vec<&'a str>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        format_error(
            file,
            line + 1,
            &format!("not UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(i) => {
                out.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                out.push(rest);
                rest = "";
            }
        }
    }
    Ok(out)
}

/// Python's `str.strip()`: Unicode white space and the separators `\x1c`–`\x1f`.
fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

fn format_error(file: &Path, line: usize, message: &str) -> HubError {
    HubError::Format {
        file: PathBuf::from(file),
        line,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(train: &str, test: &str, ids: &str) -> Result<MrpcFiles> {
        format_mrpc(
            (Path::new("train.txt"), train.as_bytes()),
            (Path::new("test.txt"), test.as_bytes()),
            (Path::new("ids.tsv"), ids.as_bytes()),
        )
    }

    #[test]
    fn rows_split_by_id_pair_test_renumbered_header_kept() {
        let train = "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n\
                     1\t1\t2\tA a.\tB b. \r\n0\t3\t4\tC\tD\r\n1\t5\t6\tE\tF";
        let test =
            "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t7\t8\tG\tH\n0\t9\t10\tI\tJ\n";
        let out = run(train, test, "3\t4\n5\t6\t7\n").unwrap();
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let header = "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";
        assert_eq!(
            text(&out.train),
            format!("{header}1\t1\t2\tA a.\tB b.\n1\t5\t6\tE\tF\n")
        );
        assert_eq!(text(&out.dev), format!("{header}0\t3\t4\tC\tD\n"));
        assert_eq!(
            text(&out.test),
            format!("{TEST_HEADER}0\t7\t8\tG\tH\n1\t9\t10\tI\tJ\n")
        );
    }

    #[test]
    fn bad_rows_name_the_file_and_line() {
        let err = run("h\n1\t2\t3\tx\n", "h\n", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "train.txt:2: expected 5 tab-separated fields (Quality, #1 ID, #2 ID, #1 String, \
             #2 String), found 4"
        );
        let err = run("h\n", "", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.txt:1: the file is empty; expected a header line"
        );
        let err = format_mrpc(
            (Path::new("train.txt"), b"h\n1\t2\t3\t\xff\t5\n"),
            (Path::new("test.txt"), b"h\n"),
            (Path::new("ids.tsv"), b""),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "train.txt:2: not UTF-8 (byte 8)");
    }
}
