//! Models that hold [`AdaptedLinear`] layers, and the adapter operations on whole models.

use burn::tensor::backend::Backend;

use crate::adapted::{AdaptedLinear, MergeReport};
use crate::error::{AdapterError, Result};
use crate::peft::AdapterConfig;

/// A model (or any module tree) whose adaptable linear layers can be visited.
///
/// Implement it by calling `f` on every [`AdaptedLinear`] in a fixed order; every operation of
/// [`AdapterHostExt`] and of [`peft`](crate::peft) then works on the model.
pub trait AdapterHost<B: Backend> {
    /// Calls `f` on every adaptable linear layer.
    fn visit_linears(&self, f: &mut dyn FnMut(&AdaptedLinear<B>));
    /// Calls `f` on every adaptable linear layer, mutably.
    fn visit_linears_mut(&mut self, f: &mut dyn FnMut(&mut AdaptedLinear<B>));
}

/// Adapter operations on a whole [`AdapterHost`], mirroring PEFT's `PeftModel`.
pub trait AdapterHostExt<B: Backend>: AdapterHost<B> {
    /// Module paths of every adaptable layer.
    fn linear_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        self.visit_linears(&mut |l| paths.push(l.path().to_string()));
        paths
    }

    /// Adds adapter `name` to every layer `config` targets and returns their paths. The
    /// first adapter added to a layer becomes active there.
    ///
    /// # Errors
    /// No layer matched; an invalid spec for some layer (naming it); a duplicate name. On
    /// error no layer is changed.
    fn add_adapter(
        &mut self,
        name: &str,
        config: &AdapterConfig,
        device: &B::Device,
    ) -> Result<Vec<String>> {
        let selector = config.selector()?;
        let mut targets = Vec::new();
        let mut candidates = 0usize;
        let mut example = String::new();
        let mut first_error = None;
        self.visit_linears(&mut |layer| {
            candidates += 1;
            if example.is_empty() {
                example = layer.path().to_string();
            }
            if selector.selects(layer.path()) {
                // Validate before changing anything.
                let spec = selector.spec_for(layer.path());
                if first_error.is_none() {
                    if layer.adapter(name).is_some() {
                        first_error = Some(AdapterError::DuplicateAdapter {
                            name: name.into(),
                            layer: layer.path().into(),
                        });
                    } else if let Err(e) =
                        spec.build::<B>(layer.path(), layer.d_input(), layer.d_output(), device)
                    {
                        first_error = Some(e);
                    }
                }
                targets.push(layer.path().to_string());
            }
        });
        if let Some(e) = first_error {
            return Err(e);
        }
        if targets.is_empty() {
            return Err(AdapterError::NoTargetMatched {
                targets: config.target_modules.to_string(),
                candidates,
                example,
            });
        }
        let mut result = Ok(());
        self.visit_linears_mut(&mut |layer| {
            if result.is_ok() && selector.selects(layer.path()) {
                let spec = selector.spec_for(layer.path());
                result = layer.add_adapter(name, &spec, device);
            }
        });
        result.map(|_| targets)
    }

    /// Names of the adapters present on any layer, in first-seen order.
    fn adapter_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        self.visit_linears(&mut |l| {
            for n in l.adapter_names() {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        });
        names
    }

    /// Makes exactly `names` active on every layer (layers without one of them skip it).
    ///
    /// # Errors
    /// A name held by no layer (nothing changes), or a failing Bat unmerge.
    fn set_active_adapters(&mut self, names: &[&str]) -> Result<()> {
        self.require_adapters(names)?;
        let mut result = Ok(());
        self.visit_linears_mut(&mut |l| {
            if result.is_ok() {
                result = l.activate_present(names);
            }
        });
        result
    }

    /// Disables every adapter (unmerging merged ones): the model computes the base output.
    ///
    /// # Errors
    /// A failing Bat unmerge.
    fn disable_adapters(&mut self) -> Result<()> {
        let mut result = Ok(());
        self.visit_linears_mut(&mut |l| {
            if result.is_ok() {
                result = l.disable_adapters();
            }
        });
        result
    }

    /// Re-enables the active adapters.
    fn enable_adapters(&mut self) {
        self.visit_linears_mut(&mut |l| l.enable_adapters());
    }

    /// Deletes adapter `name` from every layer holding it.
    ///
    /// # Errors
    /// A name held by no layer, or merged somewhere (nothing changes).
    fn delete_adapter(&mut self, name: &str) -> Result<()> {
        self.require_adapters(&[name])?;
        let mut merged_at = None;
        self.visit_linears(&mut |l| {
            if merged_at.is_none() && l.merged_adapters().iter().any(|m| m == name) {
                merged_at = Some(l.path().to_string());
            }
        });
        if let Some(layer) = merged_at {
            return Err(AdapterError::AdapterMerged {
                name: name.into(),
                layer,
            });
        }
        let mut result = Ok(());
        self.visit_linears_mut(&mut |l| {
            if result.is_ok() && l.adapter(name).is_some() {
                result = l.delete_adapter(name).map(|_| ());
            }
        });
        result
    }

    /// Merges adapters (the active ones when `names` is `None`) on every layer.
    ///
    /// # Errors
    /// Unknown names; with `safe`, a non-finite merge, naming adapter and layer. Layers merged
    /// before a failing one stay merged; [`unmerge_adapters`](Self::unmerge_adapters) reverts
    /// them.
    fn merge_adapters(&mut self, names: Option<&[&str]>, safe: bool) -> Result<Vec<MergeReport>> {
        if let Some(names) = names {
            self.require_adapters(names)?;
        }
        let mut reports = Vec::new();
        let mut result = Ok(());
        self.visit_linears_mut(&mut |l| {
            if result.is_err() {
                return;
            }
            let present: Option<Vec<&str>> = names.map(|names| {
                names
                    .iter()
                    .copied()
                    .filter(|n| l.adapter(n).is_some())
                    .collect()
            });
            match l.merge(present.as_deref(), safe) {
                Ok(report) => reports.push(report),
                Err(e) => result = Err(e),
            }
        });
        result.map(|_| reports)
    }

    /// Unmerges every merged adapter on every layer.
    ///
    /// # Errors
    /// A singular Bat block.
    fn unmerge_adapters(&mut self) -> Result<()> {
        let mut result = Ok(());
        self.visit_linears_mut(&mut |l| {
            if result.is_ok() && l.is_merged() {
                result = l.unmerge();
            }
        });
        result
    }

    /// Trainable parameters over all adaptable layers (active adapters, plus bases that are
    /// set trainable).
    fn adapter_trainable_params(&self) -> usize {
        let mut total = 0;
        self.visit_linears(&mut |l| total += l.trainable_params());
        total
    }

    /// Fails with [`AdapterError::UnknownAdapter`] for a name no layer holds.
    fn require_adapters(&self, names: &[&str]) -> Result<()> {
        let present = self.adapter_names();
        for name in names {
            if !present.iter().any(|p| p == name) {
                return Err(AdapterError::UnknownAdapter {
                    name: name.to_string(),
                    layer: "<model>".into(),
                    available: present.join(", "),
                });
            }
        }
        Ok(())
    }
}

impl<B: Backend, T: AdapterHost<B> + ?Sized> AdapterHostExt<B> for T {}

/// A plain list of layers is a host too (handy for tests and custom models).
impl<B: Backend> AdapterHost<B> for Vec<AdaptedLinear<B>> {
    fn visit_linears(&self, f: &mut dyn FnMut(&AdaptedLinear<B>)) {
        self.iter().for_each(f);
    }

    fn visit_linears_mut(&mut self, f: &mut dyn FnMut(&mut AdaptedLinear<B>)) {
        self.iter_mut().for_each(f);
    }
}
