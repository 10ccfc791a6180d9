//! Image folders: the layout users keep their pictures in.
//!
//! * **Labeled**: one sub-folder per class (`root/cat/001.png`, `root/dog/a.jpg`). Class names are
//!   the sub-folder names in sorted order, so class `k` is the `k`-th name; files are sorted by name
//!   inside each class and listed class after class, so a sample's id (its index in
//!   [`ImageFolder::files`]) is the same on every scan of an unchanged folder.
//! * **Unlabeled**: image files directly in `root`, sorted by name.
//!
//! Those two layouts are [`scan_image_folder`]'s (a simulation: the folder layout *is* the
//! classes). [`scan_image_tree`] reads a folder the other way, as `quarry query` does: every
//! image at any depth is one unlabeled sample named by its path relative to the root
//! (`x.png`, `sub/deeper/y.jpg`), and sub-folders are only a way to keep files apart.
//!
//! Images are files ending in `.png`, `.jpg` or `.jpeg` (any case). Other files are ignored and
//! counted in [`ImageFolder::ignored`]; hidden entries (starting with `.`) are ignored silently.
//!
//! Scanning never opens an image: decoding is the model side's job (quarry-models'
//! `imagenet_input::decode_image`). A broken or truncated file is therefore found when it is
//! decoded, and [`decode_all`] is the one place that turns such failures into a list of
//! [`Skipped`] files, by name, while the other images go on.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// The result of [`scan_image_folder`]: the image files in id order and, for a labeled folder,
/// their classes.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    /// The folder that was scanned.
    pub root: PathBuf,
    /// Every image file, in id order (class after class, then by file name).
    pub files: Vec<PathBuf>,
    /// The class of each file (`files.len()` entries) for a labeled folder; `None` for a flat one.
    pub labels: Option<Vec<u32>>,
    /// The sorted class sub-folder names (empty for an unlabeled folder).
    pub class_names: Vec<String>,
    /// How many non-image files were ignored (not counting hidden entries).
    pub ignored: usize,
}

impl ImageFolder {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }
    /// Whether there are no images (never true for a folder returned by [`scan_image_folder`]).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
    /// Whether the folder has one sub-folder per class.
    pub fn is_labeled(&self) -> bool {
        self.labels.is_some()
    }
}

/// Whether `path` names an image file quarry reads: extension `.png`, `.jpg` or `.jpeg`, any case.
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Lists `dir` (see the module documentation for the two layouts).
///
/// Errors (each names the folder): `dir` cannot be read; it holds neither images nor class
/// sub-folders; a class sub-folder holds no image (`class 'x' has no images`). A folder with both
/// sub-folders and loose images is read as labeled; the loose images count as ignored.
pub fn scan_image_folder(dir: &Path) -> Result<ImageFolder> {
    let (subdirs, files, mut ignored) = list_dir(dir)?;
    if subdirs.is_empty() {
        if files.is_empty() {
            return Err(DataError::NoImages { path: dir.to_path_buf() });
        }
        return Ok(ImageFolder { root: dir.to_path_buf(), files, labels: None, class_names: Vec::new(), ignored });
    }
    // Loose images next to class folders have no class: they are ignored, and counted.
    ignored += files.len();
    let mut all = Vec::new();
    let mut labels = Vec::new();
    let mut class_names = Vec::with_capacity(subdirs.len());
    for (class, sub) in subdirs.iter().enumerate() {
        let name = sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (nested, images, ignored_here) = list_dir(sub)?;
        // Nested folders inside a class folder are not descended into; they count as ignored.
        ignored += ignored_here + nested.len();
        if images.is_empty() {
            return Err(DataError::ClassWithoutImages { path: sub.clone(), class: name });
        }
        let label = u32::try_from(class).unwrap_or(u32::MAX);
        labels.extend(std::iter::repeat_n(label, images.len()));
        all.extend(images);
        class_names.push(name);
    }
    Ok(ImageFolder { root: dir.to_path_buf(), files: all, labels: Some(labels), class_names, ignored })
}

/// The result of [`scan_image_tree`]: every image under a folder, at any depth.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTree {
    /// The folder that was scanned.
    pub root: PathBuf,
    /// Every image file (`root` joined with its name), in the order of [`ImageTree::names`].
    pub files: Vec<PathBuf>,
    /// Each file's path relative to `root`, components joined by `/` (`sub/x.png`), sorted
    /// component by component, so an unchanged folder lists the same way on every scan.
    pub names: Vec<String>,
    /// How many non-image files were ignored (not counting hidden entries).
    pub ignored: usize,
}

impl ImageTree {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }
    /// Whether the tree holds no image at all (an empty folder, or only empty sub-folders).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Lists every image under `dir`: the images directly in it and those in its sub-folders at any
/// depth, named by their path relative to `dir`. Sub-folder names mean nothing here (unlike
/// [`scan_image_folder`]'s classes), so an empty sub-folder is simply nothing, and a tree without
/// any image is returned empty: the caller says what it needed. Hidden entries (starting with
/// `.`) are skipped; symbolic links are followed, and a folder reached twice (a link loop, or two
/// links to one folder) is read once.
///
/// Errors name the folder that could not be read.
pub fn scan_image_tree(dir: &Path) -> Result<ImageTree> {
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut ignored = 0;
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![(dir.to_path_buf(), PathBuf::new())];
    while let Some((folder, relative)) = pending.pop() {
        let canonical = std::fs::canonicalize(&folder).map_err(|error| DataError::Open { path: folder.clone(), error })?;
        if !seen.insert(canonical) {
            continue;
        }
        let (subdirs, files, ignored_here) = list_dir(&folder)?;
        ignored += ignored_here;
        for file in files {
            let name = file.file_name().map(PathBuf::from).unwrap_or_default();
            found.push((relative.join(name), file));
        }
        for sub in subdirs {
            let name = sub.file_name().map(PathBuf::from).unwrap_or_default();
            pending.push((sub, relative.join(name)));
        }
    }
    // PathBuf orders component by component: `a/z.png` before `a0.png`, whatever the bytes say.
    found.sort();
    let names = found
        .iter()
        .map(|(rel, _)| rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
        .collect();
    let files = found.into_iter().map(|(_, file)| file).collect();
    Ok(ImageTree { root: dir.to_path_buf(), files, names, ignored })
}

/// One directory level: (sub-folders sorted, image files sorted, number of other files).
fn list_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>, usize)> {
    let entries = std::fs::read_dir(dir).map_err(|error| DataError::Open { path: dir.to_path_buf(), error })?;
    let (mut subdirs, mut files, mut ignored) = (Vec::new(), Vec::new(), 0);
    for entry in entries {
        let entry = entry.map_err(|error| DataError::Read { path: dir.to_path_buf(), error })?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // Follows symbolic links, so a linked class folder or image counts as what it points to.
        let meta = std::fs::metadata(&path).map_err(|error| DataError::Open { path: path.clone(), error })?;
        if meta.is_dir() {
            subdirs.push(path);
        } else if meta.is_file() && is_image_file(&path) {
            files.push(path);
        } else {
            ignored += 1;
        }
    }
    subdirs.sort();
    files.sort();
    Ok((subdirs, files, ignored))
}

/// A file that could not be used, and why (the reason is the decoder's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

impl Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: skipped: {}", self.path.display(), self.reason)
    }
}

/// Decodes every file with `decode`, never stopping at a bad one: returns the decoded values with
/// the index of their file in `files`, and the files that failed with the decoder's message.
///
/// This is how a truncated or non-image file among thousands is reported by name and left out
/// instead of aborting a run; callers keep the indices to map rows back to sample ids.
pub fn decode_all<T, E, F>(files: &[PathBuf], mut decode: F) -> (Vec<(usize, T)>, Vec<Skipped>)
where
    E: Display,
    F: FnMut(&Path) -> std::result::Result<T, E>,
{
    let mut ok = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for (i, path) in files.iter().enumerate() {
        match decode(path) {
            Ok(value) => ok.push((i, value)),
            Err(e) => skipped.push(Skipped { path: path.clone(), reason: e.to_string() }),
        }
    }
    (ok, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("quarry-tree-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    /// The whole tree is read: top-level images next to sub-folders, images at any depth, an
    /// empty sub-folder is nothing; names are relative with `/`. Simulate's layout reading of the
    /// same folder is unchanged (it still calls the empty sub-folder a class without images).
    #[test]
    fn tree_lists_top_level_and_nested_images_and_empty_folders_are_nothing() {
        let d = scratch("mixed");
        for f in ["b.png", "a.JPG", "sub/x.png", "sub/deeper/y.jpeg", "sub/notes.txt", ".hidden.png", "sub/.cache/z.png"] {
            touch(&d.join(f));
        }
        std::fs::create_dir_all(d.join("empty")).unwrap();
        let tree = scan_image_tree(&d).unwrap();
        assert_eq!(tree.names, ["a.JPG", "b.png", "sub/deeper/y.jpeg", "sub/x.png"]);
        assert_eq!(tree.files, tree.names.iter().map(|n| d.join(n)).collect::<Vec<_>>());
        assert_eq!(tree.ignored, 1);
        assert_eq!(scan_image_tree(&d).unwrap(), tree, "the same listing on every scan");
        let err = scan_image_folder(&d).unwrap_err().to_string();
        assert!(err.contains("class 'empty' has no images"), "{err}");

        let only_empty = scratch("only-empty");
        std::fs::create_dir_all(only_empty.join("a/b")).unwrap();
        assert!(scan_image_tree(&only_empty).unwrap().is_empty());
        let err = scan_image_tree(&d.join("missing")).unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains("cannot open"), "{err}");
        std::fs::remove_dir_all(&d).ok();
        std::fs::remove_dir_all(&only_empty).ok();
    }

    /// A symbolic link back up the tree is read once, not followed forever.
    #[cfg(unix)]
    #[test]
    fn tree_survives_a_link_loop() {
        let d = scratch("loop");
        touch(&d.join("sub/x.png"));
        std::os::unix::fs::symlink(&d, d.join("sub/up")).unwrap();
        assert_eq!(scan_image_tree(&d).unwrap().names, ["sub/x.png"]);
        std::fs::remove_dir_all(&d).ok();
    }
}
