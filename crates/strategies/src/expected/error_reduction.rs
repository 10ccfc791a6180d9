//! Expected error reduction (Roy & McCallum 2001): refit with every label of every candidate and
//! estimate the loss left on the pool.

use super::expect_rows;
use crate::select::top_k;
use quarry_core::{Error, Needs, Probabilities, QuarryRng, Query, QueryContext, Result, Strategy, WhatIf};
use rayon::prelude::*;

/// The most refits [`ExpectedErrorReduction`] does in one query unless told otherwise: it refuses
/// beyond this (candidates × classes of nonzero probability) rather than run for hours.
pub const MAX_REFITS: usize = 20_000;

/// The loss whose expectation [`ExpectedErrorReduction`] estimates on the pool, with the refit
/// model's own posterior `p'` standing in for the unknown labels (Roy & McCallum 2001, §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FutureLoss {
    /// 0/1 loss: `Σ_u (1 − max_c p'(c|u))`, the expected number of mistakes (the default).
    #[default]
    ZeroOne,
    /// Log loss: `Σ_u −Σ_c p'(c|u) ln p'(c|u)`, the expected cross-entropy, i.e. the entropy of
    /// the refit model's predictions.
    Log,
}

impl FutureLoss {
    fn of_row(self, p: &[f32]) -> f64 {
        match self {
            FutureLoss::ZeroOne => 1.0 - p.iter().fold(0f32, |a, &b| a.max(b)) as f64,
            FutureLoss::Log => p.iter().filter(|&&v| v > 0.0).map(|&v| -(v as f64) * (v as f64).ln()).sum(),
        }
    }
}

/// Expected error reduction, Roy & McCallum, *Toward optimal active learning through sampling
/// estimation of error reduction*, ICML 2001 (Settles 2009 §3.4). For each candidate `x` and each
/// label `y` with `p(y|x) > 0`, refit the model with `(x, y)` added ([`WhatIf`]) and estimate the
/// future loss `E(x, y)` on the unlabeled pool with the refit model's own posterior (0/1 or log
/// loss, [`FutureLoss`]). The score is `−Σ_y p(y|x) E(x, y)`, so the candidate whose labeling is
/// expected to leave the least error (the largest expected reduction) comes first; scores are ≤ 0.
///
/// Setting: pool-based, one label at a time, any model that can be refit. The pool estimate is
/// the query's candidates other than `x` itself (once labeled, `x` is no longer in the pool), so
/// with `--candidates M` both the candidates and the pool are the same seeded subsample.
///
/// Cost: `candidates × classes` refits per query, each a full fit. Large pools must subsample
/// candidates with `--candidates M`; beyond [`MAX_REFITS`] refits a query is refused with an
/// error saying so. Refits run in parallel over candidates (rayon).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpectedErrorReduction {
    loss: FutureLoss,
    max_refits: usize,
}

impl Default for ExpectedErrorReduction {
    fn default() -> Self {
        ExpectedErrorReduction { loss: FutureLoss::ZeroOne, max_refits: MAX_REFITS }
    }
}

impl ExpectedErrorReduction {
    const NAME: &'static str = "expected-error-reduction";

    /// 0/1 loss and at most [`MAX_REFITS`] refits per query.
    pub fn new() -> Self {
        Self::default()
    }
    /// Which future loss to estimate (default [`FutureLoss::ZeroOne`]).
    pub fn loss(mut self, loss: FutureLoss) -> Self {
        self.loss = loss;
        self
    }
    /// Refuse queries needing more refits than this (default [`MAX_REFITS`]).
    pub fn max_refits(mut self, n: usize) -> Self {
        self.max_refits = n;
        self
    }

    /// The refusal of a query needing more than `max_refits` refits (`n` candidates, up to `per`
    /// classes each with a probability above 0).
    fn too_many(&self, refits: usize, n: usize, per: usize) -> Error {
        Error::Other(format!(
            "strategy {} would refit the model {refits} times ({n} candidates × up to {per} classes), more than its \
             limit of {}; subsample the candidates with --candidates {} or fewer",
            Self::NAME,
            self.max_refits,
            (self.max_refits / per.max(1)).max(1)
        ))
    }

    /// `Σ_y p(y|x) E(x, y)` for every candidate: the expected future loss after labeling it.
    pub fn expected_losses(&self, probs: &Probabilities, what_if: &dyn WhatIf) -> Result<Vec<f64>> {
        let n = probs.len();
        let refits: usize = probs.rows().map(|p| p.iter().filter(|&&v| v > 0.0).count()).sum();
        if refits > self.max_refits {
            let per = probs.rows().map(|p| p.iter().filter(|&&v| v > 0.0).count()).max().unwrap_or(1).max(1);
            return Err(self.too_many(refits, n, per));
        }
        let loss = self.loss;
        (0..n)
            .into_par_iter()
            .map(|i| {
                let mut expected = 0.0;
                for (y, &py) in probs.row(i).iter().enumerate() {
                    if py <= 0.0 {
                        continue;
                    }
                    let after = what_if.probabilities_after(i, y as u32)?;
                    expect_rows(Self::NAME, "refit probabilities", after.len(), n)?;
                    let future: f64 = after.rows().enumerate().filter(|&(u, _)| u != i).map(|(_, p)| loss.of_row(p)).sum();
                    expected += py as f64 * future;
                }
                Ok(expected)
            })
            .collect()
    }
}

impl Strategy for ExpectedErrorReduction {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn needs(&self) -> Needs {
        Needs::PROBABILITIES.with_what_if()
    }
    /// A model's probabilities are all above 0 but on underflow, so every candidate refits once
    /// per class: refused up front past the limit, as a query would be.
    fn check_scale(&self, candidates: usize, classes: usize) -> Result<()> {
        let refits = candidates.saturating_mul(classes);
        if refits > self.max_refits { Err(self.too_many(refits, candidates, classes)) } else { Ok(()) }
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let probs = ctx.scores.probabilities(Self::NAME)?;
        expect_rows(Self::NAME, "probabilities", probs.len(), ctx.candidates.len())?;
        let what_if = ctx.what_if(Self::NAME)?;
        let scores: Vec<f64> = self.expected_losses(probs, what_if)?.into_iter().map(|e| -e).collect();
        Ok(top_k(ctx.candidates, &scores, k, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::testing::{picks, probs_of};
    use crate::test_support::{ids, prob_rows};
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{ScoreKind, Scores, seeded_rng};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Post-refit probabilities looked up in a table `(candidate, label) → [candidates, classes]`;
    /// any other refit is an error. Counts the refits it was asked for.
    struct TableWhatIf {
        table: HashMap<(usize, u32), Probabilities>,
        calls: AtomicUsize,
    }

    impl WhatIf for TableWhatIf {
        fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.table.get(&(candidate, label)).cloned().ok_or_else(|| Error::Other(format!("unexpected refit ({candidate}, {label})")))
        }
    }

    /// Three candidates, two classes; each refit's row for the candidate itself is (0.5, 0.5)
    /// and must be left out of the pool estimate.
    fn eer_table() -> (Probabilities, TableWhatIf) {
        let probs = Probabilities::from_rows(&[&[0.5, 0.5], &[0.8, 0.2], &[1.0, 0.0]]).unwrap();
        let own = [0.5f32, 0.5];
        let row = |u: usize, i: usize, r: [f32; 2]| if u == i { own } else { r };
        let entry = |i: usize, rows: [[f32; 2]; 3]| {
            let rows: Vec<[f32; 2]> = (0..3).map(|u| row(u, i, rows[u])).collect();
            Probabilities::from_rows(&rows.iter().map(|r| r.as_slice()).collect::<Vec<_>>()).unwrap()
        };
        let mut table = HashMap::new();
        table.insert((0, 0), entry(0, [own, [0.9, 0.1], [0.6, 0.4]]));
        table.insert((0, 1), entry(0, [own, [0.7, 0.3], [0.5, 0.5]]));
        table.insert((1, 0), entry(1, [[0.6, 0.4], own, [0.8, 0.2]]));
        table.insert((1, 1), entry(1, [[0.5, 0.5], own, [0.9, 0.1]]));
        table.insert((2, 0), entry(2, [[0.95, 0.05], [0.99, 0.01], own]));
        (probs, TableWhatIf { table, calls: AtomicUsize::new(0) })
    }

    /// Hand-computed 0/1 loss, Σ over the other candidates of 1 − max p':
    /// x0: ½·(0.1 + 0.4) + ½·(0.3 + 0.5) = 0.65;  x1: 0.8·(0.4 + 0.2) + 0.2·(0.5 + 0.1) = 0.6;
    /// x2: only label 0 has probability, (0.05 + 0.01) = 0.06. So x2, x1, x0 with scores −E.
    /// Log loss (entropies in nats): x0 1.151053, x1 1.142377, x2 0.254517.
    #[test]
    fn eer_hand_computed_with_a_table_of_refits() {
        let (probs, what_if) = eer_table();
        let e = ExpectedErrorReduction::new().expected_losses(&probs, &what_if).unwrap();
        for (got, want) in e.iter().zip([0.65, 0.6, 0.06]) {
            assert!((got - want).abs() < 1e-6, "{e:?}");
        }
        assert_eq!(what_if.calls.load(Ordering::Relaxed), 5, "no refit for a label of probability 0");
        let e = ExpectedErrorReduction::new().loss(FutureLoss::Log).expected_losses(&probs, &what_if).unwrap();
        for (got, want) in e.iter().zip([1.151_053_1, 1.142_377_3, 0.254_516_8]) {
            assert!((got - want).abs() < 1e-5, "{e:?}");
        }

        let cands = ids(3);
        let scores = Scores::default().with(ScoreKind::Probabilities, probs);
        let ctx = QueryContext { candidates: &cands, scores: &scores, labeled: &[], labeled_labels: &[], what_if: Some(&what_if) };
        let q = ExpectedErrorReduction::new().select(&ctx, 3, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(picks(&q), vec![2, 1, 0]);
        assert!((q.picks[0].score + 0.06).abs() < 1e-6);
    }

    #[test]
    fn eer_refuses_a_pool_too_large_before_a_run_starts() {
        let eer = ExpectedErrorReduction::new();
        assert!(eer.check_scale(2_000, 10).is_ok());
        let e = eer.check_scale(20_001, 1).unwrap_err().to_string();
        assert!(e.contains("20001") && e.contains("--candidates 20000"), "{e}");
        let e = eer.check_scale(7_000, 10).unwrap_err().to_string();
        assert!(e.contains("70000") && e.contains("--candidates 2000"), "{e}");
    }

    #[test]
    fn eer_refuses_too_many_refits_and_suggests_subsampling() {
        let row = [0.5f32, 0.5];
        let rows: Vec<&[f32]> = vec![&row; 10_001];
        let probs = Probabilities::from_rows(&rows).unwrap();
        let (_, what_if) = eer_table();
        let err = ExpectedErrorReduction::new().expected_losses(&probs, &what_if).unwrap_err().to_string();
        assert!(err.contains("expected-error-reduction") && err.contains("--candidates 10000") && err.contains("20000"), "{err}");
        assert_eq!(what_if.calls.load(Ordering::Relaxed), 0, "refused before any refit");
    }

    #[test]
    fn eer_without_a_refittable_model_or_with_a_bad_refit_is_an_error() {
        let (probs, what_if) = eer_table();
        let cands = ids(3);
        let scores = Scores::default().with(ScoreKind::Probabilities, probs);
        let err = ExpectedErrorReduction::new().select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(err.to_string().contains("expected-error-reduction"), "{err}");

        struct Short;
        impl WhatIf for Short {
            fn probabilities_after(&self, _: usize, _: u32) -> Result<Probabilities> {
                Probabilities::from_rows(&[&[0.5, 0.5]])
            }
        }
        let ctx = QueryContext { candidates: &cands, scores: &scores, labeled: &[], labeled_labels: &[], what_if: Some(&Short) };
        let err = ExpectedErrorReduction::new().select(&ctx, 1, &mut seeded_rng(0, 0)).unwrap_err().to_string();
        assert!(err.contains("expected-error-reduction") && err.contains("refit probabilities"), "{err}");
        drop(what_if);
    }

    /// Refits answered by a closure (the property tests' fake model).
    struct FnWhatIf<F>(F);
    impl<F: Fn(usize, u32) -> Result<Probabilities> + Sync> WhatIf for FnWhatIf<F> {
        fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities> {
            (self.0)(candidate, label)
        }
    }

    proptest! {
        /// Picks are distinct, scores are ≤ 0 and non-increasing, the first is the best.
        #[test]
        fn eer_picks_are_distinct_and_scores_non_positive(
            rows in prob_rows(6, 3), post in prob_rows(6 * 3 * 6, 3), k in 1usize..7, log in proptest::bool::ANY,
        ) {
            let probs = probs_of(&rows);
            let what_if = FnWhatIf(|i: usize, y: u32| {
                let at = (i * 3 + y as usize) * 6;
                Ok(probs_of(&post[at..at + 6]))
            });
            let cands = ids(6);
            let scores = Scores::default().with(ScoreKind::Probabilities, probs);
            let ctx = QueryContext { candidates: &cands, scores: &scores, labeled: &[], labeled_labels: &[], what_if: Some(&what_if) };
            let s = ExpectedErrorReduction::new().loss(if log { FutureLoss::Log } else { FutureLoss::ZeroOne });
            let q = s.select(&ctx, k, &mut seeded_rng(1, 0)).unwrap();
            let mut d = picks(&q);
            prop_assert_eq!(d.len(), k);
            d.sort();
            d.dedup();
            prop_assert_eq!(d.len(), k);
            prop_assert!(q.picks.iter().all(|p| p.score <= 0.0));
            prop_assert!(q.picks.windows(2).all(|w| w[0].score >= w[1].score));
            let all = s.expected_losses(scores.probabilities("test").unwrap(), &what_if).unwrap();
            let best = all.iter().cloned().fold(f64::INFINITY, f64::min);
            prop_assert!((q.picks[0].score + best).abs() < 1e-12);
        }
    }
}
