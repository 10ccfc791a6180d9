//! Image folders as pools for a pretrained CNN (AIFT's setting).
//!
//! The frozen EfficientNet-Lite0 backbone embeds every image once (its 1280-d pooled features
//! become the dataset's features, so the classical strategies and a softmax head work on them),
//! and [`AugmentedPatches`] predicts `m` augmented patches of each candidate for AIFT: seeded
//! crops at several scales and positions with horizontal flips and small rotations, each resized
//! to the working resolution, embedded by the backbone and classified by the current head.

use crate::{ExperimentError, Result};
use image::DynamicImage;
use quarry_core::{Dataset, Learner, Matrix, McSamples, Probabilities, seeded_rng};
use quarry_data::{Skipped, decode_all, scan_image_folder};
use quarry_models::feature_cache::{FeatureCache, FeatureCacheError};
use quarry_models::{EfficientNetLite0, EfficientNetTrainer};
use quarry_models::imagenet_input::{decode_image, preprocess};
use rand::Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Decoded images of a folder, row `i` of the dataset being image `i`.
pub struct ImageSet {
    pub images: Vec<DynamicImage>,
    pub files: Vec<PathBuf>,
}

/// Images embedded per backbone call: bounds memory whatever the folder size.
const EMBED_BATCH: usize = 32;

/// Embed `images` at `resolution` × `resolution`, `[n, 1280]`.
pub fn embed_images(model: &EfficientNetLite0, images: &[&DynamicImage], resolution: usize) -> Result<Matrix> {
    let mut rows = Vec::with_capacity(images.len() * quarry_models::efficientnet::FEATURE_DIM);
    for chunk in images.chunks(EMBED_BATCH) {
        let f = model
            .embed(&batch_input(chunk, resolution), [chunk.len(), 3, resolution, resolution])
            .map_err(|e| ExperimentError::setting("model", e.to_string()))?;
        rows.extend_from_slice(f.as_slice());
    }
    Ok(Matrix::new(rows, images.len(), quarry_models::efficientnet::FEATURE_DIM)?)
}

/// Normalized NCHW input of a batch of images.
fn batch_input(images: &[&DynamicImage], resolution: usize) -> Vec<f32> {
    let mut input = Vec::with_capacity(images.len() * 3 * resolution * resolution);
    for img in images {
        input.extend(preprocess(img, resolution));
    }
    input
}

/// What a pool row holds for an image: the frozen backbone's pooled features (a head is trained on
/// them), or the output of a fine-tuning trainer's frozen stem and first blocks (the rest of the
/// network is trained on them; see `quarry_models::EfficientNetLearner`).
pub enum Featurizer {
    Pooled(Arc<EfficientNetLite0>),
    Frozen(Arc<EfficientNetTrainer>),
}

impl Featurizer {
    /// Rows for `images` at `resolution` × `resolution`, computed a batch at a time.
    pub fn features(&self, images: &[&DynamicImage], resolution: usize) -> Result<Matrix> {
        let trainer = match self {
            Featurizer::Pooled(model) => return embed_images(model, images, resolution),
            Featurizer::Frozen(trainer) => trainer,
        };
        let (mut rows, mut cols) = (Vec::new(), 0);
        for chunk in images.chunks(EMBED_BATCH) {
            let (f, [_, h, w, c]) = trainer
                .frozen_features(&batch_input(chunk, resolution), [chunk.len(), 3, resolution, resolution])
                .map_err(|e| ExperimentError::setting("train-blocks", e.to_string()))?;
            cols = h * w * c;
            rows.extend(f);
        }
        Ok(Matrix::new(rows, images.len(), cols)?)
    }
}

/// Read a folder with one sub-folder per class: unreadable images are reported by name and left
/// out, never aborting the run.
///
/// With `cache = Some((file, weights))` and pooled features, the features come from that
/// memory-mapped feature cache when it was built from these weights, images and resolution, and
/// the cache is (re)built first otherwise.
pub fn load_image_folder(
    dir: &Path,
    featurizer: &Featurizer,
    resolution: usize,
    cache: Option<(&Path, &Path)>,
) -> Result<(Dataset, ImageSet, Vec<Skipped>)> {
    let folder = scan_image_folder(dir)?;
    let labels = folder.labels.clone().ok_or_else(|| {
        ExperimentError::setting("data", format!("{}: a simulation needs one sub-folder per class (this folder is flat)", dir.display()))
    })?;
    let (decoded, skipped) = decode_all(&folder.files, decode_image);
    let files: Vec<PathBuf> = decoded.iter().map(|(i, _)| folder.files[*i].clone()).collect();
    let y: Vec<u32> = decoded.iter().map(|(i, _)| labels[*i]).collect();
    let images: Vec<DynamicImage> = decoded.into_iter().map(|(_, img)| img).collect();
    let features = image_features(featurizer, &images, &files, resolution, cache)?;
    let data = Dataset::new(features, y, folder.class_names.clone())?;
    Ok((data, ImageSet { images, files }, skipped))
}

/// The rows of decoded `images` (read from `files`): with `cache = Some((file, weights))` from that
/// feature cache (pooled features only; built first if need be), computed otherwise.
pub(crate) fn image_features(
    featurizer: &Featurizer,
    images: &[DynamicImage],
    files: &[PathBuf],
    resolution: usize,
    cache: Option<(&Path, &Path)>,
) -> Result<Matrix> {
    match (cache, featurizer) {
        (None, _) => featurizer.features(&images.iter().collect::<Vec<_>>(), resolution),
        (Some((file, weights)), Featurizer::Pooled(model)) => cached_features(model, weights, files, resolution, file),
        (Some(_), Featurizer::Frozen(_)) => Err(ExperimentError::setting("features-cache",
            "the cache holds the whole frozen backbone's pooled features; --train-blocks trains part of it",
        )),
    }
}

/// The largest rotation of an augmented patch, either way (AIFT's "small rotations").
pub const MAX_ROTATION_DEGREES: f64 = 10.0;

/// `img` rotated counter-clockwise by `degrees` about its center, same size, bilinear; points
/// that fall outside the source take the nearest edge pixel (no black corners).
pub fn rotate(img: &image::RgbImage, degrees: f64) -> image::RgbImage {
    let (w, h) = img.dimensions();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let at = |x: i64, y: i64| img.get_pixel(x.clamp(0, w as i64 - 1) as u32, y.clamp(0, h as i64 - 1) as u32).0;
    image::RgbImage::from_fn(w, h, |x, y| {
        // The source point that lands on (x, y): the inverse rotation (image y points down).
        let (dx, dy) = (x as f64 - cx, y as f64 - cy);
        let sx = cx + cos * dx - sin * dy;
        let sy = cy + sin * dx + cos * dy;
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let (p00, p10, p01, p11) = (at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1));
        let mut out = [0u8; 3];
        for c in 0..3 {
            let top = p00[c] as f64 * (1.0 - fx) + p10[c] as f64 * fx;
            let bottom = p01[c] as f64 * (1.0 - fx) + p11[c] as f64 * fx;
            out[c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
        image::Rgb(out)
    })
}

/// The pooled features of `files` from the feature cache at `path`, built (or rebuilt, when it
/// is stale or damaged) first if need be; a file there that is not a feature cache is an error and
/// stays as it is. Progress and rebuilds are reported on stderr.
fn cached_features(model: &EfficientNetLite0, weights: &Path, files: &[PathBuf], resolution: usize, path: &Path) -> Result<Matrix> {
    let flag = |e: FeatureCacheError| ExperimentError::setting("features-cache", e.to_string());
    // Whatever is at `path` must be a cache (or nothing) before anything is said or rebuilt: a
    // labels CSV or a data file given here by mistake is refused, never overwritten.
    quarry_models::feature_cache::check_replaceable(path).map_err(flag)?;
    match FeatureCache::open_checked(path, weights, files, resolution) {
        Ok(cache) if cache.len() == files.len() => return cache.to_matrix().map_err(flag),
        Ok(_) => tracing::info!("feature cache {}: some images were not cached; rebuilding", path.display()),
        Err(e) if path.exists() => tracing::warn!("feature cache: {e}; rebuilding"),
        Err(_) => {}
    }
    let report = FeatureCache::build(model, weights, files, resolution, path, |_, _| {}).map_err(flag)?;
    tracing::info!("feature cache {}: {} images embedded in {:.1} s", path.display(), report.cached, report.seconds);
    let cache = FeatureCache::open_checked(path, weights, files, resolution).map_err(flag)?;
    if cache.len() != files.len() {
        let names: Vec<String> = report.skipped.iter().map(|(p, why)| format!("{}: {why}", p.display())).collect();
        return Err(ExperimentError::setting("features-cache", format!("images decoded here failed in the cache: {}", names.join("; "))));
    }
    cache.to_matrix().map_err(flag)
}

/// Embedded augmented patches, `[patches, dim]` per (patch seed, image). What embeds a patch (the
/// pooled backbone, or a fine-tuning trainer's frozen part) never changes during a run, so each
/// patch is embedded once however many rounds score it and whichever arm of a seed asks first;
/// the labeled images' patches that training reads are the same, already embedded ones.
#[derive(Default)]
pub struct PatchCache {
    map: Mutex<HashMap<(u64, usize), Arc<Matrix>>>,
    /// Held while embedding, so two strategies asking for the same patches at once embed them
    /// once (the second waits, then finds them cached).
    embedding: Mutex<()>,
    /// Patches embedded so far and the seconds that took.
    work: Mutex<(usize, f64)>,
}

impl PatchCache {
    /// The patch features of each image in `images` (seeded by `seed`): those not cached yet are
    /// computed by one call of `embed`, which gets them in order and returns one `[missing, dim]`
    /// matrix per patch.
    pub fn get_or_embed(
        &self,
        seed: u64,
        images: &[usize],
        embed: impl FnOnce(&[usize]) -> Result<Vec<Matrix>>,
    ) -> Result<Vec<Arc<Matrix>>> {
        let missing = || -> Vec<usize> {
            let map = self.map.lock().expect("patch cache lock");
            let mut m: Vec<usize> = images.iter().copied().filter(|i| !map.contains_key(&(seed, *i))).collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        if !missing().is_empty() {
            let _embedding = self.embedding.lock().expect("patch cache lock");
            let missing = missing();
            if missing.is_empty() {
                return Ok(self.cached(seed, images));
            }
            let start = Instant::now();
            let per_patch = embed(&missing)?;
            let seconds = start.elapsed().as_secs_f64();
            let mut map = self.map.lock().expect("patch cache lock");
            for (j, &i) in missing.iter().enumerate() {
                let mut rows = Matrix::zeros(0, per_patch.first().map_or(0, |m| m.cols()));
                per_patch.iter().for_each(|m| rows.push_row(m.row(j)));
                map.insert((seed, i), Arc::new(rows));
            }
            let mut work = self.work.lock().expect("patch cache lock");
            work.0 += missing.len() * per_patch.len();
            work.1 += seconds;
        }
        Ok(self.cached(seed, images))
    }

    fn cached(&self, seed: u64, images: &[usize]) -> Vec<Arc<Matrix>> {
        let map = self.map.lock().expect("patch cache lock");
        images.iter().map(|i| map[&(seed, *i)].clone()).collect()
    }

    /// Patches embedded so far and the seconds spent embedding them.
    pub fn work(&self) -> (usize, f64) {
        *self.work.lock().expect("patch cache lock")
    }
}

/// Predicts augmented patches of pool samples for AIFT.
pub struct AugmentedPatches {
    pub featurizer: Arc<Featurizer>,
    pub images: Arc<ImageSet>,
    /// Shared by every run over these images (keyed by the patch seed).
    pub cache: Arc<PatchCache>,
    /// Pool row → image index.
    pub origin: Vec<usize>,
    pub patches: usize,
    /// The smallest crop, as a fraction of the shorter side.
    pub min_scale: f64,
    pub resolution: usize,
}

impl AugmentedPatches {
    /// Patch `t` of image `img`: a crop of `min_scale`–100 % of the shorter side at a random position,
    /// flipped horizontally half the time and rotated by up to ±[`MAX_ROTATION_DEGREES`], drawn
    /// from `(seed, image, t)` so it is reproducible.
    fn patch(&self, img: &DynamicImage, image_index: usize, t: usize, seed: u64) -> DynamicImage {
        let mut rng = seeded_rng(seed ^ ((image_index as u64) << 20), 0xA1F7_0000 | t as u64);
        let (w, h) = (img.width(), img.height());
        let side = ((w.min(h) as f64) * rng.random_range(self.min_scale..=1.0)).round().max(1.0) as u32;
        let x = rng.random_range(0..=w - side.min(w));
        let y = rng.random_range(0..=h - side.min(h));
        let crop = img.crop_imm(x, y, side.min(w), side.min(h));
        let flipped = if rng.random_bool(0.5) { crop.fliph() } else { crop };
        let degrees = rng.random_range(-MAX_ROTATION_DEGREES..=MAX_ROTATION_DEGREES);
        DynamicImage::ImageRgb8(rotate(&flipped.to_rgb8(), degrees))
    }

    /// The patch features of each pool row, `[patches, dim]` per row (embedded once per seed).
    pub fn per_row(&self, rows: &[usize], seed: u64) -> Result<Vec<Arc<Matrix>>> {
        let images: Vec<usize> = rows.iter().map(|&r| self.origin[r]).collect();
        self.cache.get_or_embed(seed, &images, |missing| {
            (0..self.patches)
                .map(|t| {
                    let crops: Vec<DynamicImage> =
                        missing.iter().map(|&i| self.patch(&self.images.images[i], i, t, seed)).collect();
                    let refs: Vec<&DynamicImage> = crops.iter().collect();
                    self.featurizer.features(&refs, self.resolution)
                })
                .collect()
        })
    }

    /// The features of patch `t` of each pool row, one matrix per patch `[rows, dim]`.
    pub fn features(&self, rows: &[usize], seed: u64) -> Result<Vec<Matrix>> {
        let per_row = self.per_row(rows, seed)?;
        let dim = per_row.first().map_or(0, |m| m.cols());
        Ok((0..self.patches)
            .map(|t| {
                let mut m = Matrix::zeros(0, dim);
                per_row.iter().for_each(|r| m.push_row(r.row(t)));
                m
            })
            .collect())
    }

    /// `[patches, rows, classes]`: the head's probabilities of each augmented patch.
    pub fn probabilities(&self, head: &dyn Learner, rows: &[usize], seed: u64) -> Result<McSamples> {
        let draws = self
            .features(rows, seed)?
            .iter()
            .map(|features| head.predict_proba(features))
            .collect::<quarry_core::Result<Vec<Probabilities>>>()?;
        Ok(McSamples::from_draws(&draws)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 20) as u8, (y * 20) as u8, 7]))
    }

    #[test]
    fn rotation_by_zero_is_the_identity_and_keeps_the_size() {
        let img = ramp(5, 4);
        assert_eq!(rotate(&img, 0.0), img);
        assert_eq!(rotate(&img, 7.5).dimensions(), (5, 4));
    }

    /// A quarter turn of a square maps pixel (x, y) to (y, w − 1 − x) counter-clockwise: checked
    /// by hand on a 3×3 ramp, where bilinear weights are exactly 0 or 1.
    #[test]
    fn quarter_turn_moves_pixels_where_a_hand_rotation_does() {
        let img = ramp(3, 3);
        let r = rotate(&img, 90.0);
        for y in 0..3 {
            for x in 0..3 {
                assert_eq!(r.get_pixel(y, 2 - x), img.get_pixel(x, y), "pixel ({x}, {y})");
            }
        }
    }

    /// A small rotation keeps the center pixel and moves corners only a little.
    #[test]
    fn small_rotation_keeps_the_center() {
        let img = ramp(9, 9);
        let r = rotate(&img, MAX_ROTATION_DEGREES);
        assert_eq!(r.get_pixel(4, 4), img.get_pixel(4, 4));
        assert_ne!(r, img);
    }

    /// Cached patches are embedded once per (seed, image): a second request for the same images
    /// (in any order, with repeats) embeds nothing, another seed embeds again.
    #[test]
    fn patch_cache_embeds_each_image_once_per_seed() {
        let cache = PatchCache::default();
        let calls = std::cell::RefCell::new(Vec::new());
        // Patch t of image i has the single feature 10·i + t.
        let embed = |missing: &[usize]| -> Result<Vec<Matrix>> {
            calls.borrow_mut().push(missing.to_vec());
            Ok((0..2).map(|t| Matrix::new(missing.iter().map(|&i| (10 * i + t) as f32).collect(), missing.len(), 1).unwrap()).collect())
        };
        let a = cache.get_or_embed(1, &[3, 1, 3], embed).unwrap();
        assert_eq!(a[0].as_slice(), &[30.0, 31.0]);
        assert_eq!(a[1].as_slice(), &[10.0, 11.0]);
        assert_eq!(a[2].as_slice(), &[30.0, 31.0]);
        let b = cache.get_or_embed(1, &[1, 2], embed).unwrap();
        assert_eq!(b[1].as_slice(), &[20.0, 21.0]);
        cache.get_or_embed(1, &[2, 3, 1], embed).unwrap();
        cache.get_or_embed(2, &[1], embed).unwrap();
        assert_eq!(*calls.borrow(), vec![vec![1, 3], vec![2], vec![1]]);
        assert_eq!(cache.work().0, 8);
    }

    /// Two runs asking for the same uncached patches at once embed them once.
    #[test]
    fn concurrent_requests_embed_once() {
        let cache = PatchCache::default();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let embed = |missing: &[usize]| -> Result<Vec<Matrix>> {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
            Ok(vec![Matrix::new(missing.iter().map(|&i| i as f32).collect(), missing.len(), 1).unwrap()])
        };
        std::thread::scope(|s| {
            let a = s.spawn(|| cache.get_or_embed(0, &[1, 2], embed).unwrap());
            let b = s.spawn(|| cache.get_or_embed(0, &[2, 1], embed).unwrap());
            assert_eq!(a.join().unwrap()[1].as_slice(), &[2.0]);
            assert_eq!(b.join().unwrap()[1].as_slice(), &[1.0]);
        });
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
