//! Query by committee (Seung, Opper & Sompolinsky 1992; Settles 2009 §3.2): several models
//! trained on the same labels (here a bagged committee, Abe & Mamitsuka 1998) each give class
//! probabilities `[n, classes]` for the candidates, and the candidates they disagree on most are
//! queried. Each strategy is a score function of one candidate's committee (higher = more
//! disagreement) plus the shared top-k selector.
//!
//! Votes are the members' most probable classes, the lowest class index on exact ties (the
//! [`Probabilities::argmax`] convention).

use crate::select::scored_strategy;
use crate::uncertainty::entropy_score;
use quarry_core::{Error, Needs, Probabilities, QueryContext, Result, ScoreKind};

/// The committee a strategy reads, checked: at least 2 members, each `[candidates, classes]` with
/// the same number of classes.
fn checked_committee<'a>(ctx: &QueryContext<'a>, strategy: &str) -> Result<&'a [Probabilities]> {
    let members = ctx.scores.committee(strategy)?;
    if members.len() < 2 {
        return Err(Error::Other(format!(
            "strategy {strategy} needs a committee of at least 2 members, got a committee of {}",
            members.len()
        )));
    }
    let classes = members[0].n_classes();
    for (m, p) in members.iter().enumerate() {
        if p.len() != ctx.candidates.len() || p.n_classes() != classes {
            return Err(Error::shape(
                format!("{strategy}: committee member {m}"),
                format!("{}x{classes} (candidates x classes)", ctx.candidates.len()),
                format!("{}x{}", p.len(), p.n_classes()),
            ));
        }
    }
    Ok(members)
}

/// Votes per class for each candidate, row-major `[n, classes]`: how many `members` have class
/// `c` as their most probable one for candidate `i`.
pub fn vote_counts(members: &[Probabilities]) -> Vec<u32> {
    let (n, classes) = members.first().map_or((0, 0), |m| (m.len(), m.n_classes()));
    let mut votes = vec![0u32; n * classes];
    for member in members {
        for (i, c) in member.argmax().into_iter().enumerate() {
            votes[i * classes + c as usize] += 1;
        }
    }
    votes
}

/// Vote entropy −Σ_c (V(c)/C) ln(V(c)/C) of one candidate's votes `V` (C = Σ V, the members):
/// 0 when every member votes the same class, ln C when C ≤ classes and every member votes a
/// different one (Dagan & Engelson 1995).
pub fn vote_entropy_score(votes: &[u32]) -> f64 {
    let members: u32 = votes.iter().sum();
    if members == 0 {
        return 0.0;
    }
    let c = members as f64;
    votes.iter().filter(|&&v| v > 0).map(|&v| -(v as f64 / c) * (v as f64 / c).ln()).sum()
}

/// 1 − (V₁ − V₂)/C for one candidate's votes: V₁ and V₂ are the two largest vote counts and C the
/// members. 1 when the committee's top two classes tie, 0 when it is unanimous (the vote margin of
/// Abe & Mamitsuka 1998, turned so that higher = more wanted).
pub fn vote_margin_score(votes: &[u32]) -> f64 {
    let members: u32 = votes.iter().sum();
    if members == 0 {
        return 0.0;
    }
    let (mut first, mut second) = (0u32, 0u32);
    for &v in votes {
        if v > first {
            second = first;
            first = v;
        } else if v > second {
            second = v;
        }
    }
    1.0 - (first - second) as f64 / members as f64
}

/// The members' mean distribution p̄ = (1/C) Σ_m p_m of one candidate (`rows`: one row per member).
fn consensus(rows: &[&[f32]]) -> Vec<f64> {
    let classes = rows.first().map_or(0, |r| r.len());
    let mut mean = vec![0f64; classes];
    for row in rows {
        for (m, &v) in mean.iter_mut().zip(row.iter()) {
            *m += v as f64;
        }
    }
    let c = rows.len().max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= c);
    mean
}

/// Consensus entropy H[p̄]: the entropy of the members' mean distribution for one candidate
/// (`rows`: one row per member) (Settles 2009 §3.2; modAL's `consensus_entropy_sampling`).
pub fn consensus_entropy_score(rows: &[&[f32]]) -> f64 {
    let mean: Vec<f32> = consensus(rows).into_iter().map(|v| v as f32).collect();
    entropy_score(&mean)
}

/// KL-divergence to the mean, (1/C) Σ_m KL(p_m ‖ p̄), for one candidate (`rows`: one row per
/// member) (McCallum & Nigam 1998). Terms with p_m(c) = 0 are 0; p̄(c) = 0 with p_m(c) > 0 cannot
/// happen since p̄ is the mean, but such a term would be skipped rather than give ∞/NaN. Clamped at
/// 0 against rounding: 0 exactly when all members agree.
pub fn kl_disagreement_score(rows: &[&[f32]]) -> f64 {
    let mean = consensus(rows);
    let mut total = 0f64;
    for row in rows {
        for (&p, &q) in row.iter().zip(&mean) {
            let p = p as f64;
            if p > 0.0 && q > 0.0 {
                total += p * (p / q).ln();
            }
        }
    }
    (total / rows.len().max(1) as f64).max(0.0)
}

/// One score per candidate from its member rows.
fn score_rows(members: &[Probabilities], score: fn(&[&[f32]]) -> f64) -> Vec<f64> {
    let n = members.first().map_or(0, |m| m.len());
    let mut rows: Vec<&[f32]> = Vec::with_capacity(members.len());
    (0..n)
        .map(|i| {
            rows.clear();
            rows.extend(members.iter().map(|m| m.row(i)));
            score(&rows)
        })
        .collect()
}

/// One score per candidate from its vote counts.
fn score_votes(members: &[Probabilities], score: fn(&[u32]) -> f64) -> Vec<f64> {
    let classes = members.first().map_or(1, |m| m.n_classes());
    vote_counts(members).chunks_exact(classes).map(score).collect()
}



scored_strategy!(
    /// Query by committee with vote entropy (Dagan & Engelson, ICML 1995): the candidates whose
    /// members' hard votes are spread most evenly over the classes first. Assumes a committee of
    /// ≥ 2 members that are each a plausible hypothesis given the labels (e.g. bagged learners);
    /// it ignores how confident each vote is.
    VoteEntropy,
    "qbc-vote-entropy",
    Needs::of(&[ScoreKind::Committee]),
    |ctx, name| score_votes(checked_committee(ctx, name)?, vote_entropy_score)
);
scored_strategy!(
    /// Query by committee with consensus entropy (Settles 2009 survey §3.2; modAL): the highest
    /// entropy of the members' averaged distribution first. Uses the soft probabilities, so it
    /// also picks candidates where every member is unsure although they agree.
    ConsensusEntropy,
    "qbc-consensus-entropy",
    Needs::of(&[ScoreKind::Committee]),
    |ctx, name| score_rows(checked_committee(ctx, name)?, consensus_entropy_score)
);
scored_strategy!(
    /// Query by committee with KL-divergence to the mean (McCallum & Nigam, ICML 1998): the
    /// largest mean KL(p_m ‖ p̄) first — the members disagree, rather than all being unsure.
    KlDisagreement,
    "qbc-kl",
    Needs::of(&[ScoreKind::Committee]),
    |ctx, name| score_rows(checked_committee(ctx, name)?, kl_disagreement_score)
);
scored_strategy!(
    /// Query by bagging (Abe & Mamitsuka, ICML 1998): the committee is the learner trained on
    /// bootstrap resamples of the labeled set (the loop builds it so), and the candidates with the
    /// smallest vote margin — top vote count minus second, over the committee size — come first;
    /// the score is 1 − margin.
    QueryByBagging,
    "query-by-bagging",
    Needs::of(&[ScoreKind::Committee]),
    |ctx, name| score_votes(checked_committee(ctx, name)?, vote_margin_score)
);

pub(crate) fn entries() -> Vec<crate::Entry> {
    vec![
        crate::Entry {
            name: "qbc-vote-entropy",
            aliases: &["vote-entropy"],
            family: "committee",
            paper: "Dagan & Engelson, ICML 1995 (committee-based sampling)",
            summary: "entropy of the committee's hard votes; needs ≥ 2 members (bagged learner)",
            build: |_| Ok(Box::new(VoteEntropy)),
        },
        crate::Entry {
            name: "qbc-consensus-entropy",
            aliases: &["consensus-entropy"],
            family: "committee",
            paper: "Settles, AL literature survey 2009 §3.2; modAL consensus entropy",
            summary: "entropy of the members' mean distribution; needs ≥ 2 members",
            build: |_| Ok(Box::new(ConsensusEntropy)),
        },
        crate::Entry {
            name: "qbc-kl",
            aliases: &["kl-disagreement", "qbc-kl-divergence"],
            family: "committee",
            paper: "McCallum & Nigam, ICML 1998",
            summary: "mean KL divergence of each member from the consensus; needs ≥ 2 members",
            build: |_| Ok(Box::new(KlDisagreement)),
        },
        crate::Entry {
            name: "query-by-bagging",
            aliases: &["qbb"],
            family: "committee",
            paper: "Abe & Mamitsuka, ICML 1998",
            summary: "smallest vote margin of a bagged committee first (score 1 − margin)",
            build: |_| Ok(Box::new(QueryByBagging)),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_core::Strategy;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{SampleId, Scores, seeded_rng};

    /// `members[m][i]` is member m's row for candidate i.
    fn committee(members: &[Vec<Vec<f32>>]) -> Vec<Probabilities> {
        members
            .iter()
            .map(|rows| Probabilities::from_rows(&rows.iter().map(|r| r.as_slice()).collect::<Vec<_>>()).unwrap())
            .collect()
    }

    fn run(s: &dyn Strategy, members: Vec<Probabilities>, k: usize) -> Vec<u32> {
        let n = members[0].len();
        let cands: Vec<SampleId> = (0..n).map(SampleId::from).collect();
        let scores = Scores::default().with(ScoreKind::Committee, members);
        let ctx = QueryContext::new(&cands, &scores);
        s.select(&ctx, k, &mut seeded_rng(0, 0)).unwrap().ids().iter().map(|i| i.0).collect()
    }

    fn strategies() -> [&'static dyn Strategy; 4] {
        [&VoteEntropy, &ConsensusEntropy, &KlDisagreement, &QueryByBagging]
    }

    /// Hand-computed: 3 members × 3 candidates × 3 classes.
    ///
    /// | candidate | member 1        | member 2        | member 3        |
    /// |-----------|-----------------|-----------------|-----------------|
    /// | A         | (0.8, 0.1, 0.1) | (0.7, 0.2, 0.1) | (0.6, 0.3, 0.1) |
    /// | B         | (0.6, 0.4, 0.0) | (0.4, 0.6, 0.0) | (0.5, 0.5, 0.0) |
    /// | C         | (1.0, 0.0, 0.0) | (0.0, 1.0, 0.0) | (0.0, 0.0, 1.0) |
    ///
    /// Votes (lowest index on ties, so B's member 3 votes class 0): A (3,0,0), B (2,1,0), C (1,1,1).
    /// - vote entropy: A 0; B −⅔ln⅔ − ⅓ln⅓ = 0.636514; C ln 3 = 1.098612 → C, B, A.
    /// - vote margin score 1 − (V₁−V₂)/3: A 0; B ⅔; C 1 → C, B, A.
    /// - consensus p̄: A (0.7, 0.2, 0.1), H = 0.801819; B (0.5, 0.5, 0), H = ln 2 = 0.693147;
    ///   C (⅓, ⅓, ⅓), H = ln 3 → C, A, B (A's members agree but are all unsure).
    /// - KL to the mean: A ⅓[(0.8 ln(8/7) + 0.1 ln(1/2)) + 0 + (0.6 ln(6/7) + 0.3 ln(3/2))]
    ///   = ⅓[0.037510 + 0.029149] = 0.022220;
    ///   B ⅓[(0.6 ln 1.2 + 0.4 ln 0.8) + (0.4 ln 0.8 + 0.6 ln 1.2) + 0] = ⅓[2 × 0.020136] = 0.013424;
    ///   C ln 3 (each one-hot member is ln 3 from uniform) → C, A, B.
    #[test]
    fn hand_computed_three_members_three_candidates() {
        let members = committee(&[
            vec![vec![0.8, 0.1, 0.1], vec![0.6, 0.4, 0.0], vec![1.0, 0.0, 0.0]],
            vec![vec![0.7, 0.2, 0.1], vec![0.4, 0.6, 0.0], vec![0.0, 1.0, 0.0]],
            vec![vec![0.6, 0.3, 0.1], vec![0.5, 0.5, 0.0], vec![0.0, 0.0, 1.0]],
        ]);
        assert_eq!(vote_counts(&members), vec![3, 0, 0, 2, 1, 0, 1, 1, 1]);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let ve = score_votes(&members, vote_entropy_score);
        assert!(close(ve[0], 0.0) && close(ve[1], 0.636_514) && close(ve[2], 3f64.ln()), "{ve:?}");
        let qbb = score_votes(&members, vote_margin_score);
        assert!(close(qbb[0], 0.0) && close(qbb[1], 2.0 / 3.0) && close(qbb[2], 1.0), "{qbb:?}");
        let ce = score_rows(&members, consensus_entropy_score);
        assert!(close(ce[0], 0.801_819) && close(ce[1], 2f64.ln()) && close(ce[2], 3f64.ln()), "{ce:?}");
        let kl = score_rows(&members, kl_disagreement_score);
        assert!(close(kl[0], 0.022_220) && close(kl[1], 0.013_424) && close(kl[2], 3f64.ln()), "{kl:?}");

        assert_eq!(run(&VoteEntropy, members.clone(), 3), vec![2, 1, 0]);
        assert_eq!(run(&QueryByBagging, members.clone(), 3), vec![2, 1, 0]);
        assert_eq!(run(&ConsensusEntropy, members.clone(), 3), vec![2, 0, 1]);
        assert_eq!(run(&KlDisagreement, members, 3), vec![2, 0, 1]);
    }

    #[test]
    fn a_committee_of_one_is_an_error_naming_the_strategy() {
        let one = committee(&[vec![vec![0.5, 0.5]]]);
        let cands = [SampleId(0)];
        let scores = Scores::default().with(ScoreKind::Committee, one);
        let ctx = QueryContext::new(&cands, &scores);
        for s in strategies() {
            let err = s.select(&ctx, 1, &mut seeded_rng(0, 0)).unwrap_err().to_string();
            assert!(err.contains(s.name()) && err.contains("committee of 1"), "{err}");
        }
    }

    #[test]
    fn missing_or_misshapen_committee_is_an_error() {
        let cands = [SampleId(0), SampleId(1)];
        let none = Scores::default();
        let err = VoteEntropy.select(&QueryContext::new(&cands, &none), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(err.to_string().contains("qbc-vote-entropy"), "{err}");
        // Members scored one candidate, the query has two.
        let short =
            Scores::default().with(ScoreKind::Committee, committee(&[vec![vec![1.0, 0.0]], vec![vec![0.0, 1.0]]]));
        let err = KlDisagreement.select(&QueryContext::new(&cands, &short), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(err.to_string().contains("qbc-kl") && err.to_string().contains("member 0"), "{err}");
    }

    #[test]
    fn registry_names_resolve() {
        for (name, want) in [
            ("vote-entropy", "qbc-vote-entropy"),
            ("consensus-entropy", "qbc-consensus-entropy"),
            ("kl-disagreement", "qbc-kl"),
            ("qbc-kl-divergence", "qbc-kl"),
            ("qbb", "query-by-bagging"),
        ] {
            let s = crate::by_name(name).unwrap();
            assert_eq!(s.name(), want);
            assert!(s.needs().has(ScoreKind::Committee) && !s.needs().has(ScoreKind::Probabilities));
        }
    }

    /// `members × n × classes` rows, each a distribution with entries > 0.
    fn committees(
        members: std::ops::Range<usize>,
        n: usize,
        classes: usize,
    ) -> impl proptest::strategy::Strategy<Value = Vec<Vec<Vec<f32>>>> {
        use proptest::strategy::Strategy as _;
        let row = proptest::collection::vec(0.001f32..1.0, classes).prop_map(|r| {
            let s: f32 = r.iter().sum();
            r.into_iter().map(|v| v / s).collect::<Vec<f32>>()
        });
        proptest::collection::vec(proptest::collection::vec(row, n), members)
    }

    proptest! {
        /// Vote entropy is 0 when all members agree, ln C when C ≤ classes members all vote
        /// differently, ln r for an even split over r classes, and never above ln min(C, classes).
        #[test]
        fn vote_entropy_bounds(votes in proptest::collection::vec(0u32..6, 2..8), r in 1usize..6, per in 1u32..5) {
            let c: u32 = votes.iter().sum();
            let classes = votes.len();
            if c > 0 {
                let bound = (c.min(classes as u32) as f64).ln();
                prop_assert!(vote_entropy_score(&votes) <= bound + 1e-12);
                prop_assert!(vote_entropy_score(&votes) >= 0.0);
            }
            let mut unanimous = vec![0u32; classes];
            unanimous[classes - 1] = c.max(1);
            prop_assert_eq!(vote_entropy_score(&unanimous), 0.0);
            prop_assert_eq!(vote_margin_score(&unanimous), 0.0);
            let all_different = vec![1u32; classes];
            prop_assert!((vote_entropy_score(&all_different) - (classes as f64).ln()).abs() < 1e-12);
            let mut even = vec![per; r];
            even.extend([0, 0]);
            prop_assert!((vote_entropy_score(&even) - (r as f64).ln()).abs() < 1e-12);
            let tied_top_two = if r > 1 { 1.0 } else { 0.0 };
            prop_assert!((vote_margin_score(&even) - tied_top_two).abs() < 1e-12);
        }

        /// KL disagreement ≥ 0 always and 0 when every member gives the same rows; consensus
        /// entropy equals the entropy of the mean, and the two are tied by the generalized
        /// Jensen–Shannon identity H[p̄] = mean_m H[p_m] + mean_m KL(p_m ‖ p̄).
        #[test]
        fn kl_and_consensus_properties(members in committees(2..6, 6, 4)) {
            let probs = committee(&members);
            let kl = score_rows(&probs, kl_disagreement_score);
            let ce = score_rows(&probs, consensus_entropy_score);
            for i in 0..probs[0].len() {
                prop_assert!(kl[i] >= 0.0);
                let rows: Vec<&[f32]> = probs.iter().map(|m| m.row(i)).collect();
                let mean: Vec<f32> = (0..4).map(|c| rows.iter().map(|r| r[c] as f64).sum::<f64>() as f32 / rows.len() as f32).collect();
                prop_assert!((ce[i] - entropy_score(&mean)).abs() < 1e-5);
                let mean_h = rows.iter().map(|r| entropy_score(r)).sum::<f64>() / rows.len() as f64;
                prop_assert!((ce[i] - mean_h - kl[i]).abs() < 1e-5);
            }
            let agreeing = vec![members[0].clone(); members.len()];
            let agreeing = committee(&agreeing);
            prop_assert!(score_rows(&agreeing, kl_disagreement_score).iter().all(|&v| v == 0.0));
            prop_assert!(score_votes(&agreeing, vote_entropy_score).iter().all(|&v| v == 0.0));
            prop_assert!(score_votes(&agreeing, vote_margin_score).iter().all(|&v| v == 0.0));
        }

        /// Every strategy picks min(k, n) distinct candidates, best first.
        #[test]
        fn picks_are_distinct_and_ordered(members in committees(2..6, 10, 3), k in 1usize..14) {
            let probs = committee(&members);
            type Scorer = fn(&[Probabilities]) -> Vec<f64>;
            let checks: [(&dyn Strategy, Scorer); 4] = [
                (&VoteEntropy, |m| score_votes(m, vote_entropy_score)),
                (&ConsensusEntropy, |m| score_rows(m, consensus_entropy_score)),
                (&KlDisagreement, |m| score_rows(m, kl_disagreement_score)),
                (&QueryByBagging, |m| score_votes(m, vote_margin_score)),
            ];
            for (s, f) in checks {
                let picks = run(s, probs.clone(), k);
                prop_assert_eq!(picks.len(), k.min(10));
                let mut d = picks.clone(); d.sort(); d.dedup();
                prop_assert_eq!(d.len(), picks.len());
                let scores = f(&probs);
                for w in picks.windows(2) {
                    prop_assert!(scores[w[0] as usize] >= scores[w[1] as usize]);
                }
            }
        }
    }
}
