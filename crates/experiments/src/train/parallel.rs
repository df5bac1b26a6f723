//! One training step split over CPU threads: each thread runs the forward and backward pass
//! of a slice of the batch on its own replica of the model, and the gradients are summed.
//!
//! Burn's CPU backends run most element-wise kernels on one thread, so a step on NdArray keeps
//! about 1.2 cores busy however many there are. Splitting the batch rows over threads uses
//! them all. The result is the full batch's gradient (each slice's mean loss is weighted by
//! its share of the rows), not an average of smaller batches: the optimisation is unchanged.

use std::panic;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::device::BackendKind;

/// How many threads a training step uses on a backend: the available cores on Burn's CPU
/// backends (NdArray, Flex), one elsewhere (a GPU runs a whole batch at once).
pub fn default_step_threads(backend: BackendKind) -> usize {
    if backend.is_cpu() {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    }
}

/// Makes NdArray's matrix products single-threaded when training steps run on several
/// threads: matrixmultiply's own pool would otherwise put two threads per product on each
/// core (SST-2 on 2 cores: 0.36 s/step with its pool, 0.29 s without). Sets
/// `MATMUL_NUM_THREADS=1` unless the user set it; call before the first product, while the
/// process has a single thread.
pub fn keep_products_on_step_threads(backend: BackendKind, step_threads: usize) {
    if backend == BackendKind::Ndarray
        && step_threads > 1
        && std::env::var_os("MATMUL_NUM_THREADS").is_none()
    {
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
}

/// Runs `step` on each part of a batch in its own thread and sums the gradients.
///
/// `step(replica, part)` returns the part's mean loss and its outputs. Each thread gets a fork
/// of `model` (its own autodiff graph, the same parameter ids) and draws its dropout masks
/// from a seed taken from the backend's generator before the threads start (see
/// [`bone_module::with_dropout_seed`]), so `Backend::seed` keeps a run reproducible. Returns
/// the gradients of the full batch's mean loss (each part's loss weighted by its share of the
/// rows) and the outputs in part order.
///
/// A panic in a thread is resumed on the caller's thread.
pub fn parallel_step<B, M, I, O, F>(model: &M, parts: Vec<I>, step: F) -> (GradientsParams, Vec<O>)
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Send,
    I: Send + PartRows,
    O: Send,
    F: Fn(&M, I) -> (Tensor<B, 1>, O) + Sync,
{
    let total: usize = parts.iter().map(PartRows::rows).sum();
    parallel_step_of(model, parts, total, step)
}

/// [`parallel_step`] for `parts` that are a share of a batch weighing `total` in all (rows,
/// or scored tokens): each part's mean loss is weighted by `rows / total`, so the gradients
/// of several calls over the batch's parts add up to those of its mean loss.
pub fn parallel_step_of<B, M, I, O, F>(
    model: &M,
    parts: Vec<I>,
    total: usize,
    step: F,
) -> (GradientsParams, Vec<O>)
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Send,
    I: Send + PartRows,
    O: Send,
    F: Fn(&M, I) -> (Tensor<B, 1>, O) + Sync,
{
    let device = model_device(model);
    let results = run_parts(model, parts, total, std::slice::from_ref(&device), &step);
    let mut accumulator = GradientsAccumulator::<M>::new();
    let mut outputs = Vec::with_capacity(results.len());
    for (grads, output, _) in results {
        accumulator.accumulate(model, grads);
        outputs.push(output);
    }
    (accumulator.grads(), outputs)
}

/// [`parallel_step`] for one rank of a data-parallel run: `parts` are this process's share
/// of a global batch whose parts weigh `total` in all (rows, or scored tokens), spread over
/// the process's devices (part `i` on device `i % devices`, a fork of `model` each); the
/// gradients of each device are summed, then all-reduced over every device of every rank by
/// burn-collective (see [`distributed`](super::distributed)). Every rank must call it once
/// per step, with no part when its share of the batch is empty. Without a data-parallel
/// world it is [`parallel_step`] with the weights over `total`.
pub fn data_parallel_step<B, M, I, O, F>(
    model: &M,
    parts: Vec<I>,
    total: usize,
    step: F,
) -> (GradientsParams, Vec<O>)
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Send,
    I: Send + PartRows,
    O: Send,
    F: Fn(&M, I) -> (Tensor<B, 1>, O) + Sync,
{
    let Some(world) = super::distributed::active() else {
        return parallel_step_of(model, parts, total, step);
    };
    let device = model_device(model);
    let devices = world.devices_on::<B>(&device);
    let results = run_parts(model, parts, total, &devices, &step);
    let mut per_device: Vec<Option<GradientsAccumulator<M>>> =
        (0..devices.len()).map(|_| None).collect();
    let mut outputs = Vec::with_capacity(results.len());
    for (grads, output, d) in results {
        per_device[d]
            .get_or_insert_with(GradientsAccumulator::new)
            .accumulate(model, grads);
        outputs.push(output);
    }
    let per_device = per_device
        .into_iter()
        .map(|a| a.map(|mut a| a.grads()))
        .collect();
    let grads = super::distributed::all_reduce_grads::<B, M>(world, model, per_device, &devices);
    (grads, outputs)
}

/// The device `model` lives on.
fn model_device<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M) -> B::Device {
    model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Default::default)
}

/// Each part on its own thread, on a fork of `model` on device `i % devices.len()`: its
/// gradients (its mean loss weighted by `rows / total`), its output and its device index.
fn run_parts<B, M, I, O, F>(
    model: &M,
    parts: Vec<I>,
    total: usize,
    devices: &[B::Device],
    step: &F,
) -> Vec<(GradientsParams, O, usize)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Send,
    I: Send + PartRows,
    O: Send,
    F: Fn(&M, I) -> (Tensor<B, 1>, O) + Sync,
{
    let seeds: Vec<u64> = parts
        .iter()
        .map(|_| bone_module::backend_seed::<B>(&devices[0]))
        .collect();
    // A clone of a lazily initialised parameter initialises on its own: make every replica
    // start from the same values.
    model.visit(&mut Initialize);
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .zip(seeds)
            .enumerate()
            .map(|(i, (part, seed))| {
                let d = i % devices.len();
                let replica = model.clone().fork(&devices[d]);
                scope.spawn(move || {
                    bone_module::with_dropout_seed(seed, || {
                        let share = part.rows() as f64 / total.max(1) as f64;
                        let (loss, output) = step(&replica, part);
                        let grads = loss.mul_scalar(share).backward();
                        (GradientsParams::from_grads(grads, &replica), output, d)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| panic::resume_unwind(e)))
            .collect()
    })
}

/// Materialises every lazily initialised parameter of the module it visits.
struct Initialize;

impl<B: Backend> ModuleVisitor<B> for Initialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// A batch part that knows its weight in the batch's mean loss.
pub trait PartRows {
    /// Rows (examples) in this part, or the units its mean loss is taken over (the decoder
    /// job's scored tokens).
    fn rows(&self) -> usize;
}
