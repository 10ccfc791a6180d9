//! quarry-data: readers (IDX, CSV) and seeded pool/test splits.
//!
//! [`load`] is the entry point: it looks at a file's content and hands it to [`load_idx`]
//! (MNIST-layout IDX images plus their labels file, raw or gzip) or [`load_csv`] (a header, a
//! label column, numeric features). Either produces a [`quarry_core::Dataset`] whose class
//! names are the file's own label values; a test file loaded with the pool's `classes` reuses
//! the pool's mapping so that label numbers mean the same class on both sides.
//! [`stratified_split`] then divides one dataset into pool and test.
//!
//! Every error is a [`DataError`] whose message is one line naming the file (and line) at fault.

mod csv_file;
mod error;
mod idx;
mod input;
mod load;
mod split;
#[cfg(test)]
mod test_util;

pub use csv_file::load_csv;
pub use error::{DataError, Result};
pub use idx::{idx_labels_path, load_idx, read_idx_images, read_idx_labels};
pub use load::{DataFormat, detect_format, load};
pub use split::stratified_split;
pub mod image_folder;
pub use image_folder::{ImageFolder, Skipped, decode_all, is_image_file, scan_image_folder};
