//! The progress bar of a simulation.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

/// The progress bar: elapsed time, rounds done of at most this many, the time left at the
/// average rate so far, and the runs in progress.
///
/// The time left is (rounds left) × (seconds so far ÷ rounds so far), so the bar must count only
/// rounds run now: a run resumed from the run directory takes its saved rounds off the bar's
/// length (`bar.dec_length(n)`), it does not count them as done (`bar.inc(n)`) — they cost no
/// time, and as progress they would make the rate look far higher than it is ("1s left" for
/// 10 s). indicatif's own `{eta}` weighs the last few seconds, which swing with the strategy mix.
pub(crate) fn progress_style() -> ProgressStyle {
    // Two lines, so the runs in progress are not squeezed out by the bar on an 80-column terminal.
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rounds{left}\n  {wide_msg}")
        .expect("valid template")
        .with_key("left", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            if let Some(left) = time_left(state.pos(), state.len(), state.elapsed()) {
                let _ = write!(w, ", ~{} left", short_duration(left));
            }
        })
}

/// "45s", "3m 05s", "2h 07m".
fn short_duration(d: std::time::Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `elapsed × (len − pos) / pos`, once there is a rate to go by (a round done and a second gone).
fn time_left(pos: u64, len: Option<u64>, elapsed: std::time::Duration) -> Option<std::time::Duration> {
    let len = len?;
    if pos == 0 || elapsed < std::time::Duration::from_secs(1) {
        return None;
    }
    Some(elapsed.mul_f64(len.saturating_sub(pos) as f64 / pos as f64))
}

/// "running margin seed 0, entropy seeds 1, 2": the runs in progress, by strategy.
pub(crate) fn running_message(jobs: &[(String, u64)]) -> String {
    let mut by_strategy: Vec<(&str, Vec<u64>)> = Vec::new();
    for (name, seed) in jobs {
        match by_strategy.iter_mut().find(|(n, _)| n == name) {
            Some((_, seeds)) => seeds.push(*seed),
            None => by_strategy.push((name, vec![*seed])),
        }
    }
    let parts: Vec<String> = by_strategy
        .into_iter()
        .map(|(name, mut seeds)| {
            seeds.sort_unstable();
            let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
            format!("{name} seed{} {}", if seeds.len() == 1 { "" } else { "s" }, list.join(", "))
        })
        .collect();
    if parts.is_empty() { String::new() } else { format!("running {}", parts.join("; ")) }
}

/// The runs in progress, named on the bar's message.
pub(crate) struct Running<'b> {
    bar: &'b ProgressBar,
    runs: Mutex<Vec<(String, u64)>>,
}

impl<'b> Running<'b> {
    pub(crate) fn new(bar: &'b ProgressBar) -> Self {
        Running { bar, runs: Mutex::default() }
    }

    /// Name the run on the bar until the returned guard is dropped (however the run ends).
    pub(crate) fn start(&self, name: &str, seed: u64) -> RunGuard<'_, 'b> {
        self.change(|r| r.push((name.to_string(), seed)));
        RunGuard { running: self, name: name.to_string(), seed }
    }

    fn change(&self, f: impl FnOnce(&mut Vec<(String, u64)>)) {
        let mut r = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut r);
        self.bar.set_message(running_message(&r));
    }
}

/// A run named on the bar; dropping it takes the name off.
pub(crate) struct RunGuard<'r, 'b> {
    running: &'r Running<'b>,
    name: String,
    seed: u64,
}

impl Drop for RunGuard<'_, '_> {
    fn drop(&mut self) {
        let (name, seed) = (std::mem::take(&mut self.name), self.seed);
        self.running.change(|r| r.retain(|(n, s)| (n.as_str(), *s) != (name.as_str(), seed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn time_left_goes_by_the_average_rate_so_far() {
        // 10 of 40 rounds in 5 s: 30 more take 15 s.
        assert_eq!(time_left(10, Some(40), Duration::from_secs(5)), Some(Duration::from_secs(15)));
        assert_eq!(time_left(40, Some(40), Duration::from_secs(5)), Some(Duration::ZERO));
        assert_eq!(time_left(0, Some(40), Duration::from_secs(5)), None, "no rate yet");
        assert_eq!(time_left(3, Some(40), Duration::from_millis(200)), None, "too soon to say");
        assert_eq!(short_duration(Duration::from_millis(44_600)), "45s");
        assert_eq!(short_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(short_duration(Duration::from_secs(7620)), "2h 07m");
    }

    #[test]
    fn the_bar_names_the_runs_in_progress() {
        let jobs = |j: &[(&str, u64)]| j.iter().map(|&(n, s)| (n.to_string(), s)).collect::<Vec<_>>();
        assert_eq!(running_message(&[]), "");
        assert_eq!(running_message(&jobs(&[("margin", 0)])), "running margin seed 0");
        assert_eq!(running_message(&jobs(&[("entropy", 3), ("margin", 0), ("entropy", 1)])), "running entropy seeds 1, 3; margin seed 0");
    }
}
