//! The names of the 1,000 ImageNet (ILSVRC-2012) classes, in class-id order: what the ids that
//! [`crate::predict_top_k`] returns stand for. `imagenet_classes.txt` holds one name per line,
//! line `i` (0-based) naming class `i` — the standard short list that torchvision's pretrained
//! models are documented with. A few names occur twice for different synsets (134 and 517 are both
//! "crane": the bird and the machine), so print the id beside the name.

const NAMES: &str = include_str!("imagenet_classes.txt");

/// How many ImageNet classes there are.
pub const N_CLASSES: usize = 1000;

/// The name of ImageNet class `id` ("Egyptian cat" for 285), `None` for an id ≥ 1000.
pub fn imagenet_class_name(id: usize) -> Option<&'static str> {
    NAMES.lines().nth(id)
}

/// Every class name, indexed by class id.
pub fn imagenet_class_names() -> Vec<&'static str> {
    NAMES.lines().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_for_each_of_the_thousand_classes() {
        let names = imagenet_class_names();
        assert_eq!(names.len(), N_CLASSES);
        assert!(names.iter().all(|n| !n.trim().is_empty() && n.trim() == *n), "no blank or padded names");
        assert_eq!(imagenet_class_name(0), Some("tench"));
        assert_eq!(imagenet_class_name(285), Some("Egyptian cat"));
        assert_eq!(imagenet_class_name(967), Some("espresso"));
        assert_eq!(imagenet_class_name(999), Some("toilet tissue"));
        assert_eq!(imagenet_class_name(1000), None);
    }
}
