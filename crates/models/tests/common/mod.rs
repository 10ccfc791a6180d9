//! Shared by the integration tests that need the pretrained checkpoint in `shared/models`.

use std::path::PathBuf;

pub const WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/models/efficientnet-lite0.safetensors");

/// The checkpoint's path, or `None` (with a message naming `test`) when it is absent.
pub fn weights(test: &str) -> Option<PathBuf> {
    let p = PathBuf::from(WEIGHTS);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIPPING {test}: {WEIGHTS} not found");
        None
    }
}
