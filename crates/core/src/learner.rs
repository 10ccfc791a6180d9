use crate::{Error, Matrix, McSamples, Probabilities, Result};

/// A model that learns from labeled samples and scores unlabeled ones.
///
/// `fit` trains on the labeled set given (a learner may start from its current weights — the
/// continuous fine-tuning of the loop — but the result of a converged convex fit does not depend
/// on that). Every learner is deterministic for a given input.
pub trait Learner: Send + Sync {
    fn name(&self) -> &str;
    /// Train on `x` `[n, dim]` with labels `y` in `0..n_classes`.
    fn fit(&mut self, x: &Matrix, y: &[u32], n_classes: usize) -> Result<()>;
    /// Online mode: one update on just these newly labeled samples (one optimizer step on one
    /// minibatch for a network), never a refit on everything labeled so far.
    fn partial_fit(&mut self, _x: &Matrix, _y: &[u32], _n_classes: usize) -> Result<()> {
        Err(unsupported(self.name(), "online updates (use the refit training mode)"))
    }
    /// Whether the learner can score before any fit (a network with initialized weights can;
    /// a run may then start from zero labels).
    fn predicts_unfitted(&self) -> bool {
        false
    }
    /// Class probabilities `[n, n_classes]` of `x`.
    fn predict_proba(&self, x: &Matrix) -> Result<Probabilities>;
    /// The learner's current state as bytes, saved with a run so a resumed run continues
    /// from exactly these weights. One format for every learner: safetensors with metadata naming
    /// the learner and its settings (`quarry_models::checkpoint`), so a restore into another kind of
    /// learner is an error, not a silent mix.
    fn checkpoint(&self) -> Result<Vec<u8>>;
    /// Continue from a [`Learner::checkpoint`].
    fn restore(&mut self, bytes: &[u8]) -> Result<()>;
    /// An independent copy in the same state.
    fn boxed_clone(&self) -> Box<dyn Learner>;
    /// A copy for hypothetical refits (expected error / variance reduction refit once per
    /// candidate and label). One extra label moves a fit little, so a learner may trade precision
    /// for speed here, e.g. a looser convergence tolerance. Defaults to [`Learner::boxed_clone`].
    fn what_if_clone(&self) -> Box<dyn Learner> {
        self.boxed_clone()
    }

    /// The input of the last layer, `[n, dim]` (for a linear model: the features themselves).
    fn embed(&self, _x: &Matrix) -> Result<Matrix> {
        Err(unsupported(self.name(), "embeddings"))
    }
    /// The gradient of the loss w.r.t. the last layer's weights at the predicted label
    /// (BADGE, Ash et al. 2020): row `i` is `(pᵢ − onehot(ŷᵢ)) ⊗ embedᵢ`, `[n, classes·dim]`.
    fn gradient_embedding(&self, _x: &Matrix) -> Result<Matrix> {
        Err(unsupported(self.name(), "gradient embeddings"))
    }
    /// `draws` stochastic forward passes (MC dropout), `[draws, n, classes]`, seeded.
    fn mc_samples(&self, _x: &Matrix, _draws: usize, _seed: u64) -> Result<McSamples> {
        Err(unsupported(self.name(), "Monte-Carlo dropout samples (it has no dropout)"))
    }
    /// Each committee member's probabilities (a committee learner, e.g. bagging).
    fn committee(&self, _x: &Matrix) -> Result<Vec<Probabilities>> {
        Err(unsupported(self.name(), "committee probabilities (it is not a committee)"))
    }
}

fn unsupported(learner: &str, what: &str) -> Error {
    Error::Other(format!("model {learner} cannot produce {what}"))
}
