//! Where the tests find their data: what the repository ships (`data/`), and what it does not —
//! the shared folder `../shared` beside the checkout, holding the EfficientNet-Lite0 weights and
//! PyTorch reference outputs (`models/`) and Fashion-MNIST (`data/fashion-mnist/`).
//!
//! The one copy of this lookup: every crate's tests include this file by path,
//! `#[path = "../../data/tests/common/shared_data.rs"] mod shared_data;`.
//!
//! Tests that need the shared folder are marked `#[ignore = "needs ../shared/…"]`, so `cargo test`
//! counts them as ignored rather than passing them on nothing; `cargo test --workspace --
//! --include-ignored` runs them where the folder exists. Run without it they fail, naming the
//! missing file. Set `QUARRY_SHARED` to use a shared folder somewhere else.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The checkpoint's path inside the shared folder.
pub const WEIGHTS: &str = "models/efficientnet-lite0.safetensors";

/// The repository root: every crate lives in `crates/<name>`.
pub fn repo() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

/// A file the repository ships, such as `data/digits-8x8.csv` (panics naming it if absent).
pub fn repo_file(rel: &str) -> PathBuf {
    let p = repo().join(rel);
    assert!(p.is_file(), "{} is missing from the checkout (the repository ships it)", p.display());
    p
}

/// The shared folder: `$QUARRY_SHARED` when set, else `../shared` beside the repository root.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("QUARRY_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => repo().parent().map_or_else(|| repo().join(".."), Path::to_path_buf).join("shared"),
    }
}

/// A file in the shared folder, e.g. `shared("models/chelsea.png")`. Panics with the path when it
/// is absent: the test asked for data the repository does not ship.
pub fn shared(rel: &str) -> PathBuf {
    let p = shared_dir().join(rel);
    assert!(
        p.is_file(),
        "needs ../shared/{rel}, not found at {}: the repository does not ship it. Run this test where \
         the shared folder sits beside the checkout (or set QUARRY_SHARED to it); plain `cargo test` \
         leaves it ignored",
        p.display()
    );
    p
}

/// The pretrained EfficientNet-Lite0 checkpoint, `../shared/models/efficientnet-lite0.safetensors`.
pub fn weights() -> PathBuf {
    shared(WEIGHTS)
}

/// A Fashion-MNIST file, e.g. `fashion_mnist("t10k-images-idx3-ubyte.gz")`.
pub fn fashion_mnist(file: &str) -> PathBuf {
    shared(&format!("data/fashion-mnist/{file}"))
}
