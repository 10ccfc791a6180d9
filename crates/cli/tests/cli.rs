//! The `quarry` command-line contract, exercised as a user would: whole runs on the digits data
//! shipped in `data/` (as CSV, as IDX files and as PNG folders), image runs on the synthetic
//! EfficientNet-Lite0 checkpoint, resume, reproducibility and bad inputs. Tests on Fashion-MNIST and
//! the pretrained weights in `../shared` are ignored by plain `cargo test`
//! (`-- --include-ignored` runs them where the shared folder exists).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../data/tests/common/shared_data.rs"]
mod shared_data;
#[path = "../../models/tests/common/synthetic_effnet.rs"]
mod synthetic_effnet;
use synthetic_effnet::synthetic_weights;

fn quarry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quarry")).args(args).output().expect("quarry runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn digits() -> String {
    repo().join("data/digits-8x8.csv").display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quarry-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn simulate(out: &Path, strategies: &str, budget: &str, seeds: &str) -> Output {
    quarry(&[
        "simulate", "--data", &digits(), "--label-column", "digit", "--test-fraction", "0.3", "--model", "logreg",
        "--strategy", strategies, "--initial", "10", "--batch", "10", "--budget", budget, "--seeds", seeds, "--quiet",
        "--out", out.to_str().unwrap(),
    ])
}

/// Writes the first `per_class` t10k images of each of the first `classes` Fashion-MNIST classes as
/// Writes the first `per_class` images of each of the classes 0..`classes` as 28×28 PNGs named by
/// their index (`digits` wide), into `dir/<class name>/` or, when `flat`, into `dir` itself. `pixels(i)`
/// is image `i`'s 784 bytes. Returns file name → class name.
fn class_pngs(
    dir: &Path,
    labels: &[u8],
    pixels: impl Fn(usize) -> Vec<u8>,
    names: &[&'static str; 10],
    (classes, per_class, flat, digits): (usize, usize, bool, usize),
) -> std::collections::HashMap<String, &'static str> {
    let mut count = vec![0; classes];
    let mut class_of = std::collections::HashMap::new();
    for (i, &l) in labels.iter().enumerate() {
        let c = l as usize;
        if c >= classes || count[c] >= per_class {
            continue;
        }
        count[c] += 1;
        let folder = if flat { dir.to_path_buf() } else { dir.join(names[c]) };
        std::fs::create_dir_all(&folder).unwrap();
        let name = format!("{i:0digits$}.png");
        image::GrayImage::from_raw(28, 28, pixels(i)).unwrap().save(folder.join(&name)).unwrap();
        class_of.insert(name, names[c]);
    }
    class_of
}

/// Fashion-MNIST's test images as PNGs (see [`class_pngs`]), with the EfficientNet-Lite0 weights'
/// path; both come from the shared folder (a missing one is named in a panic: the tests using this
/// are ignored unless asked for).
fn fashion_pngs(dir: &Path, classes: usize, per_class: usize, flat: bool) -> (std::collections::HashMap<String, &'static str>, PathBuf) {
    const NAMES: [&str; 10] = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"];
    let images = quarry_data::read_idx_images(&shared_data::fashion_mnist("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = quarry_data::read_idx_labels(&shared_data::fashion_mnist("t10k-labels-idx1-ubyte.gz")).unwrap();
    let pixels = |i: usize| images.row(i).iter().map(|&v| v as u8).collect();
    (class_pngs(dir, &labels, pixels, &NAMES, (classes, per_class, flat, 5)), shared_data::weights())
}

/// The repository's 8×8 digits (values 0–16) as 28×28 grey images, pixel values 0–240: each source
/// pixel a 3×3 block, centred. Returns the images (784 bytes each) and the digits.
fn digits_28x28() -> (Vec<Vec<u8>>, Vec<u8>) {
    let ds = quarry_data::load(Path::new(&digits()), Some("digit"), None, None).unwrap();
    let images = (0..ds.len())
        .map(|i| {
            let src = ds.features.row(i);
            (0..784)
                .map(|j| {
                    let (py, px) = (j / 28, j % 28);
                    let inside = (2..26).contains(&py) && (2..26).contains(&px);
                    if inside { (src[(py - 2) / 3 * 8 + (px - 2) / 3] * 15.0) as u8 } else { 0 }
                })
                .collect()
        })
        .collect();
    let labels = ds.labels.iter().map(|&l| ds.class_names[l as usize].parse::<u8>().unwrap()).collect();
    (images, labels)
}

/// The digits as uncompressed IDX files in `dir`, Fashion-MNIST style: every fourth image in
/// `t10k-images-idx3-ubyte` (450), the rest in `train-images-idx3-ubyte` (1,347), each with its
/// `…-labels-idx1-ubyte`. Returns the two images files.
fn digits_idx(dir: &Path) -> (PathBuf, PathBuf) {
    let (images, labels) = digits_28x28();
    let write = |split: &str, keep: &dyn Fn(usize) -> bool| {
        let rows: Vec<usize> = (0..labels.len()).filter(|&i| keep(i)).collect();
        let n = (rows.len() as u32).to_be_bytes();
        let mut img = [&[0, 0, 8, 3][..], &n, &28u32.to_be_bytes(), &28u32.to_be_bytes()].concat();
        let mut lab = [&[0, 0, 8, 1][..], &n].concat();
        for &i in &rows {
            img.extend(&images[i]);
            lab.push(labels[i]);
        }
        let path = dir.join(format!("{split}-images-idx3-ubyte"));
        std::fs::write(&path, img).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), lab).unwrap();
        path
    };
    (write("train", &|i| i % 4 != 0), write("t10k", &|i| i % 4 == 0))
}

const DIGIT_NAMES: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/// The repository's digits 0..`classes`, `per_class` of each, as PNGs (see [`class_pngs`]).
fn digit_pngs(dir: &Path, classes: usize, per_class: usize, flat: bool) -> std::collections::HashMap<String, &'static str> {
    let (images, labels) = digits_28x28();
    let class_of = class_pngs(dir, &labels, |i| images[i].clone(), &DIGIT_NAMES, (classes, per_class, flat, 4));
    let count: Vec<usize> = (0..classes).map(|c| class_of.values().filter(|&&n| n == DIGIT_NAMES[c]).count()).collect();
    assert_eq!(count, vec![per_class; classes], "the digits hold {per_class} images of each class");
    class_of
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// curves.csv rows without the timing column.
fn curve_rows(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("curves.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn simulate_writes_curves_summary_and_plot() {
    let d = scratch("full");
    let out = d.join("run");
    let o = simulate(&out, "random,margin,entropy,least_confidence,confidence-gap", "60", "2");
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = curve_rows(&out);
    assert_eq!(rows[0], "strategy,seed,round,labels,accuracy,balanced_accuracy,log_loss");
    // 5 strategies × 2 seeds × 6 rounds (10, 20, …, 60 labels).
    assert_eq!(rows.len(), 1 + 5 * 2 * 6);
    assert!(rows.iter().any(|r| r.starts_with("least-confidence,1,5,60,")));
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let strategies = summary["strategies"].as_array().unwrap();
    assert_eq!(strategies.len(), 5);
    let margin = strategies.iter().find(|s| s["strategy"] == "margin").unwrap();
    let aulc = margin["aulc"]["mean"].as_f64().unwrap();
    assert!(aulc > 0.5 && aulc < 1.0, "{aulc}");
    assert_eq!(margin["stops"][0]["rule"], "budget");
    assert_eq!(summary["data"]["classes"].as_array().unwrap().len(), 10);
    assert!(summary["full_pool_accuracy"]["mean"].as_f64().unwrap() > 0.9);
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("margin") && svg.contains("confidence-gap"));
}

#[test]
fn same_seed_same_curves_and_resume_continues_exactly() {
    let d = scratch("resume");
    let (a, b) = (d.join("a"), d.join("b"));
    assert!(simulate(&a, "random,margin", "80", "1").status.success());
    // b: first to 40 labels, then continued to 80 in the same directory.
    assert!(simulate(&b, "random,margin", "40", "1").status.success());
    let state_before = std::fs::read(b.join("runs/margin/seed-0.run")).unwrap();
    let o = simulate(&b, "random,margin", "80", "1");
    assert!(o.status.success(), "{}", stderr(&o));
    let state_after = std::fs::read(b.join("runs/margin/seed-0.run")).unwrap();
    assert!(state_after.len() > state_before.len());
    assert_eq!(curve_rows(&a), curve_rows(&b), "a resumed run must equal an uninterrupted one");
    // Running the finished run again changes nothing.
    assert!(simulate(&b, "random,margin", "80", "1").status.success());
    assert_eq!(curve_rows(&a), curve_rows(&b));
}

#[test]
fn different_seeds_give_different_selections() {
    let d = scratch("seeds");
    assert!(simulate(&d.join("r"), "margin", "30", "0,1").status.success());
    let rows = curve_rows(&d.join("r"));
    let s0: Vec<_> = rows.iter().filter(|r| r.starts_with("margin,0,")).map(|r| r.split(',').nth(4).unwrap()).collect();
    let s1: Vec<_> = rows.iter().filter(|r| r.starts_with("margin,1,")).map(|r| r.split(',').nth(4).unwrap()).collect();
    assert_ne!(s0, s1);
}

#[test]
fn run_directory_of_other_settings_or_version_is_refused_and_kept() {
    let d = scratch("refuse");
    let out = d.join("run");
    assert!(simulate(&out, "random", "30", "1").status.success());
    let header = std::fs::read_to_string(out.join("run.json")).unwrap();
    let curves = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    // Other settings (batch 5).
    let o = quarry(&[
        "simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "random", "--batch", "5",
        "--budget", "30", "--quiet", "--out", out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("run.json") && stderr(&o).contains("batch"), "{}", stderr(&o));
    // Another version.
    let older = header.replace("\"version\": 2", "\"version\": 1");
    assert_ne!(older, header, "run.json names its format version");
    std::fs::write(out.join("run.json"), older).unwrap();
    let o = simulate(&out, "random", "30", "1");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("incompatible quarry version"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("curves.csv")).unwrap(), curves);
    // A directory that is not a run directory is not written into.
    let other = d.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let o = simulate(&other, "random", "30", "1");
    assert!(!o.status.success() && stderr(&o).contains("not a quarry run directory"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}

#[test]
fn bad_inputs_are_one_line_errors_naming_the_cause() {
    let d = scratch("bad");
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let ragged = write("ragged.csv", "a,b,label\n1,2,x\n3,4\n");
    let nonnum = write("nonnum.csv", "a,b,label\n1,2,x\n3,oops,y\n");
    let nolabel = write("nolabel.csv", "a,b,klass\n1,2,x\n3,4,y\n");
    let out = d.join("out").display().to_string();
    let run = |data: &str, extra: &[&str]| {
        let mut args = vec!["simulate", "--data", data, "--label-column", "label", "--strategy", "random", "--initial", "2",
            "--batch", "1", "--budget", "3", "--quiet", "--out", &out];
        args.extend_from_slice(extra);
        quarry(&args)
    };
    let cases: Vec<(Output, &str)> = vec![
        (run(&ragged, &[]), "ragged.csv:3"),
        (run(&nonnum, &[]), "nonnum.csv:3"),
        (run(&nolabel, &[]), "no column named 'label'"),
        (run(&d.join("missing.csv").display().to_string(), &[]), "missing.csv"),
        (quarry(&["simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "nope", "--budget", "30", "--out", &out]), "unknown strategy 'nope'"),
        (quarry(&["simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "random", "--batch", "0", "--budget", "30", "--out", &out]), "--batch"),
        (quarry(&["simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "random", "--initial", "20", "--budget", "10", "--out", &out]), "--budget"),
        (quarry(&["simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "random", "--batch", "2000", "--budget", "2010", "--out", &out]), "--batch"),
    ];
    for (o, expect) in cases {
        let e = stderr(&o);
        assert!(!o.status.success(), "accepted: {expect}");
        assert!(!e.contains("panicked"), "{e}");
        assert!(e.contains(expect), "expected '{expect}' in: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    }
    assert!(!Path::new(&out).exists(), "no output directory for failed runs");
}

#[test]
fn strategies_lists_every_name() {
    let o = quarry(&["strategies"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for name in ["random", "least-confidence", "margin", "entropy", "confidence-gap"] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
}

#[test]
fn idx_images_with_derived_labels_and_separate_test_file() {
    let d = scratch("idx");
    let (train, t10k) = digits_idx(&d);
    let out = d.join("run");
    let o = quarry(&[
        "simulate", "--data", train.to_str().unwrap(), "--pool-size", "1000", "--test", t10k.to_str().unwrap(), "--strategy",
        "random,entropy", "--initial", "20", "--batch", "20", "--budget", "60", "--seeds", "1", "--candidates", "500",
        "--no-full-pool", "--quiet", "--out", out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["data"]["pool_size"], 1000);
    assert_eq!(summary["data"]["test_size"], 450);
    assert_eq!(summary["data"]["scaling"], "unit");
    let acc = summary["strategies"][1]["final_accuracy"]["mean"].as_f64().unwrap();
    assert!(acc > 0.6, "entropy after 60 labels: {acc}");
}

#[test]
#[ignore = "needs ../shared/data/fashion-mnist"]
fn fashion_mnist_idx_with_derived_labels_and_separate_test_file() {
    let d = scratch("idx-fashion");
    let images = shared_data::fashion_mnist("t10k-images-idx3-ubyte.gz").display().to_string();
    let out = d.join("run");
    let o = quarry(&[
        "simulate", "--data", &images, "--pool-size", "3000", "--test", &images, "--strategy", "random,entropy",
        "--initial", "20", "--batch", "20", "--budget", "60", "--seeds", "1", "--candidates", "500", "--no-full-pool",
        "--quiet", "--out", out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["data"]["pool_size"], 3000);
    assert_eq!(summary["data"]["test_size"], 10000);
    assert_eq!(summary["data"]["scaling"], "unit");
    let acc = summary["strategies"][1]["final_accuracy"]["mean"].as_f64().unwrap();
    assert!(acc > 0.4, "entropy after 60 labels: {acc}");
}

#[test]
fn stopping_rules_fire_and_are_reported() {
    let d = scratch("stop");
    let out = d.join("run");
    let o = quarry(&[
        "simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "margin", "--budget", "300",
        "--seeds", "1", "--stop", "stabilizing-predictions:0.9", "--no-full-pool", "--quiet", "--out", out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let s = &summary["strategies"][0];
    assert_eq!(s["stops"][0]["rule"], "stabilizing-predictions", "{s}");
    assert!(s["final_labels"].as_u64().unwrap() < 300);
    let bad = quarry(&["simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "margin", "--budget", "30",
        "--stop", "whenever", "--out", d.join("bad").to_str().unwrap()]);
    assert!(!bad.status.success() && stderr(&bad).contains("--stop"), "{}", stderr(&bad));
}

#[test]
fn predict_answers_each_image_and_names_the_bad_ones() {
    let d = scratch("predict");
    digit_pngs(&d, 1, 1, false);
    let png = std::fs::read_dir(d.join("zero")).unwrap().next().unwrap().unwrap().path();
    let w = synthetic_weights().display().to_string();
    let o = quarry(&["predict", "--model", "efficientnet-lite0", "--weights", &w, png.to_str().unwrap(), "/no/such.png"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let name = png.file_name().unwrap().to_str().unwrap();
    assert!(out.contains(&format!("{name}: ")), "{out}");
    assert!(!o.status.success() && stderr(&o).contains("/no/such.png"), "{}", stderr(&o));
    let o = quarry(&["predict", "--model", "efficientnet-lite0", "--weights", d.join("none.safetensors").to_str().unwrap(), png.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("none.safetensors"), "{}", stderr(&o));
}

#[test]
#[ignore = "needs ../shared/models"]
fn predict_names_imagenet_classes_and_reports_bad_images() {
    let w = shared_data::weights().display().to_string();
    let cat = shared_data::shared("models/chelsea.png").display().to_string();
    let o = quarry(&["predict", "--model", "efficientnet-lite0", "--weights", &w, &cat, "/no/such.png"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("chelsea.png: 285 ("), "{out}");
    assert!(!o.status.success() && stderr(&o).contains("/no/such.png"), "{}", stderr(&o));
}

#[test]
fn online_lenet_from_zero_labels_with_an_eval_schedule_and_one_vs_rest() {
    let d = scratch("online");
    let (train, t10k) = digits_idx(&d);
    let (train, t10k) = (train.display().to_string(), t10k.display().to_string());
    let out = d.join("run");
    let args = |out: &Path| -> Vec<String> {
        [
            "simulate", "--data", &train, "--pool-size", "1000", "--test", &t10k, "--model", "lenet5", "--train", "online",
            "--initial", "0", "--batch", "10", "--budget", "200", "--candidates", "300", "--strategy", "random,confidence-gap",
            "--eval-at", "50", "--eval-every", "100", "--positive-class", "3", "--seeds", "1", "--quiet", "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let a: Vec<String> = args(&out);
    let o = quarry(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    let header = rows.lines().next().unwrap();
    assert_eq!(header, "strategy,seed,round,labels,accuracy,balanced_accuracy,log_loss,positive_recall,seconds");
    let labels: Vec<&str> = rows.lines().skip(1).filter(|l| l.starts_with("random,")).map(|l| l.split(',').nth(3).unwrap()).collect();
    assert_eq!(labels, ["0", "50", "100", "200"], "scored at the start, --eval-at, --eval-every and the end");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["data"]["classes"], serde_json::json!(["not-3", "3"]));
    assert!(summary["full_pool_accuracy"].is_null(), "online runs have no full-pool fit");
    // The same seed gives the same curves (networks are deterministic too).
    let again = d.join("again");
    let b: Vec<String> = args(&again);
    assert!(quarry(&b.iter().map(|s| s.as_str()).collect::<Vec<_>>()).status.success());
    assert_eq!(curve_rows(&out), curve_rows(&again));
}

#[test]
fn warmup_queries_at_random_and_replay_needs_online_training() {
    let d = scratch("warmup");
    let out = d.join("run");
    let o = quarry(&[
        "simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "random,margin", "--budget", "60",
        "--warmup", "60", "--no-full-pool", "--quiet", "--out", out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = curve_rows(&out);
    let strip = |s: &str| -> Vec<String> {
        rows.iter().filter(|r| r.starts_with(&format!("{s},"))).map(|r| r.split_once(',').unwrap().1.to_string()).collect()
    };
    assert_eq!(strip("random"), strip("margin"), "until the warm-up is over every strategy queries at random");
    let bad = quarry(&["simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "random", "--budget", "30",
        "--replay", "5", "--out", d.join("bad").to_str().unwrap()]);
    assert!(!bad.status.success() && stderr(&bad).contains("--replay"), "{}", stderr(&bad));
}

#[test]
fn aift_on_an_image_folder_reports_broken_files_by_name() {
    let d = scratch("aift");
    digit_pngs(&d.join("img"), 3, 12, false);
    aift_on_an_image_folder(&d, &synthetic_weights(), ["two", "zero"]);
}

#[test]
#[ignore = "needs ../shared/data/fashion-mnist and ../shared/models"]
fn aift_on_fashion_mnist_with_the_pretrained_weights() {
    // Name what is missing before the folder is written.
    shared_data::fashion_mnist("t10k-images-idx3-ubyte.gz");
    shared_data::weights();
    let d = scratch("aift-fashion");
    let (_, weights) = fashion_pngs(&d.join("img"), 3, 12, false);
    aift_on_an_image_folder(&d, &weights, ["pullover", "tshirt"]);
}

/// AIFT and fine-tuning runs on the class folders in `d/img` (three classes of 12 images) with
/// `weights`: a broken file written into `img/<broken_in>` is reported by name, and an image of
/// `img/<touched_in>` is rewritten to make the feature cache stale.
fn aift_on_an_image_folder(d: &Path, weights: &Path, [broken_in, touched_in]: [&str; 2]) {
    std::fs::write(d.join("img").join(broken_in).join("broken.png"), "not a png").unwrap();
    let out = d.join("out");
    let o = quarry(&[
        "simulate", "--data", d.join("img").to_str().unwrap(), "--test-fraction", "0.3", "--model", "efficientnet-lite0",
        "--weights", weights.to_str().unwrap(), "--resolution", "64", "--patches", "4", "--strategy", "aift,random",
        "--initial", "6", "--batch", "6", "--budget", "12", "--seeds", "1", "--quiet", "--out", out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("broken.png"), "{}", stderr(&o));
    let rows = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    assert_eq!(rows.lines().filter(|l| l.starts_with("aift,")).count(), 2);
    // AIFT without an image model is a clear error.
    let bad = quarry(&["simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "aift", "--budget", "20",
        "--quiet", "--out", d.join("bad").to_str().unwrap()]);
    assert!(!bad.status.success() && stderr(&bad).contains("augmented patches"), "{}", stderr(&bad));

    // Fine-tuning the last blocks in the loop: runs, and a run stopped half-way continues to the
    // same curve as an uninterrupted one (weights, momentum and step counts are checkpointed).
    let tune = |out: &str, budget: &str| {
        quarry(&[
            "simulate", "--data", d.join("img").to_str().unwrap(), "--test-fraction", "0.3", "--model", "efficientnet-lite0",
            "--weights", weights.to_str().unwrap(), "--resolution", "32", "--patches", "4", "--train-blocks", "2",
            "--epochs", "2", "--strategy", "aift", "--initial", "6", "--batch", "6", "--budget", budget, "--seeds", "1",
            "--no-full-pool", "--quiet", "--out", d.join(out).to_str().unwrap(),
        ])
    };
    for (out, budget) in [("whole", "18"), ("half", "12"), ("half", "18")] {
        let o = tune(out, budget);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(curve_rows(&d.join("whole")), curve_rows(&d.join("half")));
    // Training on the labeled images' augmented patches changes the model (and so the curve),
    // reproducibly; it needs an image folder.
    let patched = |out: &str| {
        quarry(&[
            "simulate", "--data", d.join("img").to_str().unwrap(), "--test-fraction", "0.3", "--model", "efficientnet-lite0",
            "--weights", weights.to_str().unwrap(), "--resolution", "32", "--patches", "4", "--train-patches", "--strategy",
            "aift", "--initial", "6", "--batch", "6", "--budget", "18", "--seeds", "1", "--no-full-pool", "--quiet", "--out",
            d.join(out).to_str().unwrap(),
        ])
    };
    for out in ["p1", "p2"] {
        let o = patched(out);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(curve_rows(&d.join("p1")), curve_rows(&d.join("p2")));
    let unpatched = quarry(&[
        "simulate", "--data", d.join("img").to_str().unwrap(), "--test-fraction", "0.3", "--model", "efficientnet-lite0",
        "--weights", weights.to_str().unwrap(), "--resolution", "32", "--patches", "4", "--strategy", "aift", "--initial",
        "6", "--batch", "6", "--budget", "18", "--seeds", "1", "--no-full-pool", "--quiet", "--out", d.join("p0").to_str().unwrap(),
    ]);
    assert!(unpatched.status.success(), "{}", stderr(&unpatched));
    assert_ne!(curve_rows(&d.join("p0")), curve_rows(&d.join("p1")));
    let bad = quarry(&["simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "margin", "--budget", "20",
        "--train-patches", "--quiet", "--out", d.join("bad3").to_str().unwrap()]);
    assert!(!bad.status.success() && stderr(&bad).contains("--train-patches"), "{}", stderr(&bad));

    // A feature cache: built by the first run, read by the second (same curves as without a
    // cache), rebuilt when an image changes.
    let cache = d.join("pool.qfc");
    let cached = |out: &str| {
        quarry(&[
            "simulate", "--data", d.join("img").to_str().unwrap(), "--test-fraction", "0.3", "--model", "efficientnet-lite0",
            "--weights", weights.to_str().unwrap(), "--resolution", "32", "--features-cache", cache.to_str().unwrap(),
            "--strategy", "entropy", "--initial", "6", "--batch", "6", "--budget", "12", "--seeds", "1", "--no-full-pool",
            "--quiet", "--out", d.join(out).to_str().unwrap(),
        ])
    };
    let first = cached("c1");
    assert!(first.status.success() && stderr(&first).contains("embedded"), "{}", stderr(&first));
    let second = cached("c2");
    assert!(second.status.success() && !stderr(&second).contains("embedded"), "{}", stderr(&second));
    assert_eq!(curve_rows(&d.join("c1")), curve_rows(&d.join("c2")));
    let plain = quarry(&[
        "simulate", "--data", d.join("img").to_str().unwrap(), "--test-fraction", "0.3", "--model", "efficientnet-lite0",
        "--weights", weights.to_str().unwrap(), "--resolution", "32", "--strategy", "entropy", "--initial", "6", "--batch",
        "6", "--budget", "12", "--seeds", "1", "--no-full-pool", "--quiet", "--out", d.join("c0").to_str().unwrap(),
    ]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert_eq!(curve_rows(&d.join("c0")), curve_rows(&d.join("c1")));
    let some_png = std::fs::read_dir(d.join("img").join(touched_in)).unwrap().next().unwrap().unwrap().path();
    let bytes = std::fs::read(&some_png).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&some_png, bytes).unwrap();
    let third = cached("c3");
    assert!(third.status.success() && stderr(&third).contains("rebuilding"), "{}", stderr(&third));

    let bad = quarry(&["simulate", "--data", &digits(), "--label-column", "digit", "--strategy", "margin", "--budget", "20",
        "--train-blocks", "2", "--quiet", "--out", d.join("bad2").to_str().unwrap()]);
    assert!(!bad.status.success() && stderr(&bad).contains("--train-blocks"), "{}", stderr(&bad));
}

/// `--committee mixed` builds the committee from different learner kinds: the run works, is
/// reproducible, differs from query by bagging, and a directory of one kind is not continued as the other.
#[test]
fn mixed_committee_of_different_learner_kinds() {
    let d = scratch("mixed");
    let run = |out: &str, kind: &str| {
        quarry(&[
            "simulate", "--data", &digits(), "--label-column", "digit", "--test-fraction", "0.3", "--strategy",
            "qbc-vote-entropy", "--committee", kind, "--initial", "10", "--batch", "10", "--budget", "40", "--seeds",
            "3,", "--epochs", "5", "--quiet", "--no-full-pool", "--out", d.join(out).to_str().unwrap(),
        ])
    };
    for (out, kind) in [("m1", "mixed"), ("m2", "mixed"), ("b", "bagging")] {
        let o = run(out, kind);
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
    }
    assert_eq!(curve_rows(&d.join("m1")), curve_rows(&d.join("m2")));
    assert_ne!(curve_rows(&d.join("m1")), curve_rows(&d.join("b")));
    let again = quarry(&[
        "simulate", "--data", &digits(), "--label-column", "digit", "--test-fraction", "0.3", "--strategy",
        "qbc-vote-entropy", "--committee", "bagging", "--initial", "10", "--batch", "10", "--budget", "40", "--seeds",
        "3,", "--epochs", "5", "--quiet", "--no-full-pool", "--out", d.join("m1").to_str().unwrap(),
    ]);
    assert!(!again.status.success(), "a mixed-committee directory was continued with bagging");
}

/// Real use on a flat folder: a cold start from zero labels proposes distinct images, labels
/// appended to the file move it to the strategy (AIFT), `-` marks images that are never proposed
/// again, and with everything answered nothing is left; bad label lines name file and line.
#[test]
fn query_proposes_batches_from_a_flat_folder_until_everything_is_answered() {
    let d = scratch("query");
    let img = d.join("img");
    let (class_of, weights) = (digit_pngs(&img, 2, 5, true), synthetic_weights());
    std::fs::write(img.join("broken.png"), "not a png").unwrap();
    let labels = d.join("labels.csv");
    let next = d.join("next.csv");
    let query = |batch: &str| {
        quarry(&["query", "--data", img.to_str().unwrap(), "--labels", labels.to_str().unwrap(), "--weights",
            weights.to_str().unwrap(), "--resolution", "32", "--patches", "4", "--batch", batch, "--out", next.to_str().unwrap(),
            "--features-cache", d.join("features.bin").to_str().unwrap()])
    };
    let proposed = || -> Vec<String> {
        std::fs::read_to_string(&next).unwrap().lines().skip(1).map(|l| l.split(',').next().unwrap_or_default().to_string()).collect()
    };
    let mut answered = std::collections::HashSet::new();
    let mut append = |files: &[String], label: &dyn Fn(&str) -> String| {
        let mut text = std::fs::read_to_string(&labels).unwrap_or_default();
        for f in files {
            assert!(answered.insert(f.clone()), "{f} proposed twice");
            text.push_str(&format!("{f},{}\n", label(f)));
        }
        std::fs::write(&labels, text).unwrap();
    };

    let o = query("4");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("broken.png") && stderr(&o).contains("cold start"), "{}", stderr(&o));
    let first = proposed();
    assert_eq!(first.len(), 4);
    // The cold start may pick one class only: label until both are in, as a person would.
    append(&first, &|f| class_of[f].to_string());
    let o = query("3");
    assert!(o.status.success(), "{}", stderr(&o));
    let second = proposed();
    assert_eq!(second.len(), 3);
    append(&second, &|f| class_of[f].to_string());
    let o = query("2");
    assert!(stderr(&o).contains("aift on a softmax head fitted to 7 labels in 2 classes"), "{}", stderr(&o));
    let third = proposed();
    append(&third, &|_| "-".to_string());
    let o = query("5");
    assert!(stderr(&o).contains("2 marked impossible, 1 unanswered"), "{}", stderr(&o));
    let last = proposed();
    assert_eq!(last.len(), 1);
    append(&last, &|_| "-".to_string());
    let o = query("5");
    assert!(o.status.success() && stderr(&o).contains("nothing left to ask"), "{}", stderr(&o));
    assert!(proposed().is_empty());

    // Bad label lines are errors naming the file and line; the labels file is left as it was.
    let before = std::fs::read_to_string(&labels).unwrap();
    std::fs::write(&labels, format!("{before}missing.png,tshirt\n")).unwrap();
    let o = query("2");
    assert!(!o.status.success() && stderr(&o).contains("labels.csv:11: missing.png is not an image"), "{}", stderr(&o));
    std::fs::write(&labels, format!("{before}broken.png,tshirt\n")).unwrap();
    let o = query("2");
    assert!(!o.status.success() && stderr(&o).contains("broken.png could not be read"), "{}", stderr(&o));
}
