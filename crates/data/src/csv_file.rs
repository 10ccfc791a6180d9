//! CSV with a header, one label column, and numeric features in every other column.
//!
//! The reader is configured as flexible and row lengths are checked here, so that a ragged row
//! is reported with its line number and both counts instead of the csv crate's generic message.
//! A gzip-compressed CSV is read the same way (detected by content, like IDX files).

use std::collections::HashMap;
use std::path::Path;

use quarry_core::{Dataset, Matrix};

use crate::error::{DataError, Result};
use crate::input::Input;

/// How many column names an "unknown column" message lists before abbreviating.
const MAX_LISTED_COLUMNS: usize = 10;

/// Loads a CSV whose column `label_column` holds the labels and whose other columns are all
/// numeric features (`f32`, surrounding whitespace ignored).
///
/// With `classes` = `None` the file defines the classes: its distinct label values, sorted
/// numerically when every one of them is a number (so `"2"` comes before `"10"`), otherwise
/// lexicographically; sorting makes the mapping independent of row order. With `Some(classes)`
/// (a test file that must reuse the pool's mapping) labels are looked up in `classes` and an
/// unknown one is an error naming its line.
pub fn load_csv(path: &Path, label_column: &str, classes: Option<&[String]>) -> Result<Dataset> {
    let input = Input::open(path)?;
    let gzip = input.gzip;
    // Turns a csv error into ours: I/O failures (including a damaged gzip stream) get the same
    // wording as for IDX files; anything else (e.g. invalid UTF-8) keeps the csv crate's message,
    // which already carries the position.
    let csv_err = |error: csv::Error| {
        let path = path.to_path_buf();
        let message = error.to_string();
        match error.into_kind() {
            csv::ErrorKind::Io(error) if gzip => DataError::Gzip { path, error },
            csv::ErrorKind::Io(error) => DataError::Read { path, error },
            _ => DataError::Csv { path, message },
        }
    };

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input.reader);
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            what: "the file is empty (expected a header line)",
        });
    }
    let label_idx = find_label_column(path, &header, label_column)?;
    let n_features = header.len() - 1;

    let known: Option<HashMap<&str, u32>> = classes.map(|c| {
        c.iter()
            .enumerate()
            .map(|(i, name)| (name.as_str(), i as u32))
            .collect()
    });
    // Without a given mapping, labels are numbered in order of first appearance while reading
    // and renumbered into sorted order at the end.
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut labels: Vec<u32> = Vec::new();
    let mut features: Vec<f32> = Vec::new();
    let mut record = csv::StringRecord::new();

    while reader.read_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            return Err(DataError::Ragged {
                path: path.to_path_buf(),
                line,
                expected: header.len(),
                found: record.len(),
            });
        }
        for (col, value) in record.iter().enumerate() {
            if col == label_idx {
                continue;
            }
            let value = value.trim();
            match value.parse::<f32>() {
                // Non-finite values would silently poison every model downstream.
                Ok(v) if v.is_finite() => features.push(v),
                _ => {
                    return Err(DataError::NotANumber {
                        path: path.to_path_buf(),
                        line,
                        column: header[col].clone(),
                        value: value.to_string(),
                    });
                }
            }
        }
        let label = record[label_idx].trim();
        if label.is_empty() {
            return Err(DataError::EmptyLabel {
                path: path.to_path_buf(),
                line,
                column: header[label_idx].clone(),
            });
        }
        let id = match &known {
            Some(known) => *known.get(label).ok_or_else(|| DataError::UnknownLabel {
                path: path.to_path_buf(),
                line,
                label: label.to_string(),
            })?,
            None => {
                let next = seen.len() as u32;
                *seen.entry(label.to_string()).or_insert(next)
            }
        };
        labels.push(id);
    }

    if labels.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            what: "no rows after the header",
        });
    }
    let class_names = match classes {
        Some(c) => c.to_vec(),
        None => {
            let (names, renumber) = sorted_classes(seen);
            labels.iter_mut().for_each(|l| *l = renumber[*l as usize]);
            names
        }
    };
    let core_err = |error| DataError::Core {
        path: path.to_path_buf(),
        error,
    };
    let matrix = Matrix::new(features, labels.len(), n_features).map_err(core_err)?;
    Dataset::new(matrix, labels, class_names).map_err(core_err)
}

/// The index of the label column; it must occur exactly once and leave at least one feature.
fn find_label_column(path: &Path, header: &[String], label_column: &str) -> Result<usize> {
    let wanted = label_column.trim();
    let mut matches = header
        .iter()
        .enumerate()
        .filter(|(_, h)| *h == wanted)
        .map(|(i, _)| i);
    let Some(idx) = matches.next() else {
        return Err(DataError::NoSuchColumn {
            path: path.to_path_buf(),
            label: wanted.to_string(),
            columns: abbreviate(header),
        });
    };
    if matches.next().is_some() {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            reason: format!("column '{wanted}' appears more than once"),
        });
    }
    if header.len() < 2 {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            reason: format!("no feature columns besides '{wanted}'"),
        });
    }
    Ok(idx)
}

/// `a, b, c` — or the first few names and how many more, so a 785-column header stays one line.
fn abbreviate(header: &[String]) -> String {
    let shown = header
        .iter()
        .take(MAX_LISTED_COLUMNS)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    match header.len().saturating_sub(MAX_LISTED_COLUMNS) {
        0 => shown,
        more => format!("{shown}, … and {more} more"),
    }
}

/// Sorts the class names (numerically if all are numbers) and returns them together with a
/// table from first-appearance id to sorted id.
fn sorted_classes(seen: HashMap<String, u32>) -> (Vec<String>, Vec<u32>) {
    let mut entries: Vec<(String, u32)> = seen.into_iter().collect();
    let numeric: Option<Vec<f64>> = entries
        .iter()
        .map(|(name, _)| name.parse::<f64>().ok())
        .collect();
    match numeric {
        Some(_) => entries.sort_by(|(a, _), (b, _)| {
            // Both parse (checked above); ties such as "1" and "1.0" fall back to the text.
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y).then_with(|| a.cmp(b))
        }),
        None => entries.sort_by(|(a, _), (b, _)| a.cmp(b)),
    }
    let mut renumber = vec![0u32; entries.len()];
    for (sorted, (_, first_seen)) in entries.iter().enumerate() {
        renumber[*first_seen as usize] = sorted as u32;
    }
    (
        entries.into_iter().map(|(name, _)| name).collect(),
        renumber,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_features_and_sorted_labels() {
        let dir = TempDir::new("csv-basic");
        let p = dir.write("a.csv", b"x, y ,label\n1, 2.5,cat\n 3,4 , dog \n5,6,cat\n");
        let ds = load_csv(&p, "label", None).unwrap();
        assert_eq!(ds.features.as_slice(), &[1.0, 2.5, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(ds.class_names, names(&["cat", "dog"]));
        assert_eq!(ds.labels, vec![0, 1, 0]);
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        let dir = TempDir::new("csv-numeric");
        let p = dir.write("n.csv", b"label,f\n10,0\n2,0\n1,0\n2,0\n");
        let ds = load_csv(&p, "label", None).unwrap();
        assert_eq!(ds.class_names, names(&["1", "2", "10"]));
        assert_eq!(ds.labels, vec![2, 1, 0, 1]);
        // One non-number makes the whole set sort as text.
        let p = dir.write("m.csv", b"label,f\n10,0\n2,0\nx,0\n");
        assert_eq!(
            load_csv(&p, "label", None).unwrap().class_names,
            names(&["10", "2", "x"])
        );
    }

    #[test]
    fn given_classes_are_reused() {
        let dir = TempDir::new("csv-classes");
        let p = dir.write("t.csv", b"f,label\n1,b\n2,a\n");
        let pool = names(&["b", "a", "c"]);
        let ds = load_csv(&p, "label", Some(&pool)).unwrap();
        assert_eq!(ds.labels, vec![0, 1]);
        assert_eq!(ds.class_names, pool);

        let p = dir.write("u.csv", b"f,label\n1,b\n2,zebra\n");
        let msg = load_csv(&p, "label", Some(&pool)).unwrap_err().to_string();
        assert!(
            msg.ends_with("u.csv:3: label 'zebra' does not occur in the pool's classes"),
            "{msg}"
        );
    }

    #[test]
    fn ragged_row_names_line() {
        let dir = TempDir::new("csv-ragged");
        let p = dir.write("r.csv", b"a,b,label\n1,2,x\n1,2,3,x\n");
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(
            msg.ends_with("r.csv:3: expected 3 fields like the header, found 4"),
            "{msg}"
        );
    }

    #[test]
    fn bad_values_name_line_and_column() {
        let dir = TempDir::new("csv-nan");
        let p = dir.write("v.csv", b"a,b,label\n1,2,x\n1,abc,x\n");
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(
            msg.ends_with("v.csv:3: column 'b': 'abc' is not a number"),
            "{msg}"
        );
        let p = dir.write("e.csv", b"a,b,label\n1, ,x\n");
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(
            msg.ends_with("e.csv:2: column 'b': '' is not a number"),
            "{msg}"
        );
        let p = dir.write("nan.csv", b"a,b,label\n1,NaN,x\n");
        assert!(matches!(
            load_csv(&p, "label", None),
            Err(DataError::NotANumber { line: 2, .. })
        ));
        let p = dir.write("el.csv", b"a,label\n1,\n");
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(
            msg.ends_with("el.csv:2: column 'label': the label is empty"),
            "{msg}"
        );
    }

    #[test]
    fn quoted_multiline_field_keeps_line_numbers_right() {
        let dir = TempDir::new("csv-quoted");
        let p = dir.write("q.csv", b"a,label\n1,\"two\nlines\"\n2,x\nbad,x\n");
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(
            msg.ends_with("q.csv:5: column 'a': 'bad' is not a number"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_column_lists_a_few() {
        let dir = TempDir::new("csv-col");
        let header: Vec<String> = (0..15).map(|i| format!("c{i}")).collect();
        let p = dir.write("c.csv", format!("{}\n", header.join(",")).as_bytes());
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(
            msg.contains("c.csv: no column named 'label' (columns: c0, c1,"),
            "{msg}"
        );
        assert!(
            msg.contains("c9, … and 5 more)") && !msg.contains("c10"),
            "{msg}"
        );
        let p = dir.write("d.csv", b"x,y\n1,2\n");
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(msg.ends_with("(columns: x, y)"), "{msg}");
    }

    #[test]
    fn empty_files_and_bad_headers() {
        let dir = TempDir::new("csv-empty");
        let p = dir.write("empty.csv", b"");
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(msg.contains("empty.csv: the file is empty"), "{msg}");
        let p = dir.write("header.csv", b"a,label\n");
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(
            msg.contains("header.csv: no rows after the header"),
            "{msg}"
        );
        let p = dir.write("only.csv", b"label\nx\n");
        assert!(matches!(
            load_csv(&p, "label", None),
            Err(DataError::BadHeader { .. })
        ));
        let p = dir.write("dup.csv", b"label,a,label\nx,1,y\n");
        assert!(matches!(
            load_csv(&p, "label", None),
            Err(DataError::BadHeader { .. })
        ));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let dir = TempDir::new("csv-utf8");
        let p = dir.write("bin.csv", b"a,label\n1,\xff\xfe\n");
        let msg = load_csv(&p, "label", None).unwrap_err().to_string();
        assert!(msg.starts_with(&p.display().to_string()), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
