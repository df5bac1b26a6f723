//! Truncated SVD on the host in f64: the eigen-decomposition of the smaller Gram matrix of
//! `ΔW` by cyclic Jacobi rotations, then a projection onto its top eigenvectors.

/// Sweeps of the cyclic Jacobi method before giving up (convergence is quadratic; a few
/// dozen sweeps reach f64 precision for any size used here).
const MAX_SWEEPS: usize = 60;

/// `lora_A [k, in]` and `lora_B [out, k]` with `B A` the best rank-`k` approximation of
/// `ΔW = deltaᵀ`, `delta` in Burn's layout `[in, out]` (row-major).
pub(super) fn truncate(delta: &[f64], d_in: usize, d_out: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = vec![0.0; k * d_in];
    let mut b = vec![0.0; d_out * k];
    let at = |i: usize, o: usize| delta[i * d_out + o];
    if d_out <= d_in {
        // G = deltaᵀ delta [out, out]; ΔW ≈ V (delta V)ᵀ: B = V, A = (delta V)ᵀ.
        let gram = gram(d_out, d_in, |p, q, i| at(i, p) * at(i, q));
        let v = top_eigenvectors(gram, d_out, k);
        for j in 0..k.min(d_out) {
            for o in 0..d_out {
                b[o * k + j] = v[j][o];
            }
            for i in 0..d_in {
                a[j * d_in + i] = (0..d_out).map(|o| at(i, o) * v[j][o]).sum();
            }
        }
    } else {
        // G = delta deltaᵀ [in, in]; ΔW ≈ (deltaᵀ U) Uᵀ: B = deltaᵀ U, A = Uᵀ.
        let gram = gram(d_in, d_out, |p, q, o| at(p, o) * at(q, o));
        let u = top_eigenvectors(gram, d_in, k);
        for j in 0..k.min(d_in) {
            for i in 0..d_in {
                a[j * d_in + i] = u[j][i];
            }
            for o in 0..d_out {
                b[o * k + j] = (0..d_in).map(|i| at(i, o) * u[j][i]).sum();
            }
        }
    }
    (a, b)
}

/// The symmetric `n×n` matrix `G[p, q] = Σ_t term(p, q, t)` over `t < len`.
fn gram(n: usize, len: usize, term: impl Fn(usize, usize, usize) -> f64) -> Vec<f64> {
    let mut g = vec![0.0; n * n];
    for p in 0..n {
        for q in p..n {
            let v: f64 = (0..len).map(|t| term(p, q, t)).sum();
            g[p * n + q] = v;
            g[q * n + p] = v;
        }
    }
    g
}

/// The eigenvectors of the `min(k, n)` largest eigenvalues of the symmetric `n×n` matrix `m`.
fn top_eigenvectors(mut m: Vec<f64>, n: usize, k: usize) -> Vec<Vec<f64>> {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _ in 0..MAX_SWEEPS {
        let off: f64 = (0..n)
            .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| m[p * n + q] * m[p * n + q])
            .sum();
        let diag: f64 = (0..n).map(|p| m[p * n + p] * m[p * n + p]).sum();
        if off <= 1e-30 * diag.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                rotate(&mut m, &mut v, n, p, q);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| m[y * n + y].total_cmp(&m[x * n + x]));
    order
        .into_iter()
        .take(k)
        .map(|c| (0..n).map(|r| v[r * n + c]).collect())
        .collect()
}

/// One Jacobi rotation zeroing `m[p, q]`; `v` accumulates the rotations (its columns are the
/// eigenvectors).
fn rotate(m: &mut [f64], v: &mut [f64], n: usize, p: usize, q: usize) {
    let apq = m[p * n + q];
    if apq == 0.0 {
        return;
    }
    let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
    let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
    let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
    let c = 1.0 / (t * t + 1.0).sqrt();
    let s = t * c;
    for r in 0..n {
        let (mrp, mrq) = (m[r * n + p], m[r * n + q]);
        m[r * n + p] = c * mrp - s * mrq;
        m[r * n + q] = s * mrp + c * mrq;
    }
    for r in 0..n {
        let (mpr, mqr) = (m[p * n + r], m[q * n + r]);
        m[p * n + r] = c * mpr - s * mqr;
        m[q * n + r] = s * mpr + c * mqr;
    }
    for r in 0..n {
        let (vrp, vrq) = (v[r * n + p], v[r * n + q]);
        v[r * n + p] = c * vrp - s * vrq;
        v[r * n + q] = s * vrp + c * vrq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rank_two_matrix_is_recovered_and_truncation_keeps_the_largest_direction() {
        // delta [in=4, out=3] = 3·u1 w1ᵀ + 1·u2 w2ᵀ with orthonormal u, w.
        let u1 = [0.5, 0.5, 0.5, 0.5];
        let u2 = [0.5, -0.5, 0.5, -0.5];
        let w1 = [1.0, 0.0, 0.0];
        let w2 = [0.0, 0.6, 0.8];
        let delta: Vec<f64> = (0..4)
            .flat_map(|i| (0..3).map(move |o| 3.0 * u1[i] * w1[o] + u2[i] * w2[o]))
            .collect();
        let (a, b) = truncate(&delta, 4, 3, 2);
        for i in 0..4 {
            for o in 0..3 {
                let approx: f64 = (0..2).map(|j| b[o * 2 + j] * a[j * 4 + i]).sum();
                assert!((approx - delta[i * 3 + o]).abs() < 1e-12);
            }
        }
        let (a, b) = truncate(&delta, 4, 3, 1);
        for i in 0..4 {
            for o in 0..3 {
                let approx = b[o] * a[i];
                assert!((approx - 3.0 * u1[i] * w1[o]).abs() < 1e-12);
            }
        }
    }
}
