//! GLUE examples and the in-memory dataset that holds them.

use std::path::Path;

use burn::data::dataset::Dataset;

use super::task::{GlueSplit, GlueTask};
use crate::load::LoadReport;

/// The label of a GLUE example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Label {
    /// Class index into [`GlueTask::label_names`].
    Class(usize),
    /// STS-B similarity score in `[0, 5]`.
    Score(f32),
}

impl Label {
    /// The class index, if this is a class label.
    pub fn class(self) -> Option<usize> {
        match self {
            Self::Class(c) => Some(c),
            Self::Score(_) => None,
        }
    }

    /// The score, if this is a regression label.
    pub fn score(self) -> Option<f32> {
        match self {
            Self::Score(s) => Some(s),
            Self::Class(_) => None,
        }
    }
}

/// One GLUE example: one or two texts (whitespace-trimmed) and, except in test files, a label.
#[derive(Debug, Clone, PartialEq)]
pub struct GlueExample {
    /// The sentence (single-sentence tasks) or first text of the pair.
    pub text_a: String,
    /// The second text of pair tasks.
    pub text_b: Option<String>,
    /// The label; `None` in unlabelled test files.
    pub label: Option<Label>,
    /// 1-based line of the row in its file.
    pub line: usize,
}

/// The examples of one GLUE file, with the report of how it was read.
///
/// Implements Burn's [`Dataset`], so it can be given to a `DataLoaderBuilder` (after
/// tokenisation, see [`crate::batcher::ClassificationBatcher::encode_all`]) or iterated.
#[derive(Debug, Clone)]
pub struct GlueDataset {
    task: GlueTask,
    split: Option<GlueSplit>,
    examples: Vec<GlueExample>,
    report: LoadReport,
}

impl GlueDataset {
    pub(crate) fn new(
        task: GlueTask,
        split: Option<GlueSplit>,
        examples: Vec<GlueExample>,
        report: LoadReport,
    ) -> Self {
        Self {
            task,
            split,
            examples,
            report,
        }
    }

    /// The task.
    pub fn task(&self) -> GlueTask {
        self.task
    }

    /// The split, when loaded by split (not by path).
    pub fn split(&self) -> Option<GlueSplit> {
        self.split
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.report.path
    }

    /// The examples, in file order.
    pub fn examples(&self) -> &[GlueExample] {
        &self.examples
    }

    /// Takes the examples out.
    pub fn into_examples(self) -> Vec<GlueExample> {
        self.examples
    }

    /// How the file was read (rows kept, rows skipped and why).
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// True when every example has a label.
    pub fn is_labelled(&self) -> bool {
        self.examples.iter().all(|e| e.label.is_some())
    }

    /// Number of examples per class (`[count of class 0, count of class 1, …]`, length
    /// [`GlueTask::num_labels`]); empty for STS-B.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.task.label_names().len()];
        for c in self.examples.iter().filter_map(|e| e.label?.class()) {
            if let Some(n) = counts.get_mut(c) {
                *n += 1;
            }
        }
        counts
    }
}

impl Dataset<GlueExample> for GlueDataset {
    fn get(&self, index: usize) -> Option<GlueExample> {
        self.examples.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.examples.len()
    }
}
