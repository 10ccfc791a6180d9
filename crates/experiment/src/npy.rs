//! Reading NumPy `.npy` files (format versions 1, 2 and 3) without NumPy: the header is parsed
//! by hand and the data is memory-mapped (`memmap2`), never read whole. Little-endian
//! `f2`/`f4`/`f8` (and integers, for row indices), C order. Errors name the file.

use crate::{ExperimentError, Result};
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The element type of an `.npy` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F16,
    F32,
    F64,
    /// A signed integer of this many bytes.
    Int(usize),
    /// An unsigned integer of this many bytes.
    UInt(usize),
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::F16 => 2,
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::Int(n) | Dtype::UInt(n) => n,
        }
    }
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F16 | Dtype::F32 | Dtype::F64)
    }
}

/// A memory-mapped `.npy` array.
pub struct Npy {
    path: PathBuf,
    map: Option<Mmap>,
    offset: usize,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

fn bad(path: &Path, reason: impl Into<String>) -> ExperimentError {
    ExperimentError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, reason.into()))
}

/// `[500, 4]`.
pub fn shape_text(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

impl Npy {
    /// Opens and memory-maps `path`, checking the header and that the data is all there.
    pub fn open(path: &Path) -> Result<Npy> {
        let file = File::open(path).map_err(|e| ExperimentError::io(path, e))?;
        let len = file.metadata().map_err(|e| ExperimentError::io(path, e))?.len() as usize;
        if len < 10 {
            return Err(bad(path, format!("not a .npy file: {len} bytes, shorter than the .npy preamble")));
        }
        // SAFETY: the map is read only; a file changed underneath while quarry reads it gives
        // wrong numbers, not unsafety in this code (it only copies bytes out).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| ExperimentError::io(path, e))?;
        if &map[..6] != b"\x93NUMPY" {
            return Err(bad(path, "not a .npy file (no \\x93NUMPY magic)"));
        }
        let major = map[6];
        let (header_len, start) = match major {
            1 => (u16::from_le_bytes([map[8], map[9]]) as usize, 10),
            2 | 3 => {
                if len < 12 {
                    return Err(bad(path, "truncated .npy header"));
                }
                (u32::from_le_bytes([map[8], map[9], map[10], map[11]]) as usize, 12)
            }
            v => return Err(bad(path, format!(".npy format version {v} is not supported (1, 2 or 3)"))),
        };
        let offset = start + header_len;
        if offset > len {
            return Err(bad(path, "truncated .npy header"));
        }
        let header = std::str::from_utf8(&map[start..offset]).map_err(|_| bad(path, ".npy header is not text"))?;
        let (dtype, shape) = parse_header(header).map_err(|r| bad(path, r))?;
        let count: usize = shape.iter().product();
        let need = offset + count * dtype.size();
        if len < need {
            return Err(bad(path, format!("truncated: shape {} of {} needs {need} bytes, the file has {len}", shape_text(&shape), dtype_name(dtype))));
        }
        Ok(Npy { path: path.to_path_buf(), map: Some(map), offset, dtype, shape })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self) -> &[u8] {
        let map = self.map.as_ref().expect("mapped");
        &map[self.offset..self.offset + self.len() * self.dtype.size()]
    }

    /// Elements `[from, to)` (flat, C order) as f32, appended to `out`.
    pub fn extend_f32(&self, from: usize, to: usize, out: &mut Vec<f32>) -> Result<()> {
        let s = self.dtype.size();
        let b = &self.bytes()[from * s..to * s];
        match self.dtype {
            Dtype::F32 => out.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()))),
            Dtype::F64 => out.extend(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)),
            Dtype::F16 => out.extend(b.chunks_exact(2).map(|c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32())),
            d => return Err(bad(&self.path, format!("holds {}, expected floating-point numbers (f2, f4 or f8)", dtype_name(d)))),
        }
        Ok(())
    }

    /// Every element as f32.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.len());
        self.extend_f32(0, self.len(), &mut out)?;
        Ok(out)
    }

    /// Every element as an integer (row indices): integer dtypes, or floats that are whole numbers.
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        let b = self.bytes();
        let s = self.dtype.size();
        let mut out = Vec::with_capacity(self.len());
        for (i, c) in b.chunks_exact(s).enumerate() {
            let v = match self.dtype {
                Dtype::Int(_) => {
                    let mut buf = [if c[s - 1] & 0x80 != 0 { 0xff } else { 0 }; 8];
                    buf[..s].copy_from_slice(c);
                    i64::from_le_bytes(buf)
                }
                Dtype::UInt(_) => {
                    let mut buf = [0u8; 8];
                    buf[..s].copy_from_slice(c);
                    u64::from_le_bytes(buf).min(i64::MAX as u64) as i64
                }
                _ => {
                    let mut f = Vec::with_capacity(1);
                    self.extend_f32(i, i + 1, &mut f)?;
                    let x = f[0] as f64;
                    if x.fract() != 0.0 || !x.is_finite() {
                        return Err(bad(&self.path, format!("element {i} is {x}, not a row index")));
                    }
                    x as i64
                }
            };
            out.push(v);
        }
        Ok(out)
    }
}

fn dtype_name(d: Dtype) -> String {
    match d {
        Dtype::F16 => "f2".into(),
        Dtype::F32 => "f4".into(),
        Dtype::F64 => "f8".into(),
        Dtype::Int(n) => format!("i{n}"),
        Dtype::UInt(n) => format!("u{n}"),
    }
}

/// The value after `'key':` in the header dict, up to the next `,` or matching `)`.
fn field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    if rest.starts_with('(') {
        let end = rest.find(')')?;
        Some(&rest[..=end])
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim())
    }
}

/// `{'descr': '<f4', 'fortran_order': False, 'shape': (500, 4), }` → (F32, [500, 4]).
fn parse_header(header: &str) -> std::result::Result<(Dtype, Vec<usize>), String> {
    let descr = field(header, "descr").ok_or("the .npy header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let (order, code) = descr.split_at(1.min(descr.len()));
    let code = if matches!(order, "<" | "|" | "=") {
        code
    } else if order == ">" {
        return Err(format!("dtype '{descr}' is big-endian; save it little-endian (e.g. arr.astype('<f4'))"));
    } else {
        descr
    };
    let dtype = match code {
        "f2" | "e" => Dtype::F16,
        "f4" | "f" => Dtype::F32,
        "f8" | "d" => Dtype::F64,
        c if c.len() == 2 && (c.starts_with('i') || c.starts_with('u')) && matches!(&c[1..], "1" | "2" | "4" | "8") => {
            let n = c[1..].parse().unwrap();
            if c.starts_with('i') { Dtype::Int(n) } else { Dtype::UInt(n) }
        }
        _ => return Err(format!("dtype '{descr}' is not supported (little-endian f2, f4, f8, or integers)")),
    };
    let fortran = field(header, "fortran_order").ok_or("the .npy header has no 'fortran_order'")?;
    if fortran.starts_with("True") {
        return Err("the array is in Fortran order; save it in C order (np.ascontiguousarray)".into());
    }
    let shape = field(header, "shape").ok_or("the .npy header has no 'shape'")?;
    let inner = shape.trim_start_matches('(').trim_end_matches(')');
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>().map_err(|_| format!("bad shape {shape} in the .npy header")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((dtype, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse() {
        let (d, s) = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (500, 4), }").unwrap();
        assert_eq!((d, s), (Dtype::F32, vec![500, 4]));
        let (d, s) = parse_header("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }").unwrap();
        assert_eq!((d, s), (Dtype::Int(8), vec![3]));
        let (d, s) = parse_header("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3, 4), }").unwrap();
        assert_eq!((d, s), (Dtype::F16, vec![2, 3, 4]));
        assert!(parse_header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }").unwrap_err().contains("big-endian"));
        assert!(parse_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }").unwrap_err().contains("Fortran"));
        assert!(parse_header("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }").is_err());
    }
}
