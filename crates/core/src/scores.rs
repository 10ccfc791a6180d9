use crate::{Error, Result};

/// Class probabilities, row-major `[n, classes]`; every row sums to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    data: Vec<f32>,
    n: usize,
    classes: usize,
}

impl Probabilities {
    /// Checks the shape and that each row is a distribution (non-negative, sums to 1 within 1e-4).
    pub fn new(data: Vec<f32>, n: usize, classes: usize) -> Result<Self> {
        if classes == 0 || data.len() != n * classes {
            return Err(Error::shape("probabilities", format!("{n}x{classes}"), data.len()));
        }
        for (row, p) in data.chunks_exact(classes).enumerate() {
            let sum: f64 = p.iter().map(|&v| v as f64).sum();
            if (sum - 1.0).abs() > 1e-4 || p.iter().any(|v| !(*v >= 0.0)) {
                return Err(Error::NotAProbability { row, sum });
            }
        }
        Ok(Probabilities { data, n, classes })
    }

    /// Convenience for tests and hand-computed cases.
    pub fn from_rows(rows: &[&[f32]]) -> Result<Self> {
        let classes = rows.first().map_or(0, |r| r.len());
        if let Some(bad) = rows.iter().position(|r| r.len() != classes) {
            return Err(Error::shape(format!("probability row {bad}"), classes, rows[bad].len()));
        }
        Self::new(rows.concat(), rows.len(), classes)
    }

    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn n_classes(&self) -> usize {
        self.classes
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.classes..(i + 1) * self.classes]
    }
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f32]> {
        self.data.chunks_exact(self.classes)
    }
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The most probable class of each row (the lowest index on ties).
    pub fn argmax(&self) -> Vec<u32> {
        self.rows()
            .map(|p| {
                let mut best = 0;
                for (c, &v) in p.iter().enumerate() {
                    if v > p[best] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect()
    }
}

/// Which scores a strategy needs, so the loop asks the learner only for those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub probabilities: bool,
}

impl Needs {
    pub const NOTHING: Needs = Needs { probabilities: false };
    pub const PROBABILITIES: Needs = Needs { probabilities: true };

    pub fn union(self, other: Needs) -> Needs {
        Needs { probabilities: self.probabilities || other.probabilities }
    }
}

/// What a learner said about a set of candidates, row `i` for candidate `i`.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub probabilities: Option<Probabilities>,
}

impl Scores {
    /// The probabilities, or an error naming the strategy that needed them.
    pub fn probabilities(&self, strategy: &str) -> Result<&Probabilities> {
        self.probabilities
            .as_ref()
            .ok_or_else(|| Error::Other(format!("strategy {strategy} needs class probabilities, none were computed")))
    }
}
