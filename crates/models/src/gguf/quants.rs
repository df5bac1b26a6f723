//! ggml tensor types and their block decoders, into `f32`.
//!
//! The block layouts are those of ggml's `ggml-common.h` (`block_q4_0`, `block_q4_1`,
//! `block_q8_0`, `block_q4_K`, `block_q5_K`, `block_q6_K`) and the reference decoders
//! `dequantize_row_*` of `ggml-quants.c`; gguf-py's `quants.py` documents the same layouts.
//! They are written out here rather than taken from a crate: candle-core's `quantized`
//! module would pull a whole tensor library into this crate for a few dozen lines, and the
//! small standalone GGUF crates are unmaintained.
//!
//! Every block starts (or, for Q6_K, ends) with little-endian `f16` scales; `QK_K = 256`
//! values per K-quant super-block.

use half::{bf16, f16};

/// Values per K-quant super-block (`QK_K`).
pub const QK_K: usize = 256;

/// A ggml tensor type (the `type` of a GGUF tensor info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// 32-bit floats (0).
    F32,
    /// 16-bit floats (1).
    F16,
    /// 32 values: `f16 d`, 16 bytes of 4-bit `q`; `x = (q - 8) d` (2).
    Q4_0,
    /// 32 values: `f16 d`, `f16 m`, 16 bytes of 4-bit `q`; `x = q d + m` (3).
    Q4_1,
    /// 32 values: `f16 d`, 32 `i8 q`; `x = q d` (8).
    Q8_0,
    /// 256 values in 8 sub-blocks of 32 with 6-bit scales and mins, 4-bit `q` (12).
    Q4K,
    /// 256 values in 8 sub-blocks of 32 with 6-bit scales and mins, 5-bit `q` (13).
    Q5K,
    /// 256 values in 16 sub-blocks of 16 with 8-bit scales, 6-bit `q` (14).
    Q6K,
    /// bfloat16 (30).
    BF16,
}

impl GgmlType {
    /// The type with ggml's id `id`, if this crate can decode it.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::BF16,
            _ => return None,
        })
    }

    /// ggml's name of a type id (`Q5_0`, `IQ2_XS`, …), for error messages.
    pub fn name_of_id(id: u32) -> String {
        const NAMES: [&str; 40] = [
            "F32",
            "F16",
            "Q4_0",
            "Q4_1",
            "Q4_2",
            "Q4_3",
            "Q5_0",
            "Q5_1",
            "Q8_0",
            "Q8_1",
            "Q2_K",
            "Q3_K",
            "Q4_K",
            "Q5_K",
            "Q6_K",
            "Q8_K",
            "IQ2_XXS",
            "IQ2_XS",
            "IQ3_XXS",
            "IQ1_S",
            "IQ4_NL",
            "IQ3_S",
            "IQ2_S",
            "IQ4_XS",
            "I8",
            "I16",
            "I32",
            "I64",
            "F64",
            "IQ1_M",
            "BF16",
            "Q4_0_4_4",
            "Q4_0_4_8",
            "Q4_0_8_8",
            "TQ1_0",
            "TQ2_0",
            "IQ4_NL_4_4",
            "IQ4_NL_4_8",
            "IQ4_NL_8_8",
            "MXFP4",
        ];
        NAMES
            .get(id as usize)
            .map_or_else(|| format!("type {id}"), |n| format!("{n} (type {id})"))
    }

    /// ggml's name (`Q4_K`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q8_0 => "Q8_0",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
            Self::BF16 => "BF16",
        }
    }

    /// Values per block.
    pub fn block_values(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q8_0 => 32,
            Self::Q4K | Self::Q5K | Self::Q6K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q4_0 => 2 + 16,
            Self::Q4_1 => 2 + 2 + 16,
            Self::Q8_0 => 2 + 32,
            Self::Q4K => 2 + 2 + 12 + QK_K / 2,
            Self::Q5K => 2 + 2 + 12 + QK_K / 8 + QK_K / 2,
            Self::Q6K => QK_K / 2 + QK_K / 4 + QK_K / 16 + 2,
        }
    }

    /// Bytes of `n` values, `None` when `n` is not a whole number of blocks (or overflows).
    pub fn bytes_of(self, n: usize) -> Option<usize> {
        if !n.is_multiple_of(self.block_values()) {
            return None;
        }
        (n / self.block_values()).checked_mul(self.block_bytes())
    }

    /// Decodes `bytes` (a whole number of blocks) into `out`, one value per slot.
    ///
    /// # Panics
    /// Never for `bytes.len() == self.bytes_of(out.len())`; the caller checks that.
    pub fn dequantize(self, bytes: &[u8], out: &mut [f32]) {
        let (vals, size) = (self.block_values(), self.block_bytes());
        let decode: fn(&[u8], &mut [f32]) = match self {
            Self::F32 => |b, y| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Self::F16 => |b, y| y[0] = f16_at(b, 0),
            Self::BF16 => |b, y| y[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            Self::Q4_0 => block_q4_0,
            Self::Q4_1 => block_q4_1,
            Self::Q8_0 => block_q8_0,
            Self::Q4K => block_q4_k,
            Self::Q5K => block_q5_k,
            Self::Q6K => block_q6_k,
        };
        for (block, y) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(vals)) {
            decode(block, y);
        }
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// `block_q4_0 { f16 d; u8 qs[16]; }`: value `j < 16` is the low nibble of `qs[j]`, value
/// `j + 16` the high nibble; `x = (q - 8) d`.
fn block_q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        y[j] = ((q & 0xF) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

/// `block_q4_1 { f16 d; f16 m; u8 qs[16]; }`: nibbles as Q4_0; `x = q d + m`.
fn block_q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for (j, &q) in b[4..20].iter().enumerate() {
        y[j] = (q & 0xF) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// `block_q8_0 { f16 d; i8 qs[32]; }`: `x = q d`.
fn block_q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..34].iter().enumerate() {
        y[j] = (q as i8) as f32 * d;
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (0..8) packed in
/// the 12 bytes `q` of a Q4_K/Q5_K block.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// `block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }`: each 64 values use 32 bytes
/// of `qs`, the low nibbles for sub-block `2i` and the high ones for `2i + 1`;
/// `x = d sc q - dmin m`.
fn block_q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qs = &b[16..144];
    for i in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * i, scales);
        let (sc2, m2) = scale_min_k4(2 * i + 1, scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        let q = &qs[32 * i..32 * i + 32];
        let out = &mut y[64 * i..64 * i + 64];
        for l in 0..32 {
            out[l] = d1 * (q[l] & 0xF) as f32 - m1;
            out[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

/// `block_q5_K { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }`: as Q4_K, with a
/// fifth bit per value from `qh` (bit `2i` for sub-block `2i`, `2i + 1` for `2i + 1`).
fn block_q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for i in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * i, scales);
        let (sc2, m2) = scale_min_k4(2 * i + 1, scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        let (u1, u2) = (1u8 << (2 * i), 1u8 << (2 * i + 1));
        let q = &qs[32 * i..32 * i + 32];
        let out = &mut y[64 * i..64 * i + 64];
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            out[l] = d1 * ((q[l] & 0xF) + h1) as f32 - m1;
            out[l + 32] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
        }
    }
}

/// `block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }`: each 128 values use 64
/// bytes of `ql`, 32 of `qh` and 8 scales; `x = d sc (q - 32)`.
fn block_q6_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 208);
    for n in 0..2 {
        let ql = &b[64 * n..64 * n + 64];
        let qh = &b[128 + 32 * n..128 + 32 * n + 32];
        let sc = &b[192 + 8 * n..192 + 8 * n + 8];
        let out = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            let s = |k: usize| d * (sc[is + k] as i8) as f32;
            out[l] = s(0) * q1 as f32;
            out[l + 32] = s(2) * q2 as f32;
            out[l + 64] = s(4) * q3 as f32;
            out[l + 96] = s(6) * q4 as f32;
        }
    }
}

#[cfg(test)]
#[path = "quants_tests.rs"]
mod tests;
