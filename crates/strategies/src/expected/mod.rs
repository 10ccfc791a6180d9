//! Expected model change and expected future loss (Settles 2009 §3.3–3.5): instead of asking how
//! unsure the model is about a candidate, ask what labeling it would *do* to the model.
//!
//! - [`ExpectedGradientLength`] (Settles, Craven & Ray 2008): how far one gradient step on the
//!   candidate would move the last layer, in expectation over its unknown label.
//! - [`ExpectedErrorReduction`] (Roy & McCallum 2001): refit with each possible label and estimate
//!   the error left on the unlabeled pool; the most expensive strategy quarry has.
//! - [`VarianceReduction`] (Cohn, Ghahramani & Jordan 1996; Schein & Ungar 2007): the output
//!   variance left on the pool after the candidate is labeled, from the Fisher information of a
//!   softmax last layer, without refitting.
//!
//! All three assume a softmax (multinomial logistic) last layer over an embedding, which is what
//! quarry's logistic regression is (its embedding is the feature vector itself). Each is a score
//! function (higher = more wanted) plus the shared top-k selector.
//!
//! One job per file: `gradient_length`, `error_reduction`, `variance_reduction`, and `dense`, the
//! small f64 linear algebra variance reduction runs on.

mod dense;
mod error_reduction;
mod gradient_length;
#[cfg(test)]
mod testing;
mod variance_reduction;

pub use error_reduction::{ExpectedErrorReduction, FutureLoss, MAX_REFITS};
pub use gradient_length::{ExpectedGradientLength, expected_gradient_length_score};
pub use variance_reduction::{MAX_PARAMETERS, VarianceReduction};

use quarry_core::{Error, Result};

/// Rows of one score must match what they are scored against; otherwise an error naming the
/// strategy and the score.
fn expect_rows(strategy: &str, what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::shape(format!("{what} given to strategy {strategy}"), format!("{want} rows"), format!("{got} rows")))
    }
}

pub(crate) fn entries() -> Vec<crate::Entry> {
    vec![
        crate::Entry {
            name: "expected-gradient-length",
            aliases: &["egl", "expected-model-change"],
            family: "expected",
            paper: "Settles, Craven & Ray, NIPS 2008 (expected gradient length)",
            summary: "largest expected norm of the last layer's loss gradient, Σ_y p(y|x)‖p − e_y‖·‖[emb, 1]‖",
            build: |_| Ok(Box::new(ExpectedGradientLength)),
        },
        crate::Entry {
            name: "expected-error-reduction",
            aliases: &["eer"],
            family: "expected",
            paper: "Roy & McCallum, ICML 2001",
            summary: "refit with every label of every candidate, least expected 0/1 error on the pool first \
                      (candidates × classes refits: use --candidates)",
            build: |_| Ok(Box::new(ExpectedErrorReduction::new())),
        },
        crate::Entry {
            name: "variance-reduction",
            aliases: &["fisher-information"],
            family: "expected",
            paper: "Cohn, Ghahramani & Jordan, JAIR 1996; Schein & Ungar, Machine Learning 2007",
            summary: "least pool output variance Σ tr(A_u (F + F_x)⁻¹) after labeling, from the softmax Fisher information \
                      ((dim + 1)·(classes − 1) ≤ 4,000)",
            build: |_| Ok(Box::new(VarianceReduction::new())),
        },
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn registered_names_and_needs() {
        for (name, alias, needs) in [
            ("expected-gradient-length", "egl", "probabilities+embeddings"),
            ("expected-gradient-length", "expected-model-change", "probabilities+embeddings"),
            ("expected-error-reduction", "eer", "probabilities+refit"),
            ("variance-reduction", "fisher-information", "probabilities+embeddings+labeled-embeddings+labeled-probabilities"),
        ] {
            let s = crate::by_name(alias).unwrap();
            assert_eq!(s.name(), name);
            assert_eq!(s.needs().describe(), needs);
        }
    }
}
