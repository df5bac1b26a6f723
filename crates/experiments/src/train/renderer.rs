//! A quiet text renderer for burn-train, used when stdout is not a terminal (logs, CI): one
//! line every N training steps instead of one per iteration. On a terminal burn-train's TUI
//! dashboard is used instead.

use std::collections::HashMap;
use std::time::Instant;

use burn::train::metric::{MetricDefinition, MetricId};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};

/// Prints `epoch e/E · step s/S · <metrics>` every `every` training iterations and at the last
/// iteration of each epoch.
pub struct QuietRenderer {
    every: usize,
    names: HashMap<MetricId, String>,
    order: Vec<MetricId>,
    latest: HashMap<MetricId, String>,
    started: Instant,
    steps_since: usize,
    last_print: Instant,
}

impl QuietRenderer {
    /// A renderer printing every `every` training iterations (at least 1).
    pub fn new(every: usize) -> Self {
        Self {
            every: every.max(1),
            names: HashMap::new(),
            order: Vec::new(),
            latest: HashMap::new(),
            started: Instant::now(),
            steps_since: 0,
            last_print: Instant::now(),
        }
    }

    fn remember(&mut self, state: MetricState) {
        let entry = match state {
            MetricState::Generic(entry) | MetricState::Numeric(entry, _) => entry,
        };
        self.latest
            .insert(entry.metric_id, entry.serialized_entry.formatted);
    }
}

impl MetricsRendererTraining for QuietRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.remember(state);
    }

    fn update_valid(&mut self, _state: MetricState) {}

    fn render_train(&mut self, item: TrainingProgress, _indicators: Vec<ProgressType>) {
        self.steps_since += 1;
        let Some(iteration) = item.iteration else {
            return;
        };
        let last_of_epoch = item
            .progress
            .as_ref()
            .is_some_and(|p| p.items_processed >= p.items_total);
        if iteration % self.every != 0 && !last_of_epoch {
            return;
        }
        let rate = self.steps_since as f64 / self.last_print.elapsed().as_secs_f64().max(1e-9);
        let metrics: Vec<String> = self
            .order
            .iter()
            .filter_map(|id| {
                let value = self.latest.get(id)?;
                Some(format!("{} {}", self.names.get(id)?, value))
            })
            .collect();
        let total = item
            .progress
            .as_ref()
            .map(|p| format!("/{}", p.items_total))
            .unwrap_or_default();
        println!(
            "[{:>6.0}s] epoch {}/{} · step {iteration} ({} items{total}) · {} · {rate:.2} it/s",
            self.started.elapsed().as_secs_f64(),
            item.global_progress.items_processed,
            item.global_progress.items_total,
            item.progress.as_ref().map_or(0, |p| p.items_processed),
            metrics.join(" · "),
        );
        self.steps_since = 0;
        self.last_print = Instant::now();
    }

    fn render_valid(&mut self, _item: TrainingProgress, _indicators: Vec<ProgressType>) {}
}

impl MetricsRendererEvaluation for QuietRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}

    fn render_test(&mut self, _item: EvaluationProgress, _indicators: Vec<ProgressType>) {}
}

impl MetricsRenderer for QuietRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        if !self.order.contains(&definition.metric_id) {
            self.order.push(definition.metric_id.clone());
        }
        self.names.insert(definition.metric_id, definition.name);
    }
}
