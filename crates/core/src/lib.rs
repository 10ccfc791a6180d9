//! quarry-core: the vocabulary of the active-learning loop.
//!
//! Data flows one way: a [`Pool`] of samples is scored by a [`Learner`] into [`Scores`], a
//! [`Strategy`] turns scores into a [`Query`], an [`Oracle`] answers labels, the learner updates,
//! and a [`StoppingRule`] reads the history. A [`Session`] is that loop, driven from outside:
//! `query` → answers → `teach`, until `should_stop`. This crate holds no ML framework: only the types that
//! every other crate agrees on, and the traits they implement.

pub mod dataset;
pub mod error;
pub mod ids;
pub mod learner;
pub mod linalg;
pub mod matrix;
pub mod metrics;
pub mod oracle;
pub mod pool;
pub mod rng;
pub mod scores;
pub mod session;
pub mod simd;
pub mod stopping;
pub mod strategy;

pub use dataset::Dataset;
pub use error::{Error, Result};
pub use ids::SampleId;
pub use learner::Learner;
pub use matrix::Matrix;
pub use oracle::{GroundTruthOracle, Oracle};
pub use pool::{Pool, SampleState};
pub use rng::{QuarryRng, seeded_rng};
pub use scores::{McSamples, Needs, Probabilities, RowsOf, Score, ScoreKind, ScoreValue, Scores};
pub use session::{Answer, Augment, LearnerScores, ScoreProvider, ScoreRequest, Session, SessionSettings, SessionState};
pub use stopping::{BudgetRule, RestUnlabelable, RoundRecord, RoundStats, StopNeeds, StopReason, StopView, StoppingRule};
pub use strategy::{Pick, Query, QueryContext, Strategy, WhatIf, random_batch};
