//! The adapted forward pass.

use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{FloatDType, Tensor};

use super::AdaptedLinear;
use crate::adapter::Adapter;

impl<B: Backend> AdaptedLinear<B> {
    /// Applies the layer with its active, unmerged adapters.
    ///
    /// `y = x · W_eff + b + Σ additive(x)`, where `W_eff` is the stored weight with the active
    /// unmerged Bat adapters applied (usually just the stored weight) and the sum runs over the
    /// active unmerged Bone and LoRA adapters.
    ///
    /// # Shapes
    /// - x: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        // One [rows, d_input] × [d_input, d_output] product instead of a batched matmul over
        // the leading dimensions: a single large GEMM is several times faster on CPUs.
        let dims = x.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let mut out_dims = dims;
        out_dims[D - 1] = self.d_output();
        let x: Tensor<B, 2> = x.reshape([rows, dims[D - 1]]);

        let pending = self.pending_adapters();
        if pending.is_empty() {
            return self.base.forward(x).reshape(out_dims);
        }
        let has_bat = pending.iter().any(|(_, a)| !a.is_additive());
        let weight = if has_bat {
            self.effective_weight()
        } else {
            self.base.weight.val()
        };
        let bias = self.base.bias.as_ref().map(|b| b.val());
        let mut y = linear(x.clone(), weight, bias);
        for (_, adapter) in pending {
            if let Some(delta) = adapter.forward_additive(x.clone()) {
                y = y + delta;
            }
        }
        y.reshape(out_dims)
    }

    /// The weight that [`forward`](Self::forward) multiplies by, in Burn's layout
    /// `[d_input, d_output]` (the stored weight with pending Bat adapters applied; additive
    /// adapters that are not merged are not included).
    pub fn effective_weight(&self) -> Tensor<B, 2> {
        let stored = self.base.weight.val();
        let pending_bats: Vec<String> = self
            .pending_adapters()
            .into_iter()
            .filter(|(_, a)| !a.is_additive())
            .map(|(n, _)| n.to_string())
            .collect();
        if pending_bats.is_empty() {
            return stored;
        }
        let weight = stored.clone().cast(FloatDType::F32);
        let merged_bats = self.merged_bats();
        let mut all = merged_bats.clone();
        all.extend(pending_bats);
        let order = self.ordered_bats(&all);
        let additive = self.merged_additive_delta();
        let without = match &additive {
            Some(delta) => weight - delta.clone(),
            None => weight,
        };
        let adapted =
            match self.apply_bats(without.clone(), &merged_bats, &order, &mut |_, _| Ok(())) {
                Ok(w) => w,
                Err(e) => {
                    // Only reachable when a merged Bat block is singular: fall back to applying the
                    // pending adapters on top of the merged ones.
                    log::error!("{e}; applying the pending Bat adapters after the merged ones");
                    let pending: Vec<String> = order[merged_bats.len().min(order.len())..].to_vec();
                    self.apply_bats(without, &[], &pending, &mut |_, _| Ok(()))
                        .unwrap_or_else(|_| stored.clone().cast(FloatDType::F32))
                }
            };
        match additive {
            Some(delta) => adapted + delta,
            None => adapted,
        }
        .cast(stored.dtype())
    }

    /// Active adapters that are not merged, with their names, in order; empty when adapters
    /// are disabled.
    pub(super) fn pending_adapters(&self) -> Vec<(&str, &Adapter<B>)> {
        if self.state.disabled {
            return Vec::new();
        }
        self.state
            .active
            .iter()
            .filter(|name| !self.state.merged.contains(name))
            .filter_map(|name| self.adapter(name).map(|a| (name.as_str(), a)))
            .collect()
    }

    /// The sum of the merged Bone and LoRA updates, if any, in f32.
    pub(super) fn merged_additive_delta(&self) -> Option<Tensor<B, 2>> {
        let weight = self.base.weight.val();
        self.state
            .merged
            .iter()
            .filter_map(|name| self.adapter(name))
            .filter(|a| a.is_additive())
            .map(|a| a.delta_weight(weight.clone()).cast(FloatDType::F32))
            .reduce(|acc, d| acc + d)
    }
}
