//! Dropout whose masks are cheap on the CPU backends, and reproducible across threads.

use std::any::TypeId;
use std::cell::RefCell;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};

/// Zeroes each element with probability `prob` and scales the rest by `1 / (1 − prob)`, on
/// autodiff backends only (like `burn::nn::Dropout`, whose semantics it keeps).
///
/// Burn 0.21's CPU backends (NdArray, Flex) draw a Bernoulli mask by building a sampler for
/// every element from a ChaCha generator: about a tenth of a BERT training step. On those
/// backends this module draws one 64-bit seed from the backend's generator (so
/// `Backend::seed` still makes runs reproducible) and expands it into the mask with
/// xoshiro256++ on the host, then applies mask and scale in one multiplication. Other
/// backends (WGPU, CUDA) keep Burn's on-device sampling.
///
/// Inside [`with_dropout_seed`] the host masks come from that seed instead of the backend's
/// generator, so that threads training parts of one batch at once draw reproducible masks.
#[derive(Module, Clone, Debug)]
pub struct Dropout {
    /// Probability of zeroing an element, in `[0, 1]`.
    pub prob: f64,
}

impl Dropout {
    /// A dropout layer that zeroes with probability `prob`.
    ///
    /// # Panics
    /// When `prob` is outside `[0, 1]` (configs are validated before this is reached).
    pub fn new(prob: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&prob),
            "dropout probability must be in [0, 1], got {prob}"
        );
        Self { prob }
    }

    /// # Shapes
    /// - input: `[..., any]`
    /// - output: `[..., any]`
    pub fn forward<B: Backend, const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let device = input.device();
        if !B::ad_enabled(&device) || self.prob == 0.0 {
            return input;
        }
        if !samples_on_host::<B>() {
            return burn::nn::Dropout { prob: self.prob }.forward(input);
        }
        let keep = 1.0 - self.prob;
        let seed = draw_seed::<B>(&device);
        let shape = input.shape();
        let mask = host_mask(shape.num_elements(), keep, seed);
        let mask = Tensor::<B, D>::from_data(TensorData::new(mask, shape), &device);
        let mask = mask.cast(input.dtype());
        input * mask
    }
}

/// Whether the backend draws its random numbers on the host: Burn's CPU backends NdArray and
/// Flex, with or without `Autodiff` around them.
///
/// Decided by the backend's device type, not by its name: `Autodiff<B>` and every
/// `NdArray<E, I, Q>` share their inner backend's device type, so one [`TypeId`] comparison
/// covers every float and int element type and the autodiff wrapper, and no renamed or
/// wrapped backend can be mistaken for a CPU one. NdArray is recognised when this crate's
/// `ndarray` feature is on (without it, Burn's NdArray backend is not compiled in here).
fn samples_on_host<B: Backend>() -> bool {
    let device = TypeId::of::<B::Device>();
    #[cfg(feature = "ndarray")]
    if device == TypeId::of::<burn::backend::ndarray::NdArrayDevice>() {
        return true;
    }
    device == TypeId::of::<burn::backend::flex::FlexDevice>()
}

thread_local! {
    /// This thread's mask seeds, while [`with_dropout_seed`] runs.
    static SEEDS: RefCell<Option<Xoshiro256PlusPlus>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's host dropout masks seeded from `seed` (instead of the
/// backend's generator, which threads share in whatever order they reach it). Nested calls
/// restore the outer seed stream when they return.
pub fn with_dropout_seed<R>(seed: u64, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Xoshiro256PlusPlus>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            SEEDS.with(|s| *s.borrow_mut() = outer);
        }
    }
    let outer = SEEDS.with(|s| s.borrow_mut().replace(Xoshiro256PlusPlus::new(seed)));
    let _restore = Restore(outer);
    f()
}

/// The next mask seed: from [`with_dropout_seed`]'s stream when one is set on this thread,
/// else from [`backend_seed`].
fn draw_seed<B: Backend>(device: &B::Device) -> u64 {
    if let Some(seed) = SEEDS.with(|s| s.borrow_mut().as_mut().map(Xoshiro256PlusPlus::next)) {
        return seed;
    }
    backend_seed::<B>(device)
}

/// 64 random bits from the backend's own generator (so `Backend::seed` decides them), drawn
/// as four 16-bit integers, which fit every integer type a backend may use.
pub fn backend_seed<B: Backend>(device: &B::Device) -> u64 {
    let parts = Tensor::<B, 1, Int>::random([4], Distribution::Uniform(0.0, 65_536.0), device)
        .into_data()
        .convert::<i64>();
    let parts = parts.as_slice::<i64>().expect("converted to i64 above");
    parts
        .iter()
        .fold(0u64, |seed, &part| (seed << 16) | (part as u64 & 0xffff))
}

/// `n` mask values: `1 / keep` with probability `keep`, else 0.
fn host_mask(n: usize, keep: f64, seed: u64) -> Vec<f32> {
    let scale = (1.0 / keep) as f32;
    // Keep when a uniform u32 is below keep · 2^32 (keep = 1 keeps everything).
    let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64 + 1.0) as u64;
    let mut rng = Xoshiro256PlusPlus::new(seed);
    let mut mask = Vec::with_capacity(n);
    while mask.len() < n {
        let bits = rng.next();
        for half in [bits & 0xffff_ffff, bits >> 32] {
            if mask.len() < n {
                mask.push(if half < threshold { scale } else { 0.0 });
            }
        }
    }
    mask
}

/// xoshiro256++ (Blackman and Vigna), seeded through SplitMix64.
struct Xoshiro256PlusPlus {
    s: [u64; 4],
}

impl Xoshiro256PlusPlus {
    fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut split_mix = || {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Self {
            s: [split_mix(), split_mix(), split_mix(), split_mix()],
        }
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_mask_keeps_the_requested_share_scaled() {
        let mask = host_mask(200_001, 0.9, 7);
        assert_eq!(mask.len(), 200_001);
        let kept = mask.iter().filter(|&&v| v != 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - 0.9).abs() < 0.003, "kept share {kept}");
        assert!(mask.iter().all(|&v| v == 0.0 || v == (1.0 / 0.9) as f32));
        assert_eq!(mask, host_mask(200_001, 0.9, 7), "same seed, same mask");
        assert_ne!(mask, host_mask(200_001, 0.9, 8));
        assert!(host_mask(1000, 1.0, 1).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn xoshiro_matches_the_reference_sequence() {
        // State {1, 2, 3, 4}: the first outputs of the reference C implementation.
        let mut rng = Xoshiro256PlusPlus { s: [1, 2, 3, 4] };
        assert_eq!(rng.next(), 41_943_041);
        assert_eq!(rng.next(), 58_720_359);
        assert_eq!(rng.next(), 3_588_806_011_781_223);
    }

    #[test]
    fn cpu_backends_are_recognised_by_their_device_type() {
        use burn::backend::{Autodiff, Flex, NdArray};
        assert!(samples_on_host::<NdArray>());
        assert!(samples_on_host::<NdArray<f64>>());
        assert!(samples_on_host::<Autodiff<NdArray>>());
        assert!(samples_on_host::<Flex>());
        assert!(samples_on_host::<Autodiff<Flex>>());
        #[cfg(feature = "wgpu")]
        assert!(!samples_on_host::<Autodiff<burn::backend::Wgpu>>());
    }

    #[test]
    fn a_dropout_seed_makes_masks_reproducible_and_is_scoped() {
        type B = burn::backend::Autodiff<burn::backend::NdArray>;
        let device = Default::default();
        let dropout = Dropout::new(0.5);
        let draw = || {
            let x = Tensor::<B, 2>::ones([64, 64], &device);
            dropout.forward(x).into_data().to_vec::<f32>().unwrap()
        };
        let a = with_dropout_seed(9, || (draw(), draw()));
        let b = with_dropout_seed(9, || (draw(), draw()));
        assert_eq!(a, b, "same seed, same masks");
        assert_ne!(a.0, a.1, "successive masks differ");
        let kept = a.0.iter().filter(|&&v| v == 2.0).count();
        assert!((1800..2300).contains(&kept), "kept {kept} of 4096");
        let nested = with_dropout_seed(1, || {
            let inner = with_dropout_seed(9, draw);
            (inner, draw())
        });
        assert_eq!(nested.0, a.0, "the inner seed rules inside");
        assert_eq!(
            nested.1,
            with_dropout_seed(1, draw),
            "the outer stream resumes"
        );
    }
}
