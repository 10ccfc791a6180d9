use quarry_core::{Needs, QuarryRng, Query, QueryContext, Result, Strategy};

/// Uniform random sampling: the baseline every other strategy is measured against.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomSampling;

pub(crate) fn entries() -> Vec<crate::Entry> {
    vec![crate::Entry {
        name: "random",
        aliases: &[],
        family: "baseline",
        paper: "—",
        summary: "uniform over the unlabeled pool; the baseline every strategy is measured against",
        build: |_| Ok(Box::new(RandomSampling)),
    }]
}

impl Strategy for RandomSampling {
    fn name(&self) -> &str {
        "random"
    }
    fn needs(&self) -> Needs {
        Needs::NOTHING
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        quarry_core::strategy::random_batch(ctx, k, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_core::{SampleId, Scores, seeded_rng};

    #[test]
    fn picks_distinct_candidates_reproducibly() {
        let cands: Vec<SampleId> = (0..100).map(|i| SampleId(i * 2)).collect();
        let scores = Scores::default();
        let ctx = QueryContext::new(&cands, &scores);
        let a = RandomSampling.select(&ctx, 30, &mut seeded_rng(7, 1)).unwrap();
        let b = RandomSampling.select(&ctx, 30, &mut seeded_rng(7, 1)).unwrap();
        assert_eq!(a, b);
        let mut ids = a.ids();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 30);
        assert!(ids.iter().all(|id| id.0 % 2 == 0));
        assert_eq!(RandomSampling.select(&ctx, 500, &mut seeded_rng(7, 1)).unwrap().len(), 100);
    }
}
