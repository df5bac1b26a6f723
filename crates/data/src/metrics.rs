//! Evaluation metrics as plain functions over slices: accuracy, binary F1, Matthews
//! correlation, Pearson and Spearman correlation, and GSM8K exact match.
//!
//! They follow scikit-learn / SciPy conventions, including the degenerate cases: F1 and MCC
//! are 0 when their denominator is 0 (sklearn's `zero_division=0`), Pearson and Spearman are
//! NaN when one side is constant (SciPy).

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// Predictions and references differ in length.
    #[error(
        "metric inputs differ in length: {predictions} predictions vs {references} references"
    )]
    LengthMismatch {
        /// Number of predictions.
        predictions: usize,
        /// Number of references.
        references: usize,
    },
    /// There is nothing to score.
    #[error("metric inputs are empty")]
    Empty,
    /// A value that cannot be scored (NaN or infinite) at `index`.
    #[error("metric input {side}[{index}] is not finite ({value})")]
    NotFinite {
        /// `predictions` or `references`.
        side: &'static str,
        /// Position.
        index: usize,
        /// The value.
        value: f64,
    },
    /// Class metrics asked of a regression task or the reverse.
    #[error("{task} is scored on {expected}, not {found}")]
    WrongKind {
        /// The task.
        task: String,
        /// What the task is scored on.
        expected: &'static str,
        /// What was given.
        found: &'static str,
    },
}

fn check_lengths(p: usize, r: usize) -> Result<(), MetricError> {
    if p != r {
        return Err(MetricError::LengthMismatch {
            predictions: p,
            references: r,
        });
    }
    if p == 0 {
        return Err(MetricError::Empty);
    }
    Ok(())
}

fn check_finite(side: &'static str, xs: &[f64]) -> Result<(), MetricError> {
    match xs.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(MetricError::NotFinite {
            side,
            index,
            value: xs[index],
        }),
        None => Ok(()),
    }
}

/// Fraction of positions where `predictions[i] == references[i]`, in `[0, 1]`.
pub fn accuracy<T: PartialEq>(predictions: &[T], references: &[T]) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    let hits = predictions
        .iter()
        .zip(references)
        .filter(|(p, r)| p == r)
        .count();
    Ok(hits as f64 / predictions.len() as f64)
}

/// Binary F1 with class `1` as the positive class: `2·TP / (2·TP + FP + FN)`; 0 when there is
/// no positive in either predictions or references. Any class other than 1 counts as negative.
pub fn f1_binary(predictions: &[usize], references: &[usize]) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (&p, &r) in predictions.iter().zip(references) {
        match (p == 1, r == 1) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => {}
        }
    }
    let denom = 2 * tp + fp + fneg;
    Ok(if denom == 0 {
        0.0
    } else {
        (2 * tp) as f64 / denom as f64
    })
}

/// Matthews correlation coefficient, multi-class form (as scikit-learn's
/// `matthews_corrcoef`); for two classes it is
/// `(TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))`. 0 when the denominator is 0.
pub fn matthews_corrcoef(predictions: &[usize], references: &[usize]) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    // t[c]: times class c occurs in references; p[c]: in predictions.
    let mut counts: std::collections::HashMap<usize, (f64, f64)> = Default::default();
    let mut correct = 0f64;
    for (&pr, &re) in predictions.iter().zip(references) {
        counts.entry(re).or_default().0 += 1.0;
        counts.entry(pr).or_default().1 += 1.0;
        if pr == re {
            correct += 1.0;
        }
    }
    let s = predictions.len() as f64;
    let tp: f64 = counts.values().map(|(t, p)| t * p).sum();
    let cov_ytyp = correct * s - tp;
    let cov_ypyp = s * s - counts.values().map(|(_, p)| p * p).sum::<f64>();
    let cov_ytyt = s * s - counts.values().map(|(t, _)| t * t).sum::<f64>();
    let denom = (cov_ytyt * cov_ypyp).sqrt();
    Ok(if denom == 0.0 { 0.0 } else { cov_ytyp / denom })
}

/// Pearson correlation coefficient; NaN when either side is constant.
pub fn pearson(predictions: &[f64], references: &[f64]) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    check_finite("predictions", predictions)?;
    check_finite("references", references)?;
    let n = predictions.len() as f64;
    let mx = predictions.iter().sum::<f64>() / n;
    let my = references.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&x, &y) in predictions.iter().zip(references) {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return Ok(f64::NAN);
    }
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// 1-based ranks with ties given the average of the ranks they span (SciPy's
/// `rankdata(method="average")`). Values must be finite.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) share the ranks i+1..=j+1, whose mean is (i+j)/2 + 1.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &idx in &order[i..=j] {
            ranks[idx] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman rank correlation: Pearson on average ranks (ties share their mean rank); NaN when
/// either side is constant.
pub fn spearman(predictions: &[f64], references: &[f64]) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    check_finite("predictions", predictions)?;
    check_finite("references", references)?;
    pearson(&average_ranks(predictions), &average_ranks(references))
}

/// Whether a predicted GSM8K number equals the reference (within 1e-6 relative, at least 1e-6
/// absolute, so that `72.0`, `72` and `72.0000001` all match 72).
pub fn gsm8k_answers_match(prediction: f64, reference: f64) -> bool {
    prediction.is_finite() && (prediction - reference).abs() <= 1e-6 * reference.abs().max(1.0)
}

/// GSM8K exact match: the fraction of predictions (numbers extracted with
/// [`crate::gsm8k::extract_predicted_answer`], `None` when none could be) that equal the
/// reference answer per [`gsm8k_answers_match`].
pub fn gsm8k_exact_match(
    predictions: &[Option<f64>],
    references: &[f64],
) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    let hits = predictions
        .iter()
        .zip(references)
        .filter(|(p, &r)| p.is_some_and(|p| gsm8k_answers_match(p, r)))
        .count();
    Ok(hits as f64 / predictions.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_on_bad_inputs() {
        assert_eq!(
            accuracy(&[1, 2], &[1]),
            Err(MetricError::LengthMismatch {
                predictions: 2,
                references: 1
            })
        );
        assert_eq!(accuracy::<usize>(&[], &[]), Err(MetricError::Empty));
        assert!(matches!(
            pearson(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(MetricError::NotFinite { index: 1, .. })
        ));
    }

    #[test]
    fn degenerate_cases_follow_sklearn_and_scipy() {
        // No positives anywhere: F1 = 0; constant predictions: MCC = 0.
        assert_eq!(f1_binary(&[0, 0], &[0, 0]).unwrap(), 0.0);
        assert_eq!(matthews_corrcoef(&[1, 1, 1], &[0, 1, 1]).unwrap(), 0.0);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).unwrap().is_nan());
    }

    #[test]
    fn ranks_average_ties() {
        // 10 is smallest (1); the two 20s share ranks 2 and 3 → 2.5; 30 is 4.
        assert_eq!(
            average_ranks(&[20.0, 10.0, 30.0, 20.0]),
            vec![2.5, 1.0, 4.0, 2.5]
        );
    }
}
