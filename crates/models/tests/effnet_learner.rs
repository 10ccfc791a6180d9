//! EfficientNet-Lite0 as the loop's learner over cached frozen features: it fits, scores, resumes
//! exactly from a checkpoint and rejects a checkpoint of other settings by name. Each check runs on
//! the synthetic checkpoint (`<check>::synthetic`, always) and on the pretrained one in
//! `../shared/models` (`<check>::pretrained`, ignored by plain `cargo test`).

use std::path::Path;

use quarry_core::{Learner, Matrix};
use quarry_models::{EfficientNetLearner, FineTuneParams};

mod common;

const SIDE: usize = 32;

fn params(train_blocks: usize) -> FineTuneParams {
    FineTuneParams { classes: 2, train_blocks, epochs: 1, batch_size: 4, lr: 0.001, dropout: 0.2, seed: 3 }
}

/// Eight synthetic images (class 1 brighter in the left half) through the learner's frozen trunk.
fn frozen_pool(learner: &EfficientNetLearner) -> (Matrix, Vec<u32>) {
    let n = 8;
    let mut input = Vec::with_capacity(n * 3 * SIDE * SIDE);
    let mut y = Vec::new();
    for i in 0..n {
        let class = (i % 2) as u32;
        y.push(class);
        for c in 0..3 {
            for r in 0..SIDE {
                for col in 0..SIDE {
                    let base = ((i * 31 + c * 7 + r * 3 + col) % 17) as f32 / 17.0 - 0.5;
                    input.push(base + if class == 1 && col < SIDE / 2 { 1.5 } else { 0.0 } + 0.0 * r as f32);
                }
            }
        }
    }
    let (features, [n2, h, w, c]) = learner.trainer().frozen_features(&input, [n, 3, SIDE, SIDE]).unwrap();
    assert_eq!(n2, n);
    (Matrix::new(features, n, h * w * c).unwrap(), y)
}

on_both_checkpoints!(fits_scores_and_learns_a_separable_pool);
fn fits_scores_and_learns_a_separable_pool(w: &Path) {
    let mut l = EfficientNetLearner::load(w, FineTuneParams { epochs: 15, ..params(2) }).unwrap();
    let (x, y) = frozen_pool(&l);
    let before = l.predict_proba(&x).unwrap();
    l.fit(&x, &y, 2).unwrap();
    let after = l.predict_proba(&x).unwrap();
    assert_ne!(before, after);
    let right: usize = after.argmax().iter().zip(&y).filter(|(a, b)| a == b).count();
    assert_eq!(right, 8, "the fine-tuned net fits its 8 training images: {:?}", after.as_slice());
    assert_eq!(l.embed(&x).unwrap().cols(), 1280);
    assert_eq!(l.gradient_embedding(&x).unwrap().cols(), 2 * 1280);
    let mc = l.mc_samples(&x, 4, 9).unwrap();
    assert_eq!((mc.draws(), mc.len(), mc.n_classes()), (4, 8, 2));
    assert_ne!(mc.row(0, 0), mc.row(1, 0), "dropout masks differ between draws");
    assert_eq!(mc, l.mc_samples(&x, 4, 9).unwrap(), "seeded");
    assert!(l.fit(&x, &y, 3).is_err(), "a 2-class head refuses 3 classes");
}

on_both_checkpoints!(checkpoint_resumes_exactly_and_a_foreign_one_is_named);
fn checkpoint_resumes_exactly_and_a_foreign_one_is_named(w: &Path) {
    let mut a = EfficientNetLearner::load(w, params(2)).unwrap();
    let (x, y) = frozen_pool(&a);
    a.fit(&x, &y, 2).unwrap();
    let saved = a.checkpoint().unwrap();
    let mut b = EfficientNetLearner::load(w, params(2)).unwrap();
    b.restore(&saved).unwrap();
    a.fit(&x, &y, 2).unwrap();
    b.fit(&x, &y, 2).unwrap();
    assert_eq!(a.predict_proba(&x).unwrap(), b.predict_proba(&x).unwrap(), "momentum, weights and shuffles restored");

    let mut other = EfficientNetLearner::load(w, params(3)).unwrap();
    let e = other.restore(&saved).unwrap_err().to_string();
    assert!(e.contains("train_blocks = 2") && e.contains("train_blocks = 3"), "names the setting and both values: {e}");
    // The failed restore left the learner untouched.
    let fresh = EfficientNetLearner::load(w, params(3)).unwrap();
    let (x3, _) = frozen_pool(&fresh);
    assert_eq!(other.predict_proba(&x3).unwrap(), fresh.predict_proba(&x3).unwrap());
}
