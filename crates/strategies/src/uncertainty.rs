//! Uncertainty sampling (Lewis & Gale 1994; Settles 2009 §3.1): query the candidates the current
//! model is least sure about, read off its class probabilities `[n, classes]`.
//! Each strategy is a score function (higher = more uncertain) plus the shared top-k selector.

use crate::select::scored_strategy;
use quarry_core::Needs;

/// The two largest entries of a probability row.
fn top_two(p: &[f32]) -> (f64, f64) {
    let (mut a, mut b) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for &v in p {
        let v = v as f64;
        if v > a {
            b = a;
            a = v;
        } else if v > b {
            b = v;
        }
    }
    (a, if b.is_finite() { b } else { 0.0 })
}

/// 1 − max p: how far the most likely class is from certainty.
pub fn least_confidence_score(p: &[f32]) -> f64 {
    1.0 - top_two(p).0
}

/// 1 − (p₁ − p₂): highest where the two most likely classes are closest (Scheffer et al. 2001).
pub fn margin_score(p: &[f32]) -> f64 {
    let (a, b) = top_two(p);
    1.0 - (a - b)
}

/// Shannon entropy −Σ p ln p in nats (0 ln 0 = 0) (Shannon 1948; Settles & Craven 2008).
pub fn entropy_score(p: &[f32]) -> f64 {
    p.iter().filter(|&&v| v > 0.0).map(|&v| -(v as f64) * (v as f64).ln()).sum()
}

/// 1 − (max p − min p): the "confidence gap" of the online CNN demo (P2), highest when the
/// prediction is flat across all classes.
pub fn confidence_gap_score(p: &[f32]) -> f64 {
    let mx = p.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mn = p.iter().cloned().fold(f32::INFINITY, f32::min) as f64;
    1.0 - (mx - mn)
}

scored_strategy!(
    /// Least-confidence sampling: the smallest top probability first.
    LeastConfidence,
    "least-confidence",
    Needs::PROBABILITIES,
    |ctx, name| ctx.scores.probabilities(name)?.rows().map(least_confidence_score).collect()
);
scored_strategy!(
    /// Margin sampling: the smallest gap between the two most likely classes first.
    MarginSampling,
    "margin",
    Needs::PROBABILITIES,
    |ctx, name| ctx.scores.probabilities(name)?.rows().map(margin_score).collect()
);
scored_strategy!(
    /// Entropy sampling: the highest predictive entropy first.
    EntropySampling,
    "entropy",
    Needs::PROBABILITIES,
    |ctx, name| ctx.scores.probabilities(name)?.rows().map(entropy_score).collect()
);
scored_strategy!(
    /// Confidence-gap sampling: the smallest max − min probability first (the P2 demo's rule).
    ConfidenceGap,
    "confidence-gap",
    Needs::PROBABILITIES,
    |ctx, name| ctx.scores.probabilities(name)?.rows().map(confidence_gap_score).collect()
);

pub(crate) fn entries() -> Vec<crate::Entry> {
    vec![
        crate::Entry {
            name: "least-confidence",
            aliases: &["least-confident", "uncertainty"],
            family: "uncertainty",
            paper: "Lewis & Gale, SIGIR 1994; Settles, AL literature survey 2009",
            summary: "lowest top-class probability first",
            build: |_| Ok(Box::new(LeastConfidence)),
        },
        crate::Entry {
            name: "margin",
            aliases: &["margin-sampling"],
            family: "uncertainty",
            paper: "Scheffer, Decomain & Wrobel, IDA 2001",
            summary: "smallest gap between the two most likely classes first",
            build: |_| Ok(Box::new(MarginSampling)),
        },
        crate::Entry {
            name: "entropy",
            aliases: &[],
            family: "uncertainty",
            paper: "Settles & Craven, EMNLP 2008 (Shannon entropy of the prediction)",
            summary: "highest predictive entropy first",
            build: |_| Ok(Box::new(EntropySampling)),
        },
        crate::Entry {
            name: "confidence-gap",
            aliases: &[],
            family: "uncertainty",
            paper: "the online CNN demo of BENCHMARK.md P2",
            summary: "smallest max − min probability first",
            build: |_| Ok(Box::new(ConfidenceGap)),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_core::{QueryContext, ScoreKind, Strategy};
    use crate::test_support::prob_rows;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{Probabilities, SampleId, Scores, seeded_rng};

    fn run(s: &dyn Strategy, rows: &[&[f32]], k: usize) -> Vec<u32> {
        let probs = Probabilities::from_rows(rows).unwrap();
        let cands: Vec<SampleId> = (0..rows.len()).map(SampleId::from).collect();
        let scores = Scores::default().with(ScoreKind::Probabilities, probs);
        let ctx = QueryContext::new(&cands, &scores);
        s.select(&ctx, k, &mut seeded_rng(0, 0)).unwrap().ids().iter().map(|i| i.0).collect()
    }

    /// Hand-computed: rows A = (0.5, 0.4, 0.1), B = (0.6, 0.2, 0.2), C = (0.4, 0.35, 0.25).
    /// least confidence: A 0.5, B 0.4, C 0.6 → C, A, B.
    /// margin 1−(p1−p2): A 0.9, B 0.6, C 0.95 → C, A, B.
    /// entropy: A 0.9433, B 0.9503, C 1.0805 → C, B, A (B beats A although A has the smaller margin).
    /// gap 1−(max−min): A 0.6, B 0.6, C 0.85 → C first, A/B tie.
    #[test]
    fn hand_computed_rankings() {
        let rows: &[&[f32]] = &[&[0.5, 0.4, 0.1], &[0.6, 0.2, 0.2], &[0.4, 0.35, 0.25]];
        assert_eq!(run(&LeastConfidence, rows, 3), vec![2, 0, 1]);
        assert_eq!(run(&MarginSampling, rows, 3), vec![2, 0, 1]);
        assert_eq!(run(&EntropySampling, rows, 3), vec![2, 1, 0]);
        assert_eq!(run(&ConfidenceGap, rows, 1), vec![2]);
        assert!((entropy_score(rows[0]) - 0.943_348_6).abs() < 1e-6);
        assert!((entropy_score(rows[1]) - 0.950_270_8).abs() < 1e-6);
        assert!((margin_score(rows[0]) - 0.9).abs() < 1e-6);
        assert!((confidence_gap_score(rows[2]) - 0.85).abs() < 1e-6);
    }

    #[test]
    fn missing_probabilities_is_an_error_naming_the_strategy() {
        let scores = Scores::default();
        let cands = [SampleId(0)];
        let ctx = QueryContext::new(&cands, &scores);
        let err = MarginSampling.select(&ctx, 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(err.to_string().contains("margin"));
    }


    proptest! {
        /// Each strategy's first pick is a candidate with the extreme value of its criterion,
        /// and picks are distinct.
        #[test]
        fn first_pick_is_the_most_uncertain(rows in prob_rows(12, 4), k in 1usize..12) {
            let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
            type Check<'a> = (&'a dyn Strategy, fn(&[f32]) -> f64);
            let checks: [Check<'_>; 4] = [
                (&LeastConfidence, least_confidence_score),
                (&MarginSampling, margin_score),
                (&EntropySampling, entropy_score),
                (&ConfidenceGap, confidence_gap_score),
            ];
            for (s, f) in checks {
                let picks = run(s, &refs, k);
                prop_assert_eq!(picks.len(), k);
                let mut d = picks.clone(); d.sort(); d.dedup();
                prop_assert_eq!(d.len(), k);
                let best = refs.iter().map(|r| f(r)).fold(f64::NEG_INFINITY, f64::max);
                prop_assert!((f(refs[picks[0] as usize]) - best).abs() < 1e-12);
                // Scores are non-increasing along the batch.
                for w in picks.windows(2) {
                    prop_assert!(f(refs[w[0] as usize]) >= f(refs[w[1] as usize]) - 1e-12);
                }
            }
        }

        /// Margin picks the sample whose top two probabilities are closest.
        #[test]
        fn margin_picks_closest_top_two(rows in prob_rows(8, 3)) {
            let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
            let pick = run(&MarginSampling, &refs, 1)[0] as usize;
            let gap = |r: &[f32]| { let mut s = r.to_vec(); s.sort_by(|a, b| b.total_cmp(a)); (s[0] - s[1]) as f64 };
            let min_gap = refs.iter().map(|r| gap(r)).fold(f64::INFINITY, f64::min);
            prop_assert!((gap(refs[pick]) - min_gap).abs() < 1e-6);
        }

        /// Entropy is bounded by ln k and reaches it only at the uniform distribution.
        #[test]
        fn entropy_is_at_most_log_k(rows in prob_rows(5, 6)) {
            for r in &rows { prop_assert!(entropy_score(r) <= (6f64).ln() + 1e-9); }
            let u = [1.0f32 / 6.0; 6];
            prop_assert!((entropy_score(&u) - (6f64).ln()).abs() < 1e-6);
        }
    }

    #[test]
    fn certain_predictions_score_zero() {
        let one_hot = [0.0f32, 1.0, 0.0];
        assert_eq!(least_confidence_score(&one_hot), 0.0);
        assert_eq!(margin_score(&one_hot), 0.0);
        assert_eq!(entropy_score(&one_hot), 0.0);
        assert_eq!(confidence_gap_score(&one_hot), 0.0);
    }
}
