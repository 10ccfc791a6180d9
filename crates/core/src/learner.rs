use crate::{Matrix, Probabilities, Result};

/// A model that learns from labeled samples and scores unlabeled ones.
///
/// `fit` trains on the labeled set given (a learner may start from its current weights — the
/// continuous fine-tuning of the loop — but the result of a converged convex fit does not depend
/// on that). Every learner is deterministic for a given input.
pub trait Learner: Send {
    fn name(&self) -> &str;
    /// Train on `x` `[n, dim]` with labels `y` in `0..n_classes`.
    fn fit(&mut self, x: &Matrix, y: &[u32], n_classes: usize) -> Result<()>;
    /// Class probabilities `[n, n_classes]` of `x`.
    fn predict_proba(&self, x: &Matrix) -> Result<Probabilities>;
    /// The learner's current state as bytes, saved with a run so a resumed run continues
    /// from exactly these weights (empty before the first fit).
    fn checkpoint(&self) -> Result<Vec<u8>>;
    /// Continue from a [`Learner::checkpoint`].
    fn restore(&mut self, bytes: &[u8]) -> Result<()>;
}
