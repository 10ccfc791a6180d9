//! Stream-based selective sampling (Atlas, Cohn & Ladner 1990; Settles 2009 §2.2): samples arrive
//! one at a time, and for each the learner decides at once whether to ask for its label or let it
//! pass for good. A [`StreamPolicy`] makes that decision from the current model's uncertainty about
//! the arrival, under a labeling budget of `labels` over a stream of `arrivals` samples.
//!
//! Uncertainty is least confidence normalized to [0, 1]: `(1 − max p) / (1 − 1/K)` for K classes
//! (0 = certain, 1 = a flat prediction), so one threshold means the same for 2 and for 10 classes.
//!
//! Every policy keeps its whole state in plain fields ([`PolicyState`] serializes it), so a run can
//! be saved after any arrival and continued exactly; the random policy draws its coin for arrival t
//! from `(seed, t)` alone, so it too needs no generator state.

use crate::ScenarioInfo;
use quarry_core::{Error, Result, seeded_rng};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

const FAMILY: &str = "stream-based selective sampling";
/// Random stream of [`seeded_rng`] that the random policy's coins come from: `(STREAM_COIN << 32) | t`.
const STREAM_COIN: u64 = 0x5354;

/// What a policy sees of one arrival: the current model's prediction for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Least confidence normalized to [0, 1] by (1 − 1/K).
    pub uncertainty: f64,
    /// The largest class probability.
    pub max_posterior: f64,
}

impl Arrival {
    /// From one row of class probabilities.
    pub fn from_probabilities(p: &[f32]) -> Arrival {
        let max = p.iter().cloned().fold(0f32, f32::max) as f64;
        let k = p.len() as f64;
        let uncertainty = if p.len() > 1 { ((1.0 - max) / (1.0 - 1.0 / k)).clamp(0.0, 1.0) } else { 0.0 };
        Arrival { uncertainty, max_posterior: max }
    }

    /// An arrival with this normalized uncertainty and `k` classes (tests, hand-computed cases).
    pub fn with_uncertainty(uncertainty: f64, k: usize) -> Arrival {
        Arrival { uncertainty, max_posterior: 1.0 - uncertainty * (1.0 - 1.0 / k as f64) }
    }
}

/// The budget of a stream: at most `labels` queries over a stream of `arrivals` samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamBudget {
    pub labels: usize,
    pub arrivals: usize,
}

impl StreamBudget {
    /// The fraction of arrivals that may be labeled, B = labels / arrivals.
    pub fn rate(&self) -> f64 {
        if self.arrivals == 0 { 0.0 } else { self.labels as f64 / self.arrivals as f64 }
    }
}

/// Where a policy stands: arrivals decided so far and labels asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spending {
    pub budget: StreamBudget,
    pub seen: usize,
    pub spent: usize,
}

impl Spending {
    fn new(budget: StreamBudget) -> Self {
        Spending { budget, seen: 0, spent: 0 }
    }
    fn exhausted(&self) -> bool {
        self.spent >= self.budget.labels
    }
    /// Remaining labels ÷ remaining arrivals, the current one included (b_t).
    fn remaining_rate(&self) -> f64 {
        let left = self.budget.arrivals.saturating_sub(self.seen).max(1);
        self.budget.labels.saturating_sub(self.spent) as f64 / left as f64
    }
    fn record(&mut self, query: bool) -> bool {
        self.seen += 1;
        self.spent += query as usize;
        query
    }
}

/// Parameters of the stream policies (the papers' defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// `stream-fixed-uncertainty`: query when the normalized uncertainty is at least this.
    pub threshold: f64,
    /// `stream-variable-uncertainty`: the threshold's adjusting step s (Žliobaitė et al.: 0.01).
    pub step: f64,
    /// Window w: arrivals in the paced policy's quantile window, and the memory of the variable
    /// uncertainty policy's spending estimate (Žliobaitė et al.: λ = (w − 1)/w).
    pub window: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions { threshold: 0.5, step: 0.01, window: 100 }
    }
}

impl StreamOptions {
    pub fn is_default(&self) -> bool {
        *self == StreamOptions::default()
    }
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(Error::param("stream-threshold", format!("must lie in [0, 1], got {}", self.threshold)));
        }
        if !(self.step > 0.0 && self.step < 1.0) {
            return Err(Error::param("stream-step", format!("must lie in (0, 1), got {}", self.step)));
        }
        if self.window < 2 {
            return Err(Error::param("stream-window", format!("must be at least 2, got {}", self.window)));
        }
        Ok(())
    }
}

/// Decides, arrival by arrival, whether to query. Never asks for more than the budget's labels.
pub trait StreamPolicy: Send + Sync + std::fmt::Debug {
    /// The name `--strategy` takes.
    fn name(&self) -> &'static str;
    /// Query this arrival? Called once per arrival, in stream order.
    fn decide(&mut self, arrival: &Arrival) -> bool;
    fn spending(&self) -> Spending;
    /// The policy's whole state, to save with a run.
    fn save(&self) -> PolicyState;
}

/// The saved state of any policy; [`PolicyState::restore`] continues it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "kebab-case")]
pub enum PolicyState {
    Random(StreamRandom),
    FixedUncertainty(FixedUncertainty),
    VariableUncertainty(VariableUncertainty),
    Paced(PacedQuantile),
}

impl PolicyState {
    pub fn restore(self) -> Box<dyn StreamPolicy> {
        match self {
            PolicyState::Random(p) => Box::new(p),
            PolicyState::FixedUncertainty(p) => Box::new(p),
            PolicyState::VariableUncertainty(p) => Box::new(p),
            PolicyState::Paced(p) => Box::new(p),
        }
    }
}

/// The stream baseline: every arrival is queried with probability B = labels / arrivals,
/// drawn without replacement (Knuth's selection sampling, TAOCP vol. 2 Algorithm S: query with
/// probability remaining labels ÷ remaining arrivals), so the labels are a uniform random subset of
/// exactly `labels` arrivals, spread over the whole stream — a fixed-rate coin would over- or
/// under-spend by ±√(N·B(1−B)) labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRandom {
    pub spending: Spending,
    pub seed: u64,
}

impl StreamPolicy for StreamRandom {
    fn name(&self) -> &'static str {
        "stream-random"
    }
    fn decide(&mut self, _: &Arrival) -> bool {
        let p = self.spending.remaining_rate();
        let mut rng = seeded_rng(self.seed, (STREAM_COIN << 32) | self.spending.seen as u64);
        let query = !self.spending.exhausted() && rng.random::<f64>() < p;
        self.spending.record(query)
    }
    fn spending(&self) -> Spending {
        self.spending
    }
    fn save(&self) -> PolicyState {
        PolicyState::Random(self.clone())
    }
}

/// Fixed uncertainty (Žliobaitė et al. 2014, Alg. 2): query when the normalized uncertainty is at
/// least a fixed threshold, while labels remain. Spends wherever the model is unsure — typically
/// the whole budget early in the stream, before the model has learned much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedUncertainty {
    pub spending: Spending,
    pub threshold: f64,
}

impl StreamPolicy for FixedUncertainty {
    fn name(&self) -> &'static str {
        "stream-fixed-uncertainty"
    }
    fn decide(&mut self, a: &Arrival) -> bool {
        let query = !self.spending.exhausted() && a.uncertainty >= self.threshold;
        self.spending.record(query)
    }
    fn spending(&self) -> Spending {
        self.spending
    }
    fn save(&self) -> PolicyState {
        PolicyState::FixedUncertainty(self.clone())
    }
}

/// Variable uncertainty (Žliobaitė, Bifet, Pfahringer & Holmes, "Active Learning With Drifting
/// Streaming Data", IEEE TNNLS 25(1), 2014, Alg. 3). A threshold θ on the max posterior, starting
/// at 1: while the estimated spending b̂ is below the budget rate B, an arrival with max posterior
/// < θ is queried and θ ← θ(1 − s) (the region narrows); otherwise θ ← θ(1 + s) (it widens), so θ
/// follows the model's confidence and the labels keep coming. The spending estimate is theirs:
/// û ← û·(w − 1)/w + [queried], b̂ = û / w. Over budget (b̂ ≥ B), nothing is queried and θ stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableUncertainty {
    pub spending: Spending,
    pub step: f64,
    pub window: usize,
    pub theta: f64,
    /// û, the decayed count of recent queries.
    pub recent_queries: f64,
}

impl VariableUncertainty {
    pub fn new(budget: StreamBudget, step: f64, window: usize) -> Self {
        VariableUncertainty { spending: Spending::new(budget), step, window, theta: 1.0, recent_queries: 0.0 }
    }
    /// b̂, the estimated fraction of recent arrivals queried.
    pub fn spending_estimate(&self) -> f64 {
        self.recent_queries / self.window as f64
    }
}

impl StreamPolicy for VariableUncertainty {
    fn name(&self) -> &'static str {
        "stream-variable-uncertainty"
    }
    fn decide(&mut self, a: &Arrival) -> bool {
        let mut query = false;
        if !self.spending.exhausted() && self.spending_estimate() < self.spending.budget.rate() {
            if a.max_posterior < self.theta {
                self.theta *= 1.0 - self.step;
                query = true;
            } else {
                self.theta *= 1.0 + self.step;
            }
        }
        let w = self.window as f64;
        self.recent_queries = self.recent_queries * (w - 1.0) / w + query as u8 as f64;
        self.spending.record(query)
    }
    fn spending(&self) -> Spending {
        self.spending
    }
    fn save(&self) -> PolicyState {
        PolicyState::VariableUncertainty(self.clone())
    }
}

/// Budget-paced quantile filter, after Kottke, Krempl & Spiliopoulou's balanced incremental
/// quantile filter (IDA 2015): the threshold is the (1 − b_t) quantile of the uncertainties of the
/// last w arrivals, with b_t = remaining labels ÷ remaining arrivals corrected by the labels behind
/// (or ahead of) the even pace, spread over w arrivals (see [`PacedQuantile::pace`]). An arrival is queried when
/// fewer than b_t of the window are more uncertain than it (ties count half), so about a fraction
/// b_t of arrivals pass; falling behind raises b_t and lowers the threshold, running ahead does the
/// opposite, so the budget is spent evenly over the stream and on the more uncertain arrivals of
/// each stretch of it. When b_t ≥ 1 every arrival is queried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacedQuantile {
    pub spending: Spending,
    pub window: usize,
    /// Uncertainties of the last `window` arrivals, oldest first.
    pub recent: VecDeque<f64>,
}

impl PacedQuantile {
    pub fn new(budget: StreamBudget, window: usize) -> Self {
        PacedQuantile { spending: Spending::new(budget), window, recent: VecDeque::with_capacity(window) }
    }

    /// b_t: remaining labels ÷ remaining arrivals, plus the labels behind the even pace B·t
    /// spread over the next w arrivals (BIQF's balancing term), within [0, 1]. The first term alone
    /// corrects a lead or lag only over the rest of the stream: too slowly early on.
    pub fn pace(&self) -> f64 {
        let s = &self.spending;
        let behind = s.budget.rate() * s.seen as f64 - s.spent as f64;
        (s.remaining_rate() + behind / self.window as f64).clamp(0.0, 1.0)
    }
}

impl StreamPolicy for PacedQuantile {
    fn name(&self) -> &'static str {
        "stream-paced"
    }
    fn decide(&mut self, a: &Arrival) -> bool {
        let b = self.pace();
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(a.uncertainty);
        if self.spending.exhausted() {
            return self.spending.record(false);
        }
        if b >= 1.0 {
            return self.spending.record(true);
        }
        // Mid-rank of this arrival from the top: the window's more uncertain arrivals, ties
        // (itself excluded) counting half.
        let (mut above, mut ties) = (0usize, 0usize);
        for &v in &self.recent {
            if v > a.uncertainty {
                above += 1;
            } else if v == a.uncertainty {
                ties += 1;
            }
        }
        let rank = above as f64 + 0.5 * (ties - 1) as f64;
        self.spending.record(rank < b * self.recent.len() as f64)
    }
    fn spending(&self) -> Spending {
        self.spending
    }
    fn save(&self) -> PolicyState {
        PolicyState::Paced(self.clone())
    }
}

/// The stream policies, in catalogue order: (name, aliases).
pub const POLICIES: &[(&str, &[&str])] = &[
    ("stream-paced", &["paced", "stream-quantile"]),
    ("stream-variable-uncertainty", &["variable-uncertainty"]),
    ("stream-fixed-uncertainty", &["fixed-uncertainty"]),
    ("stream-random", &[]),
];

/// The canonical name of the stream policy `name` denotes (`_`/`-` and case as for strategies).
pub fn policy_name(name: &str) -> Option<&'static str> {
    let wanted = crate::normalize_name(name);
    POLICIES.iter().find(|(n, aliases)| *n == wanted || aliases.contains(&wanted.as_str())).map(|(n, _)| *n)
}

/// Build the policy `name` for a stream with this budget; `seed` drives the random policy.
pub fn build_policy(name: &str, options: &StreamOptions, budget: StreamBudget, seed: u64) -> Result<Box<dyn StreamPolicy>> {
    options.check()?;
    let spending = Spending::new(budget);
    Ok(match policy_name(name) {
        Some("stream-paced") => Box::new(PacedQuantile::new(budget, options.window)),
        Some("stream-variable-uncertainty") => Box::new(VariableUncertainty::new(budget, options.step, options.window)),
        Some("stream-fixed-uncertainty") => Box::new(FixedUncertainty { spending, threshold: options.threshold }),
        Some("stream-random") => Box::new(StreamRandom { spending, seed }),
        _ => {
            let known: Vec<&str> = POLICIES.iter().map(|(n, _)| *n).collect();
            return Err(Error::param("strategy", format!("unknown stream policy '{name}' (known: {})", known.join(", "))));
        }
    })
}

pub(crate) fn scenario_entries() -> Vec<ScenarioInfo> {
    const NEEDS: &str = "probabilities";
    vec![
        ScenarioInfo {
            name: "stream-paced",
            family: FAMILY,
            needs: NEEDS,
            paper: "Kottke, Krempl & Spiliopoulou, \"Probabilistic Active Learning in Datastreams\", IDA 2015 (balanced incremental quantile filter); scenario: Atlas, Cohn & Ladner 1990",
            summary: "Queries an arrival when its uncertainty is above the (1 − b_t) quantile of the last --stream-window arrivals, b_t = remaining labels ÷ remaining arrivals nudged back to the even pace over the window: the budget is spent evenly over the stream, on the more uncertain arrivals. `quarry simulate --strategy stream-paced,stream-random,margin …` (the pool is shuffled into a seeded stream)",
        },
        ScenarioInfo {
            name: "stream-variable-uncertainty",
            family: FAMILY,
            needs: NEEDS,
            paper: "Žliobaitė, Bifet, Pfahringer & Holmes, \"Active Learning With Drifting Streaming Data\", IEEE TNNLS 25(1), 2014 (variable uncertainty)",
            summary: "Queries when the max posterior is below θ (from 1), then θ ← θ(1 − s), else θ ← θ(1 + s), s = --stream-step; silent while the windowed spending estimate exceeds the budget rate. `quarry simulate --strategy stream-variable-uncertainty …`",
        },
        ScenarioInfo {
            name: "stream-fixed-uncertainty",
            family: FAMILY,
            needs: NEEDS,
            paper: "Žliobaitė, Bifet, Pfahringer & Holmes, IEEE TNNLS 2014 (fixed uncertainty); Lewis & Gale 1994",
            summary: "Queries when the normalized uncertainty is ≥ --stream-threshold (default 0.5) while labels remain; tends to spend the budget early. `quarry simulate --strategy stream-fixed-uncertainty …`",
        },
        ScenarioInfo {
            name: "stream-random",
            family: FAMILY,
            needs: "nothing",
            paper: "Žliobaitė et al., IEEE TNNLS 2014 (random baseline); Knuth, TAOCP vol. 2, Algorithm S",
            summary: "Queries each arrival with probability budget ÷ stream length (exactly the budget, a uniform random subset of the stream): the stream baseline. `quarry simulate --strategy stream-random …`",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn uniform_stream(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = quarry_core::QuarryRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random::<f64>()).collect()
    }

    /// Labels spent after each arrival.
    fn run(policy: &mut dyn StreamPolicy, us: &[f64]) -> (Vec<usize>, Vec<bool>) {
        let mut spent = Vec::new();
        let mut asked = Vec::new();
        let mut total = 0;
        for &u in us {
            let q = policy.decide(&Arrival::with_uncertainty(u, 10));
            total += q as usize;
            spent.push(total);
            asked.push(q);
        }
        (spent, asked)
    }

    fn max_quarter_error(spent: &[usize], budget: StreamBudget) -> f64 {
        (1..=4)
            .map(|q| {
                let t = budget.arrivals * q / 4;
                let expected = budget.labels as f64 * t as f64 / budget.arrivals as f64;
                (spent[t - 1] as f64 - expected).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn paced_spends_the_budget_evenly_on_the_more_uncertain() {
        let budget = StreamBudget { labels: 250, arrivals: 2000 };
        for seed in 0..5 {
            let us = uniform_stream(budget.arrivals, seed);
            let mut p = PacedQuantile::new(budget, 100);
            let (spent, asked) = run(&mut p, &us);
            let err = max_quarter_error(&spent, budget);
            assert!(err <= 5.0, "seed {seed}: spent {:?} at the quarters, off by {err}", [499, 999, 1499, 1999].map(|t| spent[t]));
            assert!(*spent.last().unwrap() >= budget.labels - 1 && *spent.last().unwrap() <= budget.labels);
            let mean = |want: bool| {
                let v: Vec<f64> = us.iter().zip(&asked).filter(|(_, a)| **a == want).map(|(u, _)| *u).collect();
                v.iter().sum::<f64>() / v.len() as f64
            };
            assert!(mean(true) > mean(false) + 0.3, "seed {seed}: queried {} vs passed {}", mean(true), mean(false));
        }
    }

    /// Drift: the uncertainties fall steadily (a model that keeps learning); a fixed threshold
    /// spends everything early, the paced filter still spends evenly.
    #[test]
    fn paced_keeps_pace_under_drift_where_a_fixed_threshold_does_not() {
        let budget = StreamBudget { labels: 200, arrivals: 2000 };
        let us: Vec<f64> = uniform_stream(2000, 9).iter().enumerate().map(|(t, u)| u * (1.0 - t as f64 / 2500.0)).collect();
        let (spent, _) = run(&mut PacedQuantile::new(budget, 100), &us);
        assert!(max_quarter_error(&spent, budget) <= 8.0, "{:?}", [499, 999, 1499, 1999].map(|t| spent[t]));
        let (fixed, _) = run(&mut FixedUncertainty { spending: Spending::new(budget), threshold: 0.5 }, &us);
        assert_eq!(fixed[499], 200, "the fixed threshold spends it all in the first quarter");
    }

    #[test]
    fn random_spends_exactly_its_rate() {
        let budget = StreamBudget { labels: 300, arrivals: 1200 };
        let us = uniform_stream(1200, 1);
        for seed in 0..5 {
            let (spent, asked) = run(&mut StreamRandom { spending: Spending::new(budget), seed }, &us);
            assert_eq!(*spent.last().unwrap(), 300, "exactly the budget");
            assert!(max_quarter_error(&spent, budget) <= 25.0, "seed {seed}: {:?}", [299, 599, 899, 1199].map(|t| spent[t]));
            // The same seed gives the same coins; another seed other ones.
            let (_, again) = run(&mut StreamRandom { spending: Spending::new(budget), seed }, &us);
            assert_eq!(asked, again);
            let (_, other) = run(&mut StreamRandom { spending: Spending::new(budget), seed: seed + 100 }, &us);
            assert_ne!(asked, other);
        }
    }

    /// θ by hand: B = 0.5, s = 0.1, w = 2 (λ = 1/2), max posteriors 0.95, 0.99, 0.5, 0.9, 0.8.
    #[test]
    fn variable_uncertainty_moves_theta_the_documented_way() {
        let mut p = VariableUncertainty::new(StreamBudget { labels: 5, arrivals: 10 }, 0.1, 2);
        let mut decide = |max_posterior: f64| p.decide(&Arrival { uncertainty: 0.0, max_posterior });
        // 1: b̂ = 0 < 0.5, 0.95 < θ = 1 → query, θ = 0.9, û = 1.
        assert!(decide(0.95));
        // 2: b̂ = 0.5, not below B → silent, θ stays 0.9, û = 0.5.
        assert!(!decide(0.99));
        // 3: b̂ = 0.25 < 0.5, 0.5 < 0.9 → query, θ = 0.81, û = 1.25.
        assert!(decide(0.5));
        // 4: b̂ = 0.625 → silent, û = 0.625.
        assert!(!decide(0.9));
        // 5: b̂ = 0.3125 < 0.5, 0.8 < 0.81 → query, θ = 0.729, û = 1.3125.
        assert!(decide(0.8));
        assert!((p.theta - 0.729).abs() < 1e-12, "θ = {}", p.theta);
        // 6: b̂ = 0.656 → silent, û = 0.656; 7: b̂ = 0.328 < 0.5, 0.75 ≥ 0.729 → pass, θ = 0.8019.
        let mut decide = |max_posterior: f64| p.decide(&Arrival { uncertainty: 0.0, max_posterior });
        assert!(!decide(0.1));
        assert!(!decide(0.75));
        assert!((p.theta - 0.729 * 1.1).abs() < 1e-12, "θ = {}", p.theta);
        assert_eq!(p.spending(), Spending { budget: StreamBudget { labels: 5, arrivals: 10 }, seen: 7, spent: 3 });
    }

    #[test]
    fn no_policy_overspends_and_states_round_trip() {
        let budget = StreamBudget { labels: 40, arrivals: 500 };
        let us = uniform_stream(500, 3);
        for (name, _) in POLICIES {
            let options = StreamOptions { threshold: 0.1, ..Default::default() };
            let mut p = build_policy(name, &options, budget, 7).unwrap();
            assert_eq!(p.name(), *name);
            let (first, _) = run(p.as_mut(), &us[..250]);
            // Save half-way, restore, and continue: the same as never stopping.
            let mut resumed = p.save().restore();
            let (rest_a, asked_a) = run(p.as_mut(), &us[250..]);
            let (rest_b, asked_b) = run(resumed.as_mut(), &us[250..]);
            assert_eq!(asked_a, asked_b, "{name}");
            assert_eq!(rest_a, rest_b);
            let total = first.last().unwrap() + rest_a.last().unwrap();
            assert!(total <= 40, "{name} spent {total}");
            assert_eq!(p.spending().spent, total);
        }
    }

    #[test]
    fn names_resolve_and_unknown_ones_list_the_known() {
        assert_eq!(policy_name("Stream_Paced"), Some("stream-paced"));
        assert_eq!(policy_name("variable-uncertainty"), Some("stream-variable-uncertainty"));
        assert_eq!(policy_name("margin"), None);
        let e = build_policy("stream-nope", &StreamOptions::default(), StreamBudget { labels: 1, arrivals: 2 }, 0).unwrap_err().to_string();
        assert!(e.contains("stream-paced") && e.contains("stream-random"), "{e}");
        assert!(build_policy("stream-paced", &StreamOptions { window: 1, ..Default::default() }, StreamBudget { labels: 1, arrivals: 2 }, 0).is_err());
        let names: Vec<&str> = scenario_entries().iter().map(|e| e.name).collect();
        assert_eq!(names, POLICIES.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        for n in names {
            assert!(crate::by_name(n).is_err(), "{n} is not also a pool strategy");
        }
    }

    #[test]
    fn uncertainty_is_normalized_least_confidence() {
        let a = Arrival::from_probabilities(&[0.1; 10]);
        assert!((a.uncertainty - 1.0).abs() < 1e-6);
        let b = Arrival::from_probabilities(&[0.75, 0.25]);
        assert!((b.uncertainty - 0.5).abs() < 1e-6 && (b.max_posterior - 0.75).abs() < 1e-6);
        assert_eq!(Arrival::from_probabilities(&[1.0, 0.0]).uncertainty, 0.0);
    }
}
