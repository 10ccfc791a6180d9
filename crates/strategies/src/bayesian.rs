//! Bayesian strategies read off Monte-Carlo samples of the predictive distribution,
//! `[draws, n, classes]`: T stochastic forward passes, e.g. MC dropout (Gal & Ghahramani 2016),
//! each an approximate draw ω_t from the model posterior. Gal, Islam & Ghahramani (ICML 2017,
//! "Deep Bayesian Active Learning with Image Data") compare the first four acquisition functions
//! here on exactly such samples; BatchBALD (Kirsch, van Amersfoort & Gal, NeurIPS 2019) makes
//! BALD batch-aware.
//!
//! Notation: p_t = p(y | x, ω_t) is draw t's distribution for a candidate, p̄ = (1/T) Σ_t p_t the
//! predictive mean (as [`McSamples::mean`] computes it), H the Shannon entropy in nats.
//! Reductions over draws are spelled out in each score function; the score-then-rank strategies
//! share [`top_k`](crate::select::top_k).

use crate::select::scored_strategy;
use crate::uncertainty::entropy_score;
use quarry_core::{Error, McSamples, Needs, Pick, QuarryRng, Query, QueryContext, Result, ScoreKind, Strategy};
use rand::Rng;
use rayon::prelude::*;

/// The MC samples a strategy reads, checked: at least 2 draws, one row per candidate.
fn checked_samples<'a>(ctx: &QueryContext<'a>, strategy: &str) -> Result<&'a McSamples> {
    let mc = ctx.scores.mc_samples(strategy)?;
    if mc.draws() < 2 {
        return Err(Error::Other(format!(
            "strategy {strategy} needs at least 2 MC samples per candidate, got {}",
            mc.draws()
        )));
    }
    if mc.len() != ctx.candidates.len() {
        return Err(Error::shape(
            format!("{strategy}: MC samples"),
            format!("{} candidates", ctx.candidates.len()),
            format!("{} rows", mc.len()),
        ));
    }
    Ok(mc)
}

/// The most probable class of a row, the lowest index on exact ties (as [`quarry_core::Probabilities::argmax`]).
fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (c, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = c;
        }
    }
    best
}

/// Expected entropy (1/T) Σ_t H[p_t] of each candidate: the aleatoric part of its uncertainty,
/// E_ω H[y | x, ω].
pub fn expected_entropies(mc: &McSamples) -> Vec<f64> {
    let t_draws = mc.draws() as f64;
    (0..mc.len()).map(|i| (0..mc.draws()).map(|t| entropy_score(mc.row(t, i))).sum::<f64>() / t_draws).collect()
}

/// Max entropy H[p̄] of each candidate: the total predictive uncertainty (Shannon 1948; Gal et al.
/// 2017 "Max Entropy").
pub fn max_entropy_scores(mc: &McSamples) -> Vec<f64> {
    mc.mean().rows().map(entropy_score).collect()
}

/// BALD, the mutual information between the label and the model parameters,
/// I[y; ω | x] = H[p̄] − (1/T) Σ_t H[p_t] (Houlsby, Huszár, Ghahramani & Lengyel 2011). 0 when all
/// draws agree, ≥ 0 up to float rounding (entropy is concave), and at most [`max_entropy_scores`].
pub fn bald_scores(mc: &McSamples) -> Vec<f64> {
    max_entropy_scores(mc).into_iter().zip(expected_entropies(mc)).map(|(h, e)| h - e).collect()
}

/// Variation ratio 1 − f_m / T, f_m the number of draws whose most probable class is the modal one
/// (Freeman 1965): 0 when every draw predicts the same class.
pub fn variation_ratio_scores(mc: &McSamples) -> Vec<f64> {
    let mut votes = vec![0u32; mc.n_classes()];
    (0..mc.len())
        .map(|i| {
            votes.fill(0);
            for t in 0..mc.draws() {
                votes[argmax(mc.row(t, i))] += 1;
            }
            let modal = votes.iter().copied().max().unwrap_or(0);
            1.0 - modal as f64 / mc.draws() as f64
        })
        .collect()
}

/// Mean standard deviation (1/k) Σ_c σ_c, σ_c the population standard deviation of p_t(c) over the
/// draws (Kampffmeyer, Salberg & Jenssen 2016).
pub fn mean_std_scores(mc: &McSamples) -> Vec<f64> {
    let (t_draws, classes) = (mc.draws() as f64, mc.n_classes());
    (0..mc.len())
        .map(|i| {
            let mut total = 0f64;
            for c in 0..classes {
                let mean = (0..mc.draws()).map(|t| mc.row(t, i)[c] as f64).sum::<f64>() / t_draws;
                let var = (0..mc.draws()).map(|t| (mc.row(t, i)[c] as f64 - mean).powi(2)).sum::<f64>() / t_draws;
                total += var.sqrt();
            }
            total / classes as f64
        })
        .collect()
}


scored_strategy!(
    /// BALD, Bayesian active learning by disagreement (Houlsby et al. 2011; with MC dropout, Gal,
    /// Islam & Ghahramani 2017): the candidates whose label would tell most about the model
    /// parameters first — high total uncertainty that the draws disagree on, not noise every draw
    /// sees. Assumes the T draws are samples from an approximate posterior (dropout kept on at
    /// prediction time, or an ensemble). Scores each candidate alone, so a batch may hold
    /// near-duplicates; see [`BatchBald`].
    Bald,
    "bald",
    Needs::of(&[ScoreKind::McSamples]),
    |ctx, name| bald_scores(checked_samples(ctx, name)?)
);
scored_strategy!(
    /// Variation ratios (Freeman 1965; Gal et al. 2017): the candidates whose draws disagree most
    /// on the predicted class first. Reads only the draws' hard votes.
    VariationRatios,
    "variation-ratios",
    Needs::of(&[ScoreKind::McSamples]),
    |ctx, name| variation_ratio_scores(checked_samples(ctx, name)?)
);
scored_strategy!(
    /// Mean standard deviation (Kampffmeyer et al., CVPR workshops 2016; Gal et al. 2017): the
    /// candidates whose class probabilities vary most across draws first.
    MeanStd,
    "mean-std",
    Needs::of(&[ScoreKind::McSamples]),
    |ctx, name| mean_std_scores(checked_samples(ctx, name)?)
);
scored_strategy!(
    /// Max entropy of the MC-averaged prediction (Shannon 1948; Gal et al. 2017): the candidates
    /// with the highest total predictive uncertainty first, aleatoric or epistemic alike.
    MaxEntropy,
    "max-entropy",
    Needs::of(&[ScoreKind::McSamples]),
    |ctx, name| max_entropy_scores(checked_samples(ctx, name)?)
);

/// BatchBALD (Kirsch, van Amersfoort & Gal, NeurIPS 2019): greedily builds the batch that
/// maximizes the joint mutual information
/// a(x₁..x_b) = H[y₁..y_b] − Σ_i E_t H[y_i | ω_t], so a batch does not spend several labels on
/// candidates that tell the same thing about the model (BALD's top-b would). Assumes, like
/// [`Bald`], that the T draws are posterior samples, and that labels are independent given ω.
///
/// Each step adds the candidate with the largest gain
/// a(S ∪ {x}) − a(S) = H[y_x | y_S] − E_t H[y_x | ω_t]. The conditional entropy is read off the
/// label configurations s of the chosen set S, built once per step and shared by every candidate
/// (the paper's P(y_S | ω_t) matrix, `[draws, configurations]`, kept normalized per
/// configuration as the draws' posterior P(ω_t | y_S = s) so that it neither underflows nor needs
/// logarithms of tiny joint probabilities): H[y_x | y_S] = Σ_s π_s H[q_s] with
/// q_s(c) = Σ_t P(ω_t | s) p_t(c).
/// - *Exact* over every label configuration of S with nonzero probability (π_s = P(y_S = s))
///   while there are at most [`samples`](Self::samples) of them (k^|S| at most).
/// - *Sampled* after that, as in the authors' `batchbald_redux` (`joint_entropy_sampling`):
///   `samples` configurations (rounded up to a multiple of T, the same number from each draw) are
///   drawn from p(y_S) by picking a draw ω_t and then each y_j ~ p(y_j | ω_t), and π_s = 1/M.
///   A new member of S extends each configuration by one label from the same draw, so later
///   steps reuse the samples.
///
/// Gains are evaluated lazily (Minoux 1978): the joint mutual information is submodular (Kirsch et
/// al. 2019), so a candidate's gain only shrinks as the batch grows, and the last gain computed for
/// it (at first its BALD) bounds the current one. Each step recomputes gains in order of these
/// bounds and stops at the first bound below the best gain found. While exact, the batch is the
/// one recomputing every gain would give; once sampled, a skipped candidate could have scored
/// above the pick only by the sampling error of the estimates.
///
/// The work per recomputed gain is configurations × k × T multiply-adds and configurations × k
/// logarithms. A batch of 1 is BALD's top pick (same tie-break keys from `rng`); `rng` also drives
/// the sampling, so a seed fixes the batch. A pick's score is its gain in joint mutual
/// information, its BALD for the first.
///
/// A limit worth knowing: the joint mutual information with the model is at most the entropy of
/// the draws, ln T (3.0 nats for T = 20), so once the batch has gathered about that much the
/// gains are near 0 and the rest of a large batch is chosen by estimation noise (with synthetic
/// draws, T = 20, k = 10: the first 12 gains sum to 3.0 and later ones are below 0.02). Large
/// batches want more draws (`--mc-draws`), as Kirsch et al. note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchBald {
    /// M: the most label configurations of the chosen set to sum over exactly; beyond that many,
    /// this many are sampled. Larger is more accurate and proportionally slower (≥ 1).
    pub samples: usize,
}

impl BatchBald {
    /// The default M. `batchbald_redux`'s examples use 10 000; at 1 000 the sampled conditional
    /// entropies were within 0.01 nat of the exact sum over all 10⁴ configurations (T = 20,
    /// k = 10, |S| = 4, 56 candidates, 4 seeds), small beside the spread of gains a step chooses
    /// from, and recomputing a gain costs at most about 1 000 × k × T multiply-adds.
    pub const DEFAULT_SAMPLES: usize = 1000;

    /// The greedy batch; `lazy: false` recomputes every gain at every step (tests compare).
    fn batch(&self, mc: &McSamples, k: usize, lazy: bool, rng: &mut QuarryRng) -> Result<Vec<(usize, f64)>> {
        if self.samples == 0 {
            return Err(Error::param("batchbald samples", "must be at least 1"));
        }
        let n = mc.len();
        // One key per candidate, drawn as top_k draws them, so a batch of 1 is BALD's pick.
        let keys: Vec<u64> = (0..n).map(|_| rng.random()).collect();
        let k = k.min(n);
        if k == 0 {
            return Ok(Vec::new());
        }
        let expected = expected_entropies(mc);
        let probs = ClassMajor::new(mc);
        // The last gain computed for each candidate: exact for the empty batch, a bound after.
        let mut gains = bald_scores(mc);
        let mut joint = ChosenJoint::empty(mc.draws());
        let mut is_chosen = vec![false; n];
        let mut chosen = Vec::with_capacity(k);
        let mut best = (0..n).max_by(|&a, &b| rank(&gains, &keys, a, b));
        while let Some(pick) = best {
            is_chosen[pick] = true;
            chosen.push(pick);
            if chosen.len() == k {
                break;
            }
            joint.add(mc, &chosen, pick, self.samples, rng);
            let mut order: Vec<usize> = (0..n).filter(|&i| !is_chosen[i]).collect();
            order.sort_unstable_by(|&a, &b| rank(&gains, &keys, b, a));
            best = None;
            // The scan in bound order, its gains computed in parallel a chunk at a time (chunks of
            // 8, 16, … 256: the scan often stops early). Gains past the stopping point are
            // dropped, so the batch is the sequential scan's, whatever the thread count.
            let (mut at, mut chunk) = (0, 8);
            'scan: while at < order.len() {
                let part = &order[at..(at + chunk).min(order.len())];
                let fresh: Vec<f64> =
                    part.par_iter().map(|&i| joint.conditional_entropy(probs.candidate(i)) - expected[i]).collect();
                for (&i, gain) in part.iter().zip(fresh) {
                    if let Some(b) = best {
                        // Rounding slack: a bound may sit a hair below the gain it bounds.
                        if lazy && gains[i] < gains[b] - 1e-6 {
                            break 'scan;
                        }
                    }
                    gains[i] = gain;
                    if best.is_none_or(|b| rank(&gains, &keys, i, b).is_gt()) {
                        best = Some(i);
                    }
                }
                at += part.len();
                chunk = (chunk * 2).min(256);
            }
        }
        Ok(chosen.into_iter().map(|i| (i, gains[i])).collect())
    }
}

/// [`top_k`]'s order on candidates `a` and `b`: the higher gain, NaN below every number, then the
/// higher random key.
fn rank(gains: &[f64], keys: &[u64], a: usize, b: usize) -> std::cmp::Ordering {
    let value = |i: usize| if gains[i].is_nan() { f64::NEG_INFINITY } else { gains[i] };
    value(a).total_cmp(&value(b)).then(keys[a].cmp(&keys[b]))
}

impl Default for BatchBald {
    fn default() -> Self {
        BatchBald { samples: Self::DEFAULT_SAMPLES }
    }
}

impl Strategy for BatchBald {
    fn name(&self) -> &str {
        "batchbald"
    }
    fn needs(&self) -> Needs {
        Needs::of(&[ScoreKind::McSamples])
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let mc = checked_samples(ctx, "batchbald")?;
        let picks = self.batch(mc, k, true, rng)?;
        Ok(Query { picks: picks.into_iter().map(|(i, score)| Pick { id: ctx.candidates[i], score }).collect() })
    }
}

/// Candidate probabilities laid out for the conditional-entropy kernel: `[n, classes, draws]`, so
/// that one candidate's class-c column over the draws is contiguous.
struct ClassMajor {
    data: Vec<f32>,
    draws: usize,
    classes: usize,
}

impl ClassMajor {
    fn new(mc: &McSamples) -> Self {
        let (draws, n, classes) = (mc.draws(), mc.len(), mc.n_classes());
        let mut data = vec![0f32; n * classes * draws];
        for t in 0..draws {
            for i in 0..n {
                for (c, &v) in mc.row(t, i).iter().enumerate() {
                    data[(i * classes + c) * draws + t] = v;
                }
            }
        }
        ClassMajor { data, draws, classes }
    }

    /// Candidate `i`'s p_t(c), `[classes, draws]`.
    fn candidate(&self, i: usize) -> &[f32] {
        let len = self.classes * self.draws;
        &self.data[i * len..(i + 1) * len]
    }
}

/// The chosen set's label configurations s, each with its weight π_s and the draws' posterior
/// P(ω_t | y_S = s): every configuration of nonzero probability (exact), or configurations
/// sampled from p(y_S).
struct ChosenJoint {
    draws: usize,
    configs: usize,
    /// `[draws, configs]`: P(ω_t | y_S = s); each configuration's column sums to 1. f32 halves
    /// the kernel's memory traffic; being normalized, the values cannot underflow where it matters.
    posterior: Vec<f32>,
    /// π_s: P(y_S = s) while exact, 1/M when sampled (0 for a configuration dropped as impossible).
    weight: Vec<f64>,
    /// `weight` in f32, as the kernel reads it.
    weight_f32: Vec<f32>,
    /// For sampled configurations, the draw each was sampled from; `None` while exact.
    sampled_from: Option<Vec<usize>>,
}

/// Configurations per block of the kernel: `draws × BLOCK` values stay in L1.
const BLOCK: usize = 128;

/// A class drawn from the row `p` with the uniform number `u` ∈ [0, 1); never a class of
/// probability 0, also when rounding leaves the cumulative sum short of `u`.
fn sample_class(p: &[f32], u: f64) -> usize {
    let mut cumulative = 0f64;
    let mut last_possible = 0;
    for (c, &v) in p.iter().enumerate() {
        if v > 0.0 {
            last_possible = c;
            cumulative += v as f64;
            if u < cumulative {
                return c;
            }
        }
    }
    last_possible
}

impl ChosenJoint {
    /// The empty set: one configuration of probability 1, every draw equally likely.
    fn empty(draws: usize) -> Self {
        ChosenJoint {
            draws,
            configs: 1,
            posterior: vec![1.0 / draws as f32; draws],
            weight: vec![1.0],
            weight_f32: vec![1.0],
            sampled_from: None,
        }
    }

    /// `samples` configurations (rounded up to a multiple of T) of the labels of `chosen`, drawn
    /// from their joint predictive distribution, the same number from each draw.
    fn sampled(mc: &McSamples, chosen: &[usize], samples: usize, rng: &mut QuarryRng) -> Self {
        let draws = mc.draws();
        let configs = samples.div_ceil(draws) * draws;
        let mut joint = ChosenJoint {
            draws,
            configs,
            posterior: vec![1.0 / draws as f32; draws * configs],
            weight: vec![1.0 / configs as f64; configs],
            weight_f32: vec![1.0 / configs as f32; configs],
            sampled_from: Some((0..configs).map(|s| s % draws).collect()),
        };
        for &j in chosen {
            joint.extend_sampled(mc, j, rng);
        }
        joint
    }

    /// Adds candidate `x` to the chosen set (`chosen` already holds it): exactly while the number
    /// of configurations stays within `samples`, by sampling from then on.
    fn add(&mut self, mc: &McSamples, chosen: &[usize], x: usize, samples: usize, rng: &mut QuarryRng) {
        if self.sampled_from.is_some() {
            self.extend_sampled(mc, x, rng);
        } else if self.configs.saturating_mul(mc.n_classes()) <= samples {
            self.extend_exact(mc, x);
        } else {
            *self = ChosenJoint::sampled(mc, chosen, samples, rng);
        }
    }

    /// Every configuration s becomes (s, c) for each label c of `x` with P(y_S = s, y_x = c) > 0:
    /// π_(s,c) = π_s q_s(c) and P(ω_t | s, c) = P(ω_t | s) p_t(c) / q_s(c).
    fn extend_exact(&mut self, mc: &McSamples, x: usize) {
        let (draws, classes) = (self.draws, mc.n_classes());
        let (mut posterior, mut weight) = (Vec::new(), Vec::new());
        let mut column = vec![0f64; draws];
        for s in 0..self.configs {
            for c in 0..classes {
                let q = self.times_likelihood(s, |t| mc.row(t, x)[c], &mut column);
                if self.weight[s] * q > 0.0 {
                    weight.push(self.weight[s] * q);
                    posterior.extend(column.iter().map(|v| (v / q) as f32));
                }
            }
        }
        // Built configuration-major; the kernel reads draw-major.
        let configs = weight.len();
        self.posterior = (0..draws * configs).map(|at| posterior[(at % configs) * draws + at / configs]).collect();
        self.weight = weight;
        self.configs = configs;
        self.sync_weights();
    }

    fn sync_weights(&mut self) {
        self.weight_f32 = self.weight.iter().map(|&w| w as f32).collect();
    }

    /// Every sampled configuration gets a label for `x` from the draw it was sampled from, and its
    /// posterior over the draws is updated by that label's likelihood.
    fn extend_sampled(&mut self, mc: &McSamples, x: usize, rng: &mut QuarryRng) {
        let Some(from) = &self.sampled_from else { return };
        let mut column = vec![0f64; self.draws];
        for (s, &t_s) in from.iter().enumerate() {
            let y = sample_class(mc.row(t_s, x), rng.random::<f64>());
            let total = self.times_likelihood(s, |t| mc.row(t, x)[y], &mut column);
            if total > 0.0 {
                for (t, v) in column.iter().enumerate() {
                    self.posterior[t * self.configs + s] = (v / total) as f32;
                }
            } else {
                // Only reachable through underflow: the configuration drops out of the sums.
                self.weight[s] = 0.0;
            }
        }
        self.sync_weights();
    }

    /// `column[t]` = P(ω_t | s) · `likelihood(t)` for configuration `s`; returns their sum, the
    /// probability of the new label given s.
    fn times_likelihood(&self, s: usize, likelihood: impl Fn(usize) -> f32, column: &mut [f64]) -> f64 {
        for (t, v) in column.iter_mut().enumerate() {
            *v = self.posterior[t * self.configs + s] as f64 * likelihood(t) as f64;
        }
        column.iter().sum()
    }

    /// H[y_x | y_S] for a candidate given as its `[classes, draws]` probabilities:
    /// Σ_s π_s H[q_s] with q_s(c) = Σ_t P(ω_t | s) p_t(c); exact or a sampled estimate.
    /// Runs the kernel built for AVX2 + FMA where the CPU has them (chosen at run time, by the one
    /// choice of `quarry_core::simd`, so `QUARRY_SIMD=scalar` reaches it too).
    fn conditional_entropy(&self, candidate: &[f32]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if quarry_core::simd::simd_level() >= quarry_core::simd::SimdLevel::Avx2Fma {
            // SAFETY: the CPU supports AVX2 and FMA (every level from Avx2Fma up has both).
            return unsafe { self.conditional_entropy_avx2(candidate) };
        }
        self.conditional_entropy_kernel(candidate)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn conditional_entropy_avx2(&self, candidate: &[f32]) -> f64 {
        self.conditional_entropy_kernel(candidate)
    }

    /// The kernel: per block of configurations, q_s(c) accumulated over the draws (a rank-1
    /// update per draw, vectorized over configurations), then Σ_s π_s q ln q with a branch-free
    /// logarithm that vectorizes too ([`ln_positive`]).
    #[inline(always)]
    fn conditional_entropy_kernel(&self, candidate: &[f32]) -> f64 {
        let mut total = 0f64;
        let mut acc = [0f32; BLOCK];
        for start in (0..self.configs).step_by(BLOCK) {
            let len = BLOCK.min(self.configs - start);
            let weight = &self.weight_f32[start..start + len];
            let mut block = 0f32;
            for column in candidate.chunks_exact(self.draws) {
                let acc = &mut acc[..len];
                acc.fill(0.0);
                for (t, &p) in column.iter().enumerate() {
                    if p == 0.0 {
                        continue;
                    }
                    let at = t * self.configs + start;
                    for (a, &r) in acc.iter_mut().zip(&self.posterior[at..at + len]) {
                        *a += p * r;
                    }
                }
                for (&q, &w) in acc.iter().zip(weight) {
                    // q ln q → 0 as q → 0: a zero (or denormal) q contributes nothing.
                    let safe = if q > f32::MIN_POSITIVE { q } else { 1.0 };
                    block -= w * (safe * ln_positive(safe));
                }
            }
            total += block as f64;
        }
        total
    }
}

/// ln x for a positive normal `x`, branch-free so that loops over it vectorize: x = m·2^e with
/// m ∈ [√½, √2), and ln(1 + f) for f = m − 1 by Cephes' `logf` polynomial (relative error about
/// 1e-7, f32 rounding).
#[inline(always)]
fn ln_positive(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 126;
    // m ∈ [0.5, 1).
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = (exponent - small as i32) as f32;
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    let mut y = 7.037_683_6e-2_f32;
    y = y * f - 1.151_461e-1;
    y = y * f + 1.167_699_9e-1;
    y = y * f - 1.242_014_1e-1;
    y = y * f + 1.424_932_3e-1;
    y = y * f - 1.666_805_8e-1;
    y = y * f + 2.000_071_4e-1;
    y = y * f - 2.499_999_4e-1;
    y = y * f + 3.333_333e-1;
    y = y * f * z;
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    f + y + 0.693_359_4 * e
}

pub(crate) fn entries() -> Vec<crate::Entry> {
    vec![
        crate::Entry {
            name: "bald",
            aliases: &[],
            family: "bayesian",
            paper: "Houlsby et al. 2011; Gal, Islam & Ghahramani, ICML 2017",
            summary: "mutual information between label and model over MC-dropout draws, H[p̄] − mean H[p_t]",
            build: |_| Ok(Box::new(Bald)),
        },
        crate::Entry {
            name: "variation-ratios",
            aliases: &[],
            family: "bayesian",
            paper: "Freeman 1965; Gal, Islam & Ghahramani, ICML 2017",
            summary: "1 − share of MC draws voting the modal class",
            build: |_| Ok(Box::new(VariationRatios)),
        },
        crate::Entry {
            name: "mean-std",
            aliases: &[],
            family: "bayesian",
            paper: "Kampffmeyer, Salberg & Jenssen, CVPR-W 2016; Gal, Islam & Ghahramani, ICML 2017",
            summary: "mean over classes of the std of the class probability across MC draws",
            build: |_| Ok(Box::new(MeanStd)),
        },
        crate::Entry {
            name: "max-entropy",
            aliases: &[],
            family: "bayesian",
            paper: "Shannon 1948; Gal, Islam & Ghahramani, ICML 2017",
            summary: "entropy of the MC-averaged prediction H[p̄]",
            build: |_| Ok(Box::new(MaxEntropy)),
        },
        crate::Entry {
            name: "batchbald",
            aliases: &[],
            family: "bayesian",
            paper: "Kirsch, van Amersfoort & Gal, NeurIPS 2019",
            summary: "greedy batch maximizing the joint mutual information of the batch's labels and the model",
            build: |_| Ok(Box::new(BatchBald::default())),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{Probabilities, SampleId, Scores, seeded_rng};

    /// MC samples from `draws[t][i]` = draw t's row for candidate i.
    fn mc(draws: &[Vec<Vec<f32>>]) -> McSamples {
        let per_draw: Vec<Probabilities> = draws
            .iter()
            .map(|rows| Probabilities::from_rows(&rows.iter().map(|r| r.as_slice()).collect::<Vec<_>>()).unwrap())
            .collect();
        McSamples::from_draws(&per_draw).unwrap()
    }

    fn run(s: &dyn Strategy, samples: &McSamples, k: usize, seed: u64) -> Query {
        let cands: Vec<SampleId> = (0..samples.len()).map(SampleId::from).collect();
        let scores = Scores::default().with(ScoreKind::McSamples, samples.clone());
        s.select(&QueryContext::new(&cands, &scores), k, &mut seeded_rng(seed, 0)).unwrap()
    }

    fn ids(q: &Query) -> Vec<u32> {
        q.ids().iter().map(|i| i.0).collect()
    }

    /// Hand-computed, T = 2 draws, k = 2 classes:
    /// - A: draws (0.9, 0.1) and (0.3, 0.7). p̄ = (0.6, 0.4), H[p̄] = 0.673012;
    ///   H[p_1] = 0.325083, H[p_2] = 0.610864, mean 0.467974; BALD = 0.205038.
    ///   Votes 0 and 1 → variation ratio 1 − 1/2 = 0.5. Class stds |0.9 − 0.3|/2 = 0.3 and
    ///   |0.1 − 0.7|/2 = 0.3 → mean std 0.3.
    /// - B: both draws (0.5, 0.5). H[p̄] = ln 2 = 0.693147 = mean H[p_t] → BALD 0, variation 0,
    ///   std 0: the most uncertain prediction, but the draws agree (aleatoric).
    /// - C: both draws (0.8, 0.2). H[p̄] = 0.500402, everything else 0.
    ///
    /// BALD, variation ratios, mean std and BatchBALD pick A first; max entropy ranks B, A, C.
    #[test]
    fn hand_computed_two_draws_two_classes() {
        let s = mc(&[
            vec![vec![0.9, 0.1], vec![0.5, 0.5], vec![0.8, 0.2]],
            vec![vec![0.3, 0.7], vec![0.5, 0.5], vec![0.8, 0.2]],
        ]);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let bald = bald_scores(&s);
        assert!(close(bald[0], 0.205_038) && close(bald[1], 0.0) && close(bald[2], 0.0), "{bald:?}");
        let h = max_entropy_scores(&s);
        assert!(close(h[0], 0.673_012) && close(h[1], 2f64.ln()) && close(h[2], 0.500_402), "{h:?}");
        assert_eq!(variation_ratio_scores(&s), vec![0.5, 0.0, 0.0]);
        let sd = mean_std_scores(&s);
        assert!(close(sd[0], 0.3) && sd[1] == 0.0 && sd[2] == 0.0, "{sd:?}");
        for strategy in [&Bald as &dyn Strategy, &VariationRatios, &MeanStd, &BatchBald::default()] {
            assert_eq!(ids(&run(strategy, &s, 1, 0)), vec![0], "{}", strategy.name());
        }
        assert_eq!(ids(&run(&MaxEntropy, &s, 3, 0)), vec![1, 0, 2]);
        let q = run(&BatchBald::default(), &s, 1, 0);
        assert!(close(q.picks[0].score, 0.205_038));
    }

    /// Candidates A and A' are identical: draws {0, 1} say class 0 for sure, draws {2, 3} class 1,
    /// so BALD = ln 2. B splits the draws the other way, {0, 2} vs {1, 3}, with 0.99 confidence:
    /// BALD = ln 2 − H(0.99, 0.01) = 0.637. Once A is chosen, y_A' is known from y_A and adds
    /// nothing, while y_B still tells which draw within the group: BatchBALD takes A (or A') and
    /// B, BALD's top 2 takes A and A'.
    #[test]
    fn batchbald_skips_a_duplicate_bald_takes_it() {
        let (one, two) = (vec![1.0, 0.0], vec![0.0, 1.0]);
        let (b1, b2) = (vec![0.99, 0.01], vec![0.01, 0.99]);
        let flat = vec![0.6, 0.4];
        let noisy = |a: f32| vec![a, 1.0 - a];
        let s = mc(&[
            vec![one.clone(), one.clone(), b1.clone(), flat.clone(), noisy(0.7)],
            vec![one.clone(), one.clone(), b2.clone(), flat.clone(), noisy(0.5)],
            vec![two.clone(), two.clone(), b1, flat.clone(), noisy(0.7)],
            vec![two.clone(), two.clone(), b2, flat, noisy(0.5)],
        ]);
        for seed in 0..8 {
            let mut bald = ids(&run(&Bald, &s, 2, seed));
            bald.sort();
            assert_eq!(bald, vec![0, 1]);
            let batch = ids(&run(&BatchBald::default(), &s, 2, seed));
            assert!(batch[0] <= 1 && batch[1] == 2, "seed {seed}: {batch:?}");
            let q = run(&BatchBald::default(), &s, 3, seed);
            let full = bald_scores(&s)[2];
            assert!((q.picks[1].score - full).abs() < 1e-6, "B's gain {} is its full BALD {full}", q.picks[1].score);
        }
    }

    /// The same with soft predictions: among random candidates, the one of highest BALD is
    /// duplicated. BALD's top 2 are the two copies; BatchBALD's second pick is another candidate,
    /// since a copy's label, given the first copy's, says less about ω than a fresh candidate's.
    #[test]
    fn batchbald_skips_a_soft_duplicate() {
        for seed in 0..20 {
            let base = random_mc(&mut seeded_rng(seed, 2), 20, 40, 5);
            let bald = bald_scores(&base);
            let top = (0..40).max_by(|&a, &b| bald[a].total_cmp(&bald[b])).unwrap();
            let mut data = Vec::new();
            for t in 0..20 {
                (0..40).for_each(|i| data.extend_from_slice(base.row(t, i)));
                data.extend_from_slice(base.row(t, top));
            }
            let s = McSamples::new(data, 20, 41, 5).unwrap();
            let mut two = ids(&run(&Bald, &s, 2, seed));
            two.sort();
            assert_eq!(two, vec![top as u32, 40], "seed {seed}");
            let batch = ids(&run(&BatchBald::default(), &s, 2, seed));
            assert!(batch.contains(&(top as u32)) || batch.contains(&40), "seed {seed}: {batch:?}");
            assert!(!(batch.contains(&(top as u32)) && batch.contains(&40)), "seed {seed}: {batch:?}");
        }
    }

    #[test]
    fn fewer_than_two_draws_or_missing_samples_is_an_error_naming_the_strategy() {
        let one = mc(&[vec![vec![0.5, 0.5], vec![0.9, 0.1]]]);
        let cands = [SampleId(0), SampleId(1)];
        let scores = Scores::default().with(ScoreKind::McSamples, one);
        let none = Scores::default();
        let strategies: [&dyn Strategy; 5] = [&Bald, &VariationRatios, &MeanStd, &MaxEntropy, &BatchBald::default()];
        for s in strategies {
            let err = s.select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err().to_string();
            assert!(err.contains(s.name()) && err.contains("needs at least 2 MC samples"), "{err}");
            let err = s.select(&QueryContext::new(&cands, &none), 1, &mut seeded_rng(0, 0)).unwrap_err().to_string();
            assert!(err.contains(s.name()), "{err}");
            assert!(s.needs().has(ScoreKind::McSamples) && !s.needs().has(ScoreKind::Probabilities));
            assert_eq!(crate::by_name(s.name()).unwrap().name(), s.name());
        }
        let three = mc(&[vec![vec![1.0, 0.0]; 3], vec![vec![0.0, 1.0]; 3]]);
        let scores = Scores::default().with(ScoreKind::McSamples, three);
        let err = Bald.select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err().to_string();
        assert!(err.contains("bald") && err.contains("3 rows"), "{err}");
    }

    /// The joint mutual information of a set by brute force over every label configuration.
    fn joint_mutual_information(s: &McSamples, set: &[usize]) -> f64 {
        let (draws, classes) = (s.draws(), s.n_classes());
        let mut h = 0f64;
        for config in 0..classes.pow(set.len() as u32) {
            let mut p = 0f64;
            for t in 0..draws {
                let mut rest = config;
                let mut q = 1f64;
                for &j in set {
                    q *= s.row(t, j)[rest % classes] as f64;
                    rest /= classes;
                }
                p += q / draws as f64;
            }
            if p > 0.0 {
                h -= p * p.ln();
            }
        }
        let expected = expected_entropies(s);
        h - set.iter().map(|&j| expected[j]).sum::<f64>()
    }

    /// The sampled conditional entropy H[y_x | y_S] converges to the exact one, and the exact one
    /// is the chain rule's H[y_S, y_x] − H[y_S] by brute force.
    #[test]
    fn sampled_conditional_entropy_matches_exact() {
        let mut rng = seeded_rng(5, 0);
        let s = random_mc(&mut rng, 6, 5, 3);
        let chosen = [0, 1, 2, 3];
        let mut exact = ChosenJoint::empty(6);
        for (at, &j) in chosen.iter().enumerate() {
            exact.add(&s, &chosen[..=at], j, usize::MAX, &mut rng);
        }
        assert_eq!(exact.configs, 81);
        assert!((exact.weight.iter().sum::<f64>() - 1.0).abs() < 1e-5, "probabilities of all configurations sum to 1");
        let probs = ClassMajor::new(&s);
        let e = exact.conditional_entropy(probs.candidate(4));
        let expected = expected_entropies(&s);
        let chain =
            joint_mutual_information(&s, &[0, 1, 2, 3, 4]) - joint_mutual_information(&s, &chosen) + expected[4];
        assert!((e - chain).abs() < 1e-6, "{e} vs {chain}");
        let sampled = ChosenJoint::sampled(&s, &chosen, 60_000, &mut rng);
        let m = sampled.conditional_entropy(probs.candidate(4));
        assert!((e - m).abs() < 0.01, "{e} vs {m}");
    }

    /// The vectorizable logarithm agrees with f64's to float precision over (0, 1] and beyond.
    #[test]
    fn ln_positive_matches_the_library_logarithm() {
        let mut x = f32::MIN_POSITIVE;
        while x < 1e6 {
            let (approx, exact) = (ln_positive(x) as f64, (x as f64).ln());
            assert!((approx - exact).abs() <= 2e-7 * exact.abs().max(1.0), "ln {x}: {approx} vs {exact}");
            x *= 1.013;
        }
        assert_eq!(ln_positive(1.0), 0.0);
    }

    /// Random MC samples `[draws, n, classes]`: a softmax of per-candidate logits plus per-draw
    /// noise of a per-candidate scale, so candidates range from certain to disputed.
    fn random_mc(rng: &mut QuarryRng, draws: usize, n: usize, classes: usize) -> McSamples {
        let base: Vec<f64> = (0..n * classes).map(|_| 4.0 * rng.random::<f64>()).collect();
        let spread: Vec<f64> = (0..n).map(|_| 3.0 * rng.random::<f64>()).collect();
        let mut data = Vec::with_capacity(draws * n * classes);
        for _ in 0..draws {
            for i in 0..n {
                let logits: Vec<f64> = (0..classes)
                    .map(|c| base[i * classes + c] + spread[i] * (rng.random::<f64>() - 0.5) * 2.0)
                    .collect();
                let mx = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = logits.iter().map(|l| (l - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                data.extend(e.iter().map(|v| (v / z) as f32));
            }
        }
        McSamples::new(data, draws, n, classes).unwrap()
    }

    fn mc_strategy(
        draws: std::ops::Range<usize>,
        n: usize,
        classes: usize,
    ) -> impl proptest::strategy::Strategy<Value = McSamples> {
        use proptest::strategy::Strategy as _;
        (draws, proptest::num::u64::ANY).prop_map(move |(t, seed)| random_mc(&mut seeded_rng(seed, 1), t, n, classes))
    }

    proptest! {
        /// BALD ≥ 0 up to rounding, BALD ≤ max entropy; BALD, variation ratio and mean std are 0
        /// when every draw is the same.
        #[test]
        fn bald_bounds_and_agreement(s in mc_strategy(2..8, 10, 4)) {
            let bald = bald_scores(&s);
            let h = max_entropy_scores(&s);
            for i in 0..s.len() {
                prop_assert!(bald[i] >= -1e-6);
                prop_assert!(bald[i] <= h[i] + 1e-12);
            }
            let first: Vec<Vec<f32>> = (0..s.len()).map(|i| s.row(0, i).to_vec()).collect();
            let same = mc(&vec![first; s.draws()]);
            prop_assert!(bald_scores(&same).iter().all(|&b| b.abs() < 1e-6));
            prop_assert!(variation_ratio_scores(&same).iter().all(|&v| v == 0.0));
            prop_assert!(mean_std_scores(&same).iter().all(|&v| v.abs() < 1e-7));
        }

        /// Every strategy picks min(k, n) distinct candidates, reproducibly for a seed; a batch of
        /// 1 from BatchBALD is BALD's top pick.
        #[test]
        fn picks_distinct_and_reproducible(s in mc_strategy(2..6, 9, 3), k in 1usize..12, seed in 0u64..1000) {
            let strategies: [&dyn Strategy; 6] =
                [&Bald, &VariationRatios, &MeanStd, &MaxEntropy, &BatchBald::default(), &BatchBald { samples: 10 }];
            for st in strategies {
                let q = run(st, &s, k, seed);
                prop_assert_eq!(q.len(), k.min(9));
                let mut d = ids(&q); d.sort(); d.dedup();
                prop_assert_eq!(d.len(), q.len());
                prop_assert_eq!(&q, &run(st, &s, k, seed));
            }
            prop_assert_eq!(ids(&run(&BatchBald::default(), &s, 1, seed)), ids(&run(&Bald, &s, 1, seed)));
        }

        /// Lazy evaluation gives the batch that recomputing every gain gives, while exact.
        #[test]
        fn lazy_gains_give_the_full_greedy_batch(s in mc_strategy(2..6, 12, 3), k in 1usize..8, seed in 0u64..1000) {
            let exact = BatchBald { samples: usize::MAX };
            let lazy = exact.batch(&s, k, true, &mut seeded_rng(seed, 0)).unwrap();
            let full = exact.batch(&s, k, false, &mut seeded_rng(seed, 0)).unwrap();
            prop_assert_eq!(lazy.iter().map(|p| p.0).collect::<Vec<_>>(), full.iter().map(|p| p.0).collect::<Vec<_>>());
        }

        /// While exact, BatchBALD's gains are the increments of the joint mutual information:
        /// each in [0, its BALD] (submodularity) and summing to the brute-force joint MI.
        #[test]
        fn exact_gains_sum_to_the_joint_mutual_information(s in mc_strategy(2..6, 8, 3), k in 1usize..6) {
            let q = run(&BatchBald { samples: usize::MAX }, &s, k, 0);
            let picked: Vec<usize> = q.ids().iter().map(|i| i.index()).collect();
            let bald = bald_scores(&s);
            for (p, &i) in q.picks.iter().zip(&picked) {
                prop_assert!(p.score >= -1e-6 && p.score <= bald[i] + 1e-6, "{} vs BALD {}", p.score, bald[i]);
            }
            let total: f64 = q.picks.iter().map(|p| p.score).sum();
            prop_assert!((total - joint_mutual_information(&s, &picked)).abs() < 1e-6);
        }
    }

    /// Speed check, run with `cargo test --release -p quarry-strategies -- --ignored --nocapture`:
    /// BatchBALD choosing 10 and 20 of 2 000 candidates with T = 20 draws of k = 10 classes, with
    /// lazy gains (as `select` runs) and recomputing every gain.
    #[test]
    #[ignore]
    fn batchbald_speed_2000_candidates() {
        let s = random_mc(&mut seeded_rng(1, 0), 20, 2000, 10);
        for batch in [10, 20] {
            for lazy in [true, false] {
                let start = std::time::Instant::now();
                let picks = BatchBald::default().batch(&s, batch, lazy, &mut seeded_rng(0, 0)).unwrap();
                let picked: Vec<usize> = picks.iter().map(|p| p.0).collect();
                eprintln!(
                    "batchbald {batch} of 2000 (T = 20, k = 10, lazy {lazy}): {:.3} s, picks {picked:?}",
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
}
