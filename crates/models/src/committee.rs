//! Committees for query-by-committee (Seung, Opper & Sompolinsky 1992): bagging (Abe & Mamitsuka
//! 1998, "query by bagging") — members are the base learner fit on bootstrap resamples of the
//! labeled set — and committees of different learner kinds.

use quarry_core::{Error, Learner, Matrix, Probabilities, Result, seeded_rng};
use rand::Rng;

/// A learner whose own predictions come from the base model fit on all labels, and whose
/// [`Learner::committee`] is its members' predictions.
pub struct Committee {
    base: Box<dyn Learner>,
    members: Vec<Box<dyn Learner>>,
    kind: CommitteeKind,
    seed: u64,
    /// How many fits so far: each fit draws fresh bootstrap resamples, reproducibly.
    fits: u64,
}

/// How the members are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitteeKind {
    /// Each member on a bootstrap resample (with replacement, same size) of the labeled set.
    Bagging,
    /// Members of different kinds (or settings), each on the whole labeled set.
    Heterogeneous,
}

impl Committee {
    /// `size` members, each a copy of `base`, fit on bootstrap resamples.
    pub fn bagging(base: Box<dyn Learner>, size: usize, seed: u64) -> Result<Self> {
        if size < 2 {
            return Err(Error::param("committee size", format!("a committee needs at least 2 members, got {size}")));
        }
        let members = (0..size).map(|_| base.boxed_clone()).collect();
        Ok(Committee { base, members, kind: CommitteeKind::Bagging, seed, fits: 0 })
    }

    /// Members of different kinds, each fit on every label.
    pub fn heterogeneous(base: Box<dyn Learner>, members: Vec<Box<dyn Learner>>) -> Result<Self> {
        if members.len() < 2 {
            return Err(Error::param("committee size", format!("a committee needs at least 2 members, got {}", members.len())));
        }
        Ok(Committee { base, members, kind: CommitteeKind::Heterogeneous, seed: 0, fits: 0 })
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }
}

/// A bootstrap resample of `0..n` holding at least two classes (a member must be fittable).
fn bootstrap(y: &[u32], rng: &mut quarry_core::QuarryRng) -> Vec<usize> {
    let n = y.len();
    for _ in 0..100 {
        let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
        if idx.iter().any(|&i| y[i] != y[idx[0]]) {
            return idx;
        }
    }
    (0..n).collect()
}

impl Learner for Committee {
    fn name(&self) -> &str {
        self.base.name()
    }

    fn fit(&mut self, x: &Matrix, y: &[u32], n_classes: usize) -> Result<()> {
        self.base.fit(x, y, n_classes)?;
        let mut rng = seeded_rng(self.seed, 0xBA66_0000_0000 | self.fits);
        self.fits += 1;
        for m in &mut self.members {
            match self.kind {
                CommitteeKind::Bagging => {
                    let idx = bootstrap(y, &mut rng);
                    let yb: Vec<u32> = idx.iter().map(|&i| y[i]).collect();
                    m.fit(&x.select_rows(&idx), &yb, n_classes)?;
                }
                CommitteeKind::Heterogeneous => m.fit(x, y, n_classes)?,
            }
        }
        Ok(())
    }

    fn predict_proba(&self, x: &Matrix) -> Result<Probabilities> {
        self.base.predict_proba(x)
    }

    fn committee(&self, x: &Matrix) -> Result<Vec<Probabilities>> {
        self.members.iter().map(|m| m.predict_proba(x)).collect()
    }

    fn embed(&self, x: &Matrix) -> Result<Matrix> {
        self.base.embed(x)
    }

    fn gradient_embedding(&self, x: &Matrix) -> Result<Matrix> {
        self.base.gradient_embedding(x)
    }

    /// The base model, the fit counter, then each member, length-prefixed.
    fn checkpoint(&self) -> Result<Vec<u8>> {
        let mut out = self.fits.to_le_bytes().to_vec();
        for part in std::iter::once(&self.base).chain(&self.members) {
            let b = part.checkpoint()?;
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(&b);
        }
        Ok(out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let bad = || Error::Other("committee checkpoint: truncated or of another committee size".into());
        let mut pos = 8;
        self.fits = u64::from_le_bytes(bytes.get(..8).ok_or_else(bad)?.try_into().unwrap());
        for part in std::iter::once(&mut self.base).chain(self.members.iter_mut()) {
            let len = u64::from_le_bytes(bytes.get(pos..pos + 8).ok_or_else(bad)?.try_into().unwrap()) as usize;
            pos += 8;
            part.restore(bytes.get(pos..pos + len).ok_or_else(bad)?)?;
            pos += len;
        }
        if pos != bytes.len() {
            return Err(bad());
        }
        Ok(())
    }

    fn boxed_clone(&self) -> Box<dyn Learner> {
        Box::new(Committee {
            base: self.base.boxed_clone(),
            members: self.members.iter().map(|m| m.boxed_clone()).collect(),
            kind: self.kind,
            seed: self.seed,
            fits: self.fits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogisticRegressionLearner, LogisticRegressionParams};

    fn data() -> (Matrix, Vec<u32>) {
        let xs: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) / 5.0 + if i % 3 == 0 { 0.7 } else { 0.0 }).collect();
        let y = (0..40).map(|i| (i >= 20) as u32).collect();
        (Matrix::new(xs, 40, 1).unwrap(), y)
    }

    #[test]
    fn bagging_members_differ_and_checkpoint_round_trips() {
        let (x, y) = data();
        let base = Box::new(LogisticRegressionLearner::new(LogisticRegressionParams::new()));
        let mut c = Committee::bagging(base, 4, 7).unwrap();
        c.fit(&x, &y, 2).unwrap();
        let members = c.committee(&x).unwrap();
        assert_eq!(members.len(), 4);
        assert!(members.windows(2).any(|w| w[0] != w[1]), "bootstrap members should disagree somewhere");
        let bytes = c.checkpoint().unwrap();
        let mut d = Committee::bagging(Box::new(LogisticRegressionLearner::default()), 4, 7).unwrap();
        d.restore(&bytes).unwrap();
        assert_eq!(d.committee(&x).unwrap(), members);
        // Same seed and history → same members.
        let mut e = Committee::bagging(Box::new(LogisticRegressionLearner::default()), 4, 7).unwrap();
        e.fit(&x, &y, 2).unwrap();
        assert_eq!(e.committee(&x).unwrap(), members);
    }

    #[test]
    fn a_committee_of_one_is_an_error() {
        let base = Box::new(LogisticRegressionLearner::default());
        let e = Committee::bagging(base, 1, 0).err().unwrap().to_string();
        assert!(e.contains("at least 2"), "{e}");
    }
}
