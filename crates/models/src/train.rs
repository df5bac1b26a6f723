//! Freezing and unfreezing parameters.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Sets `require_grad` of every float parameter of `module`.
struct RequireGrad(bool);

impl<B: Backend> ModuleMapper<B> for RequireGrad {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.set_require_grad(self.0)
    }
}

/// `module` with every float parameter trainable (`true`) or frozen (`false`).
///
/// On a backend without autodiff this only records the intent; build training models on an
/// autodiff backend.
pub fn set_all_trainable<B: Backend, M: Module<B>>(module: M, trainable: bool) -> M {
    module.map(&mut RequireGrad(trainable))
}

/// `module` with every float parameter frozen (how loaded and freshly built base weights
/// start).
pub fn frozen<B: Backend, M: Module<B>>(module: M) -> M {
    set_all_trainable(module, false)
}
