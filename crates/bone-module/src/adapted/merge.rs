//! Merging adapters into the base weight and taking them out again.
//!
//! The stored weight of a merged layer is always `bats(W₀) + Σ ΔW_additive`: the merged Bat
//! adapters applied to the base weight in their canonical order (the order of the active
//! adapters), plus the merged Bone and LoRA updates. Merging in any order therefore gives the
//! same weight as the unmerged forward.

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, FloatDType, Tensor};

use super::AdaptedLinear;
use crate::adapter::Adapter;
use crate::error::{AdapterError, Result};

/// What a [`merge`](AdaptedLinear::merge) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Adapters merged by this call, in order.
    pub merged: Vec<String>,
    /// Adapters asked for that were already merged (a no-op, with a warning).
    pub already_merged: Vec<String>,
}

impl<B: Backend> AdaptedLinear<B> {
    /// Merges adapters into the base weight: `names`, or the active adapters when `None`.
    ///
    /// Bone and LoRA add their `ΔW`; Bat replaces `W` by `W + ΔW(W)`, applied to the weight
    /// without the additive terms and in the active order, so that the result equals the
    /// unmerged forward. Merging an adapter twice is a no-op with a warning. With `safe`, the
    /// weight is checked for NaN and infinity after each adapter and nothing changes unless
    /// all pass.
    ///
    /// # Errors
    /// An unknown name, or (with `safe`) a non-finite merged weight, naming the adapter; the
    /// weights are then untouched.
    pub fn merge(&mut self, names: Option<&[&str]>, safe: bool) -> Result<MergeReport> {
        let names: Vec<String> = match names {
            Some(names) => names.iter().map(|n| n.to_string()).collect(),
            None => self.state.active.clone(),
        };
        for name in &names {
            self.require(name)?;
        }
        let mut report = MergeReport::default();
        for name in names {
            if self.state.merged.contains(&name) || report.merged.contains(&name) {
                log::warn!(
                    "adapter `{name}` is already merged into layer `{}`; merging it again does nothing",
                    self.state.path
                );
                report.already_merged.push(name);
            } else {
                report.merged.push(name);
            }
        }
        if report.merged.is_empty() {
            return Ok(report);
        }

        let path = self.state.path.clone();
        let new = report.merged.clone();
        let mut check = |name: &str, w: &Tensor<B, 2>| -> Result<()> {
            if safe && new.iter().any(|n| n == name) {
                let count = non_finite_count(w);
                if count > 0 {
                    return Err(AdapterError::NonFiniteMerge {
                        name: name.into(),
                        layer: path.clone(),
                        count,
                    });
                }
            }
            Ok(())
        };

        let merged_bats = self.merged_bats();
        let mut all_bats = merged_bats.clone();
        all_bats.extend(new.iter().filter(|n| self.is_bat(n)).cloned());
        let order = self.ordered_bats(&all_bats);

        let mut weight = self.base.weight.val().cast(FloatDType::F32);
        let old_additive = self.merged_additive_delta();
        if let Some(delta) = &old_additive {
            weight = weight - delta.clone();
        }
        weight = self.apply_bats(weight, &merged_bats, &order, &mut check)?;
        if let Some(delta) = old_additive {
            weight = weight + delta;
        }
        let mut additive = Vec::new();
        for name in new.iter().filter(|n| !self.is_bat(n)) {
            let adapter = &self.adapters[self.require(name)?];
            weight = weight.clone() + adapter.delta_weight(weight.clone()).cast(FloatDType::F32);
            check(name, &weight)?;
            additive.push(name.clone());
        }

        self.set_base_weight(weight);
        let old_additive_names: Vec<String> = self
            .state
            .merged
            .iter()
            .filter(|n| !self.is_bat(n))
            .cloned()
            .collect();
        self.state.merged = order;
        self.state.merged.extend(old_additive_names);
        self.state.merged.extend(additive);
        Ok(report)
    }

    /// Takes every merged adapter out of the base weight, in reverse merge order: additive
    /// updates are subtracted, Bat is inverted with `(I + B_a)⁻¹` in f32.
    ///
    /// # Errors
    /// A singular Bat block, naming the adapter; the weights are then left as they were.
    pub fn unmerge(&mut self) -> Result<()> {
        if self.state.merged.is_empty() {
            log::warn!(
                "layer `{}` has no merged adapter; unmerge does nothing",
                self.state.path
            );
            return Ok(());
        }
        let mut weight = self.base.weight.val().cast(FloatDType::F32);
        if let Some(delta) = self.merged_additive_delta() {
            weight = weight - delta;
        }
        weight = self.restore_bats(weight, &self.merged_bats())?;
        self.set_base_weight(weight);
        self.state.merged.clear();
        Ok(())
    }

    /// Names of the merged Bat adapters, in the order they were applied.
    pub(super) fn merged_bats(&self) -> Vec<String> {
        self.state
            .merged
            .iter()
            .filter(|n| self.is_bat(n))
            .cloned()
            .collect()
    }

    /// The Bat adapters among `names` in the order they apply: by position among the active
    /// adapters (inactive ones last), then by merge order.
    pub(super) fn ordered_bats(&self, names: &[String]) -> Vec<String> {
        let position = |list: &[String], name: &String| {
            list.iter().position(|n| n == name).unwrap_or(usize::MAX)
        };
        let mut bats: Vec<String> = Vec::new();
        for name in names {
            if self.is_bat(name) && !bats.contains(name) {
                bats.push(name.clone());
            }
        }
        bats.sort_by_key(|n| {
            (
                position(&self.state.active, n),
                position(&self.state.merged, n),
            )
        });
        bats
    }

    /// Turns a weight with the Bat sequence `applied` into one with the sequence `target`:
    /// applies the missing tail when `applied` is a prefix of `target`, otherwise restores
    /// the base weight first. `check` runs after each adapter applied.
    pub(super) fn apply_bats(
        &self,
        weight: Tensor<B, 2>,
        applied: &[String],
        target: &[String],
        check: &mut dyn FnMut(&str, &Tensor<B, 2>) -> Result<()>,
    ) -> Result<Tensor<B, 2>> {
        let (mut weight, start) = if target.starts_with(applied) {
            (weight, applied.len())
        } else {
            (self.restore_bats(weight, applied)?, 0)
        };
        for name in &target[start..] {
            if let Some(Adapter::Bat(bat)) = self.adapter(name) {
                weight = bat.adapted_weight(weight);
                check(name, &weight)?;
            }
        }
        Ok(weight)
    }

    /// Inverts the Bat sequence `applied` (last applied first).
    fn restore_bats(&self, mut weight: Tensor<B, 2>, applied: &[String]) -> Result<Tensor<B, 2>> {
        for name in applied.iter().rev() {
            if let Some(Adapter::Bat(bat)) = self.adapter(name) {
                weight = bat.restore_weight(weight).map_err(|singular| {
                    AdapterError::SingularBatBlock {
                        name: name.clone(),
                        layer: self.state.path.clone(),
                        block: singular.block,
                        pivot: singular.pivot,
                    }
                })?;
            }
        }
        Ok(weight)
    }

    fn is_bat(&self, name: &str) -> bool {
        matches!(self.adapter(name), Some(Adapter::Bat(_)))
    }

    /// Stores a weight computed in f32, in the dtype the base weight had.
    fn set_base_weight(&mut self, weight: Tensor<B, 2>) {
        let trainable = self.state.base_trainable;
        let dtype = self.base.weight.val().dtype();
        let weight = weight.cast(dtype).detach().set_require_grad(trainable);
        self.base.weight = self.base.weight.clone().map(|_| weight);
    }
}

/// Number of NaN or infinite entries.
fn non_finite_count<B: Backend>(w: &Tensor<B, 2>) -> usize {
    let count: i64 = w
        .clone()
        .is_finite()
        .bool_not()
        .int()
        .sum()
        .into_scalar()
        .elem();
    count as usize
}
