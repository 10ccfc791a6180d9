//! The initial labeled set of a simulated run: drawn at random, or spread over the pool by
//! k-means++ seeding (a cold start, when no model can rank anything yet).

use quarry_core::session::streams;
use quarry_core::{Matrix, Result, SampleId, seeded_rng};
use rand::seq::index::sample;

/// Draw `initial` distinct pool samples, redrawing (seeded) until at least two classes are
/// present, as a classifier needs (for two-class data: one of each).
pub fn initial_set(labels: &[u32], initial: usize, seed: u64) -> Result<Vec<SampleId>> {
    let mut rng = seeded_rng(seed, streams::INITIAL);
    let n = labels.len();
    if initial == 0 {
        return Ok(Vec::new());
    }
    if initial > n {
        return Err(quarry_core::Error::param("initial", format!("{initial} labels asked for, the pool has {n} samples")));
    }
    for _ in 0..1000 {
        let picks: Vec<usize> = sample(&mut rng, n, initial).into_vec();
        let first = labels[picks[0]];
        if picks.iter().any(|&i| labels[i] != first) {
            return Ok(picks.into_iter().map(SampleId::from).collect());
        }
    }
    Err(quarry_core::Error::param("initial", format!("1000 random draws of {initial} samples never held two classes; raise --initial")))
}

/// A diverse initial set for a cold start (zero labels, so no model can rank anything yet):
/// k-means++ seeding (Arthur & Vassilvitskii 2007) in the feature/embedding space — the first point
/// drawn at random, each next one with probability ∝ its squared distance to the nearest chosen
/// point. Redrawn (seeded) until at least two classes are present, as a classifier needs.
pub fn initial_set_kmeanspp(features: &Matrix, labels: &[u32], initial: usize, seed: u64) -> Result<Vec<SampleId>> {
    let n = features.rows();
    if initial > n {
        return Err(quarry_core::Error::param("initial", format!("{initial} labels asked for, the pool has {n} samples")));
    }
    if initial == 0 {
        return Ok(Vec::new());
    }
    let dist2 = |a: usize, b: usize| -> f64 {
        features.row(a).iter().zip(features.row(b)).map(|(x, y)| ((x - y) as f64).powi(2)).sum()
    };
    for attempt in 0..100u64 {
        let mut rng = seeded_rng(seed, (streams::INITIAL << 32) | (1 + attempt));
        let first = rand::Rng::random_range(&mut rng, 0..n);
        let mut picks = vec![first];
        let mut d: Vec<f64> = (0..n).map(|i| dist2(i, first)).collect();
        while picks.len() < initial {
            let total: f64 = d.iter().sum();
            let next = if total > 0.0 {
                let mut u = rand::Rng::random::<f64>(&mut rng) * total;
                let mut chosen = n - 1;
                for (i, &di) in d.iter().enumerate() {
                    u -= di;
                    if u < 0.0 && di > 0.0 {
                        chosen = i;
                        break;
                    }
                }
                chosen
            } else {
                // Every remaining point duplicates a chosen one: take any unchosen point.
                (0..n).find(|i| !picks.contains(i)).expect("initial ≤ n")
            };
            picks.push(next);
            for (i, di) in d.iter_mut().enumerate() {
                *di = di.min(dist2(i, next));
            }
            d[next] = 0.0;
        }
        if initial < 2 || picks.iter().any(|&i| labels[i] != labels[picks[0]]) {
            return Ok(picks.into_iter().map(SampleId::from).collect());
        }
    }
    Err(quarry_core::Error::param("initial", "100 k-means++ draws never held two classes; raise --initial"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tight clusters 1,000 apart: after the first pick, the other cluster holds essentially
    /// all the D² mass, so a 2-point k-means++ start covers both; picks are distinct.
    #[test]
    fn kmeanspp_start_spreads_over_clusters() {
        let xs: Vec<f32> = (0..20).map(|i| if i < 10 { i as f32 * 0.01 } else { 1000.0 + i as f32 * 0.01 }).collect();
        let x = Matrix::new(xs, 20, 1).unwrap();
        let y: Vec<u32> = (0..20).map(|i| (i >= 10) as u32).collect();
        for seed in 0..10 {
            let picks = initial_set_kmeanspp(&x, &y, 2, seed).unwrap();
            assert_ne!(picks[0].index() < 10, picks[1].index() < 10, "seed {seed}: {picks:?}");
        }
        let many = initial_set_kmeanspp(&x, &y, 20, 3).unwrap();
        let mut ids: Vec<_> = many.iter().map(|p| p.index()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 20);
        assert!(initial_set_kmeanspp(&x, &y, 21, 0).is_err());
        assert_eq!(initial_set_kmeanspp(&x, &y, 5, 7).unwrap(), initial_set_kmeanspp(&x, &y, 5, 7).unwrap());
    }
}
