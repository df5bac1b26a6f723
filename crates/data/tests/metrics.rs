//! Metrics against values computed by hand (the arithmetic is in the comments).

use data::glue::{GlueMetric, GlueTask};
use data::metrics::{
    accuracy, average_ranks, f1_binary, gsm8k_exact_match, matthews_corrcoef, pearson, spearman,
    MetricError,
};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn accuracy_by_hand() {
    // Matches at positions 0, 1, 3: 3 of 5 = 0.6.
    assert_eq!(accuracy(&[0, 1, 1, 0, 1], &[0, 1, 0, 0, 0]).unwrap(), 0.6);
    assert_eq!(accuracy(&["a", "b"], &["a", "b"]).unwrap(), 1.0);
}

#[test]
fn f1_by_hand() {
    // pred [1,1,0,1,0,0] vs ref [1,0,1,1,0,1]: TP = {0,3} = 2, FP = {1} = 1, FN = {2,5} = 2.
    // F1 = 2·TP / (2·TP + FP + FN) = 4 / 7.
    let f1 = f1_binary(&[1, 1, 0, 1, 0, 0], &[1, 0, 1, 1, 0, 1]).unwrap();
    assert!(close(f1, 4.0 / 7.0), "{f1}");
    // Precision 1, recall 1/2 → F1 = 2·1·0.5 / 1.5 = 2/3.
    assert!(close(f1_binary(&[1, 0], &[1, 1]).unwrap(), 2.0 / 3.0));
}

#[test]
fn matthews_by_hand() {
    // pred [1,1,0,1,0,0,1,0] vs ref [1,0,0,1,0,1,1,0]:
    // TP = {0,3,6} = 3, FP = {1} = 1, FN = {5} = 1, TN = {2,4,7} = 3.
    // MCC = (3·3 − 1·1) / sqrt((3+1)(3+1)(3+1)(3+1)) = 8 / 16 = 0.5.
    let m = matthews_corrcoef(&[1, 1, 0, 1, 0, 0, 1, 0], &[1, 0, 0, 1, 0, 1, 1, 0]).unwrap();
    assert!(close(m, 0.5), "{m}");
    // scikit-learn's doc example: ref [1,1,1,0], pred [1,0,1,1]: TP 2, FN 1, FP 1, TN 0:
    // (2·0 − 1·1) / sqrt(3·3·1·1) = −1/3.
    let m = matthews_corrcoef(&[1, 0, 1, 1], &[1, 1, 1, 0]).unwrap();
    assert!(close(m, -1.0 / 3.0), "{m}");
    // Three classes, ref [0,1,2,0,1,2], pred [0,1,1,0,2,2]: correct c = 4, s = 6,
    // ref counts t = [2,2,2], pred counts p = [2,2,2], Σt·p = 12:
    // (c·s − Σt·p) / sqrt((s² − Σp²)(s² − Σt²)) = (24 − 12) / sqrt(24·24) = 0.5.
    let m = matthews_corrcoef(&[0, 1, 1, 0, 2, 2], &[0, 1, 2, 0, 1, 2]).unwrap();
    assert!(close(m, 0.5), "{m}");
}

#[test]
fn pearson_by_hand() {
    // x = [1,2,3,4] (mean 2.5), y = [2,4,5,9] (mean 5):
    // dx = [−1.5,−0.5,0.5,1.5], dy = [−3,−1,0,4];
    // Σdx·dy = 4.5 + 0.5 + 0 + 6 = 11, Σdx² = 5, Σdy² = 26 → r = 11 / sqrt(130).
    let r = pearson(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 5.0, 9.0]).unwrap();
    assert!(close(r, 11.0 / 130f64.sqrt()), "{r}");
    assert!(close(
        pearson(&[1.0, 2.0, 3.0], &[6.0, 4.0, 2.0]).unwrap(),
        -1.0
    ));
}

#[test]
fn spearman_by_hand_with_ties() {
    // x = [1,2,2,3] → ranks [1,2.5,2.5,4]; y = [1,3,2,4] → ranks [1,3,2,4]; both mean 2.5.
    // d(rx) = [−1.5,0,0,1.5], d(ry) = [−1.5,0.5,−0.5,1.5]:
    // Σ = 2.25 + 2.25 = 4.5, Σd(rx)² = 4.5, Σd(ry)² = 5 → 4.5 / sqrt(22.5) = sqrt(0.9).
    assert_eq!(
        average_ranks(&[1.0, 2.0, 2.0, 3.0]),
        vec![1.0, 2.5, 2.5, 4.0]
    );
    let rho = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
    assert!(close(rho, 0.9f64.sqrt()), "{rho}");
    // Monotone but not linear: ranks agree exactly.
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    let y = [1.0, 4.0, 9.0, 16.0, 25.0];
    assert!(close(spearman(&x, &y).unwrap(), 1.0));
    assert!(pearson(&x, &y).unwrap() < 1.0);
}

#[test]
fn gsm8k_exact_match_by_hand() {
    // 72 = 72 ✓, 1080 = 1080 ✓, None ✗, 5.0000000001 ≈ 5 (within 1e-6·5) ✓, −3 ≠ 3 ✗ → 3/5.
    let preds = [
        Some(72.0),
        Some(1080.0),
        None,
        Some(5.000_000_000_1),
        Some(-3.0),
    ];
    let golds = [72.0, 1080.0, 10.0, 5.0, 3.0];
    assert_eq!(gsm8k_exact_match(&preds, &golds).unwrap(), 0.6);
}

#[test]
fn length_mismatch_and_empty_are_errors() {
    assert!(matches!(
        f1_binary(&[1], &[1, 0]),
        Err(MetricError::LengthMismatch {
            predictions: 1,
            references: 2
        })
    ));
    assert_eq!(spearman(&[], &[]), Err(MetricError::Empty));
}

#[test]
fn glue_task_metrics() {
    // CoLA reports MCC (0.5 from the binary case above).
    let m = GlueTask::Cola
        .evaluate_classes(&[1, 1, 0, 1, 0, 0, 1, 0], &[1, 0, 0, 1, 0, 1, 1, 0])
        .unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].0, GlueMetric::Matthews);
    assert!(close(m[0].1, 0.5));
    // STS-B reports Pearson and Spearman.
    let m = GlueTask::Stsb
        .evaluate_scores(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0])
        .unwrap();
    assert_eq!(m[0].0, GlueMetric::Pearson);
    assert_eq!(m[1].0, GlueMetric::Spearman);
    assert!(close(m[1].1, 0.9f64.sqrt()));
}
