//! The labels file a person keeps for `quarry query`: `file,label` lines, read with the habits
//! people have when they keep such a file by hand or in a spreadsheet.
//!
//! * read as CSV (the `csv` crate): fields may be quoted (`"a.png","cat"`, a file name with a
//!   comma), spaces around fields are trimmed, a UTF-8 byte-order mark is dropped;
//! * a `file,label` header may appear anywhere, any number of times (files concatenated), and is
//!   skipped; so are blank lines;
//! * columns after the label are ignored, so the lines of a batch file (`file,label,guess,
//!   probability`) can be appended as they are once the labels are filled in;
//! * file names are relative to the image folder, `/`-separated; `./` and repeated `/` do not
//!   matter (`./sub//x.png` is `sub/x.png`);
//! * a file may appear more than once: the last line wins, so a label is corrected by appending a
//!   new line. Each change is reported as a [`Correction`];
//! * `-` as the label marks an image that cannot be labeled ([`IMPOSSIBLE`]);
//! * with a class list (`--classes a,b,c`), a label outside it is an error naming `file:line`
//!   (a typo would otherwise become a class of its own), and the classes keep the given order.
//!
//! Every error names the file and, for a line, its 1-based number.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The label that marks an image impossible to label.
pub const IMPOSSIBLE: &str = "-";

/// What is wrong with a labels file or a class list. The messages carry the underlying error's
/// text themselves (nothing is chained), so a printer that walks sources never repeats it.
#[derive(Debug, Error)]
pub enum LabelsError {
    /// The file exists but cannot be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    /// A line that cannot be used.
    #[error("{}:{line}: {reason}", path.display())]
    Line { path: PathBuf, line: u64, reason: String },
    /// A bad `--classes` list.
    #[error("--classes: {0}")]
    Classes(String),
}

/// Results of this module.
pub type Result<T, E = LabelsError> = std::result::Result<T, E>;

/// One line of a labels-like file, as written (the file name normalized, the label trimmed and
/// possibly empty: an unfilled line of a batch file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number.
    pub line: u64,
    pub file: String,
    pub label: String,
}

/// A file's answer: its last line in the labels file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub file: String,
    /// `None`: marked impossible to label (`-`).
    pub label: Option<String>,
    /// The line it was read from.
    pub line: u64,
}

/// A later line that changed a file's label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    pub file: String,
    /// The line that changed it, and the line it changed.
    pub line: u64,
    pub earlier_line: u64,
    pub from: String,
    pub to: String,
}

/// The labels so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// One answer per file, in the order the files first appear.
    pub answers: Vec<Answer>,
    /// Lines that changed an earlier label of the same file (the later one was kept).
    pub corrections: Vec<Correction>,
    /// Lines that repeated an earlier line's label for the same file (harmless).
    pub repeats: usize,
    /// The classes: the given list in its order, or else every label used, sorted.
    pub classes: Vec<String>,
}

impl Labels {
    /// How many answers carry a label (not `-`) for each of [`Labels::classes`].
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for label in self.answers.iter().filter_map(|a| a.label.as_deref()) {
            if let Some(c) = self.classes.iter().position(|n| n == label) {
                counts[c] += 1;
            }
        }
        counts
    }
}

/// `file` as a key: `\u{feff}` and spaces trimmed, `.` and empty path segments dropped
/// (`./a//b.png` → `a/b.png`).
pub fn normalize_file(file: &str) -> String {
    file.trim_matches(|c: char| c == '\u{feff}' || c.is_whitespace())
        .split('/')
        .filter(|seg| !seg.is_empty() && *seg != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn is_header(file: &str, label: &str) -> bool {
    file.eq_ignore_ascii_case("file") && label.eq_ignore_ascii_case("label")
}

/// Every `file,label` line of `text` (read from `path`, which only names it in errors): headers
/// and blank lines skipped, extra columns ignored, labels possibly empty. A line with one field
/// or an empty file name is an error naming `path:line`.
pub fn parse_entries(text: &[u8], path: &Path) -> Result<Vec<Entry>> {
    // The csv crate counts a record's line from the end of the previous record, blank lines
    // included; a person counts the line the record is written on.
    let newlines: Vec<usize> = text.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect();
    let line_of = |pos: Option<&csv::Position>| -> u64 {
        let Some(pos) = pos else { return 0 };
        let mut at = pos.byte() as usize;
        while at < text.len() && matches!(text[at], b'\n' | b'\r') {
            at += 1;
        }
        newlines.partition_point(|&n| n < at) as u64 + 1
    };
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(text);
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let line = line_of(e.position());
            let reason = match e.kind() {
                csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
                _ => e.to_string(),
            };
            LabelsError::Line { path: path.to_path_buf(), line, reason }
        })?;
        if !more {
            return Ok(out);
        }
        let line = line_of(record.position());
        let bad = |reason: String| LabelsError::Line { path: path.to_path_buf(), line, reason };
        let fields: Vec<&str> = record.iter().map(|f| f.trim_matches(|c: char| c == '\u{feff}' || c.is_whitespace())).collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        if fields.len() < 2 {
            return Err(bad(format!("expected `file,label`, got {:?}", fields.join(","))));
        }
        let (file, label) = (fields[0], fields[1]);
        if is_header(file, label) {
            continue;
        }
        let file = normalize_file(file);
        if file.is_empty() {
            return Err(bad(format!("no file name before the label {label:?}")));
        }
        out.push(Entry { line, file, label: label.to_string() });
    }
}

/// Whether the first line of `text` that is not blank is a `file,label` header (the first line of
/// every batch file quarry writes).
pub fn starts_with_header(text: &[u8]) -> bool {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(text);
    let mut record = csv::StringRecord::new();
    while let Ok(true) = reader.read_record(&mut record) {
        let fields: Vec<&str> = record.iter().map(|f| f.trim_matches(|c: char| c == '\u{feff}' || c.is_whitespace())).collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        return fields.len() >= 2 && is_header(fields[0], fields[1]);
    }
    false
}

/// [`parse_entries`] of the file at `path`; `None` when there is no such file.
pub fn read_entries(path: &Path) -> Result<Option<Vec<Entry>>> {
    match std::fs::read(path) {
        Ok(bytes) => parse_entries(&bytes, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(LabelsError::Read { path: path.to_path_buf(), error }),
    }
}

/// A `--classes` list: comma-separated names, trimmed; none empty, none repeated, none `-`.
pub fn parse_classes(list: &str) -> Result<Vec<String>> {
    let names: Vec<String> = list.split(',').map(|s| s.trim().to_string()).collect();
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if n.is_empty() {
            return Err(LabelsError::Classes(format!("empty class name in {list:?}")));
        }
        if n == IMPOSSIBLE {
            return Err(LabelsError::Classes(format!("`{IMPOSSIBLE}` marks an image impossible to label; it cannot be a class")));
        }
        if !seen.insert(n.as_str()) {
            return Err(LabelsError::Classes(format!("{n:?} is listed twice")));
        }
    }
    if names.len() < 2 {
        return Err(LabelsError::Classes(format!("{list:?} names {} class; a classifier needs at least 2", names.len())));
    }
    Ok(names)
}

/// The labels file at `path` (missing: no labels yet). The last line for a file wins; an empty
/// label is an error (fill it in, or `-`); with `classes`, a kept label outside the list is an
/// error naming `path:line`.
pub fn read_labels(path: &Path, classes: Option<&[String]>) -> Result<Labels> {
    let entries = read_entries(path)?.unwrap_or_default();
    labels_from_entries(entries, path, classes)
}

/// [`read_labels`] on entries already read from `path`.
pub fn labels_from_entries(entries: Vec<Entry>, path: &Path, classes: Option<&[String]>) -> Result<Labels> {
    let mut labels = Labels::default();
    let mut at: HashMap<String, usize> = HashMap::new();
    for Entry { line, file, label } in entries {
        if label.is_empty() {
            return Err(LabelsError::Line {
                path: path.to_path_buf(),
                line,
                reason: format!("{file} has an empty label (fill it in, or `{IMPOSSIBLE}` if it cannot be labeled)"),
            });
        }
        let answer = Answer { file: file.clone(), label: (label != IMPOSSIBLE).then(|| label.clone()), line };
        match at.get(&file) {
            Some(&i) => {
                let earlier = &labels.answers[i];
                let from = earlier.label.clone().unwrap_or_else(|| IMPOSSIBLE.into());
                if from == label {
                    labels.repeats += 1;
                } else {
                    labels.corrections.push(Correction { file, line, earlier_line: earlier.line, from, to: label });
                }
                labels.answers[i] = answer;
            }
            None => {
                at.insert(file, labels.answers.len());
                labels.answers.push(answer);
            }
        }
    }
    labels.classes = match classes {
        Some(list) => {
            for a in &labels.answers {
                if let Some(label) = a.label.as_deref().filter(|l| !list.iter().any(|c| c == l)) {
                    return Err(LabelsError::Line {
                        path: path.to_path_buf(),
                        line: a.line,
                        reason: format!("{}: label {label:?} is not one of --classes {}", a.file, list.join(",")),
                    });
                }
            }
            list.to_vec()
        }
        None => {
            let mut found: Vec<String> = labels.answers.iter().filter_map(|a| a.label.clone()).collect();
            found.sort();
            found.dedup();
            found
        }
    };
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str, classes: Option<&[String]>) -> Result<Labels> {
        labels_from_entries(parse_entries(text.as_bytes(), Path::new("labels.csv"))?, Path::new("labels.csv"), classes)
    }

    fn pairs(l: &Labels) -> Vec<(String, String, u64)> {
        l.answers.iter().map(|a| (a.file.clone(), a.label.clone().unwrap_or_else(|| "-".into()), a.line)).collect()
    }

    fn p(file: &str, label: &str, line: u64) -> (String, String, u64) {
        (file.into(), label.into(), line)
    }

    #[test]
    fn a_missing_file_is_no_labels_yet() {
        let l = read_labels(Path::new("/nonexistent/quarry/labels.csv"), None).unwrap();
        assert!(l.answers.is_empty() && l.classes.is_empty());
    }

    /// The habits of a labels file kept by hand: a byte-order mark, a header repeated in the
    /// middle (two files concatenated), quoted fields, `./` prefixes, spaces, blank lines and the
    /// extra columns of a batch file. Before, each of these was an error or a silent misreading.
    #[test]
    fn ordinary_habits_are_read_as_meant() {
        let text = "\u{feff}file,label\na.png,cat\n\n ./sub//b.png , dog \nfile,label\n\"c,1.png\",\"cat\"\nd.png,-\nFILE,Label,guess,probability\ne.png,dog,cat,0.61\n";
        let l = labels(text, None).unwrap();
        assert_eq!(pairs(&l), [p("a.png", "cat", 2), p("sub/b.png", "dog", 4), p("c,1.png", "cat", 6), p("d.png", "-", 7), p("e.png", "dog", 9)]);
        assert_eq!(l.classes, ["cat", "dog"]);
        assert_eq!(l.class_counts(), [2, 2]);
        assert!(l.corrections.is_empty() && l.repeats == 0);
    }

    /// A file labeled again is a correction (the last line wins), no longer an error; a line that
    /// repeats the same label is counted apart.
    #[test]
    fn the_last_line_for_a_file_wins_and_corrections_are_counted() {
        let l = labels("a.png,cat\nb.png,dog\na.png,dog\n./b.png,dog\nc.png,-\nc.png,cat\n", None).unwrap();
        assert_eq!(pairs(&l), [p("a.png", "dog", 3), p("b.png", "dog", 4), p("c.png", "cat", 6)]);
        assert_eq!(l.repeats, 1);
        assert_eq!(
            l.corrections,
            [
                Correction { file: "a.png".into(), line: 3, earlier_line: 1, from: "cat".into(), to: "dog".into() },
                Correction { file: "c.png".into(), line: 6, earlier_line: 5, from: "-".into(), to: "cat".into() },
            ]
        );
    }

    /// With a class list a typo is an error naming file:line, the kept label is what is checked
    /// (a typo corrected later is fine), and the classes keep the given order.
    #[test]
    fn a_class_list_catches_typos_and_sets_the_order() {
        let classes = parse_classes(" dog, cat ,bird").unwrap();
        let e = labels("a.png,cat\nb.png,dgo\n", Some(&classes)).unwrap_err().to_string();
        assert_eq!(e, "labels.csv:2: b.png: label \"dgo\" is not one of --classes dog,cat,bird");
        let l = labels("a.png,cat\nb.png,dgo\nc.png,-\nb.png,dog\n", Some(&classes)).unwrap();
        assert_eq!(l.classes, ["dog", "cat", "bird"]);
        assert_eq!(l.class_counts(), [1, 1, 0]);
        for (bad, needle) in [("a,,b", "empty class name"), ("a,-", "cannot be a class"), ("a,b,a", "listed twice"), ("a", "at least 2")] {
            let e = parse_classes(bad).unwrap_err().to_string();
            assert!(e.starts_with("--classes: ") && e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        for (text, needle) in [
            ("file,label\na.png cat\n", "labels.csv:2: expected `file,label`"),
            ("file,label\na.png,\n", "labels.csv:2: a.png has an empty label"),
            ("a.png,cat\n,dog\n", "labels.csv:2: no file name"),
            ("a.png,cat\n\"b.png,dog\n", "labels.csv:2"),
        ] {
            let e = labels(text, None).unwrap_err().to_string();
            assert!(e.starts_with(needle), "{text:?}: {e}");
        }
        let e = labels_from_entries(Vec::new(), Path::new("x"), None).map(|l| l.answers.len()).unwrap();
        assert_eq!(e, 0);
        let e = parse_entries(b"a.png,c\xffat\n", Path::new("labels.csv")).unwrap_err().to_string();
        assert_eq!(e, "labels.csv:1: not UTF-8 text");
    }

    /// An unreadable labels file (here a folder) says so once: the reason is not repeated.
    #[test]
    fn an_unreadable_file_is_named_once() {
        let dir = std::env::temp_dir();
        let e = read_labels(&dir, None).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: cannot read: ", dir.display())), "{e}");
        let reason = e.rsplit(": ").next().unwrap();
        assert_eq!(e.matches(reason).count(), 1, "{e}");
    }
}
