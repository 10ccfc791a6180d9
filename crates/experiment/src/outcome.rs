//! What runs produce: one run's result, a stream run's spending, a whole simulation's outcome —
//! the drivers write them, the reports read them.

use crate::rundir::FullPoolResult;
use quarry_core::{Pool, RoundRecord, SampleId, SampleState, StopReason};
use serde::{Deserialize, Serialize};

/// One finished (strategy, seed) run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub strategy: String,
    pub seed: u64,
    pub history: Vec<RoundRecord>,
    pub stop: StopReason,
    /// The labeled pool samples in labeling order, each with the round it was labeled in (round
    /// 0: the initial set); [`queried`] reads them off the run's final pool.
    pub queried: Vec<(SampleId, u32)>,
}

/// The labeled samples of `pool` in labeling order, with the round each was labeled in.
pub fn queried(pool: &Pool) -> Vec<(SampleId, u32)> {
    pool.labeled()
        .iter()
        .filter_map(|&id| match pool.state(id) {
            SampleState::Labeled { round, .. } => Some((id, round)),
            _ => None,
        })
        .collect()
}

/// How a stream run spent its labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStats {
    pub strategy: String,
    pub seed: u64,
    /// Samples in the stream (the pool less the initial set).
    pub stream_length: usize,
    /// Labels the stream could spend (`--budget` less the initial set).
    pub stream_budget: usize,
    pub arrivals_seen: usize,
    /// Labels queried from the stream (the initial set not counted).
    pub labels_spent: usize,
    /// Labels queried in each quarter of the stream (by arrival position): evenly paced spending
    /// puts about `stream_budget / 4` in each.
    pub quarters: [usize; 4],
}

/// What a finished simulation produced.
pub struct SimulationOutcome {
    pub runs: Vec<RunResult>,
    /// How each stream-based run (a `stream-*` strategy) spent its labels.
    pub streams: Vec<StreamStats>,
    pub full_pool: Vec<FullPoolResult>,
    pub wall_seconds: f64,
}
