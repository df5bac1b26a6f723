//! Where the evaluation examples come from: another file, or a seeded fraction of the
//! training file.

use std::path::PathBuf;

use crate::error::{DataError, Result};

/// How to get evaluation examples (used by [`super::load_sft`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum EvalSplit {
    /// No eval set.
    #[default]
    None,
    /// A separate file, read with the same format and field map.
    File(PathBuf),
    /// `fraction` of the training file's rows (rounded, at least one), chosen by `seed`
    /// ([`split_fraction`]).
    Fraction {
        /// In (0, 1), for example 0.02.
        fraction: f64,
        /// The same seed always picks the same rows.
        seed: u64,
    },
}

/// Splits `rows` into `(train, eval)`: `eval` holds `round(fraction × n)` rows (at least 1),
/// both sides keep file order. Row `i` goes to eval when its key `splitmix64(seed, i)` is
/// among the smallest `n_eval` keys (ties by index), so the choice depends on `seed`, the
/// row count and nothing else: not on threads, platform or the rows' contents.
///
/// # Errors
/// [`DataError::Config`] when `fraction` is not in (0, 1) or the split would leave the train
/// side empty (fewer than 2 rows).
pub fn split_fraction<T>(rows: Vec<T>, fraction: f64, seed: u64) -> Result<(Vec<T>, Vec<T>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(DataError::config(
            "eval fraction",
            format!("expected a number in (0, 1) such as 0.02, found {fraction}"),
        ));
    }
    let n = rows.len();
    let n_eval = ((fraction * n as f64).round() as usize).max(1);
    if n_eval >= n {
        return Err(DataError::config(
            "eval fraction",
            format!(
                "{fraction} of {n} rows leaves no training rows; use a smaller fraction or a \
                 separate eval file"
            ),
        ));
    }
    let mut order: Vec<(u64, usize)> = (0..n).map(|i| (mix(seed, i as u64), i)).collect();
    order.select_nth_unstable(n_eval - 1);
    let mut is_eval = vec![false; n];
    for &(_, i) in &order[..n_eval] {
        is_eval[i] = true;
    }
    let (mut train, mut eval) = (Vec::with_capacity(n - n_eval), Vec::with_capacity(n_eval));
    for (row, to_eval) in rows.into_iter().zip(is_eval) {
        if to_eval {
            eval.push(row);
        } else {
            train.push(row);
        }
    }
    Ok((train, eval))
}

/// SplitMix64 of `seed` and `index`: a fixed, well-mixed 64-bit key per row.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_order_and_determinism() {
        let rows: Vec<usize> = (0..1000).collect();
        let (train, eval) = split_fraction(rows.clone(), 0.02, 7).unwrap();
        assert_eq!((train.len(), eval.len()), (980, 20));
        assert!(eval.windows(2).all(|w| w[0] < w[1]), "file order kept");
        let mut all: Vec<usize> = train.iter().chain(&eval).copied().collect();
        all.sort();
        assert_eq!(all, rows, "every row on exactly one side");
        assert_eq!(split_fraction(rows.clone(), 0.02, 7).unwrap().1, eval);
        assert_ne!(split_fraction(rows.clone(), 0.02, 8).unwrap().1, eval);
        // A tiny fraction still gives one eval row.
        assert_eq!(split_fraction(rows, 1e-9, 7).unwrap().1.len(), 1);
    }

    #[test]
    fn bad_fractions() {
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            let e = split_fraction(vec![1, 2, 3], f, 0).unwrap_err().to_string();
            assert!(
                e.starts_with("invalid eval fraction: expected a number in (0, 1)"),
                "{e}"
            );
        }
        assert_eq!(
            split_fraction(vec![1], 0.5, 0).unwrap_err().to_string(),
            "invalid eval fraction: 0.5 of 1 rows leaves no training rows; use a smaller \
             fraction or a separate eval file"
        );
    }
}
