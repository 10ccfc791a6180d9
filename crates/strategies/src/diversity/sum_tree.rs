//! Proportional draws over rows with O(log n) updates, for BADGE's k-means++ seeding and the
//! weighted k-means seed.

use super::positive;
use quarry_core::QuarryRng;
use rand::Rng;

/// Non-negative masses over rows, drawn from in proportion and updated in O(log n): a complete
/// binary tree whose inner nodes hold the sums of their leaves (recomputed, never patched by
/// differences, so a cleared leaf is exactly 0).
pub(super) struct SumTree {
    leaves: usize,
    nodes: Vec<f64>,
}

impl SumTree {
    pub(super) fn new(masses: impl ExactSizeIterator<Item = f64>) -> Self {
        let leaves = masses.len().next_power_of_two();
        let mut nodes = vec![0f64; 2 * leaves];
        for (i, m) in masses.enumerate() {
            nodes[leaves + i] = m;
        }
        for p in (1..leaves).rev() {
            nodes[p] = nodes[2 * p] + nodes[2 * p + 1];
        }
        SumTree { leaves, nodes }
    }

    pub(super) fn get(&self, i: usize) -> f64 {
        self.nodes[self.leaves + i]
    }

    pub(super) fn set(&mut self, i: usize, mass: f64) {
        let mut p = self.leaves + i;
        self.nodes[p] = mass;
        while p > 1 {
            p /= 2;
            self.nodes[p] = self.nodes[2 * p] + self.nodes[2 * p + 1];
        }
    }

    /// Row `i` with probability `mass_i / Σ mass`; `None` when every mass is 0. A row of zero
    /// mass is never returned: the descent only enters subtrees of positive sum.
    pub(super) fn draw(&self, rng: &mut QuarryRng) -> Option<usize> {
        if !positive(self.nodes[1]) {
            return None;
        }
        let mut u = rng.random::<f64>() * self.nodes[1];
        let mut p = 1;
        while p < self.leaves {
            let (left, right) = (self.nodes[2 * p], self.nodes[2 * p + 1]);
            if (u < left && positive(left)) || !positive(right) {
                p *= 2;
            } else {
                u -= left;
                p = 2 * p + 1;
            }
        }
        Some(p - self.leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_core::seeded_rng;

    #[test]
    fn sum_tree_draws_in_proportion_and_never_a_zero_mass() {
        let mut rng = seeded_rng(0, 0);
        let mut tree = SumTree::new([0.0, 2.0, 0.0].into_iter());
        for _ in 0..200 {
            assert_eq!(tree.draw(&mut rng), Some(1));
        }
        tree.set(1, 0.0);
        assert_eq!(tree.draw(&mut rng), None);
        assert_eq!(SumTree::new(std::iter::empty()).draw(&mut rng), None);
        let tree = SumTree::new([1.0, 0.0, 3.0, 4.0, 0.0].into_iter());
        let mut counts = [0usize; 5];
        (0..8000).for_each(|_| counts[tree.draw(&mut rng).unwrap()] += 1);
        for (c, want) in counts.iter().zip([1.0 / 8.0, 0.0, 3.0 / 8.0, 0.5, 0.0]) {
            assert!((*c as f64 / 8000.0 - want).abs() < 0.02, "{counts:?}");
        }
    }
}
