//! quarry-strategies: query strategies behind the one [`Strategy`](quarry_core::Strategy) trait.
//!
//! A strategy is split the baal way: a *score function* maps each candidate's scores to one
//! number (higher = more wanted), and a shared *selector* ([`select::top_k`]) turns numbers into a
//! batch with seeded tie-breaks. [`registry`] maps command-line names to strategies and documents
//! each one's family, needs and paper.

pub mod aift;
pub mod bayesian;
pub mod committee;
pub mod density;
pub mod diversity;
pub mod expected;
pub mod learned;
pub mod options;
pub mod random;
pub mod registry;
pub mod select;
pub mod stream;
pub mod synthesis;
#[cfg(test)]
mod test_support;
pub mod uncertainty;

pub use random::RandomSampling;
pub use options::StrategyOptions;
pub use registry::{Entry, ScenarioInfo, StrategyInfo, scenarios, UnknownStrategy, by_name, by_name_with, catalogue, normalize_name};
pub use uncertainty::{ConfidenceGap, EntropySampling, LeastConfidence, MarginSampling};
