//! Optimiser plumbing for resumable training: stable parameter ids, an optimiser whose state
//! the trainer can checkpoint while burn-train's `Learner` owns it, and global-norm gradient
//! clipping as PyTorch's `clip_grad_norm_` does it.

use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, MultiGradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

/// Gives every parameter an id derived from its module path, so that optimiser state saved by
/// one process can be loaded by another (Burn draws random ids at construction).
pub fn with_stable_param_ids<B: Backend, M: Module<B>>(module: M) -> M {
    module.map(&mut StableIds { path: Vec::new() })
}

struct StableIds {
    path: Vec<String>,
}

impl StableIds {
    fn id(&self) -> ParamId {
        // FNV-1a over the dotted path: stable across runs, platforms and Rust versions.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.path.join(".").bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        ParamId::from(hash)
    }
}

impl<B: Backend> ModuleMapper<B> for StableIds {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (_, tensor, mapper) = param.consume();
        Param::from_mapped_value(self.id(), tensor, mapper)
    }
}

/// An optimiser shared between burn-train's `Learner` (which steps it) and the trainer (which
/// saves and restores its state in checkpoints).
pub struct SharedOptimizer<O> {
    inner: Arc<Mutex<O>>,
}

impl<O> Clone for SharedOptimizer<O> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<O> SharedOptimizer<O> {
    /// Wraps `optimizer`.
    pub fn new(optimizer: O) -> Self {
        Self {
            inner: Arc::new(Mutex::new(optimizer)),
        }
    }

    /// Exclusive access to the optimiser (to read or replace its state).
    pub fn lock(&self) -> MutexGuard<'_, O> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<M, B, O> Optimizer<M, B> for SharedOptimizer<O>
where
    M: AutodiffModule<B>,
    B: AutodiffBackend,
    O: Optimizer<M, B>,
{
    type Record = O::Record;

    fn step(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        self.lock().step(lr, module, grads)
    }

    fn step_multi(&mut self, lr: f64, module: M, grads: MultiGradientsParams) -> M {
        self.lock().step_multi(lr, module, grads)
    }

    fn to_record(&self) -> Self::Record {
        self.lock().to_record()
    }

    fn load_record(self, record: Self::Record) -> Self {
        {
            let mut guard = self.lock();
            let current = guard.clone();
            *guard = current.load_record(record);
        }
        self
    }
}

/// Scales all gradients together so that their global L2 norm is at most `max_norm`
/// (PyTorch's `clip_grad_norm_`; Burn's built-in clipping works per tensor). Returns the norm
/// before clipping.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> (GradientsParams, f64) {
    let mut collector = SquaredNorm::<B> {
        grads: &grads,
        total: None,
    };
    model.visit(&mut collector);
    let Some(total) = collector.total else {
        return (grads, 0.0);
    };
    let norm = f64::from(total.into_scalar().to_f32()).sqrt();
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        model.visit(&mut Scale::<B> {
            grads: &mut grads,
            scale,
            _backend: std::marker::PhantomData,
        });
    }
    (grads, norm)
}

trait ToF32 {
    fn to_f32(self) -> f32;
}

impl<E: burn::tensor::ElementConversion> ToF32 for E {
    fn to_f32(self) -> f32 {
        self.elem()
    }
}

struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let sq = grad.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + sq,
                None => sq,
            });
        }
    }
}

struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    scale: f64,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, grad.mul_scalar(self.scale));
        }
    }
}
