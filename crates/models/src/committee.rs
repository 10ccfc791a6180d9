//! Committees for query-by-committee (Seung, Opper & Sompolinsky 1992): bagging (Abe & Mamitsuka
//! 1998, "query by bagging") — members are the base learner fit on bootstrap resamples of the
//! labeled set — and committees of different learner kinds.

use crate::checkpoint::Checkpoint;
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

    /// The base model and the members, with their prefixes in a checkpoint.
    fn parts(&self) -> impl Iterator<Item = (String, &dyn Learner)> {
        std::iter::once(("base".to_string(), &*self.base))
            .chain(self.members.iter().enumerate().map(|(i, m)| (format!("member.{i}"), &**m)))
    }

    /// What a restore checks: the committee's kind, size and seed.
    fn write_settings(&self, ck: &mut Checkpoint) {
        let kind = match self.kind {
            CommitteeKind::Bagging => "bagging",
            CommitteeKind::Heterogeneous => "heterogeneous",
        };
        ck.set("committee", kind);
        ck.set("size", self.members.len());
        ck.set("seed", self.seed);
    }
}

/// The learner kind of a committee's checkpoints.
const COMMITTEE: &str = "committee";

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

    /// A [`Checkpoint`] of kind `committee`: the settings `committee` (`bagging` or
    /// `heterogeneous`), `size` and `seed`, the `fits` counter, and each part's own checkpoint
    /// nested under `base.` and `member.<i>.` (`member.3.learner`, `member.3.w`, …).
    fn checkpoint(&self) -> Result<Vec<u8>> {
        let mut ck = Checkpoint::new(COMMITTEE);
        self.write_settings(&mut ck);
        ck.put_count("fits", self.fits);
        for (prefix, part) in self.parts() {
            let part = Checkpoint::parse(&part.checkpoint()?).map_err(|e| Error::Other(format!("committee {prefix}: {e}")))?;
            ck.nest(&prefix, part);
        }
        Ok(ck.to_bytes())
    }

    /// Restores a checkpoint of a committee of the same kind, size and seed, each part from its
    /// own nested checkpoint; nothing changes unless every part restores (empty bytes: every
    /// part back to before its first fit).
    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (fits, mut parts) = if bytes.is_empty() {
            (0, self.parts().map(|(_, p)| (p.boxed_clone(), Vec::new())).collect::<Vec<_>>())
        } else {
            let ck = Checkpoint::parse_of(bytes, COMMITTEE, &format!("a committee of {}", self.base.name()))?;
            let mut settings = Checkpoint::new(COMMITTEE);
            self.write_settings(&mut settings);
            for (key, value) in settings.settings() {
                ck.expect(key, value)?;
            }
            let parts = self.parts().map(|(prefix, p)| Ok((p.boxed_clone(), ck.member(&prefix)?.to_bytes()))).collect::<Result<Vec<_>>>()?;
            (ck.count("fits")?, parts)
        };
        for ((prefix, _), (part, bytes)) in self.parts().zip(&mut parts) {
            part.restore(bytes).map_err(|e| Error::Other(format!("committee {prefix}: {e}")))?;
        }
        let mut parts = parts.into_iter().map(|(p, _)| p);
        self.base = parts.next().expect("the base");
        self.members = parts.collect();
        self.fits = fits;
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
