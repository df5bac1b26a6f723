//! burn-train's per-epoch metric logs (`train/epoch-N/Loss.log`, `valid/epoch-N/…`, one line
//! per step or dev batch), kept whole across resumes.
//!
//! burn-train's own `FileMetricLogger` truncates a file the first time a process writes to it,
//! and its event store numbers epochs from 1 in every process: a run resumed in epoch 2 wrote
//! its remaining steps over epoch 1's log, and epoch 2's held none of its first steps.
//! [`RunMetricLogger`] writes the same layout (burn-train's end-of-run summary reads it), but
//! appends, numbering epochs as the trainer does; when a run is opened the trainer cuts the
//! logs back to the checkpoint it resumes from ([`trim_logs`]).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};

/// Where a process starts in the run: the epoch in progress (1-based) and the batches of it
/// already trained (what the checkpoint's trainer state says; `1, 0` for a new run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    /// The epoch the process trains first.
    pub epoch: usize,
    /// Batches of that epoch the checkpoint holds.
    pub batches_done: usize,
}

impl ResumePoint {
    /// Where a run in `state` continues.
    pub fn of(state: &super::state::TrainerState) -> Self {
        Self {
            epoch: state.epoch,
            batches_done: state.batches_done,
        }
    }
}

/// The metric logger of our runs (see the module docs).
pub struct RunMetricLogger {
    directory: PathBuf,
    /// The epoch each split's next entries belong to.
    epochs: HashMap<String, usize>,
    first_epoch: usize,
    definitions: HashMap<MetricId, MetricDefinition>,
    files: HashMap<PathBuf, File>,
    warned: bool,
}

impl RunMetricLogger {
    /// A logger appending under `directory` (the run folder) from `start` on; the trainer has
    /// cut the logs back to `start` ([`trim_logs`]) when it opened the run.
    pub fn new(directory: &Path, start: ResumePoint) -> Self {
        Self {
            directory: directory.to_path_buf(),
            epochs: HashMap::new(),
            first_epoch: start.epoch,
            definitions: HashMap::new(),
            files: HashMap::new(),
            warned: false,
        }
    }

    fn epoch(&self, split: &Split) -> usize {
        self.epochs
            .get(&split_dir(split))
            .copied()
            .unwrap_or(self.first_epoch)
    }

    fn file_path(&self, name: &str, epoch: usize, split: &Split) -> PathBuf {
        self.directory
            .join(split_dir(split))
            .join(format!("epoch-{epoch}"))
            .join(format!("{}.log", name.replace(' ', "_")))
    }

    fn append_line(&mut self, path: PathBuf, line: &str) -> io::Result<()> {
        if !self.files.contains_key(&path) {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            self.files.insert(path.clone(), file);
        }
        let file = self.files.get_mut(&path).expect("opened above");
        file.write_all(format!("{line}\n").as_bytes())
    }
}

impl MetricLogger for RunMetricLogger {
    /// Appends each entry of `update` to its metric's file; burn-train's `epoch` is ignored
    /// (see the module docs). A write error warns once and does not stop training.
    fn log(&mut self, update: MetricsUpdate, _epoch: usize, split: &Split) {
        let epoch = self.epoch(split);
        let entries = update
            .entries
            .iter()
            .chain(update.entries_numeric.iter().map(|n| &n.entry));
        for entry in entries {
            let Some(name) = self
                .definitions
                .get(&entry.metric_id)
                .map(|d| d.name.clone())
            else {
                continue;
            };
            let path = self.file_path(&name, epoch, split);
            if let Err(e) = self.append_line(path.clone(), &entry.serialized_entry.serialized) {
                if !self.warned {
                    log::warn!("writing the metric log {}: {e}", path.display());
                    eprintln!("warning: writing the metric log {}: {e}", path.display());
                    self.warned = true;
                }
            }
        }
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        let path = self.file_path(name, epoch, split);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        text.lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                NumericEntry::deserialize(line).map_err(|e| format!("{}: {e}", path.display()))
            })
            .collect()
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.definitions
            .insert(definition.metric_id.clone(), definition);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        let split = split_dir(&summary.split);
        let done = self.directory.join(&split);
        self.files.retain(|path, _| !path.starts_with(&done));
        self.epochs.insert(split, summary.epoch_number + 1);
    }
}

/// The folder of a split's logs, as burn-train names it.
fn split_dir(split: &Split) -> String {
    match split {
        Split::Test(Some(tag)) => format!("test/{}", tag.trim().replace(' ', "-").to_lowercase()),
        other => other.to_string(),
    }
}

/// Cuts the logs under `directory` back to `start`: the train logs of `start.epoch` to its
/// first `batches_done` lines (steps a killed process logged after the checkpoint go), its
/// dev logs and those of later epochs removed (their evaluations run again); earlier epochs
/// are left as they are.
///
/// # Errors
/// A log that cannot be read, cut or removed, naming it.
pub fn trim_logs(directory: &Path, start: ResumePoint) -> anyhow::Result<()> {
    for (split, keep) in [("train", start.batches_done), ("valid", 0)] {
        let Ok(entries) = fs::read_dir(directory.join(split)) else {
            continue;
        };
        for entry in entries.flatten() {
            let epoch = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("epoch-"))
                .and_then(|n| n.parse::<usize>().ok());
            match epoch {
                Some(epoch) if epoch == start.epoch => trim_epoch(&entry.path(), keep)?,
                Some(epoch) if epoch > start.epoch => trim_epoch(&entry.path(), 0)?,
                _ => {}
            }
        }
    }
    Ok(())
}

/// Keeps the first `keep` lines of every `.log` in `dir` (removing those cut to nothing, and
/// `dir` once empty).
fn trim_epoch(dir: &Path, keep: usize) -> anyhow::Result<()> {
    let read = |e: io::Error| anyhow::anyhow!("reading the metric logs in {}: {e}", dir.display());
    for entry in fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.extension().is_some_and(|x| x == "log") {
            keep_lines(&path, keep)
                .map_err(|e| anyhow::anyhow!("cutting the metric log {}: {e}", path.display()))?;
        }
    }
    // Left in place when something else is in it.
    let _ = fs::remove_dir(dir);
    Ok(())
}

/// Truncates `path` after its `keep`-th line (removes it for 0); a shorter file is left as is.
fn keep_lines(path: &Path, keep: usize) -> io::Result<()> {
    if keep == 0 {
        return fs::remove_file(path);
    }
    let bytes = fs::read(path)?;
    let end = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(keep - 1)
        .map(|(i, _)| i + 1);
    if let Some(end) = end.filter(|&end| end < bytes.len()) {
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(end as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, lines: usize) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text: String = (1..=lines).map(|i| format!("{i}\n")).collect();
        fs::write(path, text).unwrap();
    }

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn trimming_keeps_earlier_epochs_cuts_the_resumed_one_and_drops_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("train/epoch-1/Loss.log"), 4);
        write(&root.join("valid/epoch-1/Loss.log"), 2);
        write(&root.join("train/epoch-2/Loss.log"), 3);
        write(&root.join("train/epoch-2/Learning_Rate.log"), 3);
        write(&root.join("valid/epoch-2/Loss.log"), 1);
        write(&root.join("train/epoch-3/Loss.log"), 1);
        trim_logs(
            root,
            ResumePoint {
                epoch: 2,
                batches_done: 1,
            },
        )
        .unwrap();
        assert_eq!(lines(&root.join("train/epoch-1/Loss.log")).len(), 4);
        assert_eq!(lines(&root.join("valid/epoch-1/Loss.log")).len(), 2);
        assert_eq!(lines(&root.join("train/epoch-2/Loss.log")), ["1"]);
        assert_eq!(lines(&root.join("train/epoch-2/Learning_Rate.log")), ["1"]);
        assert!(!root.join("valid/epoch-2").exists());
        assert!(!root.join("train/epoch-3").exists());
    }

    #[test]
    fn a_log_shorter_than_the_checkpoint_is_left_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("train/epoch-1/Loss.log");
        write(&log, 2);
        let start = ResumePoint {
            epoch: 1,
            batches_done: 5,
        };
        trim_logs(dir.path(), start).unwrap();
        assert_eq!(lines(&log), ["1", "2"]);
    }

    #[test]
    fn entries_after_an_epoch_summary_go_to_the_next_epoch_of_the_trainer() {
        let dir = tempfile::tempdir().unwrap();
        let start = ResumePoint {
            epoch: 3,
            batches_done: 0,
        };
        let mut logger = RunMetricLogger::new(dir.path(), start);
        assert_eq!(logger.epoch(&Split::Train), 3);
        logger.log_epoch_summary(EpochSummary::new(3, Split::Train));
        assert_eq!(logger.epoch(&Split::Train), 4);
        assert_eq!(logger.epoch(&Split::Valid), 3);
        logger
            .append_line(logger.file_path("Loss", 4, &Split::Train), "0.5")
            .unwrap();
        logger
            .append_line(logger.file_path("Loss", 4, &Split::Train), "0.25")
            .unwrap();
        assert_eq!(
            lines(&dir.path().join("train/epoch-4/Loss.log")),
            ["0.5", "0.25"]
        );
        let read = logger.read_numeric("Loss", 4, &Split::Train).unwrap();
        assert_eq!(
            read.iter().map(NumericEntry::current).collect::<Vec<_>>(),
            [0.5, 0.25]
        );
    }
}
