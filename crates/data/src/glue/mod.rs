//! GLUE: the nine tasks in their released TSV layouts.
//!
//! ```no_run
//! use data::{DataRoot, LoadOptions};
//! use data::glue::{GlueSplit, GlueTask};
//!
//! let root = DataRoot::resolve(None);
//! let train = GlueTask::Sst2.load(&root, GlueSplit::Train, &LoadOptions::default())?;
//! assert_eq!(train.examples().len(), 67_349);
//! # Ok::<(), data::DataError>(())
//! ```

mod example;
mod task;
mod tsv;

use std::path::Path;

pub use example::{GlueDataset, GlueExample, Label};
pub use task::{GlueMetric, GlueSplit, GlueTask};

use crate::error::Result;
use crate::load::{read_bytes, LoadOptions};
use crate::paths::DataRoot;

impl GlueTask {
    /// Loads `split` from `<root>/glue/<dir>/<file>` (for example `glue/SST-2/train.tsv`).
    ///
    /// Train and dev splits must have labels; test splits load with `label: None`.
    ///
    /// # Errors
    /// A missing file (with every place looked), a checksum mismatch when the root has a
    /// manifest, an empty file, a wrong header, or a malformed row (file, line and reason)
    /// unless `opts.skip_bad_rows` is on.
    pub fn load(
        self,
        root: &DataRoot,
        split: GlueSplit,
        opts: &LoadOptions,
    ) -> Result<GlueDataset> {
        let path = root.file(&self.relative_path(split)?)?;
        self.load_file(&path, split, opts)
    }

    /// Loads a file at an explicit path, read as the given split of this task (the split only
    /// decides whether labels are required).
    pub fn load_file(
        self,
        path: &Path,
        split: GlueSplit,
        opts: &LoadOptions,
    ) -> Result<GlueDataset> {
        let bytes = read_bytes(path)?;
        let dataset = tsv::parse_glue(self, Some(split), path, &bytes, split.is_labelled(), opts)?;
        log::info!(
            "loaded GLUE {} {} from {}: {} examples, {} skipped",
            self.dir_name(),
            split,
            path.display(),
            dataset.examples().len(),
            dataset.report().skipped_count()
        );
        Ok(dataset)
    }
}
