//! Real use on a folder of unlabeled images: from the labels a person has given so far (a CSV
//! file they keep), the next batch to label.
//!
//! With fewer than two classes labeled no head can be trained, so the batch is a cold start:
//! k-means++ seeding on the pretrained backbone's embeddings (diverse images). After that the
//! softmax head is fitted on the labeled images (and, with `train_patches`, their augmented
//! patches) and the strategy — AIFT by default — picks from every image not yet answered. An
//! image labeled `-` was marked impossible to label: it is never proposed again, and once every
//! image is labeled or marked, there is nothing left to ask (AIFT's third stop).

use crate::images::{AugmentedPatches, Featurizer, ImageSet, PatchCache, image_features};
use crate::patch_scores::PatchScores;
use crate::{ExperimentError, Result};
use quarry_core::{Answer, SampleId, Session, SessionSettings, seeded_rng};
use quarry_data::{Skipped, decode_all, scan_image_folder};
use quarry_models::imagenet_input::decode_image;
use quarry_models::{Committee, EfficientNetLite0, LogisticRegressionLearner, LogisticRegressionParams};
use quarry_strategies::StrategyOptions;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The label that marks an image impossible to label.
pub const IMPOSSIBLE: &str = "-";

/// What `quarry query` was asked.
pub struct QuerySpec {
    /// A folder of images (flat, or with sub-folders whose names are ignored).
    pub folder: PathBuf,
    /// `file,label` lines (an optional `file,label` header); `file` is relative to `folder`.
    /// Missing: no labels yet.
    pub labels: PathBuf,
    pub weights: PathBuf,
    pub resolution: usize,
    pub patches: usize,
    pub patch_scale: f64,
    pub train_patches: bool,
    pub strategy: String,
    pub options: StrategyOptions,
    pub batch: usize,
    pub c: f64,
    pub seed: u64,
    /// Keep the backbone's features of the folder in this file between calls (rebuilt when the
    /// images, weights or resolution changed).
    pub features_cache: Option<PathBuf>,
}

/// The next batch to label.
#[derive(Debug)]
pub struct Proposal {
    /// The images to label next (relative to the folder), in the order the strategy ranked them.
    pub files: Vec<String>,
    /// How they were chosen.
    pub how: String,
    pub labeled: usize,
    pub impossible: usize,
    pub unanswered: usize,
    pub classes: Vec<String>,
    /// Images that could not be read (reported, left out).
    pub skipped: Vec<Skipped>,
}

/// The `(line, file, label)` triples of a labels file, in order. A missing file means no labels yet; a
/// malformed line, an empty field or a file labeled twice is an error naming `path:line`.
pub fn read_labels(path: &Path) -> Result<Vec<(usize, String, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ExperimentError::io(path, e)),
    };
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = || format!("{}:{}", path.display(), i + 1);
        if line.is_empty() || (i == 0 && line.eq_ignore_ascii_case("file,label")) {
            continue;
        }
        let Some((file, label)) = line.rsplit_once(',') else {
            return Err(ExperimentError::flag("--labels", format!("{}: expected `file,label`, got {line:?}", at())));
        };
        let (file, label) = (file.trim(), label.trim());
        if file.is_empty() || label.is_empty() {
            return Err(ExperimentError::flag("--labels", format!("{}: empty file or label in {line:?}", at())));
        }
        if let Some(first) = seen.insert(file.to_string(), i + 1) {
            return Err(ExperimentError::flag("--labels", format!("{}: {file} was already labeled on line {first}", at())));
        }
        out.push((i + 1, file.to_string(), label.to_string()));
    }
    Ok(out)
}

/// The next `spec.batch` images to label.
pub fn propose(spec: &QuerySpec) -> Result<Proposal> {
    if spec.batch == 0 {
        return Err(ExperimentError::flag("--batch", "must be at least 1"));
    }
    crate::config::check_patches(spec.patches, spec.resolution, spec.patch_scale)?;
    let strategy = quarry_strategies::by_name_with(&spec.strategy, &spec.options)
        .map_err(|e| ExperimentError::flag("--strategy", e.to_string()))?;
    let folder = scan_image_folder(&spec.folder)?;
    let (decoded, skipped) = decode_all(&folder.files, decode_image);
    let names: Vec<String> = decoded
        .iter()
        .map(|(i, _)| folder.files[*i].strip_prefix(&spec.folder).unwrap_or(&folder.files[*i]).to_string_lossy().replace('\\', "/"))
        .collect();
    let paths: Vec<PathBuf> = decoded.iter().map(|(i, _)| folder.files[*i].clone()).collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();

    // The labels so far: each must name a readable image of the folder.
    let given = read_labels(&spec.labels)?;
    let mut answers: HashMap<usize, Option<String>> = HashMap::new();
    for (line, file, label) in &given {
        let Some(&row) = index.get(file.as_str()) else {
            let why = if skipped.iter().any(|s| s.path.ends_with(file)) { "could not be read" } else { "is not an image in the folder" };
            return Err(ExperimentError::flag("--labels", format!("{}:{line}: {file} {why} ({})", spec.labels.display(), spec.folder.display())));
        };
        answers.insert(row, (label != IMPOSSIBLE).then(|| label.clone()));
    }
    let classes: Vec<String> = answers.values().flatten().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    let labeled = answers.values().filter(|a| a.is_some()).count();
    let impossible = answers.len() - labeled;
    let open: Vec<usize> = (0..names.len()).filter(|i| !answers.contains_key(i)).collect();
    let mut proposal = Proposal { files: Vec::new(), how: String::new(), labeled, impossible, unanswered: open.len(), classes, skipped };
    if open.is_empty() {
        proposal.how = if impossible > 0 {
            format!("nothing left to ask: every image is labeled or marked impossible to label ({impossible} marked)")
        } else {
            "nothing left to ask: every image is labeled".into()
        };
        return Ok(proposal);
    }

    let model = EfficientNetLite0::load(&spec.weights).map_err(|e| ExperimentError::flag("--weights", e.to_string()))?;
    let featurizer = Arc::new(Featurizer::Pooled(Arc::new(model)));
    let images: Vec<image::DynamicImage> = decoded.into_iter().map(|(_, img)| img).collect();
    let cache = spec.features_cache.as_deref().map(|file| (file, spec.weights.as_path()));
    let features = image_features(&featurizer, &images, &paths, spec.resolution, cache)?;
    let k = spec.batch.min(open.len());

    if proposal.classes.len() < 2 {
        // Cold start: diverse images by k-means++ seeding on the embeddings of the open images.
        let x = features.select_rows(&open);
        let mut rng = seeded_rng(spec.seed, 0xC01D);
        let first = rand::Rng::random_range(&mut rng, 0..open.len());
        let picks = quarry_strategies::diversity::kmeans_pp_seeding(&x, None, first, k, &mut rng);
        proposal.files = picks.into_iter().map(|(j, _)| names[open[j]].clone()).collect();
        proposal.how = format!("cold start: k-means++ on the pretrained embeddings ({} class(es) labeled; a head needs 2)", proposal.classes.len());
        return Ok(proposal);
    }

    let class_of: HashMap<&str, u32> = proposal.classes.iter().enumerate().map(|(c, n)| (n.as_str(), c as u32)).collect();
    // Every answer so far, taught at once (round 0), in file order; '-' = cannot be labeled.
    let mut taught: Vec<(SampleId, Answer)> =
        answers.iter().map(|(&i, a)| (SampleId::from(i), a.as_deref().map_or(Answer::CannotLabel, |l| Answer::Label(class_of[l])))).collect();
    taught.sort_by_key(|(id, _)| *id);
    let head = LogisticRegressionLearner::new(LogisticRegressionParams::new().c(spec.c));
    let learner: Box<dyn quarry_core::Learner> = if strategy.needs().committee {
        Box::new(Committee::bagging(Box::new(head), spec.options.committee_size, spec.seed)?)
    } else {
        Box::new(head)
    };
    let settings = SessionSettings { mc_draws: spec.options.mc_draws, ..SessionSettings::seeded(spec.seed) };
    let patches = PatchScores {
        patches: AugmentedPatches {
            featurizer,
            images: Arc::new(ImageSet { images, files: names.iter().map(PathBuf::from).collect() }),
            cache: Arc::new(PatchCache::default()),
            origin: (0..names.len()).collect(),
            patches: spec.patches,
            min_scale: spec.patch_scale,
            resolution: spec.resolution,
        },
        seed: crate::simulate::patch_seed(spec.seed),
    };
    let n_classes = proposal.classes.len();
    let mut session = Session::new(features, n_classes, learner, strategy, settings).with_provider(&patches);
    if spec.train_patches {
        session = session.with_augment(&patches);
    }
    session.teach(&taught)?;
    let picks = session.query(k)?.ids();
    proposal.files = picks.iter().map(|id| names[id.index()].clone()).collect();
    proposal.how = format!("{} on a softmax head fitted to {labeled} labels in {} classes", spec.strategy, proposal.classes.len());
    Ok(proposal)
}

/// `files` as the lines a person fills in: `file,` each, to be completed with the label and
/// appended to the labels file.
pub fn batch_csv(files: &[String]) -> String {
    let mut s = String::from("file,label\n");
    for f in files {
        s.push_str(f);
        s.push_str(",\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn labels_file_reads_pairs_and_names_bad_lines() {
        let dir = std::env::temp_dir().join(format!("quarry-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read_labels(&dir.join("absent.csv")).unwrap().is_empty(), "a missing file is no labels yet");
        let ok = write(&dir, "ok.csv", "file,label\na.png,cat\n\nsub/b.png , dog\nc.png,-\n");
        assert_eq!(
            read_labels(&ok).unwrap(),
            vec![(2, "a.png".into(), "cat".into()), (4, "sub/b.png".into(), "dog".into()), (5, "c.png".into(), "-".into())]
        );
        for (name, text, needle) in [
            ("nocomma.csv", "a.png cat\n", ":1: expected"),
            ("empty.csv", "file,label\na.png,\n", ":2: empty"),
            ("twice.csv", "a.png,cat\nb.png,dog\na.png,dog\n", ":3: a.png was already labeled on line 1"),
        ] {
            let e = read_labels(&write(&dir, name, text)).unwrap_err().to_string();
            assert!(e.starts_with("--labels") && e.contains(name) && e.contains(needle), "{e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn batch_csv_lists_files_to_fill_in() {
        assert_eq!(batch_csv(&["x.png".into(), "y.jpg".into()]), "file,label\nx.png,\ny.jpg,\n");
    }
}
