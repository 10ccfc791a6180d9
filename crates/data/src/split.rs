//! Seeded, stratified pool/test splits.
//!
//! Stratification keeps every class on both sides in its own proportion, so that test accuracy
//! is not skewed by an unlucky draw and no class is missing from the pool the learner queries.

use rand::seq::SliceRandom;

use crate::error::{DataError, Result};

/// The rng stream reserved for splitting, so a split never shares numbers with the other
/// seeded parts of a run (initial set, strategies) and changing those never changes the split.
const SPLIT_STREAM: u64 = 0x5911;

/// Splits sample indices into (pool, test), both sorted ascending.
///
/// For each class in label order, that class's indices are shuffled (one rng,
/// `seeded_rng(seed, 0x5911)`, drawn on across classes) and the first
/// `round(test_fraction * count)` go to the test side — at least one and at most `count - 1`,
/// so each class has samples on both sides. The same arguments always give the same split.
///
/// Errors: `test_fraction` not strictly between 0 and 1; a label `>= n_classes`; a class with
/// fewer than two samples (which cannot be on both sides).
pub fn stratified_split(
    labels: &[u32],
    n_classes: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    // Written so that NaN fails too.
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(DataError::BadFraction {
            fraction: test_fraction,
        });
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (index, &label) in labels.iter().enumerate() {
        let members = by_class
            .get_mut(label as usize)
            .ok_or(DataError::LabelOutOfRange {
                index,
                label,
                n_classes,
            })?;
        members.push(index);
    }
    if let Some((class, members)) = by_class.iter().enumerate().find(|(_, m)| m.len() < 2) {
        return Err(DataError::ClassTooSmall {
            class,
            count: members.len(),
        });
    }

    let mut rng = quarry_core::seeded_rng(seed, SPLIT_STREAM);
    let mut pool = Vec::with_capacity(labels.len());
    let mut test = Vec::new();
    for mut members in by_class {
        members.shuffle(&mut rng);
        let count = members.len();
        let n_test = ((test_fraction * count as f64).round() as usize).clamp(1, count - 1);
        test.extend_from_slice(&members[..n_test]);
        pool.extend_from_slice(&members[n_test..]);
    }
    pool.sort_unstable();
    test.sort_unstable();
    Ok((pool, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels with class `c` occurring `counts[c]` times, interleaved.
    fn labels_with(counts: &[usize]) -> Vec<u32> {
        let mut left = counts.to_vec();
        let mut labels = Vec::new();
        while left.iter().any(|&n| n > 0) {
            for (c, n) in left.iter_mut().enumerate() {
                if *n > 0 {
                    *n -= 1;
                    labels.push(c as u32);
                }
            }
        }
        labels
    }

    #[test]
    fn stratified_disjoint_and_complete() {
        let counts = [100, 37, 2, 5, 64];
        let labels = labels_with(&counts);
        for fraction in [0.01, 0.2, 0.5, 0.99] {
            let (pool, test) = stratified_split(&labels, counts.len(), fraction, 7).unwrap();
            assert!(pool.windows(2).all(|w| w[0] < w[1]) && test.windows(2).all(|w| w[0] < w[1]));
            let mut all: Vec<usize> = pool.iter().chain(&test).copied().collect();
            all.sort_unstable();
            assert_eq!(
                all,
                (0..labels.len()).collect::<Vec<_>>(),
                "disjoint and covering"
            );
            for (c, &n) in counts.iter().enumerate() {
                let in_test = test.iter().filter(|&&i| labels[i] == c as u32).count();
                let target = fraction * n as f64;
                assert!(
                    (in_test as f64 - target).abs() <= 1.0,
                    "class {c}: {in_test} vs {target}"
                );
                assert!(in_test >= 1 && in_test < n, "class {c} on both sides");
            }
        }
    }

    #[test]
    fn reproducible_by_seed() {
        let labels = labels_with(&[50, 50, 50]);
        let a = stratified_split(&labels, 3, 0.3, 1).unwrap();
        assert_eq!(a, stratified_split(&labels, 3, 0.3, 1).unwrap());
        assert_ne!(a, stratified_split(&labels, 3, 0.3, 2).unwrap());
    }

    #[test]
    fn rejects_bad_input() {
        let labels = labels_with(&[5, 5]);
        for f in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert!(
                matches!(
                    stratified_split(&labels, 2, f, 0),
                    Err(DataError::BadFraction { .. })
                ),
                "{f}"
            );
        }
        let err = stratified_split(&labels_with(&[5, 1, 5]), 3, 0.2, 0).unwrap_err();
        assert!(
            matches!(err, DataError::ClassTooSmall { class: 1, count: 1 }),
            "{err}"
        );
        assert!(err.to_string().contains("class 1 has 1 sample(s)"));
        let err = stratified_split(&labels, 3, 0.2, 0).unwrap_err();
        assert!(
            matches!(err, DataError::ClassTooSmall { class: 2, count: 0 }),
            "{err}"
        );
        let err = stratified_split(&labels, 1, 0.2, 0).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 1,
                    label: 1,
                    n_classes: 1
                }
            ),
            "{err}"
        );
    }
}
