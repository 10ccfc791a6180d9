//! `quarry select`: scores written by another framework in (.npy written here by hand, CSV), the
//! batch out as `index,score` lines. Needs nothing outside the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn quarry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quarry")).args(args).output().expect("quarry runs")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quarry-select-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An .npy file: format `version` (1, 2 or 3), dtype `descr` (`<f4`…), `shape`, raw little-endian `data`.
fn npy(path: &Path, version: u8, descr: &str, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if shape.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let pre = if version == 1 { 10 } else { 12 };
    while (pre + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((dict.len() as u16).to_le_bytes());
    } else {
        out.extend((dict.len() as u32).to_le_bytes());
    }
    out.extend(dict.as_bytes());
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn f64_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect()
}
/// f16 of values that are exact in half precision (multiples of 1/64 in [0, 1]).
fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|&x| {
            assert!((x * 64.0).fract() == 0.0 && (0.0..=1.0).contains(&x));
            let bits: u16 = if x == 0.0 {
                0
            } else {
                let b = x.to_bits();
                let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
                (((exp as u32) << 10) | ((b >> 13) & 0x3ff)) as u16
            };
            bits.to_le_bytes()
        })
        .collect()
}

/// `n` rows of `k` probabilities, each a multiple of 1/64 summing to exactly 1 (exact in f16/f32/f64).
fn probabilities(n: usize, k: usize) -> Vec<f32> {
    let mut state = 12345u64;
    let mut out = Vec::new();
    for _ in 0..n {
        let mut left = 64u32;
        let mut row = Vec::new();
        for c in 0..k {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let take = if c == k - 1 { left } else { ((state >> 33) as u32) % (left + 1) };
            left -= take;
            row.push(take as f32 / 64.0);
        }
        out.extend(row);
    }
    out
}

fn embeddings(n: usize, dim: usize) -> Vec<f32> {
    let mut state = 99u64;
    (0..n * dim)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The `index` column of `index,score` output.
fn indices(text: &str) -> Vec<usize> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("index,score"), "output: {text}");
    lines.map(|l| l.split(',').next().unwrap().parse().unwrap()).collect()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "quarry failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn err(o: &Output) -> String {
    assert!(!o.status.success(), "quarry should have failed; stdout: {}", String::from_utf8_lossy(&o.stdout));
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn margin_order(p: &[f32], k: usize) -> Vec<usize> {
    let mut m: Vec<(f32, usize)> = p
        .chunks(k)
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.to_vec();
            r.sort_by(|a, b| b.partial_cmp(a).unwrap());
            (r[0] - r[1], i)
        })
        .collect();
    m.sort_by(|a, b| a.partial_cmp(b).unwrap());
    m.into_iter().map(|(_, i)| i).collect()
}

#[test]
fn margin_picks_the_smallest_margins_from_npy_and_csv_alike() {
    let d = scratch("margin");
    let (n, k) = (200, 4);
    let p = probabilities(n, k);
    npy(&d.join("p.npy"), 1, "<f4", &[n, k], &f32_bytes(&p));
    let mut csv = String::from("p0,p1,p2,p3\n");
    for r in p.chunks(k) {
        csv.push_str(&r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","));
        csv.push('\n');
    }
    std::fs::write(d.join("p.csv"), csv).unwrap();
    let from_npy = ok(&quarry(&["select", "--strategy", "margin", "--batch", "10", "--probabilities", s(&d.join("p.npy"))]));
    let from_csv = ok(&quarry(&["select", "--strategy", "margin", "--batch", "10", "--probabilities", s(&d.join("p.csv"))]));
    assert_eq!(from_npy, from_csv);
    let got = indices(&from_npy);
    assert_eq!(got.len(), 10);
    // The ten smallest margins (ties in the multiples of 1/64 may order differently: compare by value).
    let order = margin_order(&p, k);
    let margin = |i: usize| {
        let mut r = p[i * k..(i + 1) * k].to_vec();
        r.sort_by(|a, b| b.partial_cmp(a).unwrap());
        r[0] - r[1]
    };
    let mut want: Vec<f32> = order[..10].iter().map(|&i| margin(i)).collect();
    let mut have: Vec<f32> = got.iter().map(|&i| margin(i)).collect();
    want.sort_by(|a, b| a.partial_cmp(b).unwrap());
    have.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(have, want);
    let threshold = margin(order[9]);
    assert!(got.iter().all(|&i| margin(i) <= threshold));
}

#[test]
fn f16_f32_and_f64_npy_and_header_versions_read_the_same() {
    let d = scratch("dtypes");
    let (n, k) = (60, 3);
    let p = probabilities(n, k);
    npy(&d.join("p32.npy"), 1, "<f4", &[n, k], &f32_bytes(&p));
    npy(&d.join("p64.npy"), 2, "<f8", &[n, k], &f64_bytes(&p));
    npy(&d.join("p16.npy"), 3, "<f2", &[n, k], &f16_bytes(&p));
    let run = |f: &str| ok(&quarry(&["select", "--strategy", "entropy", "--batch", "7", "--probabilities", s(&d.join(f))]));
    let a = run("p32.npy");
    assert_eq!(indices(&a).len(), 7);
    assert_eq!(a, run("p64.npy"));
    assert_eq!(a, run("p16.npy"));
}

#[test]
fn coreset_and_badge_never_pick_a_labeled_row() {
    let d = scratch("diversity");
    let (n, k, dim) = (150, 3, 5);
    npy(&d.join("p.npy"), 1, "<f4", &[n, k], &f32_bytes(&probabilities(n, k)));
    npy(&d.join("e.npy"), 1, "<f4", &[n, dim], &f32_bytes(&embeddings(n, dim)));
    let labeled: Vec<usize> = (0..n).step_by(3).collect();
    std::fs::write(d.join("labeled.txt"), labeled.iter().map(|i| format!("{i}\n")).collect::<String>()).unwrap();
    let as_i64: Vec<u8> = labeled.iter().flat_map(|&i| (i as i64).to_le_bytes()).collect();
    npy(&d.join("labeled.npy"), 1, "<i8", &[labeled.len()], &as_i64);
    for strategy in ["coreset", "badge"] {
        let mut outs = Vec::new();
        for lab in ["labeled.txt", "labeled.npy"] {
            let out = ok(&quarry(&[
                "select", "--strategy", strategy, "--batch", "20", "--probabilities", s(&d.join("p.npy")), "--embeddings",
                s(&d.join("e.npy")), "--labeled", s(&d.join(lab)), "--seed", "3",
            ]));
            let got = indices(&out);
            assert_eq!(got.len(), 20, "{strategy}");
            assert!(got.iter().all(|i| i % 3 != 0 && *i < n), "{strategy} picked a labeled row: {got:?}");
            let mut u = got.clone();
            u.sort();
            u.dedup();
            assert_eq!(u.len(), 20, "{strategy} picked a row twice");
            outs.push(out);
        }
        assert_eq!(outs[0], outs[1], "{strategy}: the labeled rows as text and as .npy");
    }
}

#[test]
fn out_writes_index_and_score() {
    let d = scratch("out");
    let (n, k) = (40, 2);
    npy(&d.join("p.npy"), 1, "<f4", &[n, k], &f32_bytes(&probabilities(n, k)));
    let o = quarry(&["select", "--strategy", "least-confidence", "--batch", "5", "--probabilities", s(&d.join("p.npy")), "--out", s(&d.join("batch.csv"))]);
    assert!(ok(&o).is_empty(), "the batch goes to --out, not stdout");
    let text = std::fs::read_to_string(d.join("batch.csv")).unwrap();
    assert_eq!(indices(&text).len(), 5);
    for line in text.lines().skip(1) {
        let (_, score) = line.split_once(',').unwrap();
        score.parse::<f64>().unwrap();
    }
    // --out is never one of the inputs.
    let e = err(&quarry(&["select", "--strategy", "margin", "--batch", "5", "--probabilities", s(&d.join("p.npy")), "--out", s(&d.join("p.npy"))]));
    assert!(e.contains("--out"), "{e}");
    assert!(std::fs::read(d.join("p.npy")).unwrap().starts_with(b"\x93NUMPY"));
}

#[test]
fn bad_inputs_are_errors_naming_the_file() {
    let d = scratch("bad");
    let (n, k) = (30, 3);
    let mut p = probabilities(n, k);
    // A 1-D array where [n, classes] is expected.
    npy(&d.join("flat.npy"), 1, "<f4", &[n * k], &f32_bytes(&p));
    let e = err(&quarry(&["select", "--strategy", "margin", "--batch", "3", "--probabilities", s(&d.join("flat.npy"))]));
    assert!(e.contains("flat.npy") && e.contains("[n, classes]") && e.contains("[90]"), "{e}");
    // Embeddings whose rows are not the probabilities' rows.
    npy(&d.join("p.npy"), 1, "<f4", &[n, k], &f32_bytes(&p));
    npy(&d.join("e.npy"), 1, "<f4", &[n - 1, 4], &f32_bytes(&embeddings(n - 1, 4)));
    let e = err(&quarry(&["select", "--strategy", "badge", "--batch", "3", "--probabilities", s(&d.join("p.npy")), "--embeddings", s(&d.join("e.npy"))]));
    assert!(e.contains("e.npy") && e.contains("[29, 4]") && e.contains("30"), "{e}");
    // A truncated file.
    let bytes = std::fs::read(d.join("p.npy")).unwrap();
    std::fs::write(d.join("short.npy"), &bytes[..bytes.len() - 8]).unwrap();
    let e = err(&quarry(&["select", "--strategy", "margin", "--batch", "3", "--probabilities", s(&d.join("short.npy"))]));
    assert!(e.contains("short.npy") && e.contains("truncated"), "{e}");
    // Row 7 does not sum to 1: an error naming the row, unless --normalize.
    p[7 * k] += 0.5;
    npy(&d.join("unnorm.npy"), 1, "<f4", &[n, k], &f32_bytes(&p));
    let e = err(&quarry(&["select", "--strategy", "margin", "--batch", "3", "--probabilities", s(&d.join("unnorm.npy"))]));
    assert!(e.contains("unnorm.npy") && e.contains("row 7") && e.contains("--normalize"), "{e}");
    ok(&quarry(&["select", "--strategy", "margin", "--batch", "3", "--probabilities", s(&d.join("unnorm.npy")), "--normalize"]));
    // A negative value is an error even with --normalize.
    p[11 * k + 1] = -0.25;
    npy(&d.join("negative.npy"), 1, "<f4", &[n, k], &f32_bytes(&p));
    let e = err(&quarry(&["select", "--strategy", "margin", "--batch", "3", "--probabilities", s(&d.join("negative.npy")), "--normalize"]));
    assert!(e.contains("negative.npy") && e.contains("row 11"), "{e}");
    // A CSV row that does not sum to 1.
    std::fs::write(d.join("p.csv"), "a,b\n0.5,0.5\n0.25,0.5\n").unwrap();
    let e = err(&quarry(&["select", "--strategy", "margin", "--batch", "1", "--probabilities", s(&d.join("p.csv"))]));
    assert!(e.contains("p.csv") && e.contains("row 1"), "{e}");
    // A missing file.
    let e = err(&quarry(&["select", "--strategy", "margin", "--batch", "3", "--probabilities", s(&d.join("nowhere.npy"))]));
    assert!(e.contains("nowhere.npy"), "{e}");
    // A labeled row outside the file.
    std::fs::write(d.join("labeled.txt"), "1\n30\n").unwrap();
    let e = err(&quarry(&["select", "--strategy", "margin", "--batch", "3", "--probabilities", s(&d.join("p.npy")), "--labeled", s(&d.join("labeled.txt"))]));
    assert!(e.contains("labeled.txt") && e.contains("30"), "{e}");
}

#[test]
fn what_a_strategy_needs_is_said_before_any_work() {
    let d = scratch("needs");
    let e = err(&quarry(&["select", "--strategy", "bald", "--batch", "3", "--probabilities", s(&d.join("not-read.npy"))]));
    assert!(e.contains("--mc-samples"), "{e}");
    let e = err(&quarry(&["select", "--strategy", "coreset", "--batch", "3", "--probabilities", s(&d.join("not-read.npy"))]));
    assert!(e.contains("--embeddings"), "{e}");
    let e = err(&quarry(&["select", "--strategy", "expected-error-reduction", "--batch", "3", "--probabilities", s(&d.join("x.npy"))]));
    assert!(e.contains("a model quarry can refit") && e.contains("quarry simulate/query"), "{e}");
    let e = err(&quarry(&["select", "--strategy", "no-such", "--batch", "3"]));
    assert!(e.contains("no-such"), "{e}");
}

#[test]
fn bald_reads_mc_dropout_samples() {
    let d = scratch("bald");
    let (draws, n, k) = (5, 50, 3);
    let samples = probabilities(draws * n, k);
    npy(&d.join("mc.npy"), 1, "<f4", &[draws, n, k], &f32_bytes(&samples));
    std::fs::write(d.join("labeled.txt"), "index\n0\n1\n").unwrap();
    let out = ok(&quarry(&["select", "--strategy", "bald", "--batch", "4", "--mc-samples", s(&d.join("mc.npy")), "--labeled", s(&d.join("labeled.txt"))]));
    let got = indices(&out);
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|&i| i >= 2 && i < n));
    npy(&d.join("mc2.npy"), 1, "<f4", &[n, k], &f32_bytes(&samples[..n * k]));
    let e = err(&quarry(&["select", "--strategy", "bald", "--batch", "4", "--mc-samples", s(&d.join("mc2.npy"))]));
    assert!(e.contains("mc2.npy") && e.contains("[draws, n, classes]") && e.contains("[50, 3]"), "{e}");
}
