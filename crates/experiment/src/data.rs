//! The data of a simulation: read from disk once (a CSV, an IDX file or an image folder, with
//! the content fingerprint of each file read), then per seed split into a pool and a test set and
//! scaled.

use crate::config::{ExperimentConfig, ModelKind, FileFingerprint, Scaling, TestSpec};
use crate::images::{Featurizer, ImageSet, PatchCache, load_image_folder};
use crate::learners::fine_tune_params;
use crate::{ExperimentError, Result};
use quarry_core::Dataset;
use quarry_models::{EfficientNetLearner, EfficientNetLite0, EfficientNetTrainer};
use std::path::Path;
use std::sync::Arc;

/// The data of a simulation as read from disk, before any per-seed split.
pub struct LoadedData {
    pub data: Dataset,
    pub test: Option<Dataset>,
    /// The scaling the config's `Auto` resolved to.
    pub scaling: Scaling,
    /// An image folder's decoded images, what turned them into pool rows, and the embedded
    /// augmented patches every run over them shares.
    pub images: Option<(Arc<ImageSet>, Arc<Featurizer>, Arc<PatchCache>)>,
    /// Files that could not be read (reported, left out).
    pub skipped: Vec<quarry_data::Skipped>,
    /// The content of every input file read (or image folder), part of the run's identity.
    pub fingerprint: Vec<FileFingerprint>,
}

/// One seed's pool and test set, scaled.
pub struct Prepared {
    pub pool: Dataset,
    pub test: Dataset,
    /// Pool row → row of the loaded data.
    pub origin: Vec<usize>,
}

/// Read the data (and test file) the config names; errors name the file and line.
pub fn load_data(config: &ExperimentConfig) -> Result<LoadedData> {
    let spec = &config.data;
    if spec.path.is_dir() {
        return load_images(config);
    }
    if config.model == ModelKind::EfficientnetLite0 {
        return Err(ExperimentError::setting("model", "efficientnet-lite0 reads an image folder as --data (one sub-folder per class)"));
    }
    let mut data = quarry_data::load(&spec.path, spec.label_column.as_deref(), spec.labels.as_deref(), None)?;
    if let Some(n) = spec.pool_size {
        if n > data.len() {
            return Err(ExperimentError::setting("pool-size",
                format!("{n} exceeds the {} samples in {}", data.len(), spec.path.display()),
            ));
        }
        data = data.subset(&(0..n).collect::<Vec<_>>());
    }
    let test = match &config.test {
        TestSpec::Fraction(_) => None,
        TestSpec::File { path, labels } => Some(quarry_data::load(
            path,
            spec.label_column.as_deref(),
            labels.as_deref(),
            Some(&data.class_names),
        )?),
    };
    if let Some(positive) = &config.positive_class {
        data = one_vs_rest(data, positive, &spec.path)?;
    }
    let test = match (test, &config.positive_class) {
        (Some(t), Some(positive)) => Some(one_vs_rest(t, positive, &spec.path)?),
        (t, _) => t,
    };
    let scaling = match config.scaling {
        Scaling::Auto => match quarry_data::detect_format(&spec.path)? {
            quarry_data::DataFormat::Idx => Scaling::Unit,
            quarry_data::DataFormat::Csv => Scaling::Standardize,
        },
        s => s,
    };
    Ok(LoadedData { data, test, scaling, images: None, skipped: Vec::new(), fingerprint: input_fingerprint(config)? })
}

/// The content fingerprint of each file the data was read from: `--data`, its IDX labels file
/// (given or found by its standard name), and `--test` with its labels file.
fn input_fingerprint(config: &ExperimentConfig) -> Result<Vec<FileFingerprint>> {
    let idx_labels = |path: &Path, given: &Option<std::path::PathBuf>| -> Result<Option<std::path::PathBuf>> {
        Ok(match (given, quarry_data::detect_format(path)?) {
            (Some(l), _) => Some(l.clone()),
            (None, quarry_data::DataFormat::Idx) => quarry_data::idx_labels_path(path),
            (None, quarry_data::DataFormat::Csv) => None,
        })
    };
    let spec = &config.data;
    let mut files = vec![("--data", spec.path.clone())];
    files.extend(idx_labels(&spec.path, &spec.labels)?.map(|l| ("--labels", l)));
    if let TestSpec::File { path, labels } = &config.test {
        files.push(("--test", path.clone()));
        files.extend(idx_labels(path, labels)?.map(|l| ("--test-labels", l)));
    }
    files.into_iter().map(|(flag, path)| FileFingerprint::of(flag, &path)).collect()
}

/// An image folder: decoded (unreadable files reported on stderr by name and skipped) and embedded
/// once by the pretrained backbone.
fn load_images(config: &ExperimentConfig) -> Result<LoadedData> {
    let spec = &config.data;
    if config.model != ModelKind::EfficientnetLite0 {
        return Err(ExperimentError::setting("model", format!("an image folder needs --model efficientnet-lite0, not {}", config.model)));
    }
    if let TestSpec::File { .. } = config.test {
        return Err(ExperimentError::setting("test", "with an image folder, hold out a test set with --test-fraction"));
    }
    let weights = config.image.weights.as_ref().expect("validated");
    let featurizer = Arc::new(if config.image.train_blocks > 0 {
        // The fine-tuning trainer's frozen part (its weights never change): rows are its output.
        let params = EfficientNetLearner::trainer_params(&fine_tune_params(config, 1, 0))?;
        Featurizer::Frozen(Arc::new(
            EfficientNetTrainer::load(weights, params).map_err(|e| ExperimentError::setting("weights", e.to_string()))?,
        ))
    } else {
        Featurizer::Pooled(Arc::new(EfficientNetLite0::load(weights).map_err(|e| ExperimentError::setting("weights", e.to_string()))?))
    });
    let cache = config.image.features_cache.as_deref().map(|file| (file, weights.as_path()));
    let (data, images, skipped) = load_image_folder(&spec.path, &featurizer, config.image.resolution, cache)?;
    for s in &skipped {
        tracing::warn!("{s}");
    }
    let fingerprint = vec![FileFingerprint::of("--data", &spec.path)?];
    Ok(LoadedData { data, test: None, scaling: Scaling::None, images: Some((Arc::new(images), featurizer, Arc::default())), skipped, fingerprint })
}

/// Relabel to two classes: `positive` → 1 ("x"), everything else → 0 ("not-x").
fn one_vs_rest(mut d: Dataset, positive: &str, path: &Path) -> Result<Dataset> {
    let pos = d.class_names.iter().position(|c| c == positive).ok_or_else(|| {
        ExperimentError::setting("positive-class",
            format!("'{positive}' is not a class of {} (classes: {})", path.display(), d.class_names.join(", ")),
        )
    })? as u32;
    d.labels.iter_mut().for_each(|l| *l = (*l == pos) as u32);
    d.class_names = vec![format!("not-{positive}"), positive.to_string()];
    Ok(d)
}

/// Split (stratified, with the seed) unless a test file was given, then scale.
pub fn prepare(loaded: &LoadedData, config: &ExperimentConfig, seed: u64) -> Result<Prepared> {
    let (mut pool, mut test, origin) = match (&loaded.test, &config.test) {
        (Some(test), _) => (loaded.data.clone(), test.clone(), (0..loaded.data.len()).collect()),
        (None, TestSpec::Fraction(f)) => {
            let d = &loaded.data;
            let (p, t) = quarry_data::stratified_split(&d.labels, d.n_classes(), *f, seed)?;
            (d.subset(&p), d.subset(&t), p)
        }
        (None, TestSpec::File { .. }) => unreachable!("load_data reads the test file"),
    };
    match loaded.scaling {
        Scaling::Standardize => {
            let (mean, std) = pool.features.column_mean_std();
            pool.features.standardize(&mean, &std);
            test.features.standardize(&mean, &std);
        }
        Scaling::Unit => {
            pool.features.scale(1.0 / 255.0);
            test.features.scale(1.0 / 255.0);
        }
        Scaling::None | Scaling::Auto => {}
    }
    Ok(Prepared { pool, test, origin })
}
