//! The key/value cache of incremental decoding.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Keys and values of the tokens seen so far, per layer, plus their attention mask, so that
/// each decoding step only runs the new tokens through the model.
///
/// Create one per generation with [`KvCache::new`] (or the model's
/// [`new_cache`](super::LlamaForCausalLM::new_cache)) and pass it to every
/// [`LlamaForCausalLM::forward`](super::LlamaForCausalLM::forward) call of that generation.
///
/// With a sliding window `w` ([`with_window`](Self::with_window), Mistral's
/// `sliding_window`) only the last `w` tokens are kept after each forward pass: no later
/// query can see an older one, so the cache stays bounded however long the generation.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    /// Per layer: keys and values `[b, kv_heads, stored, head_dim]` (after RoPE for keys).
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    /// The attention mask of the stored tokens `[b, stored]`, when one was given.
    mask: Option<Tensor<B, 2, Int>>,
    /// Tokens seen per row (padding included), dropped ones too.
    len: usize,
    /// Batch size, fixed by the first call.
    batch: Option<usize>,
    /// The attention window: at most this many tokens are kept.
    window: Option<usize>,
    /// Tokens dropped from the front of every row (`len - stored`).
    dropped: usize,
    /// Real (unmasked) tokens dropped per row `[b, 1]`, once any were: positions continue
    /// from them.
    dropped_real: Option<Tensor<B, 2, Int>>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a model of `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            mask: None,
            len: 0,
            batch: None,
            window: None,
            dropped: 0,
            dropped_real: None,
        }
    }

    /// Keeps only the last `window` tokens after each forward pass (`None`: all of them).
    pub fn with_window(mut self, window: Option<usize>) -> Self {
        self.window = window.filter(|&w| w > 0);
        self
    }

    /// The window the cache is bounded by, if any.
    pub fn window(&self) -> Option<usize> {
        self.window
    }

    /// Tokens seen per row (padding included), those dropped outside the window too: the
    /// absolute position of the next token.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Tokens whose keys and values are held per row (`len` minus those dropped).
    pub fn stored_len(&self) -> usize {
        self.len - self.dropped
    }

    /// Tokens dropped from the front of every row (outside the window).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Real tokens dropped per row `[b, 1]`, `None` while nothing was dropped.
    pub fn dropped_real(&self) -> Option<&Tensor<B, 2, Int>> {
        self.dropped_real.as_ref()
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
        self.dropped = 0;
        self.dropped_real = None;
    }

    /// The attention mask of the stored tokens `[b, stored]`, if masks were given.
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
        // Only the stored tokens have mask columns (a windowed cache dropped the others).
        let len = self.stored_len();
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
        self.trim(batch);
    }

    /// Drops the tokens before the last `window` ones.
    fn trim(&mut self, batch: usize) {
        let (Some(window), stored) = (self.window, self.stored_len()) else {
            return;
        };
        if stored <= window {
            return;
        }
        let drop = stored - window;
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.clone().narrow(2, drop, window);
            *v = v.clone().narrow(2, drop, window);
        }
        let gone = match self.mask.take() {
            Some(mask) => {
                let gone = mask.clone().narrow(1, 0, drop).sum_dim(1);
                self.mask = Some(mask.narrow(1, drop, window));
                gone
            }
            None => {
                let device = self.layers.iter().flatten().next().map(|(k, _)| k.device());
                let device = device.unwrap_or_default();
                Tensor::full([batch, 1], drop as i64, &device)
            }
        };
        self.dropped_real = Some(match self.dropped_real.take() {
            Some(before) => before + gone,
            None => gone,
        });
        self.dropped += drop;
    }
}
