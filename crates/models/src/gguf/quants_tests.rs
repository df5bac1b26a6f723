//! Each decoder on a block packed here from the ggml layout, against values computed from
//! the quantisation formula (not by the decoder).

use half::{bf16, f16};

use super::*;

fn half(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

fn decode(ty: GgmlType, block: &[u8]) -> Vec<f32> {
    assert_eq!(block.len(), ty.block_bytes());
    let mut out = vec![f32::NAN; ty.block_values()];
    ty.dequantize(block, &mut out);
    out
}

fn assert_close(found: &[f32], expected: &[f32]) {
    assert_eq!(found.len(), expected.len());
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (f - e).abs() <= 1e-6 * e.abs().max(1.0),
            "value {i}: {f} vs {e}"
        );
    }
}

/// 4-bit values `q[0..32]` packed as ggml does: byte `j` holds `q[j]` low, `q[j + 16]` high.
fn pack_nibbles(q: &[u8]) -> Vec<u8> {
    (0..16).map(|j| q[j] | (q[j + 16] << 4)).collect()
}

#[test]
fn plain_floats() {
    let v = [1.5f32, -2.25, 0.0, 65504.0];
    let f32_bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let f16_bytes: Vec<u8> = v
        .iter()
        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
        .collect();
    let bf_bytes: Vec<u8> = [1.5f32, -2.25, 0.0, 3.0e38]
        .iter()
        .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
        .collect();
    let mut out = [0.0; 4];
    GgmlType::F32.dequantize(&f32_bytes, &mut out);
    assert_eq!(out, v);
    GgmlType::F16.dequantize(&f16_bytes, &mut out);
    assert_eq!(out, v);
    GgmlType::BF16.dequantize(&bf_bytes, &mut out);
    assert_eq!(out[..3], [1.5, -2.25, 0.0]);
    assert_eq!(out[3], bf16::from_f32(3.0e38).to_f32());
    assert_eq!(GgmlType::F16.bytes_of(4), Some(8));
}

#[test]
fn q4_0_block() {
    let d = 0.5f32;
    let q: Vec<u8> = (0..32).map(|j| ((j * 7 + 3) % 16) as u8).collect();
    let mut block = half(d).to_vec();
    block.extend(pack_nibbles(&q));
    let expected: Vec<f32> = q.iter().map(|&q| (q as f32 - 8.0) * d).collect();
    assert_close(&decode(GgmlType::Q4_0, &block), &expected);
    assert_eq!(expected[1], (10.0 - 8.0) * 0.5);
}

#[test]
fn q4_1_block() {
    let (d, m) = (0.25f32, -1.5f32);
    let q: Vec<u8> = (0..32).map(|j| ((j * 5 + 1) % 16) as u8).collect();
    let mut block = half(d).to_vec();
    block.extend(half(m));
    block.extend(pack_nibbles(&q));
    let expected: Vec<f32> = q.iter().map(|&q| q as f32 * d + m).collect();
    assert_close(&decode(GgmlType::Q4_1, &block), &expected);
}

#[test]
fn q8_0_block() {
    let d = 0.125f32;
    let q: Vec<i8> = (0..32).map(|j| (j * 8 - 128) as i8).collect();
    let mut block = half(d).to_vec();
    block.extend(q.iter().map(|&q| q as u8));
    let expected: Vec<f32> = q.iter().map(|&q| q as f32 * d).collect();
    assert_close(&decode(GgmlType::Q8_0, &block), &expected);
    assert_eq!(expected[0], -16.0);
}

/// Eight 6-bit scales and mins packed in 12 bytes (the inverse of `get_scale_min_k4`):
/// bytes 0..4 hold `sc[0..4]` and the top 2 bits of `sc[4..8]`, bytes 4..8 `m[0..4]` and
/// the top bits of `m[4..8]`, bytes 8..12 the low nibbles of `sc[4..8]` and `m[4..8]`.
fn pack_scales(sc: &[u8; 8], m: &[u8; 8]) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    for j in 0..4 {
        out[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        out[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        out[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
    }
    out
}

fn k_scales() -> ([u8; 8], [u8; 8]) {
    let sc = std::array::from_fn(|j| ((j * 9 + 37) % 64) as u8);
    let m = std::array::from_fn(|j| ((j * 13 + 50) % 64) as u8);
    (sc, m)
}

#[test]
fn q4_k_block() {
    let (d, dmin) = (0.5f32, 0.25f32);
    let (sc, m) = k_scales();
    let q: Vec<u8> = (0..256).map(|k| ((k * 11 + 5) % 16) as u8).collect();
    let mut block = half(d).to_vec();
    block.extend(half(dmin));
    block.extend(pack_scales(&sc, &m));
    // Value k is in sub-block s = k / 32; sub-blocks 2i and 2i + 1 share bytes 32i..32i + 32,
    // low and high nibble.
    let mut qs = vec![0u8; 128];
    for (k, &v) in q.iter().enumerate() {
        let (s, l) = (k / 32, k % 32);
        qs[32 * (s / 2) + l] |= if s % 2 == 0 { v } else { v << 4 };
    }
    block.extend(qs);
    let expected: Vec<f32> = (0..256)
        .map(|k| d * sc[k / 32] as f32 * q[k] as f32 - dmin * m[k / 32] as f32)
        .collect();
    assert_close(&decode(GgmlType::Q4K, &block), &expected);
}

#[test]
fn q5_k_block() {
    let (d, dmin) = (0.5f32, 0.125f32);
    let (sc, m) = k_scales();
    let q: Vec<u8> = (0..256).map(|k| ((k * 7 + 3) % 32) as u8).collect();
    let mut block = half(d).to_vec();
    block.extend(half(dmin));
    block.extend(pack_scales(&sc, &m));
    // The fifth bit of value k (sub-block s, position l) is bit s of qh[l].
    let mut qh = vec![0u8; 32];
    let mut qs = vec![0u8; 128];
    for (k, &v) in q.iter().enumerate() {
        let (s, l) = (k / 32, k % 32);
        qh[l] |= (v >> 4) << s;
        let low = v & 0xF;
        qs[32 * (s / 2) + l] |= if s % 2 == 0 { low } else { low << 4 };
    }
    block.extend(qh);
    block.extend(qs);
    let expected: Vec<f32> = (0..256)
        .map(|k| d * sc[k / 32] as f32 * q[k] as f32 - dmin * m[k / 32] as f32)
        .collect();
    assert!(q.iter().any(|&v| v >= 16), "some values use the fifth bit");
    assert_close(&decode(GgmlType::Q5K, &block), &expected);
}

#[test]
fn q6_k_block() {
    let d = 0.25f32;
    let sc: Vec<i8> = (0..16).map(|j| (j * 17 % 64 - 32) as i8).collect();
    let q: Vec<u8> = (0..256).map(|k| ((k * 13 + 7) % 64) as u8).collect();
    // Each half n of 128 values: quarter t (32 values, position l) takes its low 4 bits from
    // ql[64n + l + 32 (t % 2)] (low nibble for t < 2, high for t >= 2) and its top 2 bits
    // from bits 2t..2t + 2 of qh[32n + l].
    let mut ql = vec![0u8; 128];
    let mut qh = vec![0u8; 64];
    for (k, &v) in q.iter().enumerate() {
        let (n, t, l) = (k / 128, (k % 128) / 32, k % 32);
        let low = v & 0xF;
        ql[64 * n + l + 32 * (t % 2)] |= if t < 2 { low } else { low << 4 };
        qh[32 * n + l] |= (v >> 4) << (2 * t);
    }
    let mut block = ql;
    block.extend(qh);
    block.extend(sc.iter().map(|&s| s as u8));
    block.extend(half(d));
    let expected: Vec<f32> = (0..256)
        .map(|k| d * sc[k / 16] as f32 * (q[k] as f32 - 32.0))
        .collect();
    assert_close(&decode(GgmlType::Q6K, &block), &expected);
}

#[test]
fn sizes_and_names() {
    assert_eq!(GgmlType::Q4K.block_bytes(), 144);
    assert_eq!(GgmlType::Q5K.block_bytes(), 176);
    assert_eq!(GgmlType::Q6K.block_bytes(), 210);
    assert_eq!(GgmlType::Q4_1.bytes_of(64), Some(40));
    assert_eq!(GgmlType::Q4_1.bytes_of(33), None);
    assert_eq!(GgmlType::from_id(6), None);
    assert_eq!(GgmlType::name_of_id(6), "Q5_0 (type 6)");
    assert_eq!(GgmlType::name_of_id(99), "type 99");
}
