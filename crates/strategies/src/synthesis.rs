//! Membership query synthesis (Angluin 1988): the learner does not pick from a pool but
//! *constructs* the points it asks about, anywhere in the input domain, and an oracle that knows
//! the true function labels them. `quarry synthesize` runs it on built-in 2-D problems
//! (`quarry_experiment::synthesis`).
//!
//! A [`Synthesizer`] sees the labeled points, their labels and the current model's probability of
//! class 1 at any point it asks about, and proposes a batch of new points:
//!
//! * [`BoundaryBisection`] (`synthesis-pairs`): pairs each labeled point with its nearest
//!   labeled points of the other class, finds where the current model's decision boundary
//!   crosses the segment between the two (a grid along the segment, then bisection), and picks a
//!   spread batch of those crossings, farthest from everything labeled first. Labeling a
//!   crossing halves the pair's segment: over rounds the labeled pairs close in on the true
//!   boundary from both sides, as a binary search does (after Wang, Hu, Yuan & Lu 2015, who
//!   synthesize near-boundary points from opposite-class pairs, spread along the boundary).
//! * `synthesis-boundary`: the same, with crossings of the model's boundary between nearby
//!   random points of opposite *predicted* class added to the candidates. Pairs of labeled
//!   points only reach the boundary between them, so pair bisection alone refines the part of
//!   the boundary the initial set happened to straddle and never explores the rest (on `sine`
//!   it ends below random sampling); the added candidates cover the whole model boundary, and
//!   the farthest-first choice sends queries to the parts no label constrains yet.
//! * [`UncertaintySynthesis`] (`synthesis-uncertainty`): the most uncertain (p nearest ½) of many
//!   uniform random points, spread.
//! * [`RandomSynthesis`] (`synthesis-random`): uniform random points in the domain (the baseline).
//!
//! Problems are binary: labels are 0 and 1. Everything is deterministic for a given generator.

use crate::ScenarioInfo;
use quarry_core::{Error, QuarryRng, Result};
use rand::Rng;

/// A point of the plane.
pub type Point = [f64; 2];

/// The axis-aligned rectangle queries may be synthesized in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Domain {
    pub x: (f64, f64),
    pub y: (f64, f64),
}

impl Domain {
    /// `[x.0, x.1] × [y.0, y.1]`; each range finite and non-empty.
    pub fn new(x: (f64, f64), y: (f64, f64)) -> Result<Domain> {
        for (name, (lo, hi)) in [("domain x range", x), ("domain y range", y)] {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(Error::param(name, format!("needs finite lo < hi, got {lo}..{hi}")));
            }
        }
        Ok(Domain { x, y })
    }
    pub fn contains(&self, p: Point) -> bool {
        (self.x.0..=self.x.1).contains(&p[0]) && (self.y.0..=self.y.1).contains(&p[1])
    }
    /// A uniform random point of the domain.
    pub fn sample(&self, rng: &mut QuarryRng) -> Point {
        [rng.random_range(self.x.0..self.x.1), rng.random_range(self.y.0..self.y.1)]
    }
    pub fn diagonal(&self) -> f64 {
        (self.x.1 - self.x.0).hypot(self.y.1 - self.y.0)
    }
    pub fn area(&self) -> f64 {
        (self.x.1 - self.x.0) * (self.y.1 - self.y.0)
    }
    /// The nearest point of the domain (guards against rounding at the border).
    pub fn clamp(&self, p: Point) -> Point {
        [p[0].clamp(self.x.0, self.x.1), p[1].clamp(self.y.0, self.y.1)]
    }
}

/// The current model as a synthesizer sees it: P(class 1) at each point asked about.
pub type PositiveProbability<'a> = dyn Fn(&[Point]) -> Result<Vec<f64>> + Sync + 'a;

/// What a synthesizer reads in one round.
pub struct SynthesisContext<'a> {
    pub domain: Domain,
    /// Every labeled point so far (the initial set and earlier queries).
    pub labeled: &'a [Point],
    /// Their labels, 0 or 1.
    pub labels: &'a [u32],
    /// The current model.
    pub model: &'a PositiveProbability<'a>,
}

impl SynthesisContext<'_> {
    fn check(&self) -> Result<()> {
        if self.labeled.len() != self.labels.len() {
            return Err(Error::shape("synthesis labels", self.labeled.len(), self.labels.len()));
        }
        if let Some(&bad) = self.labels.iter().find(|&&l| l > 1) {
            return Err(Error::param("synthesis labels", format!("problems are binary (0 or 1), got {bad}")));
        }
        Ok(())
    }
}

/// A query-synthesis policy: `k` new points to ask the oracle about.
pub trait Synthesizer: Send + Sync {
    fn name(&self) -> &'static str;
    /// `k` distinct points inside `ctx.domain`. Deterministic for a given `rng` state.
    fn propose(&self, ctx: &SynthesisContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Vec<Point>>;
}

/// The names `quarry synthesize --strategy` takes, in catalogue order.
pub const NAMES: [&str; 4] = ["synthesis-boundary", "synthesis-pairs", "synthesis-uncertainty", "synthesis-random"];

/// A synthesizer by its command-line name (`_` and `-` are the same, case does not matter),
/// with default parameters.
pub fn by_name(name: &str) -> Result<Box<dyn Synthesizer>> {
    match crate::normalize_name(name).as_str() {
        "synthesis-boundary" => Ok(Box::new(BoundaryBisection::default())),
        "synthesis-pairs" => Ok(Box::new(BoundaryBisection::pairs_only())),
        "synthesis-uncertainty" => Ok(Box::new(UncertaintySynthesis::default())),
        "synthesis-random" => Ok(Box::new(RandomSynthesis)),
        other => Err(Error::param("strategy", format!("unknown synthesizer '{other}' (known: {})", NAMES.join(", ")))),
    }
}

/// Uniform random points in the domain.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomSynthesis;

impl Synthesizer for RandomSynthesis {
    fn name(&self) -> &'static str {
        "synthesis-random"
    }
    fn propose(&self, ctx: &SynthesisContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Vec<Point>> {
        ctx.check()?;
        Ok((0..k).map(|_| ctx.domain.sample(rng)).collect())
    }
}

/// The `k` most uncertain (P(class 1) nearest ½) of `candidates` uniform random points, taken
/// greedily so that no two proposals, and no proposal and labeled point, are closer than
/// `min_separation` × the domain's diagonal.
#[derive(Debug, Clone, Copy)]
pub struct UncertaintySynthesis {
    /// Random points scored per round (at least 20 per query asked).
    pub candidates: usize,
    pub min_separation: f64,
}

impl Default for UncertaintySynthesis {
    fn default() -> Self {
        UncertaintySynthesis { candidates: 2000, min_separation: 0.01 }
    }
}

impl Synthesizer for UncertaintySynthesis {
    fn name(&self) -> &'static str {
        "synthesis-uncertainty"
    }
    fn propose(&self, ctx: &SynthesisContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Vec<Point>> {
        ctx.check()?;
        let mut chosen = Vec::with_capacity(k);
        most_uncertain(ctx, k, self.candidates, self.min_separation * ctx.domain.diagonal(), &mut chosen, rng)?;
        Ok(chosen)
    }
}

/// Appends up to `k` points to `chosen`: the most uncertain of `candidates.max(20·k)` random
/// points at least `min_dist` from every labeled and chosen point; if the spacing leaves fewer
/// than `k`, the rest are plain random points.
fn most_uncertain(ctx: &SynthesisContext<'_>, k: usize, candidates: usize, min_dist: f64, chosen: &mut Vec<Point>, rng: &mut QuarryRng) -> Result<()> {
    if k == 0 {
        return Ok(());
    }
    let pts: Vec<Point> = (0..candidates.max(20 * k)).map(|_| ctx.domain.sample(rng)).collect();
    let p = (ctx.model)(&pts)?;
    if p.len() != pts.len() {
        return Err(Error::shape("model probabilities", pts.len(), p.len()));
    }
    let mut order: Vec<usize> = (0..pts.len()).collect();
    // Stable: ties keep the draw order, so the result depends only on the generator.
    order.sort_by(|&a, &b| (p[a] - 0.5).abs().total_cmp(&(p[b] - 0.5).abs()));
    let want = chosen.len() + k;
    for i in order {
        if chosen.len() == want {
            break;
        }
        if clear_of(pts[i], ctx.labeled, chosen) >= min_dist {
            chosen.push(pts[i]);
        }
    }
    while chosen.len() < want {
        chosen.push(ctx.domain.sample(rng));
    }
    Ok(())
}

fn dist(a: Point, b: Point) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// Distance from `p` to the nearest point of `a` or `b` (∞ when both are empty).
fn clear_of(p: Point, a: &[Point], b: &[Point]) -> f64 {
    a.iter().chain(b).map(|&q| dist(p, q)).fold(f64::INFINITY, f64::min)
}

/// Boundary bisection between nearest opposite-class pairs.
///
/// 1. Pairs: every labeled point with each of its `neighbours` nearest labeled points of the
///    other class (each unordered pair once); and, if `explore` > 0, each of `explore` uniform
///    random points with its nearest random point of the other *predicted* class (these
///    segments straddle the model's boundary wherever it runs, labeled or not).
/// 2. Crossing: the current model's P(class 1) is evaluated at `grid + 1` evenly spaced points
///    of each pair's segment; the sign change of p − ½ nearest the segment's middle is refined
///    by `steps` bisection steps. A segment the model does not cross (it disagrees with a label
///    there) gives its most uncertain grid point.
/// 3. Batch: greedily, the crossing farthest from every labeled and already chosen point, as
///    long as that distance is at least `min_separation` × the domain's diagonal (so the batch is
///    distinct and spread along the boundary, and unresolved, long pairs come first). If the
///    pairs run out (or the labels hold one class only), the rest of the batch comes from
///    [`UncertaintySynthesis`].
#[derive(Debug, Clone, Copy)]
pub struct BoundaryBisection {
    pub neighbours: usize,
    /// Random points whose predicted-opposite nearest pairs add model-boundary candidates
    /// (0: labeled pairs only, `synthesis-pairs`).
    pub explore: usize,
    pub grid: usize,
    pub steps: usize,
    pub min_separation: f64,
}

impl Default for BoundaryBisection {
    fn default() -> Self {
        BoundaryBisection { neighbours: 3, explore: 400, grid: 16, steps: 30, min_separation: 1e-3 }
    }
}

/// Where a [`BoundaryProposal`] came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Origin {
    /// The segment between these labeled points `(class 0, class 1)` (indices into the labeled set).
    Pair(usize, usize),
    /// The segment between two random points the model puts in different classes.
    ModelBoundary([Point; 2]),
    /// Filled in by uncertainty sampling when the crossings ran out.
    Fill,
}

/// One proposal of [`BoundaryBisection`] and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundaryProposal {
    pub point: Point,
    pub origin: Origin,
    /// Its position on the origin's segment, from the (predicted) class-0 end, in `[0, 1]`.
    pub t: f64,
}

impl BoundaryBisection {
    /// Labeled pairs only (`synthesis-pairs`).
    pub fn pairs_only() -> Self {
        BoundaryBisection { explore: 0, ..Self::default() }
    }

    /// Nearest predicted-opposite pairs among `explore` random points: `(predicted 0, predicted 1)`.
    fn model_segments(&self, ctx: &SynthesisContext<'_>, rng: &mut QuarryRng) -> Result<Vec<(Point, Point)>> {
        if self.explore == 0 {
            return Ok(Vec::new());
        }
        let pts: Vec<Point> = (0..self.explore).map(|_| ctx.domain.sample(rng)).collect();
        let p = (ctx.model)(&pts)?;
        if p.len() != pts.len() {
            return Err(Error::shape("model probabilities", pts.len(), p.len()));
        }
        let class: Vec<u32> = p.iter().map(|&v| u32::from(v > 0.5)).collect();
        let pairs = self.nearest_opposite(&pts, &class, 1);
        Ok(pairs.into_iter().map(|(a, b)| (pts[a], pts[b])).collect())
    }

    /// The opposite-class pairs `(class-0 index, class-1 index)`, each once, in a fixed order.
    pub fn pairs(&self, labeled: &[Point], labels: &[u32]) -> Vec<(usize, usize)> {
        self.nearest_opposite(labeled, labels, self.neighbours)
    }

    fn nearest_opposite(&self, labeled: &[Point], labels: &[u32], neighbours: usize) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for (i, &p) in labeled.iter().enumerate() {
            let mut other: Vec<(f64, usize)> =
                labeled.iter().enumerate().filter(|&(j, _)| labels[j] != labels[i]).map(|(j, &q)| (dist(p, q), j)).collect();
            other.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for &(_, j) in other.iter().take(neighbours.max(1)) {
                let pair = if labels[i] == 0 { (i, j) } else { (j, i) };
                pairs.push(pair);
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }

    /// Where the model's boundary crosses each segment `a → b`, as `t ∈ [0, 1]`.
    pub fn crossings(&self, segments: &[(Point, Point)], model: &PositiveProbability<'_>) -> Result<Vec<f64>> {
        self.crossings_on_grid(segments, model, self.grid.max(2))
    }

    /// [`BoundaryBisection::crossings`] with `g` grid intervals per segment (1 where the ends are
    /// already known to lie on opposite sides).
    fn crossings_on_grid(&self, segments: &[(Point, Point)], model: &PositiveProbability<'_>, g: usize) -> Result<Vec<f64>> {
        let at = |a: Point, b: Point, t: f64| [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
        let g = g.max(1);
        let pts: Vec<Point> = segments.iter().flat_map(|&(a, b)| (0..=g).map(move |i| at(a, b, i as f64 / g as f64))).collect();
        let p = model(&pts)?;
        if p.len() != pts.len() {
            return Err(Error::shape("model probabilities", pts.len(), p.len()));
        }
        // Per segment: a bracket (lo, hi) with p − ½ changing sign, or a final t.
        let mut brackets: Vec<(f64, f64, bool)> = Vec::with_capacity(segments.len()); // (lo, hi, p(lo) > ½)
        let mut t = vec![0.5; segments.len()];
        let mut open = Vec::new();
        for s in 0..segments.len() {
            let v = &p[s * (g + 1)..(s + 1) * (g + 1)];
            let best = (0..g)
                .filter(|&i| (v[i] > 0.5) != (v[i + 1] > 0.5))
                .min_by(|&i, &j| ((i as f64 + 0.5) / g as f64 - 0.5).abs().total_cmp(&((j as f64 + 0.5) / g as f64 - 0.5).abs()));
            match best {
                Some(i) => {
                    brackets.push((i as f64 / g as f64, (i + 1) as f64 / g as f64, v[i] > 0.5));
                    open.push(s);
                }
                None => {
                    let i = (0..=g)
                        .min_by(|&i, &j| {
                            let key = |i: usize| ((v[i] - 0.5).abs(), (i as f64 / g as f64 - 0.5).abs());
                            let (a, b) = (key(i), key(j));
                            a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1))
                        })
                        .unwrap_or(g / 2);
                    t[s] = i as f64 / g as f64;
                }
            }
        }
        for _ in 0..self.steps {
            if open.is_empty() {
                break;
            }
            let mids: Vec<Point> = open
                .iter()
                .zip(&brackets)
                .map(|(&s, &(lo, hi, _))| at(segments[s].0, segments[s].1, 0.5 * (lo + hi)))
                .collect();
            let pm = model(&mids)?;
            if pm.len() != mids.len() {
                return Err(Error::shape("model probabilities", mids.len(), pm.len()));
            }
            for (br, &v) in brackets.iter_mut().zip(&pm) {
                let mid = 0.5 * (br.0 + br.1);
                if (v > 0.5) == br.2 {
                    br.0 = mid;
                } else {
                    br.1 = mid;
                }
            }
        }
        for (&s, &(lo, hi, _)) in open.iter().zip(&brackets) {
            t[s] = 0.5 * (lo + hi);
        }
        Ok(t)
    }

    /// The batch with the pair each point came from (see the type's docs).
    pub fn proposals(&self, ctx: &SynthesisContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Vec<BoundaryProposal>> {
        ctx.check()?;
        let pairs = self.pairs(ctx.labeled, ctx.labels);
        let mut segments: Vec<(Point, Point)> = pairs.iter().map(|&(a, b)| (ctx.labeled[a], ctx.labeled[b])).collect();
        let mut origins: Vec<Origin> = pairs.iter().map(|&(a, b)| Origin::Pair(a, b)).collect();
        let mut ts = self.crossings(&segments, ctx.model)?;
        let model_segments = self.model_segments(ctx, rng)?;
        // Their ends are on opposite sides already: bisect from the whole segment.
        ts.extend(self.crossings_on_grid(&model_segments, ctx.model, 1)?);
        for (a, b) in model_segments {
            segments.push((a, b));
            origins.push(Origin::ModelBoundary([a, b]));
        }
        let cands: Vec<Point> = segments
            .iter()
            .zip(&ts)
            .map(|(&(a, b), &t)| ctx.domain.clamp([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]))
            .collect();
        let min_dist = self.min_separation * ctx.domain.diagonal();
        // Greedy farthest-first: clearance[j] = distance to the nearest labeled or chosen point.
        let mut clearance: Vec<f64> = cands.iter().map(|&c| clear_of(c, ctx.labeled, &[])).collect();
        let mut out: Vec<BoundaryProposal> = Vec::with_capacity(k);
        let mut taken = vec![false; cands.len()];
        while out.len() < k {
            let best = (0..cands.len())
                .filter(|&j| !taken[j] && clearance[j] >= min_dist)
                .max_by(|&i, &j| clearance[i].total_cmp(&clearance[j]).then(j.cmp(&i)));
            let Some(j) = best else { break };
            taken[j] = true;
            out.push(BoundaryProposal { point: cands[j], origin: origins[j], t: ts[j] });
            for (c, cl) in cands.iter().zip(clearance.iter_mut()) {
                *cl = cl.min(dist(*c, cands[j]));
            }
        }
        if out.len() < k {
            let mut points: Vec<Point> = out.iter().map(|p| p.point).collect();
            let have = points.len();
            most_uncertain(ctx, k - have, UncertaintySynthesis::default().candidates, min_dist, &mut points, rng)?;
            out.extend(points[have..].iter().map(|&point| BoundaryProposal { point, origin: Origin::Fill, t: f64::NAN }));
        }
        Ok(out)
    }
}

impl Synthesizer for BoundaryBisection {
    fn name(&self) -> &'static str {
        if self.explore == 0 { "synthesis-pairs" } else { "synthesis-boundary" }
    }
    fn propose(&self, ctx: &SynthesisContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Vec<Point>> {
        Ok(self.proposals(ctx, k, rng)?.into_iter().map(|p| p.point).collect())
    }
}

const FAMILY: &str = "membership query synthesis";
const ANGLUIN: &str = "Angluin 1988, \"Queries and concept learning\", Machine Learning 2(4) (the scenario)";

pub(crate) fn scenario_entries() -> Vec<ScenarioInfo> {
    vec![
        ScenarioInfo {
            name: "synthesis-boundary",
            family: FAMILY,
            needs: "labeled points and labels, the model's P(class 1) at synthesized points",
            paper: "Wang, Hu, Yuan & Lu 2015, \"Active learning via query synthesis and nearest neighbour search\", Neurocomputing 147 (doi:10.1016/j.neucom.2014.06.042); scenario: Angluin 1988",
            summary: "Bisects, with the current model, the segments between nearest opposite-class labeled pairs and between nearby random points the model puts in different classes, and asks about the crossings, farthest from anything labeled first; an oracle that knows the true function labels them. `quarry synthesize --problem circle --strategy synthesis-boundary,synthesis-random`",
        },
        ScenarioInfo {
            name: "synthesis-pairs",
            family: FAMILY,
            needs: "labeled points and labels, the model's P(class 1) at synthesized points",
            paper: "Wang, Hu, Yuan & Lu 2015 (as synthesis-boundary); scenario: Angluin 1988",
            summary: "synthesis-boundary with labeled pairs only: refines the boundary between opposite-class labels but never explores beyond them (the ablation). `quarry synthesize --strategy synthesis-pairs,synthesis-boundary,synthesis-random`",
        },
        ScenarioInfo {
            name: "synthesis-uncertainty",
            family: FAMILY,
            needs: "the model's P(class 1) at synthesized points",
            paper: ANGLUIN,
            summary: "The most uncertain (p nearest 1/2) of 2,000 uniform random points of the domain, spread out. `quarry synthesize --strategy synthesis-uncertainty`",
        },
        ScenarioInfo {
            name: "synthesis-random",
            family: FAMILY,
            needs: "nothing (the domain)",
            paper: ANGLUIN,
            summary: "Uniform random points of the domain: the baseline that label efficiency is measured against. `quarry synthesize --strategy synthesis-random`",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_core::seeded_rng;

    fn square() -> Domain {
        Domain::new((-1.0, 1.0), (-1.0, 1.0)).unwrap()
    }

    /// The rotated line x·cos θ + y·sin θ = b, θ = 30°, b = 0.2; class 1 on the positive side.
    fn line_margin(p: Point) -> f64 {
        let th = 30f64.to_radians();
        p[0] * th.cos() + p[1] * th.sin() - 0.2
    }

    fn labeled(n: usize, seed: u64, truth: fn(Point) -> f64) -> (Vec<Point>, Vec<u32>) {
        let mut rng = seeded_rng(seed, 1);
        let pts: Vec<Point> = (0..n).map(|_| square().sample(&mut rng)).collect();
        let labels = pts.iter().map(|&p| u32::from(truth(p) > 0.0)).collect();
        (pts, labels)
    }

    fn truth_model(pts: &[Point]) -> Result<Vec<f64>> {
        Ok(pts.iter().map(|&p| 1.0 / (1.0 + (-20.0 * line_margin(p)).exp())).collect())
    }

    #[test]
    fn boundary_proposals_lie_on_their_pairs_and_on_the_true_line() {
        let (pts, labels) = labeled(30, 3, line_margin);
        assert!(labels.contains(&0) && labels.contains(&1));
        let ctx = SynthesisContext { domain: square(), labeled: &pts, labels: &labels, model: &truth_model };
        let mut from_pairs = 0;
        for s in [BoundaryBisection::pairs_only(), BoundaryBisection::default()] {
            let props = s.proposals(&ctx, 8, &mut seeded_rng(0, 2)).unwrap();
            assert_eq!(props.len(), 8);
            for p in &props {
                let (pa, pb) = match p.origin {
                    Origin::Pair(a, b) => {
                        assert_eq!((labels[a], labels[b]), (0, 1));
                        from_pairs += 1;
                        (pts[a], pts[b])
                    }
                    Origin::ModelBoundary([a, b]) => {
                        assert!(s.explore > 0);
                        assert!(line_margin(a) <= 0.0 && line_margin(b) > 0.0);
                        (a, b)
                    }
                    Origin::Fill => panic!("30 labeled points give more than 8 pairs"),
                };
                // On the segment: |pa − p| + |p − pb| = |pa − pb|.
                let slack = dist(pa, p.point) + dist(p.point, pb) - dist(pa, pb);
                assert!(slack.abs() < 1e-9, "proposal {:?} is off its pair's segment by {slack}", p.point);
                assert!((0.0..=1.0).contains(&p.t));
                // The model is the truth, so the crossing is the true boundary.
                assert!(line_margin(p.point).abs() < 1e-6, "proposal {:?} is {} from the line", p.point, line_margin(p.point));
            }
        }
        assert!(from_pairs >= 8);
    }

    #[test]
    fn boundary_proposals_are_distinct_spread_and_inside() {
        let circle = |p: Point| 0.36 - p[0] * p[0] - p[1] * p[1];
        let (pts, labels) = labeled(40, 5, circle);
        let model = |q: &[Point]| -> Result<Vec<f64>> { Ok(q.iter().map(|&p| 1.0 / (1.0 + (-10.0 * circle(p)).exp())).collect()) };
        let ctx = SynthesisContext { domain: square(), labeled: &pts, labels: &labels, model: &model };
        for s in [BoundaryBisection::pairs_only(), BoundaryBisection::default()] {
            let batch = s.propose(&ctx, 12, &mut seeded_rng(0, 2)).unwrap();
            assert_eq!(batch.len(), 12);
            let min_dist = s.min_separation * square().diagonal();
            for (i, &p) in batch.iter().enumerate() {
                assert!(square().contains(p));
                assert!(clear_of(p, &pts, &batch[..i]) >= min_dist, "{}: proposal {i} is a near-duplicate", s.name());
                // On the circle of radius 0.6 (the model is the truth).
                assert!((p[0].hypot(p[1]) - 0.6).abs() < 1e-6);
            }
            // Spread: the batch covers several directions around the circle, not one spot.
            let mut angles: Vec<f64> = batch.iter().map(|p| p[1].atan2(p[0])).collect();
            angles.sort_by(f64::total_cmp);
            let widest_gap = angles.windows(2).map(|w| w[1] - w[0]).chain([angles[0] + std::f64::consts::TAU - angles[11]]).fold(0.0, f64::max);
            assert!(widest_gap < std::f64::consts::PI, "{}: 12 proposals leave a gap of {widest_gap} rad", s.name());
        }
    }

    /// Labels only near the top of the boundary x = 0: labeled pairs stay there, the
    /// model-boundary candidates reach the unlabeled bottom first.
    #[test]
    fn boundary_explores_the_model_boundary_beyond_the_labeled_pairs() {
        let pts = [[-0.1, 0.9], [0.1, 0.9], [-0.1, 0.8], [0.1, 0.8]];
        let labels = [0, 1, 0, 1];
        let model = |q: &[Point]| -> Result<Vec<f64>> { Ok(q.iter().map(|p| 1.0 / (1.0 + (-10.0 * p[0]).exp())).collect()) };
        let ctx = SynthesisContext { domain: square(), labeled: &pts, labels: &labels, model: &model };
        let local = BoundaryBisection::pairs_only().propose(&ctx, 3, &mut seeded_rng(0, 0)).unwrap();
        assert!(local.iter().all(|p| p[0].abs() < 1e-6 && (0.8..=0.9).contains(&p[1])), "{local:?}");
        let explored = BoundaryBisection::default().propose(&ctx, 3, &mut seeded_rng(0, 0)).unwrap();
        assert!(explored.iter().all(|p| p[0].abs() < 1e-6), "{explored:?}");
        assert!(explored[0][1] < -0.8, "the first query should go to the far end of the boundary: {explored:?}");
        assert!(explored.iter().all(|p| !(0.75..=0.95).contains(&p[1])), "{explored:?}");
    }

    #[test]
    fn boundary_fills_with_uncertain_points_when_pairs_run_out() {
        // Two labeled points: one pair, so a batch of 5 needs 4 fill-ins.
        let pts = [[-0.5, 0.0], [0.5, 0.0]];
        let labels = [0, 1];
        let model = |q: &[Point]| -> Result<Vec<f64>> { Ok(q.iter().map(|p| 1.0 / (1.0 + (-5.0 * p[0]).exp())).collect()) };
        let ctx = SynthesisContext { domain: square(), labeled: &pts, labels: &labels, model: &model };
        let props = BoundaryBisection::pairs_only().proposals(&ctx, 5, &mut seeded_rng(1, 1)).unwrap();
        assert_eq!(props.len(), 5);
        assert_eq!(props[0].origin, Origin::Pair(0, 1));
        assert!(props[0].point[0].abs() < 1e-6 && props[0].point[1].abs() < 1e-12);
        for p in &props[1..] {
            assert_eq!(p.origin, Origin::Fill);
            assert!(p.point[0].abs() < 0.2, "fill-in {:?} is not near the model's boundary x = 0", p.point);
        }
    }

    #[test]
    fn random_proposals_are_uniform_inside_the_domain() {
        let d = Domain::new((-3.0, 1.0), (0.0, 2.0)).unwrap();
        let model = |q: &[Point]| -> Result<Vec<f64>> { Ok(vec![0.5; q.len()]) };
        let ctx = SynthesisContext { domain: d, labeled: &[], labels: &[], model: &model };
        let pts = RandomSynthesis.propose(&ctx, 4000, &mut seeded_rng(7, 3)).unwrap();
        assert!(pts.iter().all(|&p| d.contains(p)));
        // 4 × 4 cells of equal area: each expects 250; a χ² with 15 d.o.f. above 40 has p < 0.001.
        let mut cells = [0usize; 16];
        for p in &pts {
            let cx = (((p[0] + 3.0) / 4.0 * 4.0) as usize).min(3);
            let cy = ((p[1] / 2.0 * 4.0) as usize).min(3);
            cells[cy * 4 + cx] += 1;
        }
        let chi2: f64 = cells.iter().map(|&c| (c as f64 - 250.0).powi(2) / 250.0).sum();
        assert!(chi2 < 40.0, "cells {cells:?}, chi2 {chi2}");
    }

    #[test]
    fn same_generator_same_queries() {
        let (pts, labels) = labeled(20, 9, line_margin);
        let ctx = SynthesisContext { domain: square(), labeled: &pts, labels: &labels, model: &truth_model };
        for name in NAMES {
            let s = by_name(name).unwrap();
            let a = s.propose(&ctx, 6, &mut seeded_rng(4, 8)).unwrap();
            let b = s.propose(&ctx, 6, &mut seeded_rng(4, 8)).unwrap();
            assert_eq!(a, b, "{name}");
            assert_eq!(a.len(), 6);
            if name != "synthesis-pairs" {
                assert_ne!(a, s.propose(&ctx, 6, &mut seeded_rng(5, 8)).unwrap(), "{name} ignores its seed");
            }
        }
    }

    #[test]
    fn uncertainty_prefers_the_model_boundary() {
        let model = |q: &[Point]| -> Result<Vec<f64>> { Ok(q.iter().map(|p| 1.0 / (1.0 + (-8.0 * (p[1] - 0.3)).exp())).collect()) };
        let ctx = SynthesisContext { domain: square(), labeled: &[], labels: &[], model: &model };
        let pts = UncertaintySynthesis::default().propose(&ctx, 10, &mut seeded_rng(0, 0)).unwrap();
        assert!(pts.iter().all(|p| (p[1] - 0.3).abs() < 0.05), "{pts:?}");
    }

    #[test]
    fn names_and_errors() {
        assert_eq!(by_name("Synthesis_Boundary").unwrap().name(), "synthesis-boundary");
        let err = by_name("boundary").err().unwrap().to_string();
        assert!(err.contains("synthesis-random"), "{err}");
        let names: Vec<&str> = scenario_entries().iter().map(|e| e.name).collect();
        assert_eq!(names, NAMES);
        let model = |q: &[Point]| -> Result<Vec<f64>> { Ok(vec![0.5; q.len()]) };
        let ctx = SynthesisContext { domain: square(), labeled: &[[0.0, 0.0]], labels: &[2], model: &model };
        assert!(RandomSynthesis.propose(&ctx, 1, &mut seeded_rng(0, 0)).is_err());
        assert!(Domain::new((1.0, 1.0), (0.0, 1.0)).is_err());
    }
}
