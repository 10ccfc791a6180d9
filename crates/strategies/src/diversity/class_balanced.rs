//! Margin sampling with per-class caps on the predicted label.

use super::{check_rows, rank_rows};
use crate::uncertainty::margin_score;
use quarry_core::{Needs, Pick, QuarryRng, Query, QueryContext, Result, Strategy};

/// Margin sampling with per-class caps: candidates in margin order (`1 − (p₁ − p₂)`, highest
/// first), at most `ceil(k / classes)` per predicted class; when the caps leave the batch short,
/// the best skipped candidates fill it regardless of class.
///
/// Setting: imbalanced pools, where plain margin sampling tends to spend a whole batch near one
/// decision boundary. The caps use the predicted (argmax) class, as no label is known yet.
/// Each pick's score is its margin score; capped picks come first, fill-ups after them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassBalancedMargin;

impl Strategy for ClassBalancedMargin {
    fn name(&self) -> &str {
        "class-balanced"
    }
    fn needs(&self) -> Needs {
        Needs::PROBABILITIES
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let probs = ctx.scores.probabilities(self.name())?;
        check_rows(self.name(), "probabilities", probs.len(), ctx.candidates.len())?;
        let margin: Vec<f64> = probs.rows().map(margin_score).collect();
        let predicted = probs.argmax();
        let k = k.min(margin.len());
        let cap = k.div_ceil(probs.n_classes());
        let mut per_class = vec![0usize; probs.n_classes()];
        let (mut picks, mut skipped) = (Vec::with_capacity(k), Vec::new());
        for i in rank_rows(&margin, margin.len(), rng) {
            if picks.len() == k {
                break;
            }
            let c = predicted[i] as usize;
            if per_class[c] < cap {
                per_class[c] += 1;
                picks.push(i);
            } else {
                skipped.push(i);
            }
        }
        let short = k - picks.len();
        picks.extend(skipped.into_iter().take(short));
        Ok(Query { picks: picks.into_iter().map(|i| Pick { id: ctx.candidates[i], score: margin[i] }).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::testing::{distinct, rows_of};
    use crate::test_support::{ids, prob_rows};
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{Probabilities, ScoreKind, Scores, seeded_rng};

    fn balanced(rows: &[&[f32]], k: usize) -> Vec<usize> {
        let cands = ids(rows.len());
        let scores = Scores::default().with(ScoreKind::Probabilities, Probabilities::from_rows(rows).unwrap());
        rows_of(&ClassBalancedMargin.select(&QueryContext::new(&cands, &scores), k, &mut seeded_rng(0, 0)).unwrap())
    }

    /// Margins: rows 0–2 predict class 0 with scores 1.0, 0.9, 0.8; row 3 class 1 (0.4); row 4
    /// class 2 (0.2). k = 3, cap 1: row 0, then rows 3 and 4 instead of rows 1 and 2. With every
    /// row predicting class 0, the caps leave the batch short and the next best fill it.
    #[test]
    fn class_balanced_hand_computed() {
        let rows: &[&[f32]] = &[&[0.5, 0.5, 0.0], &[0.55, 0.45, 0.0], &[0.6, 0.4, 0.0], &[0.2, 0.7, 0.1], &[0.05, 0.05, 0.9]];
        assert_eq!(balanced(rows, 3), vec![0, 3, 4]);
        // k = 4, cap 2: rows 0 and 1 for class 0, then 3 and 4.
        assert_eq!(balanced(rows, 4), vec![0, 1, 3, 4]);
        let same: &[&[f32]] = &[&[0.5, 0.5, 0.0], &[0.55, 0.45, 0.0], &[0.6, 0.4, 0.0], &[0.9, 0.1, 0.0]];
        assert_eq!(balanced(same, 3), vec![0, 1, 2]);
        let cands = ids(2);
        let scores = Scores::default().with(ScoreKind::Probabilities, Probabilities::from_rows(&[&[0.5, 0.5]]).unwrap());
        let e = ClassBalancedMargin.select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("class-balanced"), "{e}");
    }

    proptest! {
        /// No predicted class exceeds ceil(k / classes) when the other classes have enough
        /// candidates to fill the batch; the batch is always full and distinct.
        #[test]
        fn class_balanced_respects_the_caps(rows in prob_rows(25, 4), k in 1usize..25) {
            let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
            let picks = balanced(&refs, k);
            prop_assert_eq!(picks.len(), k);
            prop_assert!(distinct(&picks));
            let pred = Probabilities::from_rows(&refs).unwrap().argmax();
            let cap = k.div_ceil(4);
            let mut available = [0usize; 4];
            pred.iter().for_each(|&c| available[c as usize] += 1);
            if available.iter().map(|&a| a.min(cap)).sum::<usize>() >= k {
                let mut taken = [0usize; 4];
                picks.iter().for_each(|&i| taken[pred[i] as usize] += 1);
                prop_assert!(taken.iter().all(|&t| t <= cap), "{:?} cap {}", taken, cap);
            }
        }
    }
}
