//! Shared by the EfficientNet-Lite0 P3 benches.

/// CPU time this process has run so far, summed over its threads (Linux `schedstat`, nanoseconds);
/// `None` where that is not available.
pub fn cpu_seconds() -> Option<f64> {
    let mut total_ns: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total_ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total_ns as f64 * 1e-9)
}
