//! Small dense linear algebra on the host, for the `r×r` inverses of Bat's unmerge.

/// Pivots smaller than this (relative to the matrix's largest entry) count as singular.
const SINGULAR_TOLERANCE: f64 = 1e-12;

/// Inverts the row-major `n×n` matrix `m` in place by Gauss–Jordan elimination with partial
/// pivoting.
///
/// # Errors
/// The offending pivot when the matrix is singular (or numerically so); `m` is then garbage.
pub fn invert_in_place(m: &mut [f64], n: usize) -> Result<(), f64> {
    assert_eq!(m.len(), n * n, "matrix buffer must hold n×n values");
    let scale = m.iter().fold(0.0f64, |acc, v| acc.max(v.abs())).max(1.0);
    let mut inverse = vec![0.0; n * n];
    for i in 0..n {
        inverse[i * n + i] = 1.0;
    }
    for col in 0..n {
        let pivot_row = (col..n)
            .max_by(|&a, &b| m[a * n + col].abs().total_cmp(&m[b * n + col].abs()))
            .unwrap_or(col);
        let pivot = m[pivot_row * n + col];
        if !pivot.is_finite() || pivot.abs() <= SINGULAR_TOLERANCE * scale {
            return Err(pivot);
        }
        if pivot_row != col {
            for k in 0..n {
                m.swap(pivot_row * n + k, col * n + k);
                inverse.swap(pivot_row * n + k, col * n + k);
            }
        }
        for k in 0..n {
            m[col * n + k] /= pivot;
            inverse[col * n + k] /= pivot;
        }
        for row in 0..n {
            if row == col {
                continue;
            }
            let factor = m[row * n + col];
            if factor == 0.0 {
                continue;
            }
            for k in 0..n {
                m[row * n + k] -= factor * m[col * n + k];
                inverse[row * n + k] -= factor * inverse[col * n + k];
            }
        }
    }
    m.copy_from_slice(&inverse);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverts_a_3x3_matrix_needing_a_pivot() {
        // [[0, 2, 1], [1, 1, 0], [3, 0, 1]] has determinant 0·1 − 2·1 + 1·(−3) = −5.
        let a = [0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0];
        let mut inv = a;
        invert_in_place(&mut inv, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((v - expected).abs() < 1e-12, "A·A⁻¹[{i}][{j}] = {v}");
            }
        }
        // The (0,0) entry of the inverse is the cofactor 1·1 − 0·0 = 1 over −5.
        assert!((inv[0] + 0.2).abs() < 1e-12);
    }

    #[test]
    fn reports_a_singular_matrix() {
        let mut m = [1.0, 2.0, 2.0, 4.0];
        assert!(invert_in_place(&mut m, 2).is_err());
    }
}
