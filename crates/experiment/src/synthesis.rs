//! The membership-query-synthesis runner (being written).
