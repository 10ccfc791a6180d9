//! One entry point for every supported file: decides IDX or CSV from the file's content.

use std::path::Path;

use quarry_core::Dataset;

use crate::csv_file::load_csv;
use crate::error::{DataError, Result};
use crate::idx::{is_idx_magic, load_idx};
use crate::input::Input;

/// Loads a dataset from `path`, choosing the reader from the content rather than the extension.
///
/// * A missing path is the "cannot open" error; a directory is refused (image folders are not
///   supported yet).
/// * A file that starts with an IDX magic number (after gunzipping, if gzipped), or whose name
///   contains `idx3`, is read as IDX images with [`load_idx`]; `labels` overrides the derived
///   labels path. A name with `idx3` but other content gets the "not an IDX file" message,
///   which is more useful than a CSV parse error on binary data.
/// * Anything else is a CSV read with [`load_csv`] and needs `label_column`.
///
/// `classes`, when given, is the pool's class mapping that a test file must reuse. Options that
/// belong to the other format (`labels` for a CSV, `label_column` for IDX) are errors rather than
/// silently ignored, since the user evidently expected them to do something.
pub fn load(
    path: &Path,
    label_column: Option<&str>,
    labels: Option<&Path>,
    classes: Option<&[String]>,
) -> Result<Dataset> {
    let meta = std::fs::metadata(path).map_err(|error| DataError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    if meta.is_dir() {
        return Err(DataError::Directory {
            path: path.to_path_buf(),
        });
    }
    if looks_like_idx(path)? {
        if label_column.is_some() {
            return Err(DataError::OptionNotApplicable {
                path: path.to_path_buf(),
                option: "--label-column",
                applies_to: "CSV",
            });
        }
        return load_idx(path, labels, classes);
    }
    if labels.is_some() {
        return Err(DataError::OptionNotApplicable {
            path: path.to_path_buf(),
            option: "--labels",
            applies_to: "IDX",
        });
    }
    let label_column = label_column.ok_or_else(|| DataError::NeedsLabelColumn {
        path: path.to_path_buf(),
    })?;
    load_csv(path, label_column, classes)
}

/// The kinds of data file [`load`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// IDX images (pixels 0..255) with a labels file.
    Idx,
    /// A CSV with a header and a label column.
    Csv,
}

/// Which reader [`load`] would use for `path` (errors as [`load`]'s for a missing file).
pub fn detect_format(path: &Path) -> Result<DataFormat> {
    Ok(if looks_like_idx(path)? { DataFormat::Idx } else { DataFormat::Csv })
}

/// IDX by name (`idx3`) or by the first four (decompressed) bytes.
fn looks_like_idx(path: &Path) -> Result<bool> {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("idx3"));
    if named {
        return Ok(true);
    }
    let mut input = Input::open(path)?;
    let mut head = [0u8; 4];
    let got = input.read_up_to(&mut head)?;
    Ok(is_idx_magic(&head[..got]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    fn idx_pair(dir: &TempDir, images_name: &str, labels_name: &str) -> std::path::PathBuf {
        let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        images.extend_from_slice(&[1, 2, 3, 4]);
        dir.write(labels_name, &[0, 0, 8, 1, 0, 0, 0, 2, 1, 0]);
        dir.write(images_name, &images)
    }

    #[test]
    fn dispatches_by_content() {
        let dir = TempDir::new("load-dispatch");
        // No idx3 in the name: recognised by the magic number.
        let images = idx_pair(&dir, "pics.bin", "pics-labels.bin");
        let labels = dir.path().join("pics-labels.bin");
        let ds = load(&images, None, Some(&labels), None).unwrap();
        assert_eq!((ds.len(), ds.dim(), ds.labels.clone()), (2, 2, vec![1, 0]));

        let csv = dir.write("t.txt", b"f,y\n1,a\n2,b\n");
        let ds = load(&csv, Some("y"), None, None).unwrap();
        assert_eq!(ds.class_names, ["a", "b"]);
    }

    #[test]
    fn dispatch_errors_name_the_path() {
        let dir = TempDir::new("load-errors");
        let csv = dir.write("t.csv", b"f,y\n1,a\n");
        let msg = load(&csv, None, None, None).unwrap_err().to_string();
        assert!(msg.ends_with("t.csv: a CSV needs --label-column"), "{msg}");
        assert!(matches!(
            load(&csv, Some("y"), Some(&csv), None),
            Err(DataError::OptionNotApplicable {
                option: "--labels",
                ..
            })
        ));

        let missing = dir.path().join("missing.csv");
        let msg = load(&missing, Some("y"), None, None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing.csv: cannot open:"), "{msg}");

        let msg = load(dir.path(), None, None, None).unwrap_err().to_string();
        assert!(
            msg.contains("is a folder"),
            "{msg}"
        );

        let fake = dir.write("fake-images-idx3-ubyte", b"a,b\n1,2\n");
        let msg = load(&fake, None, None, None).unwrap_err().to_string();
        assert!(
            msg.contains("fake-images-idx3-ubyte: not an IDX file"),
            "{msg}"
        );

        let images = idx_pair(&dir, "p-images-idx3-ubyte", "p-labels-idx1-ubyte");
        assert!(matches!(
            load(&images, Some("y"), None, None),
            Err(DataError::OptionNotApplicable {
                option: "--label-column",
                ..
            })
        ));
        assert!(load(&images, None, None, None).is_ok());

        // A labels file given as the data is recognised as IDX and named as the wrong kind.
        let labels = dir.path().join("p-labels-idx1-ubyte");
        let msg = load(&labels, None, None, None).unwrap_err().to_string();
        assert!(
            msg.contains("p-labels-idx1-ubyte: IDX magic 0x00000801 does not hold u8 images"),
            "{msg}"
        );
    }
}
