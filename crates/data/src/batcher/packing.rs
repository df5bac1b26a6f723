//! Packing: whole tokenised examples side by side in rows of at most `max_seq_len` tokens,
//! with per-example positions and segment ids for a block-diagonal causal mask.

use std::collections::BTreeMap;

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::{check_multiple, padded_len, push_padded, PaddingSide};
use super::{EncodedSequence, IGNORE_INDEX};
use crate::error::{DataError, Result};

/// How examples are assigned to rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PackingStrategy {
    /// In order: an example goes into the current row when it fits, else starts a new one.
    /// Keeps the examples' order (shuffle before packing).
    #[default]
    Sequential,
    /// Longest first, each into the fullest row it still fits in (ties: the earliest row):
    /// fewer padded positions, order not kept.
    BestFitDecreasing,
}

/// Options of a [`PackedBatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackingConfig {
    /// Tokens per row; longer examples are cut to this (counted in
    /// [`PackingReport::truncated`]).
    pub max_seq_len: usize,
    /// Id at padded positions. Default 0.
    pub pad_id: u32,
    /// Row assignment. Default [`PackingStrategy::Sequential`].
    pub strategy: PackingStrategy,
    /// Round each batch's length up to a multiple of this. Default `None`.
    pub pad_to_multiple_of: Option<usize>,
}

impl PackingConfig {
    /// Rows of `max_seq_len`, pad id 0, sequential.
    pub fn new(max_seq_len: usize) -> Self {
        Self {
            max_seq_len,
            pad_id: 0,
            strategy: PackingStrategy::Sequential,
            pad_to_multiple_of: None,
        }
    }

    /// Sets `strategy`.
    pub fn with_strategy(mut self, strategy: PackingStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets `pad_id`.
    pub fn with_pad_id(mut self, pad_id: u32) -> Self {
        self.pad_id = pad_id;
        self
    }
}

/// One packed row (unpadded, at most `max_seq_len` tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRow {
    /// Token ids of the examples, one after the other.
    pub input_ids: Vec<u32>,
    /// Targets aligned with `input_ids`, as the examples' labels except that the first
    /// position of every example is [`IGNORE_INDEX`]: the shifted loss (logits at `t` vs
    /// `labels[t + 1]`) never predicts one example's first token from the previous one.
    pub labels: Vec<i64>,
    /// Position of each token within its own example (restarts at 0 per example).
    pub position_ids: Vec<u32>,
    /// 1-based index of the example within the row, per token (0 is padding).
    pub segment_ids: Vec<u32>,
    /// Indices (into the packed slice) of the examples in this row, in row order.
    pub examples: Vec<usize>,
}

/// What packing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackingReport {
    /// Examples packed.
    pub examples: usize,
    /// Rows made.
    pub rows: usize,
    /// Tokens placed (after truncation).
    pub tokens: usize,
    /// Examples longer than `max_seq_len` that were cut, plus those the encoder had already
    /// cut ([`EncodedSequence::truncated`]).
    pub truncated: usize,
    /// Examples with no token at all, left out.
    pub empty: usize,
}

impl PackingReport {
    /// Fraction of the `rows × max_seq_len` slots holding tokens.
    pub fn fill(&self, max_seq_len: usize) -> f64 {
        if self.rows == 0 {
            return 0.0;
        }
        self.tokens as f64 / (self.rows * max_seq_len) as f64
    }
}

/// Packed rows and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    /// The rows.
    pub rows: Vec<PackedRow>,
    /// What was done.
    pub report: PackingReport,
}

/// A packed batch. `B` = rows, `S` = the longest row (rounded up to `pad_to_multiple_of`).
#[derive(Debug, Clone)]
pub struct PackedBatch<B: Backend> {
    /// Token ids, `[B, S]`; padding holds `pad_id`.
    pub input_ids: Tensor<B, 2, Int>,
    /// Targets, `[B, S]`; [`IGNORE_INDEX`] on prompts, example starts and padding.
    pub labels: Tensor<B, 2, Int>,
    /// Position within each example, `[B, S]`; 0 on padding.
    pub position_ids: Tensor<B, 2, Int>,
    /// Example index within the row (1, 2, …), 0 on padding, `[B, S]`: token `i` may attend
    /// to token `j` iff `j <= i` and `segment_ids[i] == segment_ids[j] != 0`.
    pub segment_ids: Tensor<B, 2, Int>,
    /// 1 for real tokens, 0 for padding, `[B, S]`.
    pub attention_mask: Tensor<B, 2, Int>,
}

/// Packs [`EncodedSequence`]s into rows and collates rows into [`PackedBatch`]es.
#[derive(Debug, Clone)]
pub struct PackedBatcher {
    config: PackingConfig,
}

impl PackedBatcher {
    /// A packer.
    ///
    /// # Errors
    /// [`DataError::Config`] when `max_seq_len` is 0 or `pad_to_multiple_of` is 0.
    pub fn new(config: PackingConfig) -> Result<Self> {
        check_multiple(config.pad_to_multiple_of)?;
        if config.max_seq_len == 0 {
            return Err(DataError::config(
                "max_seq_len",
                "expected at least 1, found 0",
            ));
        }
        Ok(Self { config })
    }

    /// The options.
    pub fn config(&self) -> &PackingConfig {
        &self.config
    }

    /// Packs whole examples into rows: every token of every (truncated) example lands in
    /// exactly one row, and no example is split across rows.
    pub fn pack(&self, items: &[EncodedSequence]) -> Packed {
        let max = self.config.max_seq_len;
        let mut report = PackingReport::default();
        let lens: Vec<usize> = items.iter().map(|e| e.input_ids.len().min(max)).collect();
        for (item, &len) in items.iter().zip(&lens) {
            report.truncated += usize::from(item.truncated || item.input_ids.len() > max);
            report.empty += usize::from(len == 0);
        }
        let assignment = match self.config.strategy {
            PackingStrategy::Sequential => sequential(&lens, max),
            PackingStrategy::BestFitDecreasing => best_fit_decreasing(&lens, max),
        };
        let rows: Vec<PackedRow> = assignment
            .into_iter()
            .map(|members| build_row(items, &lens, members))
            .collect();
        report.rows = rows.len();
        report.examples = rows.iter().map(|r| r.examples.len()).sum();
        report.tokens = rows.iter().map(|r| r.input_ids.len()).sum();
        if report.truncated > 0 {
            log::warn!(
                "packing: {} of {} examples are longer than max_seq_len {max} and were cut",
                report.truncated,
                items.len()
            );
        }
        Packed { rows, report }
    }

    /// Pads rows into tensors on `device` (what [`Batcher::batch`] does).
    pub fn collate<B: Backend>(&self, rows: &[PackedRow], device: &B::Device) -> PackedBatch<B> {
        let n = rows.len();
        let longest = rows.iter().map(|r| r.input_ids.len()).max().unwrap_or(0);
        let seq = padded_len(longest, self.config.pad_to_multiple_of);
        let right = PaddingSide::Right;
        let [mut ids, mut labels, mut pos, mut seg, mut mask] =
            std::array::from_fn(|_| Vec::with_capacity(n * seq));
        for r in rows {
            let pad = self.config.pad_id as i64;
            push_padded(
                &mut ids,
                r.input_ids.iter().map(|&t| t as i64),
                seq,
                pad,
                right,
            );
            push_padded(
                &mut labels,
                r.labels.iter().copied(),
                seq,
                IGNORE_INDEX,
                right,
            );
            push_padded(
                &mut pos,
                r.position_ids.iter().map(|&p| p as i64),
                seq,
                0,
                right,
            );
            push_padded(
                &mut seg,
                r.segment_ids.iter().map(|&s| s as i64),
                seq,
                0,
                right,
            );
            let len = r.input_ids.len();
            push_padded(&mut mask, std::iter::repeat_n(1i64, len), seq, 0, right);
        }
        let int2 = |data: Vec<i64>| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(data, [n, seq]), device)
        };
        PackedBatch {
            input_ids: int2(ids),
            labels: int2(labels),
            position_ids: int2(pos),
            segment_ids: int2(seg),
            attention_mask: int2(mask),
        }
    }
}

impl<B: Backend> Batcher<B, PackedRow, PackedBatch<B>> for PackedBatcher {
    fn batch(&self, items: Vec<PackedRow>, device: &B::Device) -> PackedBatch<B> {
        self.collate(&items, device)
    }
}

/// Example indices per row, in order; empty examples are left out.
fn sequential(lens: &[usize], max: usize) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut used = max; // forces a new row for the first example
    for (i, &len) in lens.iter().enumerate().filter(|(_, &l)| l > 0) {
        if used + len > max {
            rows.push(Vec::new());
            used = 0;
        }
        rows.last_mut().expect("a row was just pushed").push(i);
        used += len;
    }
    rows
}

/// Longest first into the row with the least room that still fits (earliest row on ties).
fn best_fit_decreasing(lens: &[usize], max: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).filter(|&i| lens[i] > 0).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lens[i]), i));
    let mut rows: Vec<Vec<usize>> = Vec::new();
    // room left -> rows with that room, earliest first
    let mut by_room: BTreeMap<usize, std::collections::BTreeSet<usize>> = BTreeMap::new();
    let mut room_of: Vec<usize> = Vec::new();
    for i in order {
        let len = lens[i];
        let found = by_room
            .range(len..)
            .next()
            .and_then(|(&room, set)| set.first().map(|&r| (room, r)));
        let row = match found {
            Some((room, r)) => {
                let set = by_room.get_mut(&room).expect("room just found");
                set.remove(&r);
                if set.is_empty() {
                    by_room.remove(&room);
                }
                r
            }
            None => {
                rows.push(Vec::new());
                room_of.push(max);
                rows.len() - 1
            }
        };
        rows[row].push(i);
        room_of[row] -= len;
        by_room.entry(room_of[row]).or_default().insert(row);
    }
    rows
}

fn build_row(items: &[EncodedSequence], lens: &[usize], members: Vec<usize>) -> PackedRow {
    let total: usize = members.iter().map(|&i| lens[i]).sum();
    let mut row = PackedRow {
        input_ids: Vec::with_capacity(total),
        labels: Vec::with_capacity(total),
        position_ids: Vec::with_capacity(total),
        segment_ids: Vec::with_capacity(total),
        examples: Vec::new(),
    };
    for (segment, &i) in members.iter().enumerate() {
        let len = lens[i];
        let item = &items[i];
        row.input_ids.extend_from_slice(&item.input_ids[..len]);
        row.labels.push(IGNORE_INDEX);
        row.labels.extend_from_slice(&item.labels[1..len]);
        row.position_ids.extend(0..len as u32);
        row.segment_ids
            .extend(std::iter::repeat_n(segment as u32 + 1, len));
    }
    row.examples = members;
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_assign_rows() {
        assert_eq!(
            sequential(&[3, 2, 4, 0, 1], 5),
            vec![vec![0, 1], vec![2, 4]]
        );
        // 4 → row 0 (room 1); 3 → row 1 (room 2); 2 → row 1 (room 0); 1 → row 0.
        assert_eq!(
            best_fit_decreasing(&[2, 4, 1, 3], 5),
            vec![vec![1, 2], vec![3, 0]]
        );
        assert!(sequential(&[], 5).is_empty());
    }
}
