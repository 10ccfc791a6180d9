//! Two strategies chained (one pre-filters, the other picks), and [`restrict`] to cut scores down
//! to a subset of the candidates.

use super::check_rows;
use quarry_core::scores::{RowsOf, Score};
use quarry_core::{Error, McSamples, Needs, Probabilities, QuarryRng, Query, QueryContext, Result, SampleId, ScoreKind, Scores, Strategy, WhatIf};
use std::collections::HashMap;

/// Two strategies chained (modAL's composable strategies; Zhdanov 2019's pre-filter): `first`
/// keeps `factor × k` candidates, `second` picks the batch of `k` among them, seeing the same
/// scores cut down to the kept rows ([`restrict`]). Its name is `<first>-then-<second>`.
pub struct TwoStep {
    first: Box<dyn Strategy>,
    second: Box<dyn Strategy>,
    factor: usize,
    name: String,
}

impl TwoStep {
    /// `factor ≥ 1`: how many times the batch size the first strategy keeps.
    pub fn new(first: Box<dyn Strategy>, second: Box<dyn Strategy>, factor: usize) -> Result<Self> {
        if factor == 0 {
            return Err(Error::param("prefilter", "must be at least 1"));
        }
        let name = format!("{}-then-{}", first.name(), second.name());
        Ok(TwoStep { first, second, factor, name })
    }
}

impl Strategy for TwoStep {
    fn name(&self) -> &str {
        &self.name
    }
    fn needs(&self) -> Needs {
        self.first.needs().union(self.second.needs())
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let n = ctx.candidates.len();
        let s = ctx.scores;
        let rows_of = |kind| match s.get(kind) {
            Some(Score::Probabilities(p)) => Some(p.len()),
            Some(Score::Samples(m)) => Some(m.len()),
            Some(Score::Rows(m)) => Some(m.rows()),
            _ => None,
        };
        let per_candidate = [
            ("probabilities", rows_of(ScoreKind::Probabilities)),
            ("MC samples", rows_of(ScoreKind::McSamples)),
            ("embeddings", rows_of(ScoreKind::Embeddings)),
            ("gradient embeddings", rows_of(ScoreKind::GradientEmbeddings)),
        ];
        for (what, rows) in per_candidate {
            if let Some(rows) = rows {
                check_rows(&self.name, what, rows, n)?;
            }
        }
        if let Some(Score::Members(members)) = s.get(ScoreKind::Committee) {
            for (member, p) in members.iter().enumerate() {
                check_rows(&self.name, &format!("committee member {member}'s probabilities"), p.len(), n)?;
            }
        }
        let kept = self.first.select(ctx, self.factor.saturating_mul(k), rng)?;
        let row_of: HashMap<SampleId, usize> = ctx.candidates.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let rows = kept
            .picks
            .iter()
            .map(|p| row_of.get(&p.id).copied().ok_or_else(|| Error::Other(format!("strategy {}: step {} returned {}, not a candidate", self.name, self.first.name(), p.id))))
            .collect::<Result<Vec<usize>>>()?;
        let scores = restrict_needed(s, &rows, self.second.needs());
        let candidates: Vec<SampleId> = rows.iter().map(|&i| ctx.candidates[i]).collect();
        let what_if = ctx.what_if.map(|inner| RestrictedWhatIf { inner, rows: &rows });
        let sub = QueryContext {
            candidates: &candidates,
            scores: &scores,
            labeled: ctx.labeled,
            labeled_labels: ctx.labeled_labels,
            what_if: what_if.as_ref().map(|w| w as &dyn WhatIf),
        };
        self.second.select(&sub, k, rng)
    }
}

/// [`Scores`] of the candidates at `rows` (in that order): every kind with a row per candidate
/// ([`RowsOf::Candidates`]: probabilities, MC samples, committee, embeddings, gradient embeddings,
/// patches, features) keeps those rows; the labeled-set kinds and the pool embeddings are copied
/// as they are.
///
/// # Panics
/// If a row is out of range of a per-candidate kind that is present.
pub fn restrict(scores: &Scores, rows: &[usize]) -> Scores {
    restrict_needed(scores, rows, Needs::of(ScoreKind::ALL))
}

/// [`restrict`], copying only the kinds in `needs` (the pool embeddings can be large).
fn restrict_needed(scores: &Scores, rows: &[usize], needs: Needs) -> Scores {
    let mut out = Scores::default();
    for (kind, score) in scores.iter().filter(|&(kind, _)| needs.has(kind)) {
        let kept = if kind.rows_of() == RowsOf::Candidates { select_rows(score, rows) } else { score.clone() };
        out.set(kind, kept);
    }
    out
}

/// The rows `rows` (in that order) of a per-candidate score.
fn select_rows(score: &Score, rows: &[usize]) -> Score {
    match score {
        Score::Probabilities(p) => select_probability_rows(p, rows).into(),
        Score::Samples(m) => {
            let mut data = Vec::with_capacity(m.draws() * rows.len() * m.n_classes());
            for t in 0..m.draws() {
                rows.iter().for_each(|&i| data.extend_from_slice(m.row(t, i)));
            }
            McSamples::new(data, m.draws(), rows.len(), m.n_classes()).expect("rows of valid MC samples are valid").into()
        }
        Score::Members(members) => members.iter().map(|p| select_probability_rows(p, rows)).collect::<Vec<_>>().into(),
        Score::Rows(m) => m.select_rows(rows).into(),
    }
}

fn select_probability_rows(p: &Probabilities, rows: &[usize]) -> Probabilities {
    let data = rows.iter().flat_map(|&i| p.row(i)).copied().collect();
    Probabilities::new(data, rows.len(), p.n_classes()).expect("rows of valid probabilities are valid")
}

/// A what-if refit seen through a subset of the candidates: candidate `i` of the subset is
/// candidate `rows[i]` of the original query, and only the subset's rows come back.
struct RestrictedWhatIf<'a> {
    inner: &'a dyn WhatIf,
    rows: &'a [usize],
}

impl WhatIf for RestrictedWhatIf<'_> {
    fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities> {
        let all = self.inner.probabilities_after(self.rows[candidate], label)?;
        Ok(select_probability_rows(&all, self.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::KCenterGreedy;
    use super::super::testing::{coreset_ctx, line, points, rows_of};
    use crate::test_support::{ids, matrix, prob_rows};
    use proptest::prelude::{prop_assert_eq, proptest};
    use quarry_core::{Matrix, seeded_rng};

    fn two_step_scores() -> Scores {
        // Margin scores 1 − (p₁ − p₂): 0.2, 1.0, 0.9, 0.95, 0.4, 0.85.
        let rows: [&[f32]; 6] = [&[0.9, 0.1], &[0.5, 0.5], &[0.55, 0.45], &[0.525, 0.475], &[0.8, 0.2], &[0.575, 0.425]];
        Scores::default()
            .with(ScoreKind::Probabilities, Probabilities::from_rows(&rows).unwrap())
            .with(ScoreKind::Embeddings, line(&[0.0, 1.0, 2.0, 3.0, 4.0, 9.0]))
            .with(ScoreKind::LabeledEmbeddings, line(&[0.0]))
    }

    /// Margin keeps the 4 most uncertain (rows 1, 3, 2, 5 at 1, 3, 2, 9); k-center from the labeled
    /// 0 picks 9 (row 5), then 3 (row 3: 3 from 0, 6 from 9, beating 2 and 1).
    #[test]
    fn margin_then_coreset_hand_computed() {
        let s = by_name_entry("margin-then-coreset", 2);
        assert_eq!(s.name(), "margin-then-coreset");
        assert_eq!(s.needs(), Needs::of(&[ScoreKind::Probabilities, ScoreKind::Embeddings, ScoreKind::LabeledEmbeddings]));
        let scores = two_step_scores();
        let (cands, labeled) = (ids(6), [SampleId(40)]);
        let q = s.select(&coreset_ctx(&cands, &labeled, &scores), 2, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(rows_of(&q), vec![5, 3]);
        assert_eq!(q.picks[0].score, 9.0);
    }

    fn by_name_entry(name: &str, prefilter: usize) -> Box<dyn Strategy> {
        crate::by_name_with(name, &crate::StrategyOptions { prefilter, ..Default::default() }).unwrap()
    }

    #[test]
    fn two_step_bad_inputs_are_errors_naming_it() {
        let mut scores = two_step_scores();
        scores.set(ScoreKind::Embeddings, line(&[0.0, 1.0]));
        let (cands, labeled) = (ids(6), [SampleId(40)]);
        let e = by_name_entry("two-step", 2).select(&coreset_ctx(&cands, &labeled, &scores), 2, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("margin-then-coreset") && e.to_string().contains("embeddings"), "{e}");
    }

    #[test]
    fn restrict_keeps_the_rows_of_every_per_candidate_field() {
        let p = |rows: &[&[f32]]| Probabilities::from_rows(rows).unwrap();
        let scores = Scores::default()
            .with(ScoreKind::Probabilities, p(&[&[1.0, 0.0], &[0.5, 0.5], &[0.0, 1.0]]))
            .with(
                ScoreKind::McSamples,
                McSamples::from_draws(&[p(&[&[1.0, 0.0], &[0.5, 0.5], &[0.0, 1.0]]), p(&[&[0.9, 0.1], &[0.4, 0.6], &[0.2, 0.8]])]).unwrap(),
            )
            .with(ScoreKind::Committee, vec![p(&[&[1.0, 0.0], &[0.3, 0.7], &[0.0, 1.0]])])
            .with(ScoreKind::Embeddings, line(&[10.0, 11.0, 12.0]))
            .with(ScoreKind::LabeledEmbeddings, line(&[7.0]))
            .with(ScoreKind::LabeledProbabilities, p(&[&[0.6, 0.4]]))
            .with(ScoreKind::PoolEmbeddings, line(&[10.0, 11.0, 12.0, 13.0]))
            .with(ScoreKind::GradientEmbeddings, matrix(&[&[1.0, 2.0], &[3.0, 4.0], &[5.0, 6.0]]))
            .with(ScoreKind::Patches, McSamples::from_draws(&[p(&[&[1.0, 0.0], &[0.5, 0.5], &[0.0, 1.0]])]).unwrap())
            .with(ScoreKind::Features, line(&[20.0, 21.0, 22.0]))
            .with(ScoreKind::LabeledFeatures, line(&[8.0]));
        assert_eq!(scores.iter().count(), ScoreKind::ALL.len(), "every kind is restricted");
        let r = restrict(&scores, &[2, 0]);
        let s = "test";
        assert_eq!(r.features(s).unwrap().row(0), &[22.0]);
        assert_eq!(r.labeled_features(s).unwrap().row(0), &[8.0]);
        assert_eq!(r.patches(s).unwrap().row(0, 0), &[0.0, 1.0]);
        assert_eq!(r.probabilities(s).unwrap().as_slice(), &[0.0, 1.0, 1.0, 0.0]);
        let mc = r.mc_samples(s).unwrap();
        assert_eq!((mc.draws(), mc.len()), (2, 2));
        assert_eq!(mc.row(1, 0), &[0.2, 0.8]);
        assert_eq!(mc.row(1, 1), &[0.9, 0.1]);
        assert_eq!(r.committee(s).unwrap()[0].as_slice(), &[0.0, 1.0, 1.0, 0.0]);
        assert_eq!(r.embeddings(s).unwrap().as_slice(), &[12.0, 10.0]);
        assert_eq!(r.gradient_embeddings(s).unwrap().as_slice(), &[5.0, 6.0, 1.0, 2.0]);
        assert_eq!(r.labeled_embeddings(s).unwrap(), scores.labeled_embeddings(s).unwrap());
        assert_eq!(r.labeled_probabilities(s).unwrap(), scores.labeled_probabilities(s).unwrap());
        assert_eq!(r.pool_embeddings(s).unwrap(), scores.pool_embeddings(s).unwrap());
        let none = restrict(&Scores::default(), &[0]);
        assert_eq!(none, Scores::default());
    }

    /// A what-if whose answer says which candidate and label it was asked about.
    struct Echo;
    impl WhatIf for Echo {
        fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities> {
            let rows: Vec<Vec<f32>> = (0..4).map(|i| if i == candidate && label == 1 { vec![0.0, 1.0] } else { vec![1.0, 0.0] }).collect();
            Probabilities::from_rows(&rows.iter().map(|r| r.as_slice()).collect::<Vec<_>>())
        }
    }

    #[test]
    fn restricted_what_if_maps_candidates_and_rows() {
        let rows = [3, 1];
        let w = RestrictedWhatIf { inner: &Echo, rows: &rows };
        let p = w.probabilities_after(0, 1).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.row(0), &[0.0, 1.0], "subset candidate 0 is original candidate 3");
        assert_eq!(p.row(1), &[1.0, 0.0]);
    }

    proptest! {
        /// The batch is among the first step's picks and is what the second step picks from them.
        #[test]
        fn two_step_is_the_second_strategy_on_the_first_ones_picks(
            rows in prob_rows(20, 3), e in points(20, 2), k in 1usize..6, factor in 1usize..4, seed in 0u64..50,
        ) {
            let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
            let scores = Scores::default()
                .with(ScoreKind::Probabilities, Probabilities::from_rows(&refs).unwrap())
                .with(ScoreKind::Embeddings, Matrix::new(e, 20, 2).unwrap())
                .with(ScoreKind::LabeledEmbeddings, Matrix::zeros(0, 2));
            let cands: Vec<SampleId> = (0..20).map(|i| SampleId(100 + i)).collect();
            let ctx = QueryContext::new(&cands, &scores);
            let s = TwoStep::new(Box::new(crate::MarginSampling), Box::new(KCenterGreedy), factor).unwrap();
            let q = s.select(&ctx, k, &mut seeded_rng(seed, 0)).unwrap();
            let mut rng = seeded_rng(seed, 0);
            let first = crate::MarginSampling.select(&ctx, factor * k, &mut rng).unwrap();
            let kept: Vec<usize> = first.picks.iter().map(|p| (p.id.0 - 100) as usize).collect();
            let sub_scores = restrict(&scores, &kept);
            let sub_cands: Vec<SampleId> = kept.iter().map(|&i| cands[i]).collect();
            let expected = KCenterGreedy.select(&QueryContext::new(&sub_cands, &sub_scores), k, &mut rng).unwrap();
            prop_assert_eq!(q.len(), k.min(20));
            prop_assert_eq!(q, expected);
        }
    }
}
