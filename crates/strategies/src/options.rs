//! Parameters shared by strategy families, checked once before a run starts.

use quarry_core::{Error, Result};

/// Strategy parameters with the defaults of the papers they come from. Build with
/// `StrategyOptions::default()` and set fields; [`StrategyOptions::check`] rejects bad values.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StrategyOptions {
    /// Information density exponent β (Settles & Craven 2008): uncertainty × similarity^β.
    pub beta: f64,
    /// Committee size for query-by-committee and query-by-bagging.
    pub committee_size: usize,
    /// Monte-Carlo dropout passes T for the Bayesian strategies.
    pub mc_draws: usize,
    /// Pre-filter factor of two-step strategies: keep the `prefilter × batch` most uncertain,
    /// then diversify (Zhdanov 2019 uses β = 10).
    pub prefilter: usize,
    /// AIFT: the fraction α of each candidate's patches kept by majority selection (paper: 1/4).
    #[serde(default = "default_aift_alpha")]
    pub aift_alpha: f64,
    /// AIFT: sample the batch from the top `ω × batch` ∝ score instead of taking the top (paper's
    /// remedy for outliers); `None` takes the top.
    #[serde(default)]
    pub aift_sample_top: Option<usize>,
}

fn default_aift_alpha() -> f64 {
    0.25
}

impl Default for StrategyOptions {
    fn default() -> Self {
        StrategyOptions { beta: 1.0, committee_size: 5, mc_draws: 20, prefilter: 10, aift_alpha: 0.25, aift_sample_top: None }
    }
}

impl StrategyOptions {
    pub fn check(&self) -> Result<()> {
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return Err(Error::param("beta", format!("must be a number ≥ 0, got {}", self.beta)));
        }
        if self.committee_size < 2 {
            return Err(Error::param("committee-size", format!("a committee needs at least 2 members, got {}", self.committee_size)));
        }
        if self.mc_draws < 2 {
            return Err(Error::param("mc-draws", format!("MC estimates need at least 2 samples, got {}", self.mc_draws)));
        }
        if self.prefilter < 1 {
            return Err(Error::param("prefilter", "must be at least 1"));
        }
        Ok(())
    }
}
