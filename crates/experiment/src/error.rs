use std::path::PathBuf;
use thiserror::Error;

/// Errors of a simulation. Each names the setting, file or run directory at fault. A setting is
/// named as the library knows it (`batch`, `strategy`); the command line maps it to its flag.
#[derive(Debug, Error)]
pub enum ExperimentError {
    #[error(transparent)]
    Data(#[from] quarry_data::DataError),
    #[error(transparent)]
    Core(#[from] quarry_core::Error),
    #[error("{name}: {reason}")]
    Setting { name: &'static str, reason: String },
    #[error("{}: {reason}", path.display())]
    RunDir { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("run {strategy} seed {seed}: {source}")]
    Run { strategy: String, seed: u64, source: quarry_core::Error },
    #[error("{0}")]
    Plot(String),
}

pub type Result<T, E = ExperimentError> = std::result::Result<T, E>;

impl ExperimentError {
    /// The setting `name` (e.g. `batch`) is wrong for `reason`.
    pub fn setting(name: &'static str, reason: impl Into<String>) -> Self {
        ExperimentError::Setting { name, reason: reason.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExperimentError::Io { path: path.into(), source }
    }
}
