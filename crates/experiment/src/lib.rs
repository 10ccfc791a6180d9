//! quarry-experiment: the simulation drivers of the session (pool, stream, synthesis), the
//! `quarry query` driver, evaluation, stopping rules, repeats over seeds, metrics,
//! run directories and reports.

pub mod config;
pub mod data;
pub mod error;
pub mod evaluate;
pub mod images;
pub mod initial;
pub mod learners;
pub mod labels;
pub mod metrics;
pub mod outcome;
pub mod patch_scores;
pub mod plan;
pub mod plot;
pub mod progress;
pub mod propose;
pub mod propose_table;
pub mod report;
pub mod npy;
pub mod rundir;
pub mod select;
pub mod simulate;
pub mod stopping;
pub mod stream;
pub mod synthesis;
pub mod synthesis_plot;

pub use evaluate::{EvalSchedule, Evaluator};
pub use initial::{initial_set, initial_set_kmeanspp};
pub use stopping::{BudgetRule, parse_rules, run_rules};
pub use config::{ModelKind, Named, ColdStart, CommitteeSpec, DataSpec, ExperimentConfig, ImageConfig, NetConfig, Scaling, TestSpec, parse_seeds};
pub use error::{ExperimentError, Result};
pub use plan::{Arm, Plan};
pub use outcome::{RunResult, SimulationOutcome, StreamStats};
pub use simulate::simulate;
