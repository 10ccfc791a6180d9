//! Scanning image folders, and skipping broken files by name at decode time.

use std::path::{Path, PathBuf};

use quarry_data::{DataError, decode_all, scan_image_folder};

/// A fresh, empty temporary folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quarry-image-folder-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn write_png(path: &Path, shade: u8) {
    image::GrayImage::from_pixel(8, 8, image::Luma([shade])).save(path).expect("write png");
}

#[test]
fn labeled_folder_sorts_classes_and_files() {
    let dir = temp_dir("labeled");
    for class in ["dog", "cat"] {
        std::fs::create_dir(dir.join(class)).expect("mkdir");
    }
    write_png(&dir.join("dog/b.png"), 1);
    write_png(&dir.join("dog/a.PNG"), 2);
    write_png(&dir.join("cat/z.jpeg.png"), 3);
    std::fs::copy(dir.join("cat/z.jpeg.png"), dir.join("cat/y.JPG")).expect("copy");
    std::fs::write(dir.join("cat/notes.txt"), "ignored").expect("write");
    let folder = scan_image_folder(&dir).expect("scan");
    assert_eq!(folder.class_names, ["cat", "dog"]);
    let names: Vec<_> = folder.files.iter().map(|p| p.strip_prefix(&dir).expect("under root").to_path_buf()).collect();
    let want: Vec<PathBuf> = ["cat/y.JPG", "cat/z.jpeg.png", "dog/a.PNG", "dog/b.png"].iter().map(PathBuf::from).collect();
    assert_eq!(names, want);
    assert_eq!(folder.labels.as_deref(), Some(&[0, 0, 1, 1][..]));
    assert_eq!(folder.ignored, 1);
    // Ids are stable: a second scan gives the same list.
    assert_eq!(scan_image_folder(&dir).expect("rescan"), folder);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flat_folder_is_unlabeled() {
    let dir = temp_dir("flat");
    write_png(&dir.join("2.png"), 1);
    write_png(&dir.join("1.png"), 2);
    std::fs::write(dir.join("readme.md"), "x").expect("write");
    let folder = scan_image_folder(&dir).expect("scan");
    assert!(folder.labels.is_none() && folder.class_names.is_empty());
    assert_eq!(folder.files, [dir.join("1.png"), dir.join("2.png")]);
    assert_eq!(folder.ignored, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn empty_folder_and_empty_class_are_errors_naming_them() {
    let dir = temp_dir("empty");
    let err = scan_image_folder(&dir).expect_err("empty folder");
    assert!(matches!(err, DataError::NoImages { .. }), "{err}");
    assert!(err.to_string().contains(&dir.display().to_string()), "{err}");

    std::fs::create_dir(dir.join("full")).expect("mkdir");
    write_png(&dir.join("full/a.png"), 1);
    std::fs::create_dir(dir.join("hollow")).expect("mkdir");
    std::fs::write(dir.join("hollow/list.csv"), "x").expect("write");
    let err = scan_image_folder(&dir).expect_err("class without images");
    assert!(err.to_string().contains("class 'hollow' has no images"), "{err}");

    let missing = dir.join("missing");
    let err = scan_image_folder(&missing).expect_err("missing folder");
    assert!(err.to_string().contains("missing"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn broken_files_are_skipped_by_name_and_the_rest_decoded() {
    let dir = temp_dir("broken");
    write_png(&dir.join("a_good.png"), 10);
    std::fs::write(dir.join("b_text.png"), b"not a png").expect("write");
    write_png(&dir.join("c_cut.png"), 20);
    let bytes = std::fs::read(dir.join("c_cut.png")).expect("read");
    std::fs::write(dir.join("c_cut.png"), &bytes[..bytes.len() / 2]).expect("truncate");
    write_png(&dir.join("d_good.png"), 30);
    let folder = scan_image_folder(&dir).expect("scan");
    assert_eq!(folder.len(), 4);
    let (decoded, skipped) = decode_all(&folder.files, |p| image::open(p).map(|img| img.to_luma8().get_pixel(0, 0).0[0]));
    assert_eq!(decoded, [(0, 10), (3, 30)]);
    let names: Vec<_> = skipped.iter().map(|s| s.path.file_name().expect("name").to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["b_text.png", "c_cut.png"]);
    for s in &skipped {
        assert!(s.to_string().contains(&s.path.display().to_string()), "{s}");
        assert!(!s.reason.is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
