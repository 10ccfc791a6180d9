use crate::{Error, Matrix, Result};
use std::collections::BTreeMap;

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

/// Whose rows a kind of score has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowsOf {
    /// One row per candidate, aligned with `QueryContext::candidates` (a subset of the candidates
    /// keeps its rows).
    Candidates,
    /// One row per labeled sample, aligned with `QueryContext::labeled`.
    Labeled,
    /// One row per unlabeled pool sample (not only the candidates).
    Unlabeled,
}

/// Declares every [`ScoreKind`] once: its name in `quarry strategies`, the form of its value (a
/// [`Score`] variant), whose rows it has, and what a strategy that finds none is told it needed.
macro_rules! score_kinds {
    ($($(#[$doc:meta])* $kind:ident { name: $name:literal, value: $value:ident, rows: $rows:ident, missing: $what:literal },)*) => {
        /// One kind of score a strategy can ask for. A [`crate::ScoreProvider`] makes some kinds;
        /// the session asks the providers it was given for each kind the strategy [`Needs`], by
        /// kind, and never special-cases a strategy. (`Needs::what_if` is not a score: the
        /// session builds the refit from its learner.)
        ///
        /// A new kind is one entry of `score_kinds!` in `scores.rs` (and, for a new form of
        /// value, one [`Score`] variant and its [`ScoreValue`]); strategies read it with
        /// [`Scores::value`] and ask for it with [`Needs::of`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ScoreKind {
            $($(#[$doc])* $kind,)*
        }

        impl ScoreKind {
            /// Every kind, in the fixed order of [`Needs::kinds`].
            pub const ALL: &'static [ScoreKind] = &[$(ScoreKind::$kind),*];

            /// The name `quarry strategies` shows.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ScoreKind::$kind => $name,)*
                }
            }

            /// Whose rows these scores have.
            pub const fn rows_of(self) -> RowsOf {
                match self {
                    $(ScoreKind::$kind => RowsOf::$rows,)*
                }
            }

            /// Whether `score` has the form this kind's values take.
            pub fn holds(self, score: &Score) -> bool {
                match self {
                    $(ScoreKind::$kind => matches!(score, Score::$value(_)),)*
                }
            }

            /// What a strategy that finds none of these is told it needed.
            fn missing(self) -> &'static str {
                match self {
                    $(ScoreKind::$kind => $what,)*
                }
            }
        }
    };
}

score_kinds! {
    /// Class probabilities of the candidates, `[n, classes]`.
    Probabilities { name: "probabilities", value: Probabilities, rows: Candidates, missing: "class probabilities" },
    /// MC-dropout samples of the candidates, `[draws, n, classes]`.
    McSamples { name: "mc-samples", value: Samples, rows: Candidates, missing: "MC-dropout samples (a model with dropout)" },
    /// Each committee member's probabilities of the candidates, one entry per member.
    Committee { name: "committee", value: Members, rows: Candidates, missing: "committee probabilities" },
    /// The candidates' embeddings (the model's last-layer input), `[n, dim]`.
    Embeddings { name: "embeddings", value: Rows, rows: Candidates, missing: "candidate embeddings" },
    /// Embeddings of the labeled samples (distances to what is already covered).
    LabeledEmbeddings { name: "labeled-embeddings", value: Rows, rows: Labeled, missing: "labeled-set embeddings" },
    /// Class probabilities of the labeled samples (e.g. their Fisher information).
    LabeledProbabilities { name: "labeled-probabilities", value: Probabilities, rows: Labeled, missing: "labeled-set probabilities" },
    /// Embeddings of every unlabeled pool sample (density over the pool).
    PoolEmbeddings { name: "pool-embeddings", value: Rows, rows: Unlabeled, missing: "pool embeddings" },
    /// Last-layer gradient embeddings of the candidates (BADGE), `[n, dim·classes]`.
    GradientEmbeddings { name: "gradient-embeddings", value: Rows, rows: Candidates, missing: "gradient embeddings" },
    /// Predictions of `m` augmented patches of each candidate, `[patches, n, classes]`: draw `t`
    /// is patch `t` (AIFT).
    Patches { name: "patch-probabilities", value: Samples, rows: Candidates, missing: "predictions of augmented patches (an image model)" },
    /// The candidates' raw input features (task-agnostic strategies such as VAAL), `[n, d]`.
    Features { name: "features", value: Rows, rows: Candidates, missing: "candidate input features" },
    /// Raw input features of the labeled samples.
    LabeledFeatures { name: "labeled-features", value: Rows, rows: Labeled, missing: "labeled-set input features" },
}

impl ScoreKind {
    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

const _: () = assert!(ScoreKind::ALL.len() <= 32, "Needs keeps its kinds in a u32");

/// Which scores a strategy needs, so the loop asks the learner only for those: a set of
/// [`ScoreKind`]s, and whether it refits with hypothetical labels ([`Needs::what_if`]).
///
/// ```
/// use quarry_core::{Needs, ScoreKind};
/// const NEEDS: Needs = Needs::of(&[ScoreKind::Probabilities, ScoreKind::Embeddings]);
/// assert!(NEEDS.has(ScoreKind::Embeddings) && !NEEDS.what_if());
/// assert_eq!(NEEDS.with_what_if().describe(), "probabilities+embeddings+refit");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Needs {
    kinds: u32,
    what_if: bool,
}

impl Needs {
    pub const NOTHING: Needs = Needs { kinds: 0, what_if: false };
    pub const PROBABILITIES: Needs = Needs::of(&[ScoreKind::Probabilities]);

    /// These kinds of scores (and no refit).
    pub const fn of(kinds: &[ScoreKind]) -> Needs {
        let mut needs = Needs::NOTHING;
        let mut i = 0;
        while i < kinds.len() {
            needs = needs.and(kinds[i]);
            i += 1;
        }
        needs
    }

    /// These needs and scores of `kind`.
    pub const fn and(self, kind: ScoreKind) -> Needs {
        Needs { kinds: self.kinds | kind.bit(), what_if: self.what_if }
    }

    /// These needs and a way to refit the model with one hypothetical label (expected error /
    /// variance reduction).
    pub const fn with_what_if(self) -> Needs {
        Needs { kinds: self.kinds, what_if: true }
    }

    /// Whether scores of `kind` are needed.
    pub const fn has(self, kind: ScoreKind) -> bool {
        self.kinds & kind.bit() != 0
    }

    /// Whether a refit with a hypothetical label is needed.
    pub const fn what_if(self) -> bool {
        self.what_if
    }

    /// The score kinds these needs ask for, in a fixed order (that of [`ScoreKind::ALL`]).
    pub fn kinds(self) -> impl Iterator<Item = ScoreKind> {
        ScoreKind::ALL.iter().copied().filter(move |&k| self.has(k))
    }

    pub const fn union(self, o: Needs) -> Needs {
        Needs { kinds: self.kinds | o.kinds, what_if: self.what_if || o.what_if }
    }

    /// Names of the needed scores, for `quarry strategies`: the kinds in order, "refit" before
    /// patch-probabilities (where it has always been listed); "nothing" when empty.
    pub fn describe(&self) -> String {
        const REFIT_BEFORE: ScoreKind = ScoreKind::Patches;
        let mut names = Vec::new();
        let mut refit = self.what_if;
        for kind in self.kinds() {
            if refit && kind >= REFIT_BEFORE {
                names.push("refit");
                refit = false;
            }
            names.push(kind.name());
        }
        if refit {
            names.push("refit");
        }
        if names.is_empty() { "nothing".into() } else { names.join("+") }
    }
}

/// One score's value; which form a kind takes is declared with the kind ([`ScoreKind::holds`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Score {
    /// `[n, classes]`.
    Probabilities(Probabilities),
    /// `[draws, n, classes]`.
    Samples(McSamples),
    /// One entry per committee member.
    Members(Vec<Probabilities>),
    /// `[n, dim]`.
    Rows(Matrix),
}

/// A type a [`Score`] holds, for the typed [`Scores::value`] and [`Scores::set`].
pub trait ScoreValue: Into<Score> {
    fn from_score(score: &Score) -> Option<&Self>;
}

macro_rules! score_values {
    ($($variant:ident($ty:ty),)*) => {$(
        impl From<$ty> for Score {
            fn from(v: $ty) -> Score {
                Score::$variant(v)
            }
        }
        impl ScoreValue for $ty {
            fn from_score(score: &Score) -> Option<&Self> {
                if let Score::$variant(v) = score { Some(v) } else { None }
            }
        }
    )*};
}

score_values! {
    Probabilities(Probabilities),
    Samples(McSamples),
    Members(Vec<Probabilities>),
    Rows(Matrix),
}

/// What a learner said about a set of candidates, row `i` for candidate `i` (or as the kind's
/// [`RowsOf`] says); only the kinds the strategy [`Needs`] are filled.
///
/// ```
/// use quarry_core::{Probabilities, ScoreKind, Scores};
/// let p = Probabilities::from_rows(&[&[0.25, 0.75]]).unwrap();
/// let scores = Scores::default().with(ScoreKind::Probabilities, p.clone());
/// assert_eq!(scores.probabilities("margin").unwrap(), &p);
/// assert!(scores.embeddings("coreset").unwrap_err().to_string().contains("coreset needs candidate embeddings"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    scores: BTreeMap<ScoreKind, Score>,
}

fn missing(strategy: &str, what: &str) -> Error {
    Error::Other(format!("strategy {strategy} needs {what}, none were computed"))
}

impl Scores {
    /// Sets the scores of `kind`, replacing any.
    ///
    /// # Panics
    /// If `value` is not the form `kind` takes ([`ScoreKind::holds`]): a provider's bug.
    pub fn set(&mut self, kind: ScoreKind, value: impl Into<Score>) {
        let value = value.into();
        assert!(kind.holds(&value), "{} scores cannot be {value:?}", kind.name());
        self.scores.insert(kind, value);
    }

    /// These scores and `value` as the scores of `kind` (see [`Scores::set`]).
    pub fn with(mut self, kind: ScoreKind, value: impl Into<Score>) -> Self {
        self.set(kind, value);
        self
    }

    /// These scores without those of `kind`.
    pub fn without(mut self, kind: ScoreKind) -> Self {
        self.scores.remove(&kind);
        self
    }

    pub fn remove(&mut self, kind: ScoreKind) -> Option<Score> {
        self.scores.remove(&kind)
    }

    pub fn get(&self, kind: ScoreKind) -> Option<&Score> {
        self.scores.get(&kind)
    }

    pub fn contains(&self, kind: ScoreKind) -> bool {
        self.scores.contains_key(&kind)
    }

    /// The scores present, in [`ScoreKind`] order.
    pub fn iter(&self) -> impl Iterator<Item = (ScoreKind, &Score)> {
        self.scores.iter().map(|(&k, v)| (k, v))
    }

    /// The scores of `kind` as a `T`, or an error naming the strategy that needed them.
    pub fn value<T: ScoreValue>(&self, kind: ScoreKind, strategy: &str) -> Result<&T> {
        let score = self.get(kind).ok_or_else(|| missing(strategy, kind.missing()))?;
        T::from_score(score).ok_or_else(|| {
            Error::Other(format!("strategy {strategy} reads {} scores as {}, they are not", kind.name(), std::any::type_name::<T>()))
        })
    }

    /// The probabilities, or an error naming the strategy that needed them.
    pub fn probabilities(&self, strategy: &str) -> Result<&Probabilities> {
        self.value(ScoreKind::Probabilities, strategy)
    }
    pub fn mc_samples(&self, strategy: &str) -> Result<&McSamples> {
        self.value(ScoreKind::McSamples, strategy)
    }
    pub fn committee(&self, strategy: &str) -> Result<&[Probabilities]> {
        self.value::<Vec<Probabilities>>(ScoreKind::Committee, strategy).map(Vec::as_slice)
    }
    pub fn embeddings(&self, strategy: &str) -> Result<&Matrix> {
        self.value(ScoreKind::Embeddings, strategy)
    }
    pub fn labeled_embeddings(&self, strategy: &str) -> Result<&Matrix> {
        self.value(ScoreKind::LabeledEmbeddings, strategy)
    }
    pub fn labeled_probabilities(&self, strategy: &str) -> Result<&Probabilities> {
        self.value(ScoreKind::LabeledProbabilities, strategy)
    }
    pub fn pool_embeddings(&self, strategy: &str) -> Result<&Matrix> {
        self.value(ScoreKind::PoolEmbeddings, strategy)
    }
    pub fn patches(&self, strategy: &str) -> Result<&McSamples> {
        self.value(ScoreKind::Patches, strategy)
    }
    pub fn features(&self, strategy: &str) -> Result<&Matrix> {
        self.value(ScoreKind::Features, strategy)
    }
    pub fn labeled_features(&self, strategy: &str) -> Result<&Matrix> {
        self.value(ScoreKind::LabeledFeatures, strategy)
    }
    pub fn gradient_embeddings(&self, strategy: &str) -> Result<&Matrix> {
        self.value(ScoreKind::GradientEmbeddings, strategy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names and their order `quarry strategies` has always shown, "refit" included.
    #[test]
    fn describe_keeps_the_order_of_the_names() {
        let all = ScoreKind::ALL.iter().fold(Needs::NOTHING, |n, &k| n.and(k));
        assert_eq!(
            all.with_what_if().describe(),
            "probabilities+mc-samples+committee+embeddings+labeled-embeddings+labeled-probabilities+pool-embeddings\
             +gradient-embeddings+refit+patch-probabilities+features+labeled-features"
        );
        assert_eq!(Needs::NOTHING.describe(), "nothing");
        assert_eq!(Needs::NOTHING.with_what_if().describe(), "refit");
        assert_eq!(Needs::PROBABILITIES.with_what_if().describe(), "probabilities+refit");
        assert_eq!(Needs::of(&[ScoreKind::Features]).with_what_if().describe(), "refit+features");
        assert_eq!(Needs::of(&[ScoreKind::Embeddings, ScoreKind::Probabilities]).describe(), "probabilities+embeddings");
    }

    #[test]
    fn needs_are_a_set_of_kinds() {
        const N: Needs = Needs::of(&[ScoreKind::PoolEmbeddings, ScoreKind::Probabilities]);
        assert!(N.has(ScoreKind::Probabilities) && N.has(ScoreKind::PoolEmbeddings) && !N.has(ScoreKind::Embeddings));
        assert_eq!(N.kinds().collect::<Vec<_>>(), [ScoreKind::Probabilities, ScoreKind::PoolEmbeddings]);
        let u = N.union(Needs::of(&[ScoreKind::Committee]).with_what_if());
        assert_eq!(u.kinds().collect::<Vec<_>>(), [ScoreKind::Probabilities, ScoreKind::Committee, ScoreKind::PoolEmbeddings]);
        assert!(u.what_if() && !N.what_if());
        assert_eq!(Needs::default(), Needs::NOTHING);
        assert_eq!(Needs::NOTHING.kinds().count(), 0);
        let names: std::collections::HashSet<_> = ScoreKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ScoreKind::ALL.len(), "every kind has its own name");
    }

    #[test]
    fn scores_are_typed_by_kind() {
        let p = Probabilities::from_rows(&[&[0.5, 0.5]]).unwrap();
        let m = Matrix::zeros(1, 3);
        let s = Scores::default().with(ScoreKind::Probabilities, p.clone()).with(ScoreKind::PoolEmbeddings, m.clone());
        assert_eq!(s.probabilities("x").unwrap(), &p);
        assert_eq!(s.pool_embeddings("x").unwrap(), &m);
        assert_eq!(s.value::<Matrix>(ScoreKind::PoolEmbeddings, "x").unwrap(), &m);
        assert_eq!(s.iter().map(|(k, _)| k).collect::<Vec<_>>(), [ScoreKind::Probabilities, ScoreKind::PoolEmbeddings]);
        assert_eq!(s.embeddings("coreset").unwrap_err().to_string(), "strategy coreset needs candidate embeddings, none were computed");
        assert!(s.value::<Matrix>(ScoreKind::Probabilities, "x").is_err());
        let s = s.without(ScoreKind::Probabilities);
        assert!(!s.contains(ScoreKind::Probabilities) && s.contains(ScoreKind::PoolEmbeddings));
        let c = Scores::default().with(ScoreKind::Committee, vec![p.clone(), p.clone()]);
        assert_eq!(c.committee("qbc").unwrap().len(), 2);
    }

    #[test]
    #[should_panic(expected = "embeddings scores cannot be")]
    fn a_value_of_the_wrong_form_is_refused() {
        Scores::default().set(ScoreKind::Embeddings, Probabilities::from_rows(&[&[1.0]]).unwrap());
    }
}
