//! The key/value cache of incremental decoding.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Keys and values of the tokens seen so far, per layer, plus their attention mask, so that
/// each decoding step only runs the new tokens through the model.
///
/// Create one per generation with [`KvCache::new`] and pass it to every
/// [`LlamaForCausalLM::forward`](super::LlamaForCausalLM::forward) call of that generation.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    /// Per layer: keys and values `[b, kv_heads, len, head_dim]` (after RoPE for keys).
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    /// The attention mask of the cached tokens `[b, len]`, when one was given.
    mask: Option<Tensor<B, 2, Int>>,
    /// Cached tokens per row (padding included).
    len: usize,
    /// Batch size, fixed by the first call.
    batch: Option<usize>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a model of `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            mask: None,
            len: 0,
            batch: None,
        }
    }

    /// Tokens cached per row (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The batch size of the cached sequences, once known.
    pub fn batch_size(&self) -> Option<usize> {
        self.batch
    }

    /// The number of layers the cache was made for.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Forgets everything (to start a new generation with the same cache).
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.mask = None;
        self.len = 0;
        self.batch = None;
    }

    /// The attention mask of the cached tokens, if masks were given.
    pub fn mask(&self) -> Option<&Tensor<B, 2, Int>> {
        self.mask.as_ref()
    }

    /// Appends `k`, `v` `[b, kv_heads, s, head_dim]` to layer `layer` and returns the full
    /// keys and values.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let entry = match self.layers[layer].take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        self.layers[layer] = Some(entry.clone());
        entry
    }

    /// Records that `new` tokens with mask `mask` (`[b, new]`, or `None` for all real) were
    /// appended by a forward pass.
    pub(crate) fn advance(&mut self, batch: usize, new: usize, mask: Option<Tensor<B, 2, Int>>) {
        let len = self.len;
        self.mask = match (self.mask.take(), mask) {
            (None, None) => None,
            (Some(past), None) => {
                let device = past.device();
                Some(Tensor::cat(
                    vec![past, Tensor::ones([batch, new], &device)],
                    1,
                ))
            }
            (None, Some(m)) if len == 0 => Some(m),
            (None, Some(m)) => {
                let device = m.device();
                Some(Tensor::cat(vec![Tensor::ones([batch, len], &device), m], 1))
            }
            (Some(past), Some(m)) => Some(Tensor::cat(vec![past, m], 1)),
        };
        self.len += new;
        self.batch = Some(batch);
    }
}
