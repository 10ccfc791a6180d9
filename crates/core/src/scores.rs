use crate::{Error, Matrix, Result};

/// Class probabilities, row-major `[n, classes]`; every row sums to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    data: Vec<f32>,
    n: usize,
    classes: usize,
}

impl Probabilities {
    /// Checks the shape and that each row is a distribution (non-negative, sums to 1 within 1e-4).
    pub fn new(data: Vec<f32>, n: usize, classes: usize) -> Result<Self> {
        if classes == 0 || data.len() != n * classes {
            return Err(Error::shape("probabilities", format!("{n}x{classes}"), data.len()));
        }
        for (row, p) in data.chunks_exact(classes).enumerate() {
            let sum: f64 = p.iter().map(|&v| v as f64).sum();
            if (sum - 1.0).abs() > 1e-4 || p.iter().any(|v| v.is_nan() || *v < 0.0) {
                return Err(Error::NotAProbability { row, sum });
            }
        }
        Ok(Probabilities { data, n, classes })
    }

    /// Convenience for tests and hand-computed cases.
    pub fn from_rows(rows: &[&[f32]]) -> Result<Self> {
        let classes = rows.first().map_or(0, |r| r.len());
        if let Some(bad) = rows.iter().position(|r| r.len() != classes) {
            return Err(Error::shape(format!("probability row {bad}"), classes, rows[bad].len()));
        }
        Self::new(rows.concat(), rows.len(), classes)
    }

    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn n_classes(&self) -> usize {
        self.classes
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.classes..(i + 1) * self.classes]
    }
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f32]> {
        self.data.chunks_exact(self.classes)
    }
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The most probable class of each row (the lowest index on ties).
    pub fn argmax(&self) -> Vec<u32> {
        self.rows()
            .map(|p| {
                let mut best = 0;
                for (c, &v) in p.iter().enumerate() {
                    if v > p[best] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect()
    }
}

/// Monte-Carlo samples of class probabilities, `[draws, n, classes]` (e.g. T dropout passes):
/// draw `t`'s probabilities for sample `i` are `row(t, i)`.
#[derive(Debug, Clone, PartialEq)]
pub struct McSamples {
    data: Vec<f32>,
    draws: usize,
    n: usize,
    classes: usize,
}

impl McSamples {
    /// Checks the shape and that every row is a distribution.
    pub fn new(data: Vec<f32>, draws: usize, n: usize, classes: usize) -> Result<Self> {
        if draws == 0 || classes == 0 || data.len() != draws * n * classes {
            return Err(Error::shape("MC samples", format!("{draws}x{n}x{classes}"), data.len()));
        }
        for (row, p) in data.chunks_exact(classes).enumerate() {
            let sum: f64 = p.iter().map(|&v| v as f64).sum();
            if (sum - 1.0).abs() > 1e-4 || p.iter().any(|v| v.is_nan() || *v < 0.0) {
                return Err(Error::NotAProbability { row, sum });
            }
        }
        Ok(McSamples { data, draws, n, classes })
    }

    /// One [`Probabilities`] per draw, all of the same shape.
    pub fn from_draws(draws: &[Probabilities]) -> Result<Self> {
        let first = draws.first().ok_or_else(|| Error::param("MC samples", "need at least one draw"))?;
        let (n, classes) = (first.len(), first.n_classes());
        let mut data = Vec::with_capacity(draws.len() * n * classes);
        for (t, d) in draws.iter().enumerate() {
            if d.len() != n || d.n_classes() != classes {
                return Err(Error::shape(format!("MC draw {t}"), format!("{n}x{classes}"), format!("{}x{}", d.len(), d.n_classes())));
            }
            data.extend_from_slice(d.as_slice());
        }
        Ok(McSamples { data, draws: draws.len(), n, classes })
    }

    pub fn draws(&self) -> usize {
        self.draws
    }
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn n_classes(&self) -> usize {
        self.classes
    }
    /// Probabilities of draw `t` for sample `i`.
    pub fn row(&self, t: usize, i: usize) -> &[f32] {
        let at = (t * self.n + i) * self.classes;
        &self.data[at..at + self.classes]
    }
    /// The mean over draws, `[n, classes]`.
    pub fn mean(&self) -> Probabilities {
        let mut out = vec![0f32; self.n * self.classes];
        for t in 0..self.draws {
            for (o, &v) in out.iter_mut().zip(&self.data[t * self.n * self.classes..(t + 1) * self.n * self.classes]) {
                *o += v;
            }
        }
        let inv = 1.0 / self.draws as f32;
        out.iter_mut().for_each(|v| *v *= inv);
        // Renormalize away float drift so the mean is a valid distribution.
        for row in out.chunks_exact_mut(self.classes) {
            let s: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= s);
        }
        Probabilities::new(out, self.n, self.classes).expect("a mean of distributions is a distribution")
    }
}

/// Which scores a strategy needs, so the loop asks the learner only for those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Class probabilities of the candidates, `[n, classes]`.
    pub probabilities: bool,
    /// MC-dropout samples of the candidates, `[draws, n, classes]`.
    pub mc_samples: bool,
    /// Each committee member's probabilities of the candidates.
    pub committee: bool,
    /// The candidates' embeddings (the model's last-layer input), `[n, dim]`.
    pub embeddings: bool,
    /// Embeddings of the labeled samples (distances to what is already covered).
    pub labeled_embeddings: bool,
    /// Class probabilities of the labeled samples (e.g. their Fisher information).
    pub labeled_probabilities: bool,
    /// Embeddings of every unlabeled pool sample (density over the pool).
    pub pool_embeddings: bool,
    /// Last-layer gradient embeddings of the candidates (BADGE), `[n, dim·classes]`.
    pub gradient_embeddings: bool,
    /// A way to refit the model with one hypothetical label (expected error / variance reduction).
    pub what_if: bool,
    /// Predictions of augmented patches of each candidate, `[patches, n, classes]` (AIFT).
    pub patches: bool,
    /// The candidates' raw input features (task-agnostic strategies such as VAAL), `[n, d]`.
    pub features: bool,
    /// Raw input features of the labeled samples, rows aligned with `QueryContext::labeled`.
    pub labeled_features: bool,
}

impl Needs {
    pub const NOTHING: Needs = Needs {
        probabilities: false,
        mc_samples: false,
        committee: false,
        embeddings: false,
        labeled_embeddings: false,
        labeled_probabilities: false,
        pool_embeddings: false,
        gradient_embeddings: false,
        what_if: false,
        patches: false,
        features: false,
        labeled_features: false,
    };
    pub const PROBABILITIES: Needs = Needs { probabilities: true, ..Needs::NOTHING };

    pub fn union(self, o: Needs) -> Needs {
        Needs {
            probabilities: self.probabilities || o.probabilities,
            mc_samples: self.mc_samples || o.mc_samples,
            committee: self.committee || o.committee,
            embeddings: self.embeddings || o.embeddings,
            labeled_embeddings: self.labeled_embeddings || o.labeled_embeddings,
            labeled_probabilities: self.labeled_probabilities || o.labeled_probabilities,
            pool_embeddings: self.pool_embeddings || o.pool_embeddings,
            gradient_embeddings: self.gradient_embeddings || o.gradient_embeddings,
            what_if: self.what_if || o.what_if,
            patches: self.patches || o.patches,
            features: self.features || o.features,
            labeled_features: self.labeled_features || o.labeled_features,
        }
    }

    /// Names of the needed scores, for `quarry strategies`.
    pub fn describe(&self) -> String {
        let names = [
            (self.probabilities, "probabilities"),
            (self.mc_samples, "mc-samples"),
            (self.committee, "committee"),
            (self.embeddings, "embeddings"),
            (self.labeled_embeddings, "labeled-embeddings"),
            (self.labeled_probabilities, "labeled-probabilities"),
            (self.pool_embeddings, "pool-embeddings"),
            (self.gradient_embeddings, "gradient-embeddings"),
            (self.what_if, "refit"),
            (self.patches, "patch-probabilities"),
            (self.features, "features"),
            (self.labeled_features, "labeled-features"),
        ];
        let v: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        if v.is_empty() { "nothing".into() } else { v.join("+") }
    }
}

/// One kind of score a strategy can ask for. A [`crate::ScoreProvider`] makes some kinds; the
/// session asks the providers it was given for each kind the strategy [`Needs`], by kind, and
/// never special-cases a strategy. (`Needs::what_if` is not a score: the session builds the
/// refit from its learner.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScoreKind {
    Probabilities,
    McSamples,
    Committee,
    Embeddings,
    LabeledEmbeddings,
    LabeledProbabilities,
    PoolEmbeddings,
    GradientEmbeddings,
    Patches,
    Features,
    LabeledFeatures,
}

impl ScoreKind {
    /// The name `quarry strategies` shows.
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::Probabilities => "probabilities",
            ScoreKind::McSamples => "mc-samples",
            ScoreKind::Committee => "committee",
            ScoreKind::Embeddings => "embeddings",
            ScoreKind::LabeledEmbeddings => "labeled-embeddings",
            ScoreKind::LabeledProbabilities => "labeled-probabilities",
            ScoreKind::PoolEmbeddings => "pool-embeddings",
            ScoreKind::GradientEmbeddings => "gradient-embeddings",
            ScoreKind::Patches => "patch-probabilities",
            ScoreKind::Features => "features",
            ScoreKind::LabeledFeatures => "labeled-features",
        }
    }
}

impl Needs {
    /// The score kinds these needs ask for, in a fixed order.
    pub fn kinds(&self) -> Vec<ScoreKind> {
        [
            (self.probabilities, ScoreKind::Probabilities),
            (self.mc_samples, ScoreKind::McSamples),
            (self.committee, ScoreKind::Committee),
            (self.embeddings, ScoreKind::Embeddings),
            (self.labeled_embeddings, ScoreKind::LabeledEmbeddings),
            (self.labeled_probabilities, ScoreKind::LabeledProbabilities),
            (self.pool_embeddings, ScoreKind::PoolEmbeddings),
            (self.gradient_embeddings, ScoreKind::GradientEmbeddings),
            (self.patches, ScoreKind::Patches),
            (self.features, ScoreKind::Features),
            (self.labeled_features, ScoreKind::LabeledFeatures),
        ]
        .into_iter()
        .filter_map(|(on, k)| on.then_some(k))
        .collect()
    }
}

/// What a learner said about a set of candidates, row `i` for candidate `i`; only the fields the
/// strategy [`Needs`] are filled.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub probabilities: Option<Probabilities>,
    pub mc_samples: Option<McSamples>,
    /// One entry per committee member.
    pub committee: Option<Vec<Probabilities>>,
    pub embeddings: Option<Matrix>,
    /// Rows align with `QueryContext::labeled`.
    pub labeled_embeddings: Option<Matrix>,
    /// Rows align with `QueryContext::labeled`.
    pub labeled_probabilities: Option<Probabilities>,
    /// Every unlabeled pool sample (not only the candidates).
    pub pool_embeddings: Option<Matrix>,
    pub gradient_embeddings: Option<Matrix>,
    /// Predictions of `m` augmented patches of each candidate: draw `t` is patch `t`.
    pub patches: Option<McSamples>,
    /// The candidates' raw input features.
    pub features: Option<Matrix>,
    /// Raw input features of the labeled samples; rows align with `QueryContext::labeled`.
    pub labeled_features: Option<Matrix>,
}

fn missing(strategy: &str, what: &str) -> Error {
    Error::Other(format!("strategy {strategy} needs {what}, none were computed"))
}

impl Scores {
    /// The probabilities, or an error naming the strategy that needed them.
    pub fn probabilities(&self, strategy: &str) -> Result<&Probabilities> {
        self.probabilities.as_ref().ok_or_else(|| missing(strategy, "class probabilities"))
    }
    pub fn mc_samples(&self, strategy: &str) -> Result<&McSamples> {
        self.mc_samples.as_ref().ok_or_else(|| missing(strategy, "MC-dropout samples (a model with dropout)"))
    }
    pub fn committee(&self, strategy: &str) -> Result<&[Probabilities]> {
        self.committee.as_deref().ok_or_else(|| missing(strategy, "committee probabilities"))
    }
    pub fn embeddings(&self, strategy: &str) -> Result<&Matrix> {
        self.embeddings.as_ref().ok_or_else(|| missing(strategy, "candidate embeddings"))
    }
    pub fn labeled_embeddings(&self, strategy: &str) -> Result<&Matrix> {
        self.labeled_embeddings.as_ref().ok_or_else(|| missing(strategy, "labeled-set embeddings"))
    }
    pub fn labeled_probabilities(&self, strategy: &str) -> Result<&Probabilities> {
        self.labeled_probabilities.as_ref().ok_or_else(|| missing(strategy, "labeled-set probabilities"))
    }
    pub fn pool_embeddings(&self, strategy: &str) -> Result<&Matrix> {
        self.pool_embeddings.as_ref().ok_or_else(|| missing(strategy, "pool embeddings"))
    }
    pub fn patches(&self, strategy: &str) -> Result<&McSamples> {
        self.patches.as_ref().ok_or_else(|| missing(strategy, "predictions of augmented patches (an image model)"))
    }
    pub fn features(&self, strategy: &str) -> Result<&Matrix> {
        self.features.as_ref().ok_or_else(|| missing(strategy, "candidate input features"))
    }
    pub fn labeled_features(&self, strategy: &str) -> Result<&Matrix> {
        self.labeled_features.as_ref().ok_or_else(|| missing(strategy, "labeled-set input features"))
    }
    pub fn gradient_embeddings(&self, strategy: &str) -> Result<&Matrix> {
        self.gradient_embeddings.as_ref().ok_or_else(|| missing(strategy, "gradient embeddings"))
    }
}
