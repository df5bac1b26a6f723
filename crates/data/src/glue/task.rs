//! The nine GLUE tasks: names, columns, label sets, metrics and split files.

use std::fmt;
use std::str::FromStr;

use crate::error::{DataError, Result};
use crate::metrics::{self, MetricError};

/// One of the nine GLUE tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlueTask {
    /// Corpus of Linguistic Acceptability (single sentence, Matthews correlation).
    Cola,
    /// Stanford Sentiment Treebank, binary (single sentence, accuracy).
    Sst2,
    /// Microsoft Research Paraphrase Corpus (pair, accuracy and F1).
    Mrpc,
    /// Semantic Textual Similarity Benchmark (pair, regression 0–5, Pearson and Spearman).
    Stsb,
    /// Quora Question Pairs (pair, accuracy and F1).
    Qqp,
    /// Multi-Genre NLI, three classes, matched and mismatched dev/test (pair, accuracy).
    Mnli,
    /// Question NLI from SQuAD (pair, accuracy).
    Qnli,
    /// Recognising Textual Entailment (pair, accuracy).
    Rte,
    /// Winograd NLI (pair, accuracy).
    Wnli,
}

/// A split of a GLUE task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlueSplit {
    /// `train.tsv`.
    Train,
    /// `dev.tsv` (MNLI: `dev_matched.tsv`).
    Dev,
    /// `test.tsv`, unlabelled (MNLI: `test_matched.tsv`).
    Test,
    /// MNLI only: `dev_mismatched.tsv`.
    DevMismatched,
    /// MNLI only: `test_mismatched.tsv`, unlabelled.
    TestMismatched,
}

/// A metric GLUE reports for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlueMetric {
    /// Fraction correct.
    Accuracy,
    /// Binary F1, positive class 1.
    F1,
    /// Matthews correlation coefficient.
    Matthews,
    /// Pearson correlation.
    Pearson,
    /// Spearman rank correlation.
    Spearman,
}

/// How the label column of a task is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelFormat {
    /// `0`, `1`, … indexing [`GlueTask::label_names`].
    Index,
    /// The label names themselves (`entailment`, …).
    Names,
    /// A float similarity score in `[0, 5]`.
    Score,
}

/// Where the columns of a task are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Header of labelled files (train, dev); `None` for CoLA, whose train/dev have no header.
    pub labelled_header: Option<&'static [&'static str]>,
    /// Header of the unlabelled test files.
    pub test_header: &'static [&'static str],
    /// Column holding the first (or only) text.
    pub text_a: &'static str,
    /// Column holding the second text of pair tasks.
    pub text_b: Option<&'static str>,
    /// Column holding the label.
    pub label: &'static str,
    /// Names used for the columns of headerless files, and the label / text positions in them.
    pub headerless: Option<Headerless>,
    /// How labels are written.
    pub label_format: LabelFormat,
}

/// Column positions of a headerless file (CoLA train/dev).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Headerless {
    pub columns: &'static [&'static str],
    pub text_a: usize,
    pub label: usize,
}

const MNLI_TRAIN_HEADER: &[&str] = &[
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "label1",
    "gold_label",
];
const MNLI_TEST_HEADER: &[&str] = &[
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
];
const STSB_HEADER: &[&str] = &[
    "index",
    "genre",
    "filename",
    "year",
    "old_index",
    "source1",
    "source2",
    "sentence1",
    "sentence2",
    "score",
];
const NLI_HEADER: &[&str] = &["index", "sentence1", "sentence2", "label"];
const NLI_TEST_HEADER: &[&str] = &["index", "sentence1", "sentence2"];

impl GlueTask {
    /// All nine tasks, in GLUE's order.
    pub const ALL: [GlueTask; 9] = [
        GlueTask::Cola,
        GlueTask::Sst2,
        GlueTask::Mrpc,
        GlueTask::Stsb,
        GlueTask::Qqp,
        GlueTask::Mnli,
        GlueTask::Qnli,
        GlueTask::Rte,
        GlueTask::Wnli,
    ];

    /// Parses a task name, ignoring case, `-`, `_` and spaces: `sst2`, `SST-2`, `sts_b`,
    /// `MNLI`, ….
    pub fn from_name(name: &str) -> Result<Self> {
        let key: String = name
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .flat_map(char::to_lowercase)
            .collect();
        Self::ALL
            .into_iter()
            .find(|t| t.name() == key)
            .ok_or_else(|| DataError::UnknownTask {
                found: name.to_string(),
                expected: Self::ALL.map(|t| t.name()).join(", "),
            })
    }

    /// Short lower-case name (`sst2`, `stsb`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cola => "cola",
            Self::Sst2 => "sst2",
            Self::Mrpc => "mrpc",
            Self::Stsb => "stsb",
            Self::Qqp => "qqp",
            Self::Mnli => "mnli",
            Self::Qnli => "qnli",
            Self::Rte => "rte",
            Self::Wnli => "wnli",
        }
    }

    /// Folder name in GLUE's release (`SST-2`, `STS-B`, `CoLA`, …).
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Cola => "CoLA",
            Self::Sst2 => "SST-2",
            Self::Mrpc => "MRPC",
            Self::Stsb => "STS-B",
            Self::Qqp => "QQP",
            Self::Mnli => "MNLI",
            Self::Qnli => "QNLI",
            Self::Rte => "RTE",
            Self::Wnli => "WNLI",
        }
    }

    /// Number of model outputs: the number of classes, or 1 for STS-B (regression).
    pub fn num_labels(self) -> usize {
        match self {
            Self::Stsb => 1,
            Self::Mnli => 3,
            _ => 2,
        }
    }

    /// True for STS-B, whose label is a float score.
    pub fn is_regression(self) -> bool {
        self == Self::Stsb
    }

    /// True when examples have two texts (all but CoLA and SST-2).
    pub fn is_pair(self) -> bool {
        !matches!(self, Self::Cola | Self::Sst2)
    }

    /// Class names; index `i` is class `i` (the order of Hugging Face's `glue` datasets).
    /// Empty for STS-B.
    pub fn label_names(self) -> &'static [&'static str] {
        match self {
            Self::Cola => &["unacceptable", "acceptable"],
            Self::Sst2 => &["negative", "positive"],
            Self::Mrpc => &["not_equivalent", "equivalent"],
            Self::Stsb => &[],
            Self::Qqp => &["not_duplicate", "duplicate"],
            Self::Mnli => &["entailment", "neutral", "contradiction"],
            Self::Qnli | Self::Rte => &["entailment", "not_entailment"],
            Self::Wnli => &["not_entailment", "entailment"],
        }
    }

    /// The metrics GLUE reports for this task; the first is the primary one.
    pub fn metrics(self) -> &'static [GlueMetric] {
        match self {
            Self::Cola => &[GlueMetric::Matthews],
            Self::Mrpc | Self::Qqp => &[GlueMetric::Accuracy, GlueMetric::F1],
            Self::Stsb => &[GlueMetric::Pearson, GlueMetric::Spearman],
            _ => &[GlueMetric::Accuracy],
        }
    }

    /// The splits of GLUE's release for this task.
    pub fn splits(self) -> &'static [GlueSplit] {
        match self {
            Self::Mnli => &[
                GlueSplit::Train,
                GlueSplit::Dev,
                GlueSplit::DevMismatched,
                GlueSplit::Test,
                GlueSplit::TestMismatched,
            ],
            _ => &[GlueSplit::Train, GlueSplit::Dev, GlueSplit::Test],
        }
    }

    /// File name of a split (`train.tsv`, MNLI `dev_matched.tsv`, …).
    pub fn split_file(self, split: GlueSplit) -> Result<&'static str> {
        let mnli = self == Self::Mnli;
        Ok(match split {
            GlueSplit::Train => "train.tsv",
            GlueSplit::Dev if mnli => "dev_matched.tsv",
            GlueSplit::Dev => "dev.tsv",
            GlueSplit::Test if mnli => "test_matched.tsv",
            GlueSplit::Test => "test.tsv",
            GlueSplit::DevMismatched if mnli => "dev_mismatched.tsv",
            GlueSplit::TestMismatched if mnli => "test_mismatched.tsv",
            _ => {
                return Err(DataError::NoSuchSplit {
                    task: self.dir_name().into(),
                    split: split.name().into(),
                    available: self
                        .splits()
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        })
    }

    /// Path of a split relative to the data root: `glue/<dir>/<file>`.
    pub fn relative_path(self, split: GlueSplit) -> Result<String> {
        Ok(format!(
            "glue/{}/{}",
            self.dir_name(),
            self.split_file(split)?
        ))
    }

    /// Computes [`GlueTask::metrics`] from predicted and reference class indices.
    pub fn evaluate_classes(
        self,
        predictions: &[usize],
        references: &[usize],
    ) -> Result<Vec<(GlueMetric, f64)>, MetricError> {
        if self.is_regression() {
            return Err(MetricError::WrongKind {
                task: self.dir_name().into(),
                expected: "scores",
                found: "classes",
            });
        }
        self.metrics()
            .iter()
            .map(|&m| {
                let v = match m {
                    GlueMetric::Accuracy => metrics::accuracy(predictions, references),
                    GlueMetric::F1 => metrics::f1_binary(predictions, references),
                    GlueMetric::Matthews => metrics::matthews_corrcoef(predictions, references),
                    // Not listed for classification tasks; defined anyway on class indices.
                    GlueMetric::Pearson => {
                        metrics::pearson(&to_f64(predictions), &to_f64(references))
                    }
                    GlueMetric::Spearman => {
                        metrics::spearman(&to_f64(predictions), &to_f64(references))
                    }
                }?;
                Ok((m, v))
            })
            .collect()
    }

    /// Computes [`GlueTask::metrics`] (Pearson, Spearman) from predicted and reference scores.
    pub fn evaluate_scores(
        self,
        predictions: &[f64],
        references: &[f64],
    ) -> Result<Vec<(GlueMetric, f64)>, MetricError> {
        if !self.is_regression() {
            return Err(MetricError::WrongKind {
                task: self.dir_name().into(),
                expected: "classes",
                found: "scores",
            });
        }
        Ok(vec![
            (
                GlueMetric::Pearson,
                metrics::pearson(predictions, references)?,
            ),
            (
                GlueMetric::Spearman,
                metrics::spearman(predictions, references)?,
            ),
        ])
    }

    /// Column layout of the released files.
    pub(crate) fn layout(self) -> Layout {
        let pair = |header: &'static [&'static str],
                    test: &'static [&'static str],
                    a: &'static str,
                    b: &'static str,
                    label: &'static str,
                    format: LabelFormat| Layout {
            labelled_header: Some(header),
            test_header: test,
            text_a: a,
            text_b: Some(b),
            label,
            headerless: None,
            label_format: format,
        };
        match self {
            Self::Cola => Layout {
                labelled_header: None,
                test_header: &["index", "sentence"],
                text_a: "sentence",
                text_b: None,
                label: "label",
                headerless: Some(Headerless {
                    columns: &["source", "label", "original_label", "sentence"],
                    text_a: 3,
                    label: 1,
                }),
                label_format: LabelFormat::Index,
            },
            Self::Sst2 => Layout {
                labelled_header: Some(&["sentence", "label"]),
                test_header: &["index", "sentence"],
                text_a: "sentence",
                text_b: None,
                label: "label",
                headerless: None,
                label_format: LabelFormat::Index,
            },
            Self::Mrpc => pair(
                &["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                &["index", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                "#1 String",
                "#2 String",
                "Quality",
                LabelFormat::Index,
            ),
            Self::Stsb => pair(
                STSB_HEADER,
                &STSB_HEADER[..9],
                "sentence1",
                "sentence2",
                "score",
                LabelFormat::Score,
            ),
            Self::Qqp => pair(
                &[
                    "id",
                    "qid1",
                    "qid2",
                    "question1",
                    "question2",
                    "is_duplicate",
                ],
                &["id", "question1", "question2"],
                "question1",
                "question2",
                "is_duplicate",
                LabelFormat::Index,
            ),
            Self::Mnli => pair(
                MNLI_TRAIN_HEADER,
                MNLI_TEST_HEADER,
                "sentence1",
                "sentence2",
                "gold_label",
                LabelFormat::Names,
            ),
            Self::Qnli => pair(
                &["index", "question", "sentence", "label"],
                &["index", "question", "sentence"],
                "question",
                "sentence",
                "label",
                LabelFormat::Names,
            ),
            Self::Rte => pair(
                NLI_HEADER,
                NLI_TEST_HEADER,
                "sentence1",
                "sentence2",
                "label",
                LabelFormat::Names,
            ),
            Self::Wnli => pair(
                NLI_HEADER,
                NLI_TEST_HEADER,
                "sentence1",
                "sentence2",
                "label",
                LabelFormat::Index,
            ),
        }
    }
}

fn to_f64(xs: &[usize]) -> Vec<f64> {
    xs.iter().map(|&x| x as f64).collect()
}

impl fmt::Display for GlueTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

impl FromStr for GlueTask {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s)
    }
}

impl GlueSplit {
    /// Lower-case name: `train`, `dev`, `test`, `dev_mismatched`, `test_mismatched`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Dev => "dev",
            Self::Test => "test",
            Self::DevMismatched => "dev_mismatched",
            Self::TestMismatched => "test_mismatched",
        }
    }

    /// Parses a split name; also accepts Hugging Face's `validation`, `validation_matched`,
    /// `test_matched` and `dev_matched`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "train" => Self::Train,
            "dev" | "validation" | "dev_matched" | "validation_matched" => Self::Dev,
            "test" | "test_matched" => Self::Test,
            "dev_mismatched" | "validation_mismatched" => Self::DevMismatched,
            "test_mismatched" => Self::TestMismatched,
            _ => return None,
        })
    }

    /// True for the splits GLUE releases with labels.
    pub fn is_labelled(self) -> bool {
        matches!(self, Self::Train | Self::Dev | Self::DevMismatched)
    }
}

impl fmt::Display for GlueSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl GlueMetric {
    /// Lower-case name (`accuracy`, `f1`, `matthews`, `pearson`, `spearman`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::F1 => "f1",
            Self::Matthews => "matthews",
            Self::Pearson => "pearson",
            Self::Spearman => "spearman",
        }
    }
}

impl fmt::Display for GlueMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_loosely() {
        for (name, task) in [
            ("sst2", GlueTask::Sst2),
            ("SST-2", GlueTask::Sst2),
            ("sts-b", GlueTask::Stsb),
            ("STS_B", GlueTask::Stsb),
            ("CoLA", GlueTask::Cola),
            ("mnli", GlueTask::Mnli),
        ] {
            assert_eq!(GlueTask::from_name(name).unwrap(), task, "{name}");
        }
        let err = GlueTask::from_name("squad").unwrap_err().to_string();
        assert!(err.contains("`squad`") && err.contains("wnli"), "{err}");
        for t in GlueTask::ALL {
            assert_eq!(t.dir_name().parse::<GlueTask>().unwrap(), t);
            assert_eq!(
                t.num_labels(),
                if t.is_regression() {
                    1
                } else {
                    t.label_names().len()
                }
            );
        }
    }

    #[test]
    fn split_files() {
        assert_eq!(
            GlueTask::Mnli.relative_path(GlueSplit::Dev).unwrap(),
            "glue/MNLI/dev_matched.tsv"
        );
        assert_eq!(
            GlueTask::Mnli
                .split_file(GlueSplit::TestMismatched)
                .unwrap(),
            "test_mismatched.tsv"
        );
        assert_eq!(
            GlueTask::Sst2.relative_path(GlueSplit::Train).unwrap(),
            "glue/SST-2/train.tsv"
        );
        let err = GlueTask::Rte
            .split_file(GlueSplit::DevMismatched)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "GLUE RTE has no dev_mismatched split; it has train, dev, test"
        );
        assert_eq!(
            GlueSplit::from_name("validation_matched"),
            Some(GlueSplit::Dev)
        );
    }

    #[test]
    fn evaluate_picks_the_task_metrics() {
        // MRPC: accuracy 3/4; F1: TP=2 FP=1 FN=0 → 4/5.
        let m = GlueTask::Mrpc
            .evaluate_classes(&[1, 1, 1, 0], &[1, 0, 1, 0])
            .unwrap();
        assert_eq!(m, vec![(GlueMetric::Accuracy, 0.75), (GlueMetric::F1, 0.8)]);
        assert!(GlueTask::Stsb.evaluate_classes(&[1], &[1]).is_err());
        assert!(GlueTask::Sst2.evaluate_scores(&[1.0], &[1.0]).is_err());
    }
}
