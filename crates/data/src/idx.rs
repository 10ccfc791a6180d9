//! IDX files in the MNIST layout: a big-endian magic `0x0000TTNN` (TT = element type, 0x08 for
//! u8; NN = number of dimensions), NN big-endian u32 dimensions, then the elements row-major.
//!
//! Images are `0x00000803` (count, rows, columns) and labels `0x00000801` (count). Files may be
//! raw or gzip-compressed. The data length must be exactly what the dimensions declare: a short
//! file usually means an interrupted download, and silently reading fewer samples would shift
//! every later result.

use std::io;
use std::path::{Path, PathBuf};

use quarry_core::{Dataset, Matrix};

use crate::error::{DataError, Result};
use crate::input::Input;

/// IDX element type codes (byte 3 of the magic). Only u8 is read; the others are recognised so
/// that a float IDX file is reported as the wrong kind rather than "not an IDX file".
const IDX_TYPES: [u8; 6] = [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e];
const U8: u8 = 0x08;

const IMAGES: &str = "u8 images (expected 0x00000803)";
const LABELS: &str = "u8 labels (expected 0x00000801)";

/// The most bytes preallocated from a header's word: a damaged header must not make us reserve
/// terabytes before finding out the file is short.
const MAX_PREALLOCATE: usize = 64 << 20;

/// Whether four leading bytes are an IDX magic number (of any element type and dimension count).
pub(crate) fn is_idx_magic(bytes: &[u8]) -> bool {
    matches!(bytes, [0, 0, t, n, ..] if IDX_TYPES.contains(t) && *n > 0)
}

/// The parsed header and the open stream positioned at the first data byte.
struct Header {
    input: Input,
    dims: Vec<u32>,
}

/// Reads and checks the magic and dimensions. `accept_dims` says which dimension counts the
/// caller can use; `expected` describes them for the error message.
fn read_header(path: &Path, accept_dims: fn(u8) -> bool, expected: &'static str) -> Result<Header> {
    let mut input = Input::open(path)?;
    let mut magic = [0u8; 4];
    let got = input.read_up_to(&mut magic)?;
    if got == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            what: "the file is empty (expected an IDX header)",
        });
    }
    if got < magic.len() {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: "IDX magic",
            expected: 4,
            found: got as u64,
        });
    }
    let magic_word = u32::from_be_bytes(magic);
    if !is_idx_magic(&magic) {
        return Err(DataError::NotIdx {
            path: path.to_path_buf(),
            magic: magic_word,
        });
    }
    let (elem_type, n_dims) = (magic[2], magic[3]);
    if elem_type != U8 || !accept_dims(n_dims) {
        return Err(DataError::WrongIdxKind {
            path: path.to_path_buf(),
            magic: magic_word,
            expected,
        });
    }

    let mut raw_dims = vec![0u8; 4 * n_dims as usize];
    let got = input.read_up_to(&mut raw_dims)?;
    if got < raw_dims.len() {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: "IDX dimensions",
            expected: raw_dims.len() as u64,
            found: got as u64,
        });
    }
    let dims = raw_dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Header { input, dims })
}

/// Reads exactly `len` data bytes and checks that nothing follows them. Reading on to the end
/// also lets the gzip decoder verify its checksum, so a damaged trailer is caught too.
fn read_data(mut input: Input, len: usize) -> Result<Vec<u8>> {
    let path = input.path.clone();
    let mut data = Vec::with_capacity(len.min(MAX_PREALLOCATE));
    let read = io::Read::read_to_end(
        &mut io::Read::take(&mut input.reader, len as u64),
        &mut data,
    );
    read.map_err(|e| input.read_error(e))?;
    if data.len() < len {
        return Err(DataError::Truncated {
            path,
            what: "data",
            expected: len as u64,
            found: data.len() as u64,
        });
    }
    let extra = io::copy(&mut input.reader, &mut io::sink()).map_err(|e| input.read_error(e))?;
    if extra > 0 {
        return Err(DataError::TrailingData {
            path,
            expected: len as u64,
            extra,
        });
    }
    Ok(data)
}

/// Reads an IDX image file (`0x00000803`, or any u8 IDX with at least two dimensions) into a
/// matrix with one row per image: pixels as `f32` in 0..=255, each image flattened row-major.
/// Pixels are not rescaled here; the models decide their own preprocessing.
pub fn read_idx_images(path: &Path) -> Result<Matrix> {
    let Header { input, dims } = read_header(path, |n| n >= 2, IMAGES)?;
    let too_large = || DataError::IdxTooLarge {
        path: path.to_path_buf(),
        dims: dims.clone(),
    };
    let rows = dims[0] as usize;
    let cols = dims[1..]
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
        .ok_or_else(too_large)?;
    let len = rows.checked_mul(cols).ok_or_else(too_large)?;
    if rows == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            what: "the IDX header declares 0 images",
        });
    }
    if cols == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            what: "the IDX header declares images of 0 pixels",
        });
    }
    let data = read_data(input, len)?;
    let pixels = data.into_iter().map(f32::from).collect();
    Matrix::new(pixels, rows, cols).map_err(|error| DataError::Core {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads an IDX label file (`0x00000801`): one u8 label per sample.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let Header { input, dims } = read_header(path, |n| n == 1, LABELS)?;
    let len = dims[0] as usize;
    if len == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            what: "the IDX header declares 0 labels",
        });
    }
    read_data(input, len)
}

/// The labels file that conventionally sits beside an images file: `images-idx3-ubyte` becomes
/// `labels-idx1-ubyte` in the file name (and `images.idx3-ubyte` becomes `labels.idx1-ubyte`),
/// keeping any `.gz`. `None` when the name follows neither convention.
pub fn idx_labels_path(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let renamed = [
        ("images-idx3-ubyte", "labels-idx1-ubyte"),
        ("images.idx3-ubyte", "labels.idx1-ubyte"),
    ]
    .iter()
    .find(|(from, _)| name.contains(from))
    .map(|(from, to)| name.replacen(from, to, 1))?;
    Some(images.with_file_name(renamed))
}

/// Loads an IDX image file and its labels as a dataset.
///
/// `labels` defaults to [`idx_labels_path`]. With `classes` = `None` this file defines the
/// classes: `"0"..="max"`, and every value up to the largest label must occur (a gap means the
/// file is not what the user thinks, and an empty class would break stratified splits and
/// per-class metrics). With `Some(classes)` (a test file that must reuse the pool's mapping)
/// each label's decimal string is looked up in `classes`.
pub fn load_idx(
    images: &Path,
    labels: Option<&Path>,
    classes: Option<&[String]>,
) -> Result<Dataset> {
    // The images are read first so that a wrong file (e.g. a labels file given as the data)
    // is reported as such, not as an underivable labels name.
    let features = read_idx_images(images)?;
    let labels_path = match labels {
        Some(p) => p.to_path_buf(),
        None => idx_labels_path(images).ok_or_else(|| DataError::NoLabelsPath {
            path: images.to_path_buf(),
        })?,
    };
    let raw = read_idx_labels(&labels_path)?;
    if raw.len() != features.rows() {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            n_images: features.rows(),
            labels: labels_path,
            n_labels: raw.len(),
        });
    }

    let (labels, class_names) = match classes {
        None => own_classes(&raw, &labels_path)?,
        Some(classes) => (
            map_to_classes(&raw, classes, &labels_path)?,
            classes.to_vec(),
        ),
    };
    Dataset::new(features, labels, class_names).map_err(|error| DataError::Core {
        path: images.to_path_buf(),
        error,
    })
}

/// Classes `0..=max` of the labels themselves, each required to occur.
fn own_classes(raw: &[u8], path: &Path) -> Result<(Vec<u32>, Vec<String>)> {
    let max = raw.iter().copied().max().unwrap_or(0);
    let mut counts = [0usize; 256];
    for &l in raw {
        counts[l as usize] += 1;
    }
    if let Some(class) = (0..=max).find(|&c| counts[c as usize] == 0) {
        return Err(DataError::EmptyClass {
            path: path.to_path_buf(),
            class: class.into(),
            max: max.into(),
        });
    }
    let labels = raw.iter().map(|&l| u32::from(l)).collect();
    let names = (0..=max).map(|c| c.to_string()).collect();
    Ok((labels, names))
}

/// Labels mapped through the pool's class names (by the label's decimal string).
fn map_to_classes(raw: &[u8], classes: &[String], path: &Path) -> Result<Vec<u32>> {
    // One lookup per possible byte value instead of one string search per sample.
    let table: Vec<Option<u32>> = (0..=u8::MAX)
        .map(|v| {
            let name = v.to_string();
            classes.iter().position(|c| *c == name).map(|i| i as u32)
        })
        .collect();
    raw.iter()
        .enumerate()
        .map(|(item, &l)| {
            table[l as usize].ok_or_else(|| DataError::UnknownIdxLabel {
                path: path.to_path_buf(),
                item,
                label: l.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    /// A raw IDX images file: `n` images of `h` x `w` with pixel `i` = `i % 251`.
    fn images_bytes(n: u32, h: u32, w: u32) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 3];
        for d in [n, h, w] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend((0..n * h * w).map(|i| (i % 251) as u8));
        b
    }

    fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 1];
        b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        b.extend_from_slice(labels);
        b
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_raw_and_gzip_alike() {
        let dir = TempDir::new("idx-raw-gz");
        let raw = dir.write("a-images-idx3-ubyte", &images_bytes(3, 2, 4));
        // Gzip is detected by content: this name has no .gz.
        let gz = dir.write("b-images-idx3-ubyte", &gzip(&images_bytes(3, 2, 4)));
        let m = read_idx_images(&raw).unwrap();
        assert_eq!((m.rows(), m.cols()), (3, 8));
        assert_eq!(m.row(1)[0], 8.0);
        assert_eq!(read_idx_images(&gz).unwrap(), m);
    }

    #[test]
    fn labels_path_is_derived() {
        let p = |s: &str| idx_labels_path(Path::new(s));
        assert_eq!(
            p("d/train-images-idx3-ubyte.gz"),
            Some(PathBuf::from("d/train-labels-idx1-ubyte.gz"))
        );
        assert_eq!(
            p("t10k-images-idx3-ubyte"),
            Some(PathBuf::from("t10k-labels-idx1-ubyte"))
        );
        assert_eq!(
            p("t10k-images.idx3-ubyte"),
            Some(PathBuf::from("t10k-labels.idx1-ubyte"))
        );
        // Only the file name is rewritten, never a directory.
        assert_eq!(p("images-idx3-ubyte/x.bin"), None);
        assert_eq!(p("pictures.gz"), None);
    }

    #[test]
    fn bad_magic_is_named() {
        let dir = TempDir::new("idx-magic");
        let p = dir.write("junk-images-idx3-ubyte", b"hello world, not idx");
        let msg = read_idx_images(&p).unwrap_err().to_string();
        assert!(msg.contains("junk-images-idx3-ubyte"), "{msg}");
        assert!(msg.contains("not an IDX file: magic 0x68656c6c"), "{msg}");
        assert!(msg.contains("0x00000803"), "{msg}");
    }

    #[test]
    fn labels_file_where_images_expected() {
        let dir = TempDir::new("idx-kind");
        let p = dir.write("l.idx", &labels_bytes(&[1, 2]));
        let err = read_idx_images(&p).unwrap_err();
        assert!(
            matches!(err, DataError::WrongIdxKind { magic: 0x801, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("l.idx"));
        let p = dir.write("i.idx", &images_bytes(1, 1, 1));
        assert!(matches!(
            read_idx_labels(&p),
            Err(DataError::WrongIdxKind { magic: 0x803, .. })
        ));
    }

    #[test]
    fn truncated_and_trailing_data() {
        let dir = TempDir::new("idx-trunc");
        let full = images_bytes(2, 3, 3);
        let p = dir.write("short-images-idx3-ubyte", &full[..full.len() - 5]);
        let msg = read_idx_images(&p).unwrap_err().to_string();
        assert!(
            msg.contains("short-images-idx3-ubyte: truncated: expected 18 bytes of data, found 13"),
            "{msg}"
        );

        let p = dir.write("hdr", &full[..9]);
        let msg = read_idx_images(&p).unwrap_err().to_string();
        assert!(
            msg.contains("hdr: truncated: expected 12 bytes of IDX dimensions, found 5"),
            "{msg}"
        );

        let mut long = full.clone();
        long.extend_from_slice(&[7, 7]);
        let p = dir.write("long", &long);
        let msg = read_idx_images(&p).unwrap_err().to_string();
        assert!(msg.contains("long: 2 bytes after the 18 bytes"), "{msg}");
    }

    #[test]
    fn cut_gzip_is_an_error_not_a_panic() {
        let dir = TempDir::new("idx-cutgz");
        let gz = gzip(&images_bytes(50, 28, 28));
        for cut in [1, 2, 10, gz.len() / 2, gz.len() - 4] {
            let p = dir.write("cut.gz", &gz[..cut]);
            let err = read_idx_images(&p).unwrap_err();
            assert!(err.to_string().contains("cut.gz"), "{err}");
        }
    }

    #[test]
    fn empty_and_missing_files() {
        let dir = TempDir::new("idx-empty");
        let p = dir.write("empty", b"");
        assert!(matches!(read_idx_images(&p), Err(DataError::Empty { .. })));
        let p = dir.write("zero", &images_bytes(0, 28, 28));
        assert!(matches!(read_idx_images(&p), Err(DataError::Empty { .. })));
        let missing = dir.path().join("nope-images-idx3-ubyte");
        let msg = read_idx_images(&missing).unwrap_err().to_string();
        assert!(
            msg.contains("nope-images-idx3-ubyte: cannot open:"),
            "{msg}"
        );
    }

    #[test]
    fn huge_declared_dimensions_are_rejected_cheaply() {
        let dir = TempDir::new("idx-huge");
        let mut b = vec![0, 0, 8, 3];
        for d in [u32::MAX, u32::MAX, u32::MAX] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        let p = dir.write("huge", &b);
        let err = read_idx_images(&p).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::IdxTooLarge { .. } | DataError::Truncated { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn load_checks_counts_and_classes() {
        let dir = TempDir::new("idx-load");
        let images = dir.write("x-images-idx3-ubyte", &images_bytes(4, 2, 2));
        dir.write("x-labels-idx1-ubyte", &labels_bytes(&[2, 0, 1, 2]));
        let ds = load_idx(&images, None, None).unwrap();
        assert_eq!(ds.labels, vec![2, 0, 1, 2]);
        assert_eq!(ds.class_names, ["0", "1", "2"]);

        // A test file reusing the pool's mapping, whose names are in a different order.
        let pool: Vec<String> = ["2", "1", "0"].map(String::from).to_vec();
        let ds = load_idx(&images, None, Some(&pool)).unwrap();
        assert_eq!(ds.labels, vec![0, 2, 1, 0]);

        let small: Vec<String> = ["0", "1"].map(String::from).to_vec();
        let msg = load_idx(&images, None, Some(&small))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(
                "x-labels-idx1-ubyte: item 0: label '2' does not occur in the pool's classes"
            ),
            "{msg}"
        );

        let gap = dir.write("gap-labels", &labels_bytes(&[0, 3, 1, 3]));
        let msg = load_idx(&images, Some(&gap), None).unwrap_err().to_string();
        assert!(
            msg.contains("class 2 has no samples in") && msg.contains("gap-labels"),
            "{msg}"
        );

        let three = dir.write("three-labels", &labels_bytes(&[0, 1, 0]));
        let msg = load_idx(&images, Some(&three), None)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("x-images-idx3-ubyte holds 4 images but"),
            "{msg}"
        );
        assert!(msg.contains("three-labels holds 3 labels"), "{msg}");

        let odd = dir.write("odd.bin", &images_bytes(4, 2, 2));
        let msg = load_idx(&odd, None, None).unwrap_err().to_string();
        assert!(msg.contains("odd.bin") && msg.contains("--labels"), "{msg}");
    }
}
