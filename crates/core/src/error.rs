use thiserror::Error;

/// Errors of the core types. Every message says which value was wrong and what was expected.
#[derive(Debug, Error)]
pub enum Error {
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape { what: String, expected: String, got: String },
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: String, reason: String },
    #[error("probability row {row} sums to {sum} (expected 1 within 1e-4)")]
    NotAProbability { row: usize, sum: f64 },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn param(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter { name: name.into(), reason: reason.into() }
    }
    pub fn shape(what: impl Into<String>, expected: impl ToString, got: impl ToString) -> Self {
        Error::Shape { what: what.into(), expected: expected.to_string(), got: got.to_string() }
    }
}
