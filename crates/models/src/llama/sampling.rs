//! Choosing the next token from logits: greedy, or sampled with temperature, top-k and
//! top-p, from a seeded generator.

/// A small, portable pseudo-random generator (SplitMix64): the same seed gives the same
/// samples on every platform and every version of this crate.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` means greedy (argmax).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (`None` or `0`: all).
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `p`
    /// (`None` or `1`: all).
    pub top_p: Option<f64>,
}

impl SamplingParams {
    /// Whether this is greedy decoding.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Picks a token from `logits` (`[vocab]`), drawing from `rng` unless greedy.
    ///
    /// The order is transformers': temperature, then top-k, then top-p. NaN logits count as
    /// impossible.
    pub fn pick(&self, logits: &[f32], rng: &mut SplitMix64) -> u32 {
        if self.is_greedy() {
            return argmax(logits);
        }
        let t = self.temperature;
        let mut candidates: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.is_nan() && **l != f32::NEG_INFINITY)
            .map(|(i, &l)| (i as u32, l as f64 / t))
            .collect();
        if candidates.is_empty() {
            return argmax(logits);
        }
        // Most likely first; ties keep the lower id first.
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some(k) = self.top_k.filter(|&k| k > 0 && k < candidates.len()) {
            // Keep ties with the k-th value, as transformers does.
            let threshold = candidates[k - 1].1;
            candidates.retain(|c| c.1 >= threshold);
        }
        let max = candidates[0].1;
        let mut probs: Vec<f64> = candidates.iter().map(|c| (c.1 - max).exp()).collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if let Some(p) = self.top_p.filter(|&p| p < 1.0) {
            let mut cumulative = 0.0;
            let mut keep = probs.len();
            for (i, q) in probs.iter().enumerate() {
                cumulative += q;
                if cumulative >= p {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
            candidates.truncate(keep);
            let total: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|q| *q /= total);
        }
        let mut u = rng.next_f64();
        for (c, q) in candidates.iter().zip(&probs) {
            if u < *q {
                return c.0;
            }
            u -= q;
        }
        candidates[candidates.len() - 1].0
    }
}

/// The index of the largest value (the first one on ties; NaN never wins).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &v) in values.iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum_and_ignores_nan() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0, -3.0]), 1);
    }

    #[test]
    fn greedy_ignores_the_generator() {
        let p = SamplingParams {
            temperature: 0.0,
            top_k: Some(1),
            top_p: None,
        };
        let mut rng = SplitMix64::new(1);
        assert_eq!(p.pick(&[0.1, 0.5, 0.2], &mut rng), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_keeps_the_head() {
        let logits = [0.0f32, 3.0, 1.0, 2.5];
        let mut rng = SplitMix64::new(7);
        let k1 = SamplingParams {
            temperature: 1.0,
            top_k: Some(1),
            top_p: None,
        };
        let p_small = SamplingParams {
            temperature: 1.0,
            top_k: None,
            top_p: Some(0.01),
        };
        for _ in 0..50 {
            assert_eq!(k1.pick(&logits, &mut rng), 1);
            assert_eq!(p_small.pick(&logits, &mut rng), 1);
        }
        // top-k 2 only ever yields the two best tokens.
        let k2 = SamplingParams {
            temperature: 1.0,
            top_k: Some(2),
            top_p: None,
        };
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[k2.pick(&logits, &mut rng) as usize] = true;
        }
        assert_eq!(seen, [false, true, false, true]);
    }

    #[test]
    fn samples_follow_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()];
        let p = SamplingParams {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        };
        let mut rng = SplitMix64::new(42);
        let ones = (0..4000).filter(|_| p.pick(&logits, &mut rng) == 1).count();
        let share = ones as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
    }

    #[test]
    fn same_seed_same_samples() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let p = SamplingParams {
            temperature: 0.8,
            top_k: Some(20),
            top_p: Some(0.9),
        };
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..20)
                .map(|_| p.pick(&logits, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
