//! The GGUF container (versions 2 and 3): header, metadata key/values, tensor infos and
//! the aligned tensor data, memory-mapped.
//!
//! Layout (ggml's `docs/gguf.md`): magic `GGUF`, `u32` version, `u64` tensor count, `u64`
//! metadata count; the key/values (`u64`-length UTF-8 key, `u32` value type, value); the
//! tensor infos (name, `u32` dimension count, `u64` dimensions innermost first, `u32` ggml
//! type, `u64` offset into the data section); padding to `general.alignment` (32 when
//! absent); the data section. All little-endian.
//!
//! Every length and offset is checked against the file length before anything is sliced
//! or allocated, so a corrupt file gives an error, never an unbounded allocation.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::quants::GgmlType;
use super::value::MetaValue;
use crate::error::{ModelError, Result};

/// The alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The most dimensions a ggml tensor has (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// How deep arrays of arrays may nest.
const MAX_ARRAY_DEPTH: usize = 8;

/// One tensor of a GGUF file, as its tensor info describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// The llama.cpp name (`blk.0.attn_q.weight`).
    pub name: String,
    /// The dimensions as stored, innermost (contiguous) first: `[in, out]` for a matrix.
    pub dims: Vec<usize>,
    /// The ggml type.
    pub ggml_type: GgmlType,
    /// The byte range of the data in the file (absolute offsets).
    pub range: std::ops::Range<usize>,
}

impl GgufTensorInfo {
    /// The shape in PyTorch's layout (outermost first): the dimensions reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the tensor has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An opened, memory-mapped GGUF file with its parsed metadata and tensor infos.
pub struct GgufFile {
    path: PathBuf,
    mmap: Mmap,
    version: u32,
    metadata: BTreeMap<String, MetaValue>,
    tensors: Vec<GgufTensorInfo>,
    by_name: BTreeMap<String, usize>,
    alignment: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Maps and parses `path`.
    ///
    /// # Errors
    /// An unreadable file, a bad magic or version, a length, count or offset beyond the
    /// file, an unknown value or tensor type, or a misaligned tensor; each names the file and
    /// the key or tensor.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| ModelError::io("opening", &path, e))?;
        // SAFETY: the mapping is read-only; model files are not expected to change while
        // they are being loaded (as for safetensors checkpoints).
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io("mapping", &path, e))?;
        let parsed = parse(&mmap).map_err(|message| ModelError::Gguf {
            file: path.clone(),
            message,
        })?;
        Ok(Self {
            path,
            mmap,
            version: parsed.version,
            metadata: parsed.metadata,
            by_name: parsed
                .tensors
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), i))
                .collect(),
            tensors: parsed.tensors,
            alignment: parsed.alignment,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of the tensor data.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Every metadata key/value, by key.
    pub fn metadata(&self) -> &BTreeMap<String, MetaValue> {
        &self.metadata
    }

    /// Metadata value `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    /// The tensor infos, in file order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    /// The info of tensor `name` (llama.cpp name).
    pub fn tensor(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of a tensor (checked against the file length on open).
    pub fn bytes(&self, info: &GgufTensorInfo) -> &[u8] {
        &self.mmap[info.range.clone()]
    }

    /// A tensor decoded to `f32`, in storage order (row-major in [`shape`](GgufTensorInfo::shape)).
    pub fn dequantize(&self, info: &GgufTensorInfo) -> Vec<f32> {
        let mut out = vec![0.0; info.len()];
        info.ggml_type.dequantize(self.bytes(info), &mut out);
        out
    }

    /// An error about this file.
    pub fn error(&self, message: impl Into<String>) -> ModelError {
        ModelError::Gguf {
            file: self.path.clone(),
            message: message.into(),
        }
    }
}

struct Parsed {
    version: u32,
    metadata: BTreeMap<String, MetaValue>,
    tensors: Vec<GgufTensorInfo>,
    alignment: u64,
}

/// A bounds-checked little-endian reader over the file.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> std::result::Result<&'a [u8], String> {
        if n > self.remaining() as u64 {
            return Err(format!(
                "{} needs {n} bytes at offset {}, but the file ends at {} bytes",
                what(),
                self.pos,
                self.bytes.len()
            ));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(
        &mut self,
        what: &dyn Fn() -> String,
    ) -> std::result::Result<[u8; N], String> {
        let b = self.take(N as u64, what)?;
        Ok(b.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> std::result::Result<u32, String> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> std::result::Result<u64, String> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A `u64`-length string; the length is checked against the rest of the file first.
    fn string(&mut self, what: &dyn Fn() -> String) -> std::result::Result<String, String> {
        let at = self.pos;
        let len = self.u64(&|| format!("the length of {}", what()))?;
        if len > self.remaining() as u64 {
            return Err(format!(
                "{}: string length {len} (at offset {at}) is larger than the {} bytes left in the file",
                what(),
                self.remaining()
            ));
        }
        let b = self.take(len, what)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    fn value(
        &mut self,
        ty: u32,
        key: &str,
        depth: usize,
    ) -> std::result::Result<MetaValue, String> {
        let what = || format!("metadata key `{key}`");
        Ok(match ty {
            0 => MetaValue::U8(self.array::<1>(&what)?[0]),
            1 => MetaValue::I8(self.array::<1>(&what)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => MetaValue::U32(u32::from_le_bytes(self.array(&what)?)),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => match self.array::<1>(&what)?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => return Err(format!("{}: expected a BOOL (0 or 1), found {b}", what())),
            },
            8 => MetaValue::String(self.string(&what)?),
            9 => self.array_value(key, depth)?,
            10 => MetaValue::U64(u64::from_le_bytes(self.array(&what)?)),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(&what)?)),
            other => {
                return Err(format!(
                    "{}: unknown value type {other} (expected 0 to 12)",
                    what()
                ))
            }
        })
    }

    fn array_value(&mut self, key: &str, depth: usize) -> std::result::Result<MetaValue, String> {
        let what = || format!("metadata key `{key}`");
        if depth >= MAX_ARRAY_DEPTH {
            return Err(format!(
                "{}: arrays nested more than {MAX_ARRAY_DEPTH} deep",
                what()
            ));
        }
        let ty = self.u32(&what)?;
        let at = self.pos;
        let n = self.u64(&what)?;
        // The smallest encoding of one element: a string or an array header is 8 bytes.
        let min = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8,
            9 => 12,
            other => {
                return Err(format!(
                    "{}: unknown array element type {other} (expected 0 to 12)",
                    what()
                ))
            }
        };
        if n.checked_mul(min)
            .is_none_or(|b| b > self.remaining() as u64)
        {
            return Err(format!(
                "{}: array length {n} (at offset {at}) needs at least {} bytes, but {} are left in the file",
                what(),
                n.saturating_mul(min),
                self.remaining()
            ));
        }
        let mut items = Vec::with_capacity(n as usize);
        for _ in 0..n {
            items.push(self.value(ty, key, depth + 1)?);
        }
        Ok(MetaValue::Array(items))
    }
}

fn parse(bytes: &[u8]) -> std::result::Result<Parsed, String> {
    let mut c = Cursor { bytes, pos: 0 };
    let magic = c.array::<4>(&|| "the magic number".into())?;
    if &magic != b"GGUF" {
        return Err(format!(
            "not a GGUF file: expected the magic bytes \"GGUF\", found {:?}",
            String::from_utf8_lossy(&magic)
        ));
    }
    let version = c.u32(&|| "the version".into())?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (expected 2 or 3)"
        ));
    }
    let n_tensors = c.u64(&|| "the tensor count".into())?;
    let n_kv = c.u64(&|| "the metadata count".into())?;
    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key = c.string(&|| format!("metadata key {i} of {n_kv}"))?;
        let ty = c.u32(&|| format!("the type of metadata key `{key}`"))?;
        let value = c.value(ty, &key, 0)?;
        metadata.insert(key, value);
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(MetaValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(other) => {
            return Err(format!(
            "metadata key `general.alignment`: expected a power of two (UINT32), found {other:?}"
        ))
        }
    };
    let mut infos = Vec::new();
    for i in 0..n_tensors {
        infos.push(tensor_info(&mut c, i, n_tensors)?);
    }
    let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
    let tensors = infos
        .into_iter()
        .map(|raw| raw.check(data_start, alignment, bytes.len()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut seen = std::collections::BTreeSet::new();
    for t in &tensors {
        if !seen.insert(t.name.as_str()) {
            return Err(format!("tensor `{}` is listed twice", t.name));
        }
    }
    Ok(Parsed {
        version,
        metadata,
        tensors,
        alignment,
    })
}

struct RawInfo {
    name: String,
    dims: Vec<u64>,
    ty: u32,
    offset: u64,
}

fn tensor_info(c: &mut Cursor<'_>, i: u64, n: u64) -> std::result::Result<RawInfo, String> {
    let name = c.string(&|| format!("the name of tensor {i} of {n}"))?;
    let what = || format!("tensor `{name}`");
    let n_dims = c.u32(&what)?;
    if n_dims as usize > MAX_DIMS {
        return Err(format!(
            "tensor `{name}`: {n_dims} dimensions (expected at most {MAX_DIMS})"
        ));
    }
    let dims = (0..n_dims)
        .map(|_| c.u64(&what))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let ty = c.u32(&what)?;
    let offset = c.u64(&what)?;
    Ok(RawInfo {
        name,
        dims,
        ty,
        offset,
    })
}

impl RawInfo {
    fn check(
        self,
        data_start: u64,
        alignment: u64,
        file_len: usize,
    ) -> std::result::Result<GgufTensorInfo, String> {
        let name = self.name;
        let ggml_type = GgmlType::from_id(self.ty).ok_or_else(|| {
            format!(
                "tensor `{name}`: unsupported tensor type {} (supported: F32, F16, BF16, Q4_0, \
                 Q4_1, Q8_0, Q4_K, Q5_K, Q6_K)",
                GgmlType::name_of_id(self.ty)
            )
        })?;
        let count = self
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= file_len as u64 * 8)
            .ok_or_else(|| {
                format!(
                    "tensor `{name}`: dimensions {:?} hold more values than a file of {file_len} bytes can",
                    self.dims
                )
            })?;
        let inner = self.dims.first().copied().unwrap_or(1);
        if !inner.is_multiple_of(ggml_type.block_values() as u64) {
            return Err(format!(
                "tensor `{name}`: rows of {inner} values are not a whole number of {} blocks of {}",
                ggml_type.name(),
                ggml_type.block_values()
            ));
        }
        let size = ggml_type
            .bytes_of(count as usize)
            .expect("checked: whole blocks") as u64;
        if !self.offset.is_multiple_of(alignment) {
            return Err(format!(
                "tensor `{name}`: data offset {} is not a multiple of the alignment {alignment}",
                self.offset
            ));
        }
        let start = data_start.saturating_add(self.offset);
        let end = start.saturating_add(size);
        if end > file_len as u64 {
            return Err(format!(
                "tensor `{name}`: {} data of {size} bytes at offsets {start}..{end} runs past the end \
                 of the file ({file_len} bytes)",
                ggml_type.name()
            ));
        }
        Ok(GgufTensorInfo {
            name,
            dims: self.dims.iter().map(|&d| d as usize).collect(),
            ggml_type,
            range: start as usize..end as usize,
        })
    }
}
