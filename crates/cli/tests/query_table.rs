//! `quarry query --data table.csv`: the real-use loop on a CSV table. Rows are named by
//! `--id-column` or by their number; the cold start is diverse, after two classes the strategy
//! picks with the model's guesses; what a person gave (the data, the labels) is never written.
//! Everything here is made in the test (two Gaussian blobs), nothing from ../shared.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn quarry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quarry")).args(args).output().expect("quarry runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quarry-query-table-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Two Gaussian blobs of 20 rows each in 3 columns (x, y around ∓3, z noise), rows 0..20 the
/// first blob; with `id`, a `name` column `p00`..`p39` between the features.
fn blobs(path: &Path, id: bool) {
    // A small deterministic generator (xorshift) and Box-Muller: no dependency needed.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut normal = move || (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
    let mut text = if id { "x,name,y,z\n".to_string() } else { "x,y,z\n".to_string() };
    for i in 0..40 {
        let centre = if i < 20 { -3.0 } else { 3.0 };
        let (x, y, z) = (centre + normal(), centre + normal(), normal());
        if id {
            text.push_str(&format!("{x:.4},p{i:02},{y:.4},{z:.4}\n"));
        } else {
            text.push_str(&format!("{x:.4},{y:.4},{z:.4}\n"));
        }
    }
    std::fs::write(path, text).unwrap();
}

/// `quarry query` on `data` with `labels`, writing `out`, with `extra` flags.
fn query(data: &Path, labels: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["query", "--data", s(data), "--labels", s(labels), "--out", s(out)];
    args.extend_from_slice(extra);
    quarry(&args)
}

/// The `--out` lines after the header: (file, label, guess, probability).
fn batch_rows(out: &Path) -> Vec<[String; 4]> {
    let text = std::fs::read_to_string(out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("file,label,guess,probability"), "{text}");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 4, "{l}");
            [f[0].into(), f[1].into(), f[2].into(), f[3].into()]
        })
        .collect()
}

/// Cold start (no labels file yet): distinct rows of the table, no guesses; rows named by the id
/// column or by number.
#[test]
fn cold_start_proposes_distinct_rows_by_id_or_number() {
    let d = scratch("cold");
    let (with_id, plain) = (d.join("named.csv"), d.join("plain.csv"));
    blobs(&with_id, true);
    blobs(&plain, false);
    let (labels, out) = (d.join("labels.csv"), d.join("next.csv"));

    let o = query(&with_id, &labels, &out, &["--id-column", "name", "--batch", "6"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let picked = stdout_lines(&o);
    assert_eq!(picked.len(), 6, "{picked:?}");
    let mut unique = picked.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "distinct rows: {picked:?}");
    assert!(picked.iter().all(|p| p.len() == 3 && p.starts_with('p')), "{picked:?}");
    // k-means++ on two blobs: the diverse batch reaches both of them.
    assert!(picked.iter().any(|p| p.as_str() < "p20") && picked.iter().any(|p| p.as_str() >= "p20"), "{picked:?}");
    assert!(stderr(&o).contains("cold start"), "{}", stderr(&o));
    let rows = batch_rows(&out);
    assert_eq!(rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(), picked);
    assert!(rows.iter().all(|r| r[1].is_empty() && r[2].is_empty() && r[3].is_empty()), "{rows:?}");
    assert!(!labels.exists(), "the labels file is never written");

    std::fs::remove_file(&out).unwrap();
    let o = query(&plain, &labels, &out, &["--batch", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let picked: Vec<usize> = stdout_lines(&o).iter().map(|p| p.parse().expect("a row number")).collect();
    let mut unique = picked.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "{picked:?}");
    assert!(picked.iter().all(|&p| p < 40), "{picked:?}");
    std::fs::remove_dir_all(&d).ok();
}

/// With two classes labeled, margin on logistic regression (and on the MLP) picks from the open
/// rows and writes each pick's guess and probability; `-` rows and answered rows are never
/// proposed; the filled batch appends to the labels file as it is; corrections are counted.
#[test]
fn after_two_classes_margin_proposes_with_guesses_and_skips_answered_rows() {
    let d = scratch("margin");
    let data = d.join("table.csv");
    blobs(&data, true);
    let (labels, out) = (d.join("labels.csv"), d.join("next.csv"));
    std::fs::write(&labels, "file,label\np00,a\np01,b\np01,a\np20,b\np21,b\np02,-\np22,-\n").unwrap();
    let o = query(&data, &labels, &out, &["--id-column", "name", "--batch", "5"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("margin") && e.contains("4 labeled") && e.contains("2 marked impossible"), "{e}");
    assert!(e.contains("applied 1 correction"), "{e}");
    let rows = batch_rows(&out);
    assert_eq!(rows.len(), 5);
    for r in &rows {
        assert!(!["p00", "p01", "p02", "p20", "p21", "p22"].contains(&r[0].as_str()), "an answered row proposed: {rows:?}");
        assert!(r[1].is_empty() && (r[2] == "a" || r[2] == "b"), "{rows:?}");
        let p: f64 = r[3].parse().unwrap();
        assert!((0.5..=1.0).contains(&p), "{rows:?}");
    }
    assert_eq!(stdout_lines(&o), rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>());

    // Filled in and appended as they are: accepted on the next call, which proposes other rows.
    let filled: String = rows.iter().map(|r| format!("{},a,{},{}\n", r[0], r[2], r[3])).collect();
    let mut text = std::fs::read_to_string(&labels).unwrap();
    text.push_str("file,label,guess,probability\n");
    text.push_str(&filled);
    std::fs::write(&labels, &text).unwrap();
    let o = query(&data, &labels, &out, &["--id-column", "name", "--batch", "5", "--model", "mlp", "--epochs", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Vec<String> = stdout_lines(&o);
    assert_eq!(again.len(), 5);
    assert!(again.iter().all(|p| !rows.iter().any(|r| &r[0] == p)), "{again:?} repeats {rows:?}");
    assert!(batch_rows(&out).iter().all(|r| !r[2].is_empty()), "the MLP's guesses are written");

    // Most rows marked `-`: only the open ones are proposed, never a `-` row.
    let mut text = String::from("file,label\np00,a\np20,b\n");
    for i in (1..20).chain(21..40).filter(|i| i % 6 != 0) {
        text.push_str(&format!("p{i:02},-\n"));
    }
    std::fs::write(&labels, &text).unwrap();
    std::fs::remove_file(&out).unwrap();
    let o = query(&data, &labels, &out, &["--id-column", "name", "--batch", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut picked = stdout_lines(&o);
    picked.sort();
    assert_eq!(picked, ["p06", "p12", "p18", "p24", "p30", "p36"]);
    std::fs::remove_dir_all(&d).ok();
}

/// A label naming a row that is not in the table, a repeated id, a cell that is not a number and
/// a strategy the model cannot serve are errors naming the file and line; nothing is written.
#[test]
fn bad_names_ids_cells_and_strategies_are_errors_naming_file_and_line() {
    let d = scratch("errors");
    let data = d.join("table.csv");
    blobs(&data, true);
    let (labels, out) = (d.join("labels.csv"), d.join("next.csv"));

    std::fs::write(&labels, "file,label\np00,a\np99,b\n").unwrap();
    let o = query(&data, &labels, &out, &["--id-column", "name"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("labels.csv:3: p99 is not a row of the table"), "{e}");
    // Without --id-column rows are numbers: 40 is past the last one.
    let plain = d.join("plain.csv");
    blobs(&plain, false);
    std::fs::write(&labels, "0,a\n40,b\n").unwrap();
    let o = query(&plain, &labels, &out, &[]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("labels.csv:2: 40 is not a row of the table") && e.contains("0 to 39"), "{e}");

    std::fs::write(&labels, "file,label\n").unwrap();
    let dup = d.join("dup.csv");
    std::fs::write(&dup, "name,x\na,1\nb,2\n\na,3\n").unwrap();
    let o = query(&dup, &labels, &out, &["--id-column", "name"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("dup.csv:5: id \"a\" repeats line 2"), "{e}");

    let bad = d.join("bad.csv");
    std::fs::write(&bad, "name,x,y\na,1,2\nb,3,oops\n").unwrap();
    let o = query(&bad, &labels, &out, &["--id-column", "name"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("bad.csv:3:3: column \"y\": \"oops\" is not a number"), "{e}");
    // Without --id-column the id column is a feature like any other, and says so.
    let o = query(&bad, &labels, &out, &[]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("bad.csv:2:1: column \"name\"") && e.contains("--id-column"), "{e}");

    let o = query(&data, &labels, &out, &["--id-column", "name", "--strategy", "bald"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("--strategy: bald needs mc-samples") && e.contains("dropout"), "{e}");
    let o = query(&data, &labels, &out, &["--id-column", "name", "--strategy", "aift"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("image folder"), "{e}");
    let o = query(&data, &labels, &out, &["--id-column", "name", "--weights", "w.safetensors"]);
    assert!(!o.status.success() && stderr(&o).contains("--weights: applies to an image folder"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written when refused");
    std::fs::remove_dir_all(&d).ok();
}

/// `--out` naming the data file (directly or through a symbolic link) or the labels file is
/// refused and the file left byte for byte; an --out holding answers not appended yet is kept.
#[test]
fn out_never_replaces_the_data_or_unappended_answers() {
    let d = scratch("out");
    let data = d.join("table.csv");
    blobs(&data, true);
    let before = std::fs::read(&data).unwrap();
    let labels = d.join("labels.csv");
    std::fs::write(&labels, "file,label\np00,a\n").unwrap();
    let o = query(&data, &labels, &data, &["--id-column", "name"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("--out: ") && e.contains("is the data file"), "{e}");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&data, d.join("link.csv")).unwrap();
        let o = query(&data, &labels, &d.join("link.csv"), &["--id-column", "name"]);
        assert!(!o.status.success() && stderr(&o).contains("is the data file"), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(&data).unwrap(), before, "the data file is untouched");
    let o = query(&data, &labels, &labels, &["--id-column", "name"]);
    assert!(!o.status.success() && stderr(&o).contains("is the labels file"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&labels).unwrap(), "file,label\np00,a\n");

    let out = d.join("next.csv");
    std::fs::write(&out, "file,label,guess,probability\np05,b,,\n").unwrap();
    let o = query(&data, &labels, &out, &["--id-column", "name"]);
    assert!(!o.status.success() && stderr(&o).contains("append those lines"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "file,label,guess,probability\np05,b,,\n");
    std::fs::remove_dir_all(&d).ok();
}
