use crate::{Needs, Probabilities, QuarryRng, Result, SampleId, Scores};
use rand::seq::index::sample;

/// Everything a strategy may look at for one query: the candidate ids (row `i` of every score
/// is candidate `i`), their scores, and the ids already labeled.
pub struct QueryContext<'a> {
    pub candidates: &'a [SampleId],
    pub scores: &'a Scores,
    pub labeled: &'a [SampleId],
    /// The labels of `labeled`, in the same order (empty when the caller has none, e.g. tests).
    pub labeled_labels: &'a [u32],
    /// Present when the strategy [`Needs::what_if`](crate::Needs): refits with a hypothetical label.
    pub what_if: Option<&'a dyn WhatIf>,
}

impl<'a> QueryContext<'a> {
    /// A context with only candidates and scores (tests, scores brought from elsewhere).
    pub fn new(candidates: &'a [SampleId], scores: &'a Scores) -> Self {
        QueryContext { candidates, scores, labeled: &[], labeled_labels: &[], what_if: None }
    }

    pub fn what_if(&self, strategy: &str) -> Result<&'a dyn WhatIf> {
        self.what_if.ok_or_else(|| crate::Error::Other(format!("strategy {strategy} needs a model it can refit, none was given")))
    }
}

/// "What if this candidate had this label?": the model refit on the labeled set plus one
/// hypothetical label, scored on the query's candidates. Expected error reduction and
/// variance reduction (Roy & McCallum 2001; Cohn et al. 1996) are built on it.
pub trait WhatIf: Sync {
    /// Probabilities `[candidates, classes]` after adding candidate `candidate` (an index into
    /// the query's candidates) with `label` to the labeled set and refitting.
    fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities>;
}

/// One chosen sample and the strategy's score for it (higher = more wanted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub id: SampleId,
    pub score: f64,
}

/// What a strategy returns: the chosen samples, best first. Always this one type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub picks: Vec<Pick>,
}

impl Query {
    pub fn ids(&self) -> Vec<SampleId> {
        self.picks.iter().map(|p| p.id).collect()
    }
    pub fn len(&self) -> usize {
        self.picks.len()
    }
    pub fn is_empty(&self) -> bool {
        self.picks.is_empty()
    }
}

/// A query strategy: a pure function of scores to a batch of distinct candidates.
pub trait Strategy: Send + Sync {
    /// The name `--strategy` takes.
    fn name(&self) -> &str;
    /// The scores this strategy reads; the loop computes only these.
    fn needs(&self) -> Needs;
    /// Whether a query over `candidates` candidates of `classes` classes can run at all (a
    /// strategy that refits once per candidate and class refuses beyond its limit). Checked
    /// before a run starts, so what cannot run is refused before anything is written.
    fn check_scale(&self, _candidates: usize, _classes: usize) -> Result<()> {
        Ok(())
    }
    /// Choose `k` distinct candidates (fewer only if fewer candidates exist), best first.
    /// `rng` breaks ties and drives any randomness, so a seed fixes the result.
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query>;
}

/// `k` distinct candidates uniformly at random (all of them if fewer): random sampling, the
/// baseline, and a session's warm-up queries.
pub fn random_batch(ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
    let n = ctx.candidates.len();
    let picks = sample(rng, n, k.min(n)).into_iter().map(|i| Pick { id: ctx.candidates[i], score: 0.0 }).collect();
    Ok(Query { picks })
}

/// A borrowed strategy is a strategy: one resolved once (in a run's plan) drives many sessions.
impl<S: Strategy + ?Sized> Strategy for &S {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn needs(&self) -> Needs {
        (**self).needs()
    }
    fn check_scale(&self, candidates: usize, classes: usize) -> Result<()> {
        (**self).check_scale(candidates, classes)
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        (**self).select(ctx, k, rng)
    }
}
