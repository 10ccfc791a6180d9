//! A feature cache: EfficientNet-Lite0 run once over a list of image files, its 1280-d pooled
//! features kept in a memory-mapped file so every later round (and every later run) of active
//! learning reads them instead of running the backbone again.
//!
//! # How it is used
//!
//! ```no_run
//! # use std::path::Path;
//! # use quarry_models::{EfficientNetLite0, LogisticRegressionLearner, LogisticRegressionParams};
//! # use quarry_models::feature_cache::FeatureCache;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let weights = Path::new("efficientnet-lite0.safetensors");
//! let files: Vec<std::path::PathBuf> = vec![/* e.g. quarry_data::scan_image_folder(dir)?.files */];
//! let model = EfficientNetLite0::load(weights)?;
//! let report = FeatureCache::build(&model, weights, &files, 224, Path::new("pool.qfc"), |done, total| {
//!     eprintln!("{done}/{total}");
//! })?;
//! for (path, why) in &report.skipped {
//!     eprintln!("{}: skipped: {why}", path.display());
//! }
//! let cache = FeatureCache::open_fresh(Path::new("pool.qfc"), weights, &files)?; // "stale cache: rebuild" if not
//! let x = cache.to_matrix()?; // [cache.len(), 1280], row r is files[cache.indices()[r]]
//! let learner = LogisticRegressionLearner::new(LogisticRegressionParams::new());
//! # let _ = (x, learner); Ok(()) }
//! ```
//!
//! # The head on top of the cache
//!
//! The classifier trained on cached features is [`crate::LogisticRegressionLearner`]: a linear softmax
//! layer over the 1280 features, i.e. exactly the head one would fine-tune on a frozen backbone. It is
//! solved to convergence by L-BFGS and warm-starts from its previous weights (the loop's continuous
//! fine-tuning); its `embed` is the features themselves and its `gradient_embedding` is BADGE's, so
//! every strategy works on it. A separate "head learner" type would only rename it, so there is none.
//! (Fine-tuning the backbone itself is `EfficientNetTrainer`'s job, and cannot use a cache.)
//!
//! # Resolution: speed against fidelity
//!
//! The backbone's cost grows with the number of pixels: 96x96 is about (224/96)² ≈ 5.4 times cheaper
//! than the 224x224 it was trained at, 112x112 four times. Below 224 the receptive fields see more of
//! the object and fine texture is lost, so features of photographs get worse; for small source
//! images (28x28 Fashion-MNIST, 32x32 CIFAR) upscaling to 224 adds no information and 96 or 112 is
//! usually the better buy. The resolution is stored in the cache and checked by [`FeatureCache::open_checked`].
//!
//! # File layout (version 1, little-endian)
//!
//! | bytes | what |
//! | --- | --- |
//! | 0..8 | magic `QRYFEAT\0` |
//! | 8..12 | version (`u32`, 1) |
//! | 12..16 | feature dimension `dim` (`u32`) |
//! | 16..24 | cached rows `count` (`u64`) |
//! | 24..32 | input files given to the build, including skipped ones (`u64`) |
//! | 32..36 | resolution (`u32`; 0 when the rows did not come from an image model) |
//! | 36..40 | reserved (0) |
//! | 40..48 | fingerprint of the weights file ([`weights_fingerprint`]) |
//! | 48..56 | fingerprint of the input list ([`images_fingerprint`]) |
//! | 56..64 | byte offset of the file table (`u64`) = 64 + 4·count·dim |
//! | 64.. | `count` rows of `dim` `f32` |
//! | table | per row: input index (`u64`), path length (`u32`), path bytes |
//!
//! Files are written to a temporary name beside the target and renamed into place, so a crash
//! never leaves a half-written cache under the real name. Only a missing file or a feature cache
//! (a file that starts with the magic, of any version or freshness) is ever replaced: a path that
//! names anything else — a labels CSV, a data file, a folder — is refused with
//! [`FeatureCacheError::NotACache`] before anything is computed or written ([`check_replaceable`]).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use memmap2::Mmap;
use quarry_core::Matrix;
use rayon::prelude::*;
use thiserror::Error;

use crate::efficientnet::{EfficientNetError, EfficientNetLite0};
use crate::imagenet_input::{INPUT_SIZE, load_image};

/// The resolution EfficientNet-Lite0 was trained at (224); see the module docs for smaller ones.
pub const DEFAULT_RESOLUTION: usize = INPUT_SIZE;
/// Images decoded and embedded together: bounds memory (64 × 3 × 224² f32 ≈ 38 MB of input).
pub const BUILD_BATCH: usize = 64;

const MAGIC: &[u8; 8] = b"QRYFEAT\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 64;

/// What went wrong building or opening a cache. Every message names the file.
#[derive(Debug, Error)]
pub enum FeatureCacheError {
    /// Reading or writing a file failed.
    #[error("{}: {what}: {error}", .path.display())]
    Io { path: PathBuf, what: &'static str, error: std::io::Error },
    /// The file is not a cache of this version, or is damaged.
    #[error("{}: not a valid feature cache: {reason}", .path.display())]
    Format { path: PathBuf, reason: String },
    /// The cache was built from other weights, other images or another resolution.
    #[error("{}: stale cache: rebuild it ({reason})", .path.display())]
    Stale { path: PathBuf, reason: String },
    /// The path names something that is not a feature cache (a CSV, an image, a folder): it is
    /// never overwritten.
    #[error("{}: exists and is not a quarry feature cache ({reason}); refusing to overwrite it: name a new file or an existing cache", .path.display())]
    NotACache { path: PathBuf, reason: String },
    /// A bad argument (e.g. resolution 0, a row of the wrong length).
    #[error("{}: {reason}", .path.display())]
    Param { path: PathBuf, reason: String },
    /// The backbone rejected a batch (a bug rather than bad data: inputs are checked first).
    #[error("{}: {error}", .path.display())]
    Model { path: PathBuf, error: EfficientNetError },
}

/// Results of this module.
pub type Result<T> = std::result::Result<T, FeatureCacheError>;

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> FeatureCacheError {
    let path = path.to_path_buf();
    move |error| FeatureCacheError::Io { path, what, error }
}

/// Whether a cache may be written at `path`: yes when nothing is there or when it holds a feature
/// cache (any version, fresh or stale: rebuilding it loses nothing a person made); otherwise
/// [`FeatureCacheError::NotACache`], and the file is left as it is. Symbolic links are followed.
pub fn check_replaceable(path: &Path) -> Result<()> {
    use std::io::Read;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(FeatureCacheError::Io { path: path.to_path_buf(), what: "cannot inspect", error }),
    };
    let not = |reason: &str| Err(FeatureCacheError::NotACache { path: path.to_path_buf(), reason: reason.into() });
    if meta.is_dir() {
        return not("it is a folder");
    }
    if !meta.is_file() {
        return not("it is not a regular file");
    }
    let mut head = Vec::with_capacity(MAGIC.len());
    File::open(path)
        .and_then(|f| f.take(MAGIC.len() as u64).read_to_end(&mut head))
        .map_err(io(path, "cannot read"))?;
    if head.as_slice() != MAGIC {
        return not("it does not start with the QRYFEAT header");
    }
    Ok(())
}

/// What [`FeatureCache::build`] did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Rows written (images that decoded).
    pub cached: usize,
    /// Images that could not be decoded, with the decoder's message (which names the file too).
    pub skipped: Vec<(PathBuf, String)>,
    /// Wall-clock seconds of the whole build (decode, backbone, write).
    pub seconds: f64,
}

/// 64-bit FNV-1a: a fingerprint, not a defence against someone forging a file.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(mut self, data: &[u8]) -> Self {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }
    fn u64(self, v: u64) -> Self {
        self.bytes(&v.to_le_bytes())
    }
}

/// Fingerprint of a weights file: its size and the first and last 64 KiB (cheap on a 20 MB file,
/// and any re-export or different checkpoint changes it).
pub fn weights_fingerprint(path: &Path) -> Result<u64> {
    use std::io::Read;
    const EDGE: u64 = 64 << 10;
    let mut file = File::open(path).map_err(io(path, "cannot open weights"))?;
    let size = file.metadata().map_err(io(path, "cannot read weights"))?.len();
    let mut head = vec![0u8; EDGE.min(size) as usize];
    file.read_exact(&mut head).map_err(io(path, "cannot read weights"))?;
    let tail_len = EDGE.min(size);
    file.seek(SeekFrom::Start(size - tail_len)).map_err(io(path, "cannot read weights"))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail).map_err(io(path, "cannot read weights"))?;
    Ok(Fnv::new().u64(size).bytes(&head).bytes(&tail).0)
}

/// Fingerprint of an input list: each path (in order), its size and modification time. A file
/// that cannot be inspected contributes a marker instead of failing (it is skipped at decode time),
/// so the fingerprint changes when it appears.
pub fn images_fingerprint(files: &[PathBuf]) -> u64 {
    let mut h = Fnv::new().u64(files.len() as u64);
    for path in files {
        h = h.bytes(&path_bytes(path)).u64(0xff);
        h = match std::fs::metadata(path) {
            Ok(meta) => {
                let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as u64);
                h.u64(meta.len()).u64(mtime)
            }
            Err(_) => h.u64(u64::MAX).u64(u64::MAX),
        };
    }
    h.0
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}
#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}
#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}
#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

/// Writes a cache row by row with bounded memory (rows stream to disk; only the per-row file table
/// is kept), under a temporary name that [`CacheWriter::finish`] renames into place. Dropping an
/// unfinished writer removes the temporary file.
///
/// [`FeatureCache::build`] uses it for EfficientNet features; it is public so that features from
/// any other backbone can be cached in the same format.
pub struct CacheWriter {
    path: PathBuf,
    temp: PathBuf,
    out: Option<BufWriter<File>>,
    dim: usize,
    inputs: u64,
    resolution: u32,
    weights: u64,
    images: u64,
    table: Vec<(u64, PathBuf)>,
}

impl CacheWriter {
    /// Starts a cache at `path` of `dim`-wide rows for `inputs` input files, recording the
    /// resolution and the two fingerprints. Refused when `path` holds something other than a
    /// feature cache ([`check_replaceable`]).
    pub fn create(path: &Path, dim: usize, inputs: usize, resolution: usize, weights: u64, images: u64) -> Result<Self> {
        let param = |reason: String| FeatureCacheError::Param { path: path.to_path_buf(), reason };
        u32::try_from(dim).ok().filter(|&d| d > 0).ok_or_else(|| param(format!("feature dimension {dim} must be in 1..2^32")))?;
        let resolution = u32::try_from(resolution).map_err(|_| param(format!("resolution {resolution} is too large")))?;
        check_replaceable(path)?;
        let mut name = path.file_name().map(|n| n.to_os_string()).ok_or_else(|| param("a cache path needs a file name".into()))?;
        name.push(format!(".tmp-{}", std::process::id()));
        let temp = path.with_file_name(name);
        let file = File::create(&temp).map_err(io(&temp, "cannot create"))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0u8; HEADER_LEN]).map_err(io(&temp, "cannot write"))?;
        Ok(CacheWriter { path: path.to_path_buf(), temp, out: Some(out), dim, inputs: inputs as u64, resolution, weights, images, table: Vec::new() })
    }

    /// Appends the row of input file number `index` (`path`).
    pub fn push(&mut self, index: usize, path: &Path, row: &[f32]) -> Result<()> {
        if row.len() != self.dim {
            return Err(FeatureCacheError::Param { path: self.path.clone(), reason: format!("row of {} values, expected {}", row.len(), self.dim) });
        }
        let out = self.out.as_mut().ok_or_else(|| FeatureCacheError::Param { path: self.path.clone(), reason: "writer already finished".into() })?;
        let mut bytes = Vec::with_capacity(4 * row.len());
        for v in row {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&bytes).map_err(io(&self.temp, "cannot write"))?;
        self.table.push((index as u64, path.to_path_buf()));
        Ok(())
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.table.len()
    }
    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Writes the file table and the header, syncs, and renames the file into place.
    pub fn finish(mut self) -> Result<()> {
        let temp = self.temp.clone();
        let mut out = self.out.take().ok_or_else(|| FeatureCacheError::Param { path: self.path.clone(), reason: "writer already finished".into() })?;
        let count = self.table.len() as u64;
        let table_offset = HEADER_LEN as u64 + 4 * count * self.dim as u64;
        for (index, path) in &self.table {
            let bytes = path_bytes(path);
            let len = u32::try_from(bytes.len()).map_err(|_| FeatureCacheError::Param { path: path.clone(), reason: "path too long".into() })?;
            out.write_all(&index.to_le_bytes()).map_err(io(&temp, "cannot write"))?;
            out.write_all(&len.to_le_bytes()).map_err(io(&temp, "cannot write"))?;
            out.write_all(&bytes).map_err(io(&temp, "cannot write"))?;
        }
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(self.dim as u32).to_le_bytes());
        header.extend_from_slice(&count.to_le_bytes());
        header.extend_from_slice(&self.inputs.to_le_bytes());
        header.extend_from_slice(&self.resolution.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&self.weights.to_le_bytes());
        header.extend_from_slice(&self.images.to_le_bytes());
        header.extend_from_slice(&table_offset.to_le_bytes());
        debug_assert_eq!(header.len(), HEADER_LEN);
        out.seek(SeekFrom::Start(0)).map_err(io(&temp, "cannot write"))?;
        out.write_all(&header).map_err(io(&temp, "cannot write"))?;
        let file = out.into_inner().map_err(|e| FeatureCacheError::Io { path: temp.clone(), what: "cannot write", error: e.into_error() })?;
        file.sync_all().map_err(io(&temp, "cannot sync"))?;
        drop(file);
        // Checked again: something else may have been put there while the rows were computed.
        if let Err(e) = check_replaceable(&self.path) {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        std::fs::rename(&temp, &self.path).map_err(io(&self.path, "cannot move the finished cache into place"))?;
        Ok(())
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// An open, memory-mapped feature cache.
#[derive(Debug)]
pub struct FeatureCache {
    path: PathBuf,
    map: Mmap,
    dim: usize,
    count: usize,
    inputs: usize,
    resolution: usize,
    weights: u64,
    images: u64,
    indices: Vec<usize>,
    files: Vec<PathBuf>,
}

impl FeatureCache {
    /// Embeds `files` with `model` (loaded from `weights`, which is fingerprinted) at
    /// `resolution`x`resolution` and writes the cache to `path`, in batches of [`BUILD_BATCH`]
    /// images decoded in parallel. Files that cannot be decoded are skipped and reported, never
    /// fatal. `progress(done, total)` is called after each batch.
    pub fn build(
        model: &EfficientNetLite0,
        weights: &Path,
        files: &[PathBuf],
        resolution: usize,
        path: &Path,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<BuildReport> {
        let start = Instant::now();
        if resolution == 0 {
            return Err(FeatureCacheError::Param { path: path.to_path_buf(), reason: "resolution must be at least 1 pixel".into() });
        }
        let weights_fp = weights_fingerprint(weights)?;
        let images_fp = images_fingerprint(files);
        let mut writer = CacheWriter::create(path, crate::efficientnet::FEATURE_DIM, files.len(), resolution, weights_fp, images_fp)?;
        let mut skipped = Vec::new();
        let image_len = 3 * resolution * resolution;
        for (batch_no, batch) in files.chunks(BUILD_BATCH).enumerate() {
            let first = batch_no * BUILD_BATCH;
            let decoded: Vec<_> = batch.par_iter().map(|p| load_image(p, resolution)).collect();
            let mut input = Vec::with_capacity(batch.len() * image_len);
            let mut kept = Vec::with_capacity(batch.len());
            for (offset, (file, result)) in batch.iter().zip(decoded).enumerate() {
                match result {
                    Ok(pixels) => {
                        input.extend_from_slice(&pixels);
                        kept.push((first + offset, file));
                    }
                    Err(e) => skipped.push((file.clone(), e.reason)),
                }
            }
            if !kept.is_empty() {
                let features = model
                    .embed(&input, [kept.len(), 3, resolution, resolution])
                    .map_err(|error| FeatureCacheError::Model { path: path.to_path_buf(), error })?;
                for (r, (index, file)) in kept.into_iter().enumerate() {
                    writer.push(index, file, features.row(r))?;
                }
            }
            progress((first + batch.len()).min(files.len()), files.len());
        }
        let cached = writer.len();
        writer.finish()?;
        Ok(BuildReport { cached, skipped, seconds: start.elapsed().as_secs_f64() })
    }

    /// Maps the cache at `path` and checks its structure (not its freshness: see
    /// [`FeatureCache::open_fresh`]).
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |reason: String| FeatureCacheError::Format { path: path.to_path_buf(), reason };
        if cfg!(target_endian = "big") {
            return Err(bad("caches are little-endian and this machine is big-endian".into()));
        }
        let file = File::open(path).map_err(io(path, "cannot open"))?;
        // SAFETY: the map is read-only; a cache is only ever replaced by rename, never rewritten in
        // place, so the mapped bytes do not change under us (unless another program truncates the
        // file, which the memmap2 docs accept as the price of mapping).
        let map = unsafe { Mmap::map(&file) }.map_err(io(path, "cannot memory-map"))?;
        if map.len() < HEADER_LEN || &map[..8] != MAGIC {
            return Err(bad("no QRYFEAT header".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes(map[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |o: usize| u64::from_le_bytes(map[o..o + 8].try_into().unwrap_or([0; 8]));
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(format!("version {version}, this build reads version {VERSION}")));
        }
        let dim = u32_at(12) as usize;
        let count = u64_at(16);
        let inputs = u64_at(24);
        let resolution = u32_at(32) as usize;
        let (weights, images, table_offset) = (u64_at(40), u64_at(48), u64_at(56));
        let rows_end = count.checked_mul(dim as u64).and_then(|v| v.checked_mul(4)).and_then(|v| v.checked_add(HEADER_LEN as u64));
        if dim == 0 || rows_end != Some(table_offset) || table_offset > map.len() as u64 || count > inputs {
            return Err(bad(format!("header ({count} rows of {dim} values, table at byte {table_offset}) does not fit the file's {} bytes", map.len())));
        }
        let count = count as usize;
        let mut indices = Vec::with_capacity(count);
        let mut files = Vec::with_capacity(count);
        let mut at = table_offset as usize;
        for row in 0..count {
            let cut = || bad(format!("file table cut short at row {row}"));
            let head = map.get(at..at + 12).ok_or_else(cut)?;
            let index = u64::from_le_bytes(head[..8].try_into().unwrap_or([0; 8]));
            let len = u32::from_le_bytes(head[8..].try_into().unwrap_or([0; 4])) as usize;
            let name = map.get(at + 12..at + 12 + len).ok_or_else(cut)?;
            if index >= inputs {
                return Err(bad(format!("row {row} claims input {index} of {inputs}")));
            }
            indices.push(index as usize);
            files.push(path_from_bytes(name));
            at += 12 + len;
        }
        if at != map.len() {
            return Err(bad(format!("{} unexpected bytes after the file table", map.len() - at)));
        }
        Ok(FeatureCache { path: path.to_path_buf(), map, dim, count, inputs: inputs as usize, resolution, weights, images, indices, files })
    }

    /// [`FeatureCache::open`], then [`FeatureCache::check_fresh`].
    pub fn open_fresh(path: &Path, weights: &Path, files: &[PathBuf]) -> Result<Self> {
        let cache = Self::open(path)?;
        cache.check_fresh(weights, files)?;
        Ok(cache)
    }

    /// [`FeatureCache::open_fresh`] that also requires the given resolution.
    pub fn open_checked(path: &Path, weights: &Path, files: &[PathBuf], resolution: usize) -> Result<Self> {
        let cache = Self::open_fresh(path, weights, files)?;
        if cache.resolution != resolution {
            return Err(FeatureCacheError::Stale { path: path.to_path_buf(), reason: format!("built at {}x{0}, asked for {resolution}x{resolution}", cache.resolution) });
        }
        Ok(cache)
    }

    /// An error "stale cache: rebuild it" unless the cache was built from these weights and this
    /// exact input list (same paths in the same order, same sizes and modification times).
    pub fn check_fresh(&self, weights: &Path, files: &[PathBuf]) -> Result<()> {
        let stale = |reason: String| Err(FeatureCacheError::Stale { path: self.path.clone(), reason });
        if weights_fingerprint(weights)? != self.weights {
            return stale(format!("built with other weights than {}", weights.display()));
        }
        if files.len() != self.inputs {
            return stale(format!("built from {} images, given {}", self.inputs, files.len()));
        }
        if images_fingerprint(files) != self.images {
            return stale("an image was added, removed, renamed or modified since it was built".into());
        }
        Ok(())
    }

    /// The cached rows, row-major `[len(), dim()]`, straight from the mapped file.
    pub fn rows(&self) -> &[f32] {
        let bytes = &self.map[HEADER_LEN..HEADER_LEN + 4 * self.count * self.dim];
        // SAFETY: every bit pattern is a valid f32, and the map is page-aligned with rows starting
        // at byte 64, so the middle part is the whole slice (checked below anyway).
        let (pre, rows, post) = unsafe { bytes.align_to::<f32>() };
        debug_assert!(pre.is_empty() && post.is_empty());
        if pre.is_empty() && post.is_empty() { rows } else { &[] }
    }

    /// Row `r` (`dim()` values).
    pub fn row(&self, r: usize) -> &[f32] {
        &self.rows()[r * self.dim..(r + 1) * self.dim]
    }

    /// A copy of the rows as a [`Matrix`] `[len(), dim()]`.
    pub fn to_matrix(&self) -> Result<Matrix> {
        Matrix::new(self.rows().to_vec(), self.count, self.dim).map_err(|e| FeatureCacheError::Format { path: self.path.clone(), reason: e.to_string() })
    }

    /// The file of each row.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
    /// The position of each row's file in the input list given to the build: row `r` is the sample
    /// with id `indices()[r]`; ids missing here were skipped as unreadable.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.count
    }
    /// Whether no image could be cached.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Values per row (1280 for EfficientNet-Lite0).
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Number of input files the cache was built from, skipped ones included.
    pub fn inputs(&self) -> usize {
        self.inputs
    }
    /// The side the images were resized to.
    pub fn resolution(&self) -> usize {
        self.resolution
    }
    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("quarry-fc-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn small_cache(path: &Path, value: f32) -> Result<()> {
        let files = [PathBuf::from("a.png")];
        let mut w = CacheWriter::create(path, 2, 1, 0, 1, images_fingerprint(&files))?;
        w.push(0, &files[0], &[value, value])?;
        w.finish()
    }

    /// A labels CSV, a data file or a folder given as the cache path is refused, named, and left
    /// byte for byte as it was; a missing file is created and an existing cache is replaced.
    #[test]
    fn only_a_missing_file_or_a_cache_is_ever_replaced() {
        let d = scratch("replace");
        let labels = d.join("labels.csv");
        std::fs::write(&labels, "file,label\na.png,cat\n").unwrap();
        let err = small_cache(&labels, 1.0).unwrap_err();
        assert!(matches!(err, FeatureCacheError::NotACache { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("labels.csv") && msg.contains("not a quarry feature cache"), "{msg}");
        assert_eq!(std::fs::read_to_string(&labels).unwrap(), "file,label\na.png,cat\n");
        let empty = d.join("empty.bin");
        std::fs::write(&empty, "").unwrap();
        assert!(small_cache(&empty, 1.0).is_err(), "an empty file is not a cache either");
        let folder = d.join("folder");
        std::fs::create_dir(&folder).unwrap();
        assert!(check_replaceable(&folder).unwrap_err().to_string().contains("it is a folder"));

        let cache = d.join("features.bin");
        check_replaceable(&cache).expect("a missing file may be created");
        small_cache(&cache, 1.0).expect("create");
        small_cache(&cache, 2.0).expect("an existing cache is rebuilt");
        assert_eq!(FeatureCache::open(&cache).unwrap().rows(), [2.0, 2.0]);
        let leftovers: Vec<_> = std::fs::read_dir(&d).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
        assert!(leftovers.is_empty(), "no temporary file left behind");
        std::fs::remove_dir_all(&d).ok();
    }

    /// A file put at the cache's path while it was being built is not overwritten by the rename.
    #[test]
    fn a_file_that_appears_during_the_build_is_kept() {
        let d = scratch("race");
        let path = d.join("features.bin");
        let files = [PathBuf::from("a.png")];
        let mut w = CacheWriter::create(&path, 1, 1, 0, 1, images_fingerprint(&files)).unwrap();
        w.push(0, &files[0], &[1.0]).unwrap();
        std::fs::write(&path, "someone's notes").unwrap();
        assert!(matches!(w.finish(), Err(FeatureCacheError::NotACache { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone's notes");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "the temporary file is removed");
        std::fs::remove_dir_all(&d).ok();
    }
}
