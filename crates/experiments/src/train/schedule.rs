//! Learning-rate schedules: linear warm-up, then linear or cosine decay (Hugging Face's
//! `get_linear_schedule_with_warmup` / `get_cosine_schedule_with_warmup`), resumable at any step.

use burn::lr_scheduler::LrScheduler;
use burn::optim::LearningRate;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

/// The shape of the decay after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DecayKind {
    /// Linear to zero at the last step.
    Linear,
    /// Half a cosine to zero at the last step.
    Cosine,
    /// Constant after warm-up.
    Constant,
}

/// Warm-up from 0 to `peak` over `warmup_steps`, then decay to 0 at `total_steps`.
///
/// As in Hugging Face's schedulers, the learning rate of optimiser step `t` (0-based) is
/// `peak · t / warmup` during warm-up, so the very first step uses 0 when warm-up is on.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupDecay {
    peak: f64,
    warmup_steps: usize,
    total_steps: usize,
    kind: DecayKind,
    step: usize,
}

impl WarmupDecay {
    /// A schedule for `total_steps` optimiser steps with the first `warmup_steps` warming up.
    pub fn new(peak: f64, warmup_steps: usize, total_steps: usize, kind: DecayKind) -> Self {
        Self {
            peak,
            warmup_steps: warmup_steps.min(total_steps),
            total_steps: total_steps.max(1),
            kind,
            step: 0,
        }
    }

    /// Warm-up steps for a ratio of the total, rounded up as Hugging Face does.
    pub fn warmup_from_ratio(ratio: f64, total_steps: usize) -> usize {
        (ratio * total_steps as f64).ceil() as usize
    }

    /// The schedule positioned at optimiser step `step` (for resuming).
    pub fn at_step(mut self, step: usize) -> Self {
        self.step = step;
        self
    }

    /// The optimiser steps taken so far.
    pub fn current_step(&self) -> usize {
        self.step
    }

    /// The learning rate of 0-based optimiser step `t`.
    pub fn lr_at(&self, t: usize) -> f64 {
        if t < self.warmup_steps {
            return self.peak * t as f64 / self.warmup_steps.max(1) as f64;
        }
        let decay_steps = (self.total_steps - self.warmup_steps).max(1) as f64;
        let progress = ((t - self.warmup_steps) as f64 / decay_steps).min(1.0);
        match self.kind {
            DecayKind::Linear => self.peak * (1.0 - progress).max(0.0),
            DecayKind::Cosine => self.peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            DecayKind::Constant => self.peak,
        }
    }
}

impl LrScheduler for WarmupDecay {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let lr = self.lr_at(self.step);
        self.step += 1;
        lr
    }

    fn to_record<B: Backend>(&self) -> Self::Record<B> {
        self.step
    }

    fn load_record<B: Backend>(self, record: Self::Record<B>) -> Self {
        self.at_step(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_warmup_then_linear_decay_like_hugging_face() {
        // 10 steps, 2 of warm-up: lr(t) = t/2 for t < 2, then (10 − t)/8.
        let mut s = WarmupDecay::new(1.0, 2, 10, DecayKind::Linear);
        let lrs: Vec<f64> = (0..10).map(|_| s.step()).collect();
        let expected = [0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125];
        for (got, want) in lrs.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{lrs:?}");
        }
    }

    #[test]
    fn cosine_decay_reaches_half_at_the_midpoint() {
        let s = WarmupDecay::new(2.0, 0, 100, DecayKind::Cosine);
        assert!((s.lr_at(0) - 2.0).abs() < 1e-12);
        assert!((s.lr_at(50) - 1.0).abs() < 1e-12);
        assert!(s.lr_at(100).abs() < 1e-12);
    }

    #[test]
    fn resuming_continues_the_sequence() {
        let mut full = WarmupDecay::new(5e-4, 4, 40, DecayKind::Linear);
        let all: Vec<f64> = (0..40).map(|_| full.step()).collect();
        let mut resumed = WarmupDecay::new(5e-4, 4, 40, DecayKind::Linear).at_step(17);
        let rest: Vec<f64> = (17..40).map(|_| resumed.step()).collect();
        assert_eq!(rest, all[17..]);
        assert_eq!(WarmupDecay::warmup_from_ratio(0.06, 125), 8);
    }
}
