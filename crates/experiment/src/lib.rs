//! quarry-experiment: the simulation loop, oracles, stopping rules, repeats over seeds, metrics,
//! run directories and reports.

pub mod active_loop;
pub mod config;
pub mod error;
pub mod images;
pub mod metrics;
pub mod plot;
pub mod propose;
pub mod report;
pub mod rundir;
pub mod simulate;
pub mod stopping;
pub mod stream;
pub mod synthesis;
pub mod synthesis_plot;

pub use active_loop::{ActiveLoop, LoopSettings, LoopState, StepOutcome};
pub use stopping::{BudgetRule, parse_rules};
pub use config::{ColdStart, CommitteeSpec, DataSpec, ExperimentConfig, ImageConfig, NetConfig, Scaling, TestSpec, parse_seeds};
pub use error::{ExperimentError, Result};
pub use simulate::{SimulationOutcome, simulate};
