//! The training machinery shared by the GLUE and MetaMath jobs, on top of burn-train.
//!
//! burn-train's `SupervisedTraining` provides the metrics, the dashboard (TUI on a terminal,
//! [`QuietRenderer`] otherwise) and the metric logs; [`Trainer`] replaces its epoch loop with
//! one that checkpoints only what training changes (adapters, heads, optimiser state) every N
//! steps, atomically, resumes mid-epoch exactly where it stopped, stops on a non-finite loss
//! without losing the last good checkpoint, clips the global gradient norm, evaluates with
//! task metrics and keeps the best adapter. [`job`] is the scaffold of the training binaries
//! (shared flags, entry point, summaries).

mod checkpoint;
pub mod config;
pub mod distributed;
mod epoch;
pub mod flops;
pub mod inputs;
pub mod job;
mod launch;
pub mod limits;
mod lock;
mod metric_log;
mod optim;
mod parallel;
mod renderer;
mod report;
mod resume;
mod run_dir;
mod schedule;
pub mod signal;
mod state;
mod task;
mod trainer;

pub use checkpoint::{
    write_synced, CheckpointStore, Found, FAULT_ENV, FAULT_EXIT, MANIFEST_FILE, OPTIMIZER_FILE,
    STATE_FILE, TRAINABLE_DIR,
};
pub use launch::{launch, DisplayChoice, ProgressDisplay, Training};
pub use lock::{RunLock, LOCK_FILE};
pub use metric_log::{trim_logs, ResumePoint, RunMetricLogger};
pub use optim::{clip_global_norm, with_stable_param_ids, SharedOptimizer};
pub use parallel::{
    data_parallel_step, default_step_threads, keep_products_on_step_threads, parallel_step,
    parallel_step_of, PartRows,
};
pub use renderer::QuietRenderer;
pub use report::{write_metrics, write_plot};
pub use resume::{check_run_folder, resumable, resumable_checkpoint};
pub use run_dir::RunDir;
pub use schedule::{DecayKind, WarmupDecay};
pub use state::{Best, EpochRecord, StepRecord, TrainerState};
pub use task::{Evaluation, MetricGoal, MetricKey, TrainTask};
pub use trainer::{first_non_finite, Outcome, Trainer, TrainerOptions};
