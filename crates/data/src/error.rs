//! Errors of the readers and the splitter.
//!
//! Every message is a single line that starts with the file it is about (and, for a CSV row,
//! the 1-based line number, the header being line 1) and says what was expected, so that the
//! command line can print it as it is and the user knows what to fix without a backtrace.
//!
//! Underlying I/O, gzip and CSV errors are written into the message rather than exposed as
//! `source()`: printers that walk the error chain (anyhow's `{:#}`) would otherwise repeat them,
//! and the one-line message is the contract.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong while reading a data file or splitting a dataset.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file does not exist, or cannot be opened.
    #[error("{}: cannot open: {error}", .path.display())]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },

    /// The file opened but reading it failed part-way (a raw file).
    #[error("{}: cannot read: {error}", .path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },

    /// The gzip stream is cut short or damaged (the decoder's own message is kept).
    #[error("{}: truncated or corrupt gzip data: {error}", .path.display())]
    Gzip {
        path: PathBuf,
        error: std::io::Error,
    },

    /// The first four bytes are not an IDX magic number at all.
    #[error(
        "{}: not an IDX file: magic 0x{magic:08x} (expected 0x00000803 for images or 0x00000801 for labels)",
        .path.display()
    )]
    NotIdx { path: PathBuf, magic: u32 },

    /// An IDX file of the wrong kind, e.g. a labels file where images were expected.
    #[error("{}: IDX magic 0x{magic:08x} does not hold {expected}", .path.display())]
    WrongIdxKind {
        path: PathBuf,
        magic: u32,
        expected: &'static str,
    },

    /// Fewer bytes than the header (or the IDX dimensions) declare.
    #[error("{}: truncated: expected {expected} bytes of {what}, found {found}", .path.display())]
    Truncated {
        path: PathBuf,
        what: &'static str,
        expected: u64,
        found: u64,
    },

    /// More bytes than the IDX dimensions declare: the header and the data disagree.
    #[error(
        "{}: {extra} bytes after the {expected} bytes of data that the IDX header declares",
        .path.display()
    )]
    TrailingData {
        path: PathBuf,
        expected: u64,
        extra: u64,
    },

    /// IDX dimensions whose product does not fit in memory.
    #[error("{}: IDX dimensions {dims:?} are too large", .path.display())]
    IdxTooLarge { path: PathBuf, dims: Vec<u32> },

    /// The images and labels files describe different numbers of samples.
    #[error(
        "{} holds {n_images} images but {} holds {n_labels} labels (expected the same count)",
        .images.display(), .labels.display()
    )]
    CountMismatch {
        images: PathBuf,
        n_images: usize,
        labels: PathBuf,
        n_labels: usize,
    },

    /// No labels file was given and none can be derived from the images file name.
    #[error(
        "{}: cannot derive the labels file name (expected a name with 'images-idx3-ubyte'); pass --labels",
        .path.display()
    )]
    NoLabelsPath { path: PathBuf },

    /// A CSV row with a different number of fields than the header.
    #[error("{}:{line}: expected {expected} fields like the header, found {found}", .path.display())]
    Ragged {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
    },

    /// A feature value that is empty, not a number, or not finite (NaN, inf).
    #[error("{}:{line}: column '{column}': '{value}' is not a number", .path.display())]
    NotANumber {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },

    /// An empty value in the label column.
    #[error("{}:{line}: column '{column}': the label is empty", .path.display())]
    EmptyLabel {
        path: PathBuf,
        line: u64,
        column: String,
    },

    /// The requested label column is not in the header. `columns` is already abbreviated.
    #[error("{}: no column named '{label}' (columns: {columns})", .path.display())]
    NoSuchColumn {
        path: PathBuf,
        label: String,
        columns: String,
    },

    /// The header is unusable: a duplicated label column, or no feature column besides it.
    #[error("{}: bad header: {reason}", .path.display())]
    BadHeader { path: PathBuf, reason: String },

    /// A CSV that the parser itself rejects (e.g. invalid UTF-8).
    #[error("{}: {message}", .path.display())]
    Csv { path: PathBuf, message: String },

    /// The file holds no samples (or, for a CSV, not even a header).
    #[error("{}: {what}", .path.display())]
    Empty { path: PathBuf, what: &'static str },

    /// A class between 0 and the largest label that no sample has (IDX labels).
    #[error("class {class} has no samples in {} (labels must cover 0..={max})", .path.display())]
    EmptyClass { path: PathBuf, class: u32, max: u32 },

    /// A CSV row whose label is not one of the pool's classes.
    #[error("{}:{line}: label '{label}' does not occur in the pool's classes", .path.display())]
    UnknownLabel {
        path: PathBuf,
        line: u64,
        label: String,
    },

    /// An IDX label that is not one of the pool's classes (`item` counts from 0).
    #[error("{}: item {item}: label '{label}' does not occur in the pool's classes", .path.display())]
    UnknownIdxLabel {
        path: PathBuf,
        item: usize,
        label: String,
    },

    /// A CSV was given without saying which column holds the labels.
    #[error("{}: a CSV needs --label-column", .path.display())]
    NeedsLabelColumn { path: PathBuf },

    /// An option that only applies to the other file format.
    #[error("{}: {option} applies only to {applies_to} files", .path.display())]
    OptionNotApplicable {
        path: PathBuf,
        option: &'static str,
        applies_to: &'static str,
    },

    /// A directory was given; image folders come in a later version.
    #[error("{}: is a folder; image folders are read by scan_image_folder (quarry simulate: --model efficientnet-lite0)", .path.display())]
    Directory { path: PathBuf },

    /// The test fraction of a split is outside (0, 1).
    #[error("test fraction {fraction} must be strictly between 0 and 1")]
    BadFraction { fraction: f64 },

    /// A class too small to put samples on both sides of a stratified split.
    #[error("class {class} has {count} sample(s); a stratified split needs at least 2 per class")]
    ClassTooSmall { class: usize, count: usize },

    /// A label not below the number of classes given to the splitter.
    #[error("sample {index} has label {label}, expected a label below n_classes = {n_classes}")]
    LabelOutOfRange {
        index: usize,
        label: u32,
        n_classes: usize,
    },

    /// A class sub-folder of an image folder that holds no .png/.jpg/.jpeg file.
    #[error("{}: class '{class}' has no images (expected .png, .jpg or .jpeg files)", .path.display())]
    ClassWithoutImages { path: PathBuf, class: String },

    /// An image folder with no image files and no class sub-folders.
    #[error("{}: no images found (expected .png, .jpg or .jpeg files, or one sub-folder per class)", .path.display())]
    NoImages { path: PathBuf },

    /// The assembled dataset was rejected by quarry-core (a bug here, kept as an error anyway).
    #[error("{}: {error}", .path.display())]
    Core {
        path: PathBuf,
        error: quarry_core::Error,
    },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
