//! The gradient all-reduce: burn-collective over this process's devices, then a sum over the
//! ranks (see [`register`] for why not burn-collective's global level); one flat buffer per
//! device per step.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::bail;
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_collective::{AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation};

use super::world::World;

static OPS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static NANOS: AtomicU64 = AtomicU64::new(0);

/// What this process sent through burn-collective so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Traffic {
    /// All-reduce operations (one per step for the gradients, one for the step's outputs).
    pub ops: u64,
    /// Bytes of the buffers this process handed to the all-reduces (f32, every device).
    pub bytes: u64,
    /// Wall-clock seconds spent in them (waiting for the slowest rank included).
    pub seconds: f64,
}

/// What [`Traffic`] counted so far.
pub fn traffic() -> Traffic {
    Traffic {
        ops: OPS.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
        seconds: NANOS.load(Ordering::Relaxed) as f64 * 1e-9,
    }
}

/// Registers each of `devices` as a burn-collective peer (a tree over them) when there are
/// several.
///
/// Across processes the sum goes through [`control::sum_over_ranks`](super::control) instead
/// of burn-collective's global level: in burn-collective 0.21.0 a node's `SyncService::sync`
/// clears a copy of its list of synced peers (`syncing_peers.lock().unwrap().to_vec()` …
/// `.clear()`), so the second global all-reduce of a process waits forever (seen here with
/// two ranks on NdArray: the first all-reduce completes, the second hangs in `sync`), and its
/// data service waits on `Notify::notified()` after releasing its lock, which can lose a
/// wake-up.
///
/// # Errors
/// The registration not complete within `--peer-timeout`.
pub(super) fn register<B: Backend>(world: &World, devices: &[B::Device]) -> anyhow::Result<()> {
    if devices.len() < 2 {
        return Ok(());
    }
    let config = CollectiveConfig::default()
        .with_num_devices(devices.len())
        .with_local_all_reduce_strategy(AllReduceStrategy::Tree(2));
    let (tx, rx) = std::sync::mpsc::channel();
    for (d, device) in devices.iter().enumerate() {
        let (tx, config, device) = (tx.clone(), config.clone(), device.clone());
        let peer = PeerId(world.peer_id(d));
        std::thread::spawn(move || {
            let _ = tx.send(burn_collective::register::<B>(peer, device, config));
        });
    }
    for _ in devices {
        match rx.recv_timeout(world.peer_timeout) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!(
                "rank {}: burn-collective refused the registration: {e:?}",
                world.rank
            ),
            Err(_) => bail!(
                "rank {}: burn-collective's registration of {} devices did not complete within {:.0} s (--peer-timeout)",
                world.rank,
                devices.len(),
                world.peer_timeout.as_secs_f64()
            ),
        }
    }
    Ok(())
}

/// Sums the per-device gradients of one step over every device of every rank.
///
/// `per_device[d]` holds device `d`'s gradients (`None`: it trained on no row this step;
/// it takes part with zeros). The trainable tensors of `model` (those requiring a gradient;
/// the frozen base is never sent) are flattened in the module's order into one buffer per
/// device, summed by burn-collective, and returned as the gradients of `model`.
pub fn all_reduce_grads<B, M>(
    world: &World,
    model: &M,
    per_device: Vec<Option<GradientsParams>>,
    devices: &[B::Device],
) -> GradientsParams
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let flats: Vec<Tensor<B::InnerBackend, 1>> = per_device
        .iter()
        .zip(devices)
        .map(|(grads, device)| {
            let mut flatten = Flatten::<B> {
                grads: grads.as_ref(),
                device: device.clone(),
                pieces: Vec::new(),
            };
            model.visit(&mut flatten);
            Tensor::cat(flatten.pieces, 0)
        })
        .collect();
    let sum = reduce(world, flats);
    let model_device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Default::default);
    let mut unflatten = Unflatten::<B> {
        flat: sum.to_device(&model_device),
        offset: 0,
        out: GradientsParams::new(),
    };
    model.visit(&mut unflatten);
    unflatten.out
}

/// Sums `value` (this rank's contribution, on its first device) over the ranks: for the
/// step's outputs (loss, logits) every rank reports the global batch's.
pub fn all_reduce_sum<B: AutodiffBackend>(
    world: &World,
    value: Tensor<B, 1>,
    devices: &[B::Device],
) -> Tensor<B, 1> {
    let value = value.inner();
    let n = value.dims()[0];
    let device = value.device();
    let mut flats = vec![value];
    flats.extend(devices[1..].iter().map(|d| Tensor::zeros([n], d)));
    Tensor::from_inner(reduce(world, flats).to_device(&device))
}

/// One all-reduce (sum) of one buffer per local device: over the devices by burn-collective,
/// then over the ranks; returns device 0's result.
fn reduce<B: Backend>(world: &World, flats: Vec<Tensor<B, 1>>) -> Tensor<B, 1> {
    let start = Instant::now();
    let len = flats[0].dims()[0];
    let bytes = len * 4 * flats.len();
    let local = if flats.len() == 1 {
        flats.into_iter().next().expect("one device")
    } else {
        reduce_devices(world, flats)
    };
    let sum = if world.world_size > 1 {
        let device = local.device();
        let mut values: Vec<f32> = local
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("converted to f32");
        super::control::sum_over_ranks(world, &mut values);
        Tensor::from_data(TensorData::new(values, [len]), &device)
    } else {
        local
    };
    OPS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    NANOS.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    sum
}

/// burn-collective's all-reduce (a tree) over this process's devices.
fn reduce_devices<B: Backend>(world: &World, flats: Vec<Tensor<B, 1>>) -> Tensor<B, 1> {
    let results: Vec<Tensor<B, 1>> = std::thread::scope(|scope| {
        let handles: Vec<_> = flats
            .into_iter()
            .enumerate()
            .map(|(d, flat)| {
                let peer = PeerId(world.peer_id(d));
                scope.spawn(move || {
                    let primitive = flat.into_primitive().tensor();
                    burn_collective::all_reduce::<B>(peer, primitive, ReduceOperation::Sum)
                        .map(|t| Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(t)))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))
                    .unwrap_or_else(|e| {
                        panic!(
                            "rank {}: burn-collective all-reduce failed: {e:?}",
                            world.rank
                        )
                    })
            })
            .collect()
    });
    results.into_iter().next().expect("at least one device")
}

/// Gathers the gradients of the trainable tensors, in visiting order, as flat pieces on one
/// device (zeros for a tensor without a gradient).
struct Flatten<'a, B: AutodiffBackend> {
    grads: Option<&'a GradientsParams>,
    device: B::Device,
    pieces: Vec<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let n = value.shape().num_elements();
        let grad = self
            .grads
            .and_then(|g| g.get::<B::InnerBackend, D>(param.id))
            .map(|g| g.to_device(&self.device).reshape([n]));
        self.pieces
            .push(grad.unwrap_or_else(|| Tensor::zeros([n], &self.device)));
    }
}

/// Cuts the summed buffer back into the trainable tensors' gradients.
struct Unflatten<B: AutodiffBackend> {
    flat: Tensor<B::InnerBackend, 1>,
    offset: usize,
    out: GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Unflatten<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let shape = value.shape();
        let n = shape.num_elements();
        let grad = self.flat.clone().narrow(0, self.offset, n).reshape(shape);
        self.offset += n;
        self.out.register::<B::InnerBackend, D>(param.id, grad);
    }
}
