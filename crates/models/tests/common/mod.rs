//! Shared by the integration tests that run EfficientNet-Lite0: the synthetic checkpoint every
//! mechanics test runs on, and the pretrained one in `../shared/models` (found by the one lookup of
//! the shared folder, `crates/data/tests/common/shared_data.rs`) for the tests marked
//! `#[ignore = "needs ../shared/models"]`.
#![allow(dead_code, unused_imports)]

#[path = "../../../data/tests/common/shared_data.rs"]
pub mod shared_data;
pub mod synthetic_effnet;

pub use shared_data::{shared, weights};
pub use synthetic_effnet::synthetic_weights;

/// `#[test] fn synthetic()` running `check` on the synthetic checkpoint (always), and
/// `#[test] #[ignore] fn pretrained()` running it on the pretrained one, in a module named after
/// `check`: `on_both_checkpoints!(check)` gives the tests `check::synthetic` and `check::pretrained`.
#[macro_export]
macro_rules! on_both_checkpoints {
    ($check:ident) => {
        mod $check {
            #[test]
            fn synthetic() {
                super::$check(&$crate::common::synthetic_weights());
            }

            #[test]
            #[ignore = "needs ../shared/models"]
            fn pretrained() {
                super::$check(&$crate::common::weights());
            }
        }
    };
}
