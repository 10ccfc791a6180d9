//! The readers against real files: the CSVs the repository ships in `data/` (always run), and
//! Fashion-MNIST from the shared folder `../shared/data` (ignored by plain `cargo test`: run them
//! with `-- --include-ignored` where the shared data exists; see `common/shared_data.rs`).

use std::io::Read;
use std::path::{Path, PathBuf};

use quarry_data::{
    DataError, load, load_csv, load_idx, read_idx_images, read_idx_labels, stratified_split,
};

#[path = "common/shared_data.rs"]
mod shared_data;
use shared_data::{fashion_mnist, repo_file};

/// A fresh scratch directory for files derived from the real data.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quarry-data-it-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn gunzip(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).expect("open");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

#[test]
fn digits_csv() {
    let p = repo_file("data/digits-8x8.csv");
    let ds = load(&p, Some("digit"), None, None).unwrap();
    assert_eq!((ds.len(), ds.dim()), (1797, 64));
    let expected: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    assert_eq!(ds.class_names, expected);
    assert!(
        ds.features
            .as_slice()
            .iter()
            .all(|&v| (0.0..=16.0).contains(&v))
    );
    assert!(ds.class_counts().iter().all(|&n| n > 170));
}

#[test]
fn breast_cancer_csv() {
    let p = repo_file("data/breast-cancer.csv");
    let ds = load_csv(&p, "diagnosis", None).unwrap();
    assert_eq!((ds.len(), ds.dim()), (569, 30));
    assert_eq!(ds.class_names, ["benign", "malignant"]);
    assert_eq!(ds.class_counts(), vec![357, 212]);

    // Reloading with the pool's mapping, reversed, swaps the label numbers.
    let reversed = vec!["malignant".to_string(), "benign".to_string()];
    let again = load_csv(&p, "diagnosis", Some(&reversed)).unwrap();
    assert_eq!(again.class_counts(), vec![212, 357]);

    let err = load_csv(&p, "label", None).unwrap_err().to_string();
    assert!(
        err.contains("breast-cancer.csv: no column named 'label' (columns: mean_radius,"),
        "{err}"
    );
    assert!(err.contains("… and 21 more"), "{err}");

    let err = load_csv(&p, "diagnosis", Some(&["benign".to_string()]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("breast-cancer.csv:") && err.contains("label 'malignant' does not occur"),
        "{err}"
    );
}

#[test]
#[ignore = "needs ../shared/data/fashion-mnist"]
fn fashion_mnist_t10k_with_derived_labels() {
    let images = fashion_mnist("t10k-images-idx3-ubyte.gz");
    let ds = load(&images, None, None, None).unwrap();
    assert_eq!((ds.len(), ds.dim()), (10_000, 784));
    assert_eq!(
        ds.class_names,
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(ds.class_counts(), vec![1000; 10]);
    let labels = read_idx_labels(&fashion_mnist("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(ds.labels[0], u32::from(labels[0]));
    assert!(
        ds.features
            .as_slice()
            .iter()
            .all(|&v| (0.0..=255.0).contains(&v))
    );
}

#[test]
#[ignore = "needs ../shared/data/fashion-mnist"]
fn raw_idx_reads_like_gzip() {
    let images = fashion_mnist("t10k-images-idx3-ubyte.gz");
    let labels = fashion_mnist("t10k-labels-idx1-ubyte.gz");
    let dir = scratch("raw");
    let raw_images = dir.join("t10k-images-idx3-ubyte");
    std::fs::write(&raw_images, gunzip(&images)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), gunzip(&labels)).unwrap();

    assert_eq!(
        read_idx_images(&raw_images).unwrap(),
        read_idx_images(&images).unwrap()
    );
    let raw = load_idx(&raw_images, None, None).unwrap();
    let gz = load_idx(&images, None, None).unwrap();
    assert_eq!(raw.labels, gz.labels);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
#[ignore = "needs ../shared/data/fashion-mnist"]
fn truncated_gzip_is_a_clean_error() {
    let images = fashion_mnist("t10k-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&images).unwrap();
    let dir = scratch("cut");
    let cut = dir.join("t10k-images-idx3-ubyte.gz");
    std::fs::write(&cut, &bytes[..3000]).unwrap();
    let err = read_idx_images(&cut).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DataError::Gzip { .. } | DataError::Truncated { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("t10k-images-idx3-ubyte.gz") && !msg.contains('\n'),
        "{msg}"
    );

    // The derived labels file is missing here: the error names it.
    let err = load(&cut, None, None, None).unwrap_err().to_string();
    assert!(err.contains("t10k-images-idx3-ubyte.gz"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
#[ignore = "needs ../shared/data/fashion-mnist"]
fn train_and_test_label_counts_disagree() {
    let images = fashion_mnist("t10k-images-idx3-ubyte.gz");
    let train_labels = fashion_mnist("train-labels-idx1-ubyte.gz");
    let err = load_idx(&images, Some(&train_labels), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds 10000 images")
            && err.contains("train-labels-idx1-ubyte.gz holds 60000 labels"),
        "{err}"
    );
}

#[test]
fn split_of_digits_is_stratified() {
    let p = repo_file("data/digits-8x8.csv");
    let ds = load(&p, Some("digit"), None, None).unwrap();
    let (pool, test) = stratified_split(&ds.labels, ds.n_classes(), 0.25, 42).unwrap();
    assert_eq!(pool.len() + test.len(), ds.len());
    let test_ds = ds.subset(&test);
    for (c, (&n_test, &n_all)) in test_ds
        .class_counts()
        .iter()
        .zip(&ds.class_counts())
        .enumerate()
    {
        let target = 0.25 * n_all as f64;
        assert!(
            (n_test as f64 - target).abs() <= 1.0,
            "class {c}: {n_test} vs {target}"
        );
    }
    assert_eq!(
        (pool, test),
        stratified_split(&ds.labels, ds.n_classes(), 0.25, 42).unwrap()
    );
}
