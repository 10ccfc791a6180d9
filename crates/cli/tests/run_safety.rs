//! What a run directory and the command line promise about safety and plain speech: a data file
//! changed in place is never resumed from stale checkpoints, every labeled sample is listed by its
//! row in the data file, errors say each cause once, and one seed or no random baseline is
//! reported as such.

#[path = "../../data/tests/common/shared_data.rs"]
mod shared_data;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn quarry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quarry")).args(args).output().expect("quarry runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn digits() -> PathBuf {
    repo().join("data/digits-8x8.csv")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quarry-run-safety-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// `quarry simulate` on `data` (a digits CSV) with `extra` flags.
fn simulate(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let (data, out) = (data.display().to_string(), out.display().to_string());
    let mut args = vec![
        "simulate", "--data", &data, "--label-column", "digit", "--initial", "10", "--batch", "10",
        "--budget", "40", "--quiet", "--out", &out,
    ];
    args.extend_from_slice(extra);
    quarry(&args)
}

#[test]
fn a_data_file_changed_in_place_is_refused_by_name() {
    let d = scratch("changed");
    let data = d.join("digits.csv");
    std::fs::copy(digits(), &data).unwrap();
    let out = d.join("run");
    let args = ["--strategy", "random,margin", "--seeds", "2"];
    let o = simulate(&data, &out, &args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let curves = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    // Unchanged: continued.
    let o = simulate(&data, &out, &args);
    assert!(o.status.success(), "{}", text(&o.stderr));

    // The same rows in another order: same row count, other content.
    let original = std::fs::read_to_string(&data).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    lines[1..].reverse();
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let o = simulate(&data, &out, &args);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "resumed after the data changed: {err}");
    assert!(err.contains(&data.display().to_string()) && err.contains("changed") && err.contains("--out"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("curves.csv")).unwrap(), curves, "the run directory is kept as it was");

    // Restored: continued again.
    std::fs::write(&data, &original).unwrap();
    let o = simulate(&data, &out, &args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(out.join("curves.csv")).unwrap().lines().count(), curves.lines().count());
}

#[test]
fn a_run_directory_without_a_data_fingerprint_is_refused_clearly() {
    let d = scratch("old");
    let out = d.join("run");
    assert!(simulate(&digits(), &out, &["--strategy", "random"]).status.success());
    // As a quarry that did not record the data's content wrote it.
    let header = out.join("run.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&header).unwrap()).unwrap();
    assert!(v["identity"]["fingerprint"][0]["blake3"].is_string(), "{v}");
    v["identity"].as_object_mut().unwrap().remove("fingerprint");
    std::fs::write(&header, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let o = simulate(&digits(), &out, &["--strategy", "random"]);
    let err = text(&o.stderr);
    assert!(!o.status.success() && err.contains("run.json") && err.contains("digits-8x8.csv") && err.contains("new --out"), "{err}");
}

/// queries.csv as (strategy, seed, round, pool_index, row) tuples.
fn queries(out: &Path) -> Vec<(String, u64, u32, usize, usize)> {
    let text = std::fs::read_to_string(out.join("queries.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("strategy,seed,round,pool_index,row"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            (f[0].to_string(), f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap(), f[4].parse().unwrap())
        })
        .collect()
}

#[test]
fn queries_csv_lists_every_labeled_sample_by_its_data_row() {
    let d = scratch("queries");
    let out = d.join("run");
    let o = simulate(&digits(), &out, &["--strategy", "random,margin", "--seeds", "2"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let q = queries(&out);
    assert_eq!(q.len(), 2 * 2 * 40, "every label of every run");
    for strategy in ["random", "margin"] {
        for seed in [0, 1] {
            let mine: Vec<_> = q.iter().filter(|r| r.0 == strategy && r.1 == seed).collect();
            assert_eq!(mine.len(), 40);
            // Labeling order: the initial set (round 0, 10 samples), then a round per batch of 10.
            let rounds: Vec<u32> = mine.iter().map(|r| r.2).collect();
            assert_eq!(rounds, (0..40).map(|i| i / 10).collect::<Vec<u32>>(), "{strategy} {seed}");
            let mut rows: Vec<usize> = mine.iter().map(|r| r.4).collect();
            assert!(rows.iter().all(|&r| r < 1797));
            rows.sort_unstable();
            rows.dedup();
            assert_eq!(rows.len(), 40, "no sample labeled twice");
        }
        // The strategies of a seed share its split and initial set.
        let initial = |s: &str| q.iter().filter(|r| r.0 == s && r.1 == 0 && r.2 == 0).map(|r| (r.3, r.4)).collect::<Vec<_>>();
        assert_eq!(initial("random"), initial("margin"));
    }
    // Pool index → row is a fixed map per seed, and the seeds' splits differ.
    let row_of = |seed: u64, index: usize| q.iter().find(|r| r.1 == seed && r.3 == index).map(|r| r.4);
    for r in &q {
        assert_eq!(row_of(r.1, r.3), Some(r.4));
    }

    // With a separate test file the pool is the data file as it is: the pool index is the row.
    let test = d.join("test.csv");
    let all = std::fs::read_to_string(digits()).unwrap();
    std::fs::write(&test, all.lines().take(301).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let out2 = d.join("run2");
    let o = simulate(&digits(), &out2, &["--strategy", "margin", "--test", test.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let q = queries(&out2);
    assert_eq!(q.len(), 40);
    assert!(q.iter().all(|r| r.3 == r.4), "{q:?}");
}

#[test]
fn each_cause_of_an_error_is_printed_once() {
    let d = scratch("once");
    let file = d.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let o = simulate(&digits(), &file.join("run"), &["--strategy", "random"]);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("a-file"), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "the cause repeated: {err}");
}

#[test]
fn one_seed_and_no_random_baseline_are_reported_as_such() {
    let d = scratch("table");
    let o = simulate(&digits(), &d.join("run"), &["--strategy", "margin,entropy", "--seed", "4"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!out.contains("1 seeds") && !out.contains('±') && !out.contains("never"), "{out}");
    assert!(out.contains("(1 seed)") && out.contains("random"), "{out}");
    let o = simulate(&digits(), &d.join("run3"), &["--strategy", "random,margin", "--seeds", "3"]);
    let out = text(&o.stdout);
    assert!(out.contains('±') && out.contains("mean over 3 seeds") && out.contains("target: random's"), "{out}");
}

#[test]
fn one_seed_by_name_or_range() {
    let d = scratch("seed");
    let curves = |out: &Path| -> Vec<String> {
        std::fs::read_to_string(out.join("curves.csv")).unwrap().lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect()
    };
    let (a, b, c) = (d.join("a"), d.join("b"), d.join("c"));
    assert!(simulate(&digits(), &a, &["--strategy", "margin", "--seed", "4"]).status.success());
    assert!(simulate(&digits(), &b, &["--strategy", "margin", "--seeds", "4..5"]).status.success());
    assert!(simulate(&digits(), &c, &["--strategy", "margin", "--seeds", "4,"]).status.success());
    assert_eq!(curves(&a), curves(&b));
    assert_eq!(curves(&a), curves(&c));
    assert!(curves(&a)[1..].iter().all(|l| l.starts_with("margin,4,")), "{:?}", curves(&a));
    let o = simulate(&digits(), &d.join("d"), &["--strategy", "margin", "--seeds", "4..=6"]);
    assert!(o.status.success());
    let seeds: std::collections::BTreeSet<String> = curves(&d.join("d"))[1..].iter().map(|l| l.split(',').nth(1).unwrap().to_string()).collect();
    assert_eq!(seeds.into_iter().collect::<Vec<_>>(), ["4", "5", "6"]);
    let o = simulate(&digits(), &d.join("e"), &["--strategy", "margin", "--seed", "4", "--seeds", "2"]);
    assert!(!o.status.success() && text(&o.stderr).contains("--seed"), "{}", text(&o.stderr));
}

#[test]
fn synthesize_takes_quiet_like_simulate() {
    let d = scratch("synth");
    let out = d.join("run").display().to_string();
    let o = quarry(&["synthesize", "--problem", "circle", "--budget", "20", "--seeds", "1", "-q", "--out", &out]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("synthesis-random"));
}

#[test]
#[ignore = "needs ../shared/models (EfficientNet-Lite0 weights and the sample photos)"]
fn predict_prints_class_names_beside_the_ids() {
    let w = shared_data::weights().display().to_string();
    let (cat, coffee) = (shared_data::shared("models/chelsea.png").display().to_string(), shared_data::shared("models/coffee.png").display().to_string());
    let o = quarry(&["predict", "--model", "efficientnet-lite0", "--weights", &w, &cat, &coffee]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("285 (") && out.contains("Egyptian cat"), "{out}");
    assert!(out.contains("967 (") && out.contains("espresso"), "{out}");
}
