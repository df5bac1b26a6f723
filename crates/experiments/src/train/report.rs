//! `metrics.json`, `metrics.csv` and `curves.png` of a run, rewritten after every epoch.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Once;

use anyhow::Context;
use bone_io::fs::write_atomic;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::run_dir::RunDir;
use super::state::TrainerState;

/// DejaVu Sans Mono (see `assets/DejaVu-LICENSE.txt`), so plots need no system fonts.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");

/// Writes `metrics.json` (epochs, logged steps, best) and `metrics.csv` (one row per epoch).
///
/// # Errors
/// An I/O error naming the file.
pub fn write_metrics(run: &RunDir, state: &TrainerState) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "epochs": state.history,
        "steps": state.steps,
        "best": state.best,
        "global_step": state.global_step,
        "total_steps": state.total_steps,
        "finished": state.finished,
    });
    write_atomic(
        &run.metrics_json(),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;

    let metrics: BTreeSet<&String> = state.history.iter().flat_map(|e| e.dev.keys()).collect();
    let mut csv = String::from("epoch,global_step,train_loss,lr");
    for m in &metrics {
        let _ = write!(csv, ",dev_{m}");
    }
    csv.push_str(",train_seconds,eval_seconds\n");
    for e in &state.history {
        let _ = write!(
            csv,
            "{},{},{},{}",
            e.epoch, e.global_step, e.train_loss, e.lr
        );
        for m in &metrics {
            match e.dev.get(*m) {
                Some(v) => {
                    let _ = write!(csv, ",{v}");
                }
                None => csv.push(','),
            }
        }
        let _ = writeln!(csv, ",{:.3},{:.3}", e.train_seconds, e.eval_seconds);
    }
    write_atomic(&run.metrics_csv(), csv.as_bytes())?;
    Ok(())
}

/// Draws `curves.png`: the logged training loss per step (left) and the dev metrics per
/// evaluation, at its optimiser step (right).
///
/// # Errors
/// A drawing or I/O error.
pub fn write_plot(run: &RunDir, state: &TrainerState) -> anyhow::Result<()> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let path = run.plot();
    let tmp = path.with_extension("tmp.png");
    draw(&tmp, state).map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn draw(path: &std::path::Path, state: &TrainerState) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);

    let losses: Vec<(f64, f64)> = state
        .steps
        .iter()
        .filter(|s| s.loss.is_finite())
        .map(|s| (s.step as f64, s.loss))
        .collect();
    let max_step = losses.last().map_or(1.0, |p| p.0.max(1.0));
    let (lo, hi) = bounds(losses.iter().map(|p| p.1));
    let mut chart = ChartBuilder::on(&left)
        .caption("training loss", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_step, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("optimiser step")
        .y_desc("loss")
        .draw()?;
    chart.draw_series(LineSeries::new(losses, &BLUE))?;

    let names: BTreeSet<&String> = state.history.iter().flat_map(|e| e.dev.keys()).collect();
    // x: the optimiser step of each evaluation (several per epoch with `eval_every`).
    let max_step = state
        .history
        .iter()
        .map(|e| e.global_step)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (lo, hi) = bounds(
        state
            .history
            .iter()
            .flat_map(|e| e.dev.values().copied())
            .filter(|v| v.is_finite()),
    );
    let mut chart = ChartBuilder::on(&right)
        .caption("dev metrics", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_step * 1.04, lo..hi)?;
    chart.configure_mesh().x_desc("optimiser step").draw()?;
    for (i, name) in names.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = state
            .history
            .iter()
            .filter_map(|e| e.dev.get(*name).map(|v| (e.global_step as f64, *v)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    if !names.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// A padded [min, max] range of the values (a unit range when there are none).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad, hi + pad)
}
