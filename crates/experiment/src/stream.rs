//! The stream-based selective-sampling runner (being written).
