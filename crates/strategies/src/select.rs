//! Selectors: turn one number per candidate into a batch.

use quarry_core::{Pick, QuarryRng, Query, SampleId};
use rand::Rng;

/// The `k` candidates with the highest scores, best first. Ties are broken by a random key drawn
/// from `rng`, so equal scores do not favour low ids and a seed fixes the outcome.
/// NaN scores rank below every number.
pub fn top_k(candidates: &[SampleId], scores: &[f64], k: usize, rng: &mut QuarryRng) -> Query {
    assert_eq!(candidates.len(), scores.len(), "one score per candidate");
    let mut keyed: Vec<(f64, u64, usize)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (if s.is_nan() { f64::NEG_INFINITY } else { s }, rng.random::<u64>(), i))
        .collect();
    let k = k.min(keyed.len());
    if k == 0 {
        return Query::default();
    }
    let better = |a: &(f64, u64, usize), b: &(f64, u64, usize)| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1));
    if k < keyed.len() {
        keyed.select_nth_unstable_by(k - 1, better);
        keyed.truncate(k);
    }
    keyed.sort_unstable_by(better);
    Query { picks: keyed.into_iter().map(|(s, _, i)| Pick { id: candidates[i], score: s }).collect() }
}

/// A strategy that scores every candidate on its own and takes the `k` best through `top_k`:
/// `$scores` is an expression of `$ctx` (the query context) and `$name` (the strategy's name, for
/// error messages) giving one number per candidate, higher = more wanted; it may use `?`.
macro_rules! scored_strategy {
    ($(#[$doc:meta])* $ty:ident, $strategy:literal, $needs:expr, |$ctx:ident, $name:ident| $scores:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $ty;

        impl quarry_core::Strategy for $ty {
            fn name(&self) -> &str {
                $strategy
            }
            fn needs(&self) -> quarry_core::Needs {
                $needs
            }
            fn select(
                &self,
                $ctx: &quarry_core::QueryContext<'_>,
                k: usize,
                rng: &mut quarry_core::QuarryRng,
            ) -> quarry_core::Result<quarry_core::Query> {
                let $name: &str = $strategy;
                let scores: Vec<f64> = $scores;
                Ok($crate::select::top_k($ctx.candidates, &scores, k, rng))
            }
        }
    };
}
pub(crate) use scored_strategy;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ids;
    use quarry_core::seeded_rng;


    #[test]
    fn picks_highest_first() {
        let q = top_k(&ids(5), &[0.1, 0.9, 0.5, 0.7, 0.2], 3, &mut seeded_rng(0, 0));
        assert_eq!(q.ids(), vec![SampleId(1), SampleId(3), SampleId(2)]);
        assert_eq!(q.picks[0].score, 0.9);
    }

    #[test]
    fn ties_are_broken_by_the_seed_not_by_position() {
        let scores = vec![1.0; 50];
        let firsts: std::collections::HashSet<_> =
            (0..20).map(|s| top_k(&ids(50), &scores, 1, &mut seeded_rng(s, 0)).picks[0].id).collect();
        assert!(firsts.len() > 5, "tie-breaks should vary with the seed: {firsts:?}");
        let a = top_k(&ids(50), &scores, 10, &mut seeded_rng(3, 0));
        let b = top_k(&ids(50), &scores, 10, &mut seeded_rng(3, 0));
        assert_eq!(a, b);
    }

    #[test]
    fn k_larger_than_candidates_returns_all_and_nan_ranks_last() {
        let q = top_k(&ids(3), &[f64::NAN, 0.0, -1.0], 10, &mut seeded_rng(0, 0));
        assert_eq!(q.ids(), vec![SampleId(1), SampleId(2), SampleId(0)]);
    }
}
