//! Adding, removing, choosing and switching adapters.

use bone_io::FileError;
use burn::module::Module;
use burn::tensor::backend::Backend;

use super::AdaptedLinear;
use crate::adapter::Adapter;
use crate::error::{AdapterError, Result};
use crate::spec::AdapterSpec;

impl<B: Backend> AdaptedLinear<B> {
    /// Builds an adapter from `spec` for this layer's shapes and adds it under `name`.
    ///
    /// The first adapter added becomes active; later ones are added inactive (as in PEFT's
    /// `add_adapter`): use [`set_active`](Self::set_active) to switch or combine.
    ///
    /// # Errors
    /// A duplicate name, or an invalid spec for this layer (rank 0, Bat divisibility, …); the
    /// error names the layer.
    pub fn add_adapter(
        &mut self,
        name: &str,
        spec: &AdapterSpec,
        device: &B::Device,
    ) -> Result<()> {
        self.ensure_new_name(name)?;
        let adapter = spec.build(&self.state.path, self.d_input(), self.d_output(), device)?;
        self.push_adapter(name, adapter);
        Ok(())
    }

    /// Adds a ready-made adapter (e.g. read from a file) under `name`, with the same
    /// activation rule as [`add_adapter`](Self::add_adapter).
    ///
    /// # Errors
    /// A duplicate name, or an adapter built for other shapes.
    pub fn insert_adapter(&mut self, name: &str, adapter: Adapter<B>) -> Result<()> {
        self.ensure_new_name(name)?;
        if adapter.d_output() != self.d_output() {
            return Err(FileError::ShapeMismatch {
                file: "<adapter>".into(),
                key: name.into(),
                layer: Some(self.state.path.clone()),
                expected: vec![self.d_output()],
                found: vec![adapter.d_output()],
            }
            .into());
        }
        self.push_adapter(name, adapter);
        Ok(())
    }

    /// Removes the adapter called `name` and returns it.
    ///
    /// # Errors
    /// An unknown name, or an adapter that is merged (unmerge first).
    pub fn delete_adapter(&mut self, name: &str) -> Result<Adapter<B>> {
        let index = self.require(name)?;
        if self.state.merged.iter().any(|m| m == name) {
            return Err(AdapterError::AdapterMerged {
                name: name.into(),
                layer: self.state.path.clone(),
            });
        }
        self.state.names.remove(index);
        self.state.active.retain(|a| a != name);
        Ok(self.adapters.remove(index))
    }

    /// Makes exactly `names` active, in this order. Merged adapters are unmerged first (PEFT
    /// does the same), and only active adapters' parameters require gradients.
    ///
    /// # Errors
    /// An unknown name (nothing changes), or a Bat unmerge that fails.
    pub fn set_active(&mut self, names: &[&str]) -> Result<()> {
        for name in names {
            self.require(name)?;
        }
        self.activate_present(names)
    }

    /// Like [`set_active`](Self::set_active), but names this layer does not hold are skipped:
    /// used by models, where an adapter may target only some layers.
    pub(crate) fn activate_present(&mut self, names: &[&str]) -> Result<()> {
        if self.is_merged() {
            log::warn!(
                "layer `{}`: unmerging adapters before switching the active set",
                self.state.path
            );
            self.unmerge()?;
        }
        let mut active = Vec::new();
        for name in names {
            if self.index_of(name).is_some() && !active.iter().any(|a: &String| a == name) {
                active.push(name.to_string());
            }
        }
        self.state.active = active;
        self.refresh_require_grad();
        Ok(())
    }

    /// Turns every adapter off: the layer computes the base output. Merged adapters are
    /// unmerged first, so the base weight is restored.
    ///
    /// # Errors
    /// A Bat unmerge that fails (the layer is then left as it was).
    pub fn disable_adapters(&mut self) -> Result<()> {
        if self.is_merged() {
            self.unmerge()?;
        }
        self.state.disabled = true;
        Ok(())
    }

    /// Turns the active adapters back on after [`disable_adapters`](Self::disable_adapters).
    pub fn enable_adapters(&mut self) {
        self.state.disabled = false;
    }

    /// Whether the base weight and bias are trained too (full fine-tuning). Off by default.
    pub fn set_base_trainable(&mut self, trainable: bool) {
        self.state.base_trainable = trainable;
        let base = self.base.clone();
        self.base = if trainable {
            let mut base = base;
            base.weight = base.weight.set_require_grad(true);
            base.bias = base.bias.map(|b| b.set_require_grad(true));
            base
        } else {
            base.no_grad()
        };
    }

    /// Whether the base weights are trainable.
    pub fn base_trainable(&self) -> bool {
        self.state.base_trainable
    }

    /// Parameters that an optimiser would train: those of the active adapters (and of the base
    /// when [`set_base_trainable`](Self::set_base_trainable) is on).
    pub fn trainable_params(&self) -> usize {
        let adapters: usize = self
            .adapters()
            .filter(|(name, _)| self.state.active.iter().any(|a| a == name))
            .map(|(_, adapter)| adapter.num_params())
            .sum();
        let base = if self.state.base_trainable {
            self.base.num_params()
        } else {
            0
        };
        adapters + base
    }

    /// Parameters of the base layer (weight and bias).
    pub fn base_params(&self) -> usize {
        self.base.num_params()
    }

    fn push_adapter(&mut self, name: &str, adapter: Adapter<B>) {
        let first = self.state.names.is_empty();
        self.state.names.push(name.to_string());
        self.adapters.push(adapter);
        if first {
            self.state.active.push(name.to_string());
        }
        self.refresh_require_grad();
    }

    fn ensure_new_name(&self, name: &str) -> Result<()> {
        if self.index_of(name).is_some() {
            return Err(AdapterError::DuplicateAdapter {
                name: name.into(),
                layer: self.state.path.clone(),
            });
        }
        Ok(())
    }

    pub(crate) fn require(&self, name: &str) -> Result<usize> {
        self.index_of(name)
            .ok_or_else(|| AdapterError::UnknownAdapter {
                name: name.into(),
                layer: self.state.path.clone(),
                available: self.state.names.join(", "),
            })
    }

    fn refresh_require_grad(&mut self) {
        let adapters = std::mem::take(&mut self.adapters);
        self.adapters = adapters
            .into_iter()
            .zip(&self.state.names)
            .map(|(adapter, name)| {
                let active = self.state.active.iter().any(|a| a == name);
                adapter.with_require_grad(active)
            })
            .collect();
    }
}
