//! Every learner of the crate checkpoints into the one format (`src/checkpoint.rs`) and resumes
//! bit for bit: fit, checkpoint, restore into a fresh learner built the same way, then both
//! continue (another fit, and an online step where the learner has one) and every score they give
//! (probabilities, MC-dropout samples, committee votes, embeddings) has identical bits — a
//! simulation resumed from a saved round draws the same curves. An unfitted learner round-trips
//! too. A checkpoint of another kind or settings is an error naming both; foreign or damaged bytes
//! are errors, never panics.

use proptest::prelude::*;
use quarry_core::{Learner, Matrix};
use quarry_models::checkpoint::{Checkpoint, FORMAT};
use quarry_models::nn::{NetParams, OptimizerKind};
use quarry_models::{Committee, EfficientNetLearner, FineTuneParams, LogisticRegressionLearner, LogisticRegressionParams};
use std::path::Path;

mod common;

/// `n` samples of `dim` features in `classes` noisy blobs (a fixed LCG: no RNG crate needed).
fn blobs(n: usize, dim: usize, classes: usize, seed: u64) -> (Matrix, Vec<u32>) {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let y: Vec<u32> = (0..n).map(|i| (i % classes) as u32).collect();
    let data = y.iter().flat_map(|&c| (0..dim).map(|j| if j % classes == c as usize { 0.8 } else { 0.0 } + next()).collect::<Vec<_>>()).collect();
    (Matrix::new(data, n, dim).unwrap(), y)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every score a learner gives on `x`, as bits (those it does not give are skipped).
fn scores(l: &dyn Learner, x: &Matrix) -> Vec<Vec<u32>> {
    let mut out = vec![bits(l.predict_proba(x).unwrap().as_slice())];
    if let Ok(mc) = l.mc_samples(x, 3, 11) {
        let mc = &mc;
        out.push((0..mc.draws()).flat_map(|t| (0..mc.len()).flat_map(move |i| bits(mc.row(t, i)))).collect());
    }
    if let Ok(members) = l.committee(x) {
        out.extend(members.iter().map(|p| bits(p.as_slice())));
    }
    if let Ok(e) = l.embed(x) {
        out.push(bits(e.as_slice()));
    }
    if let Ok(g) = l.gradient_embedding(x) {
        out.push(bits(g.as_slice()));
    }
    out
}

/// Fits a learner of `make` on the first half of `(x, y)`, restores its checkpoint into a fresh
/// one, continues both on everything (and one online step on the last rows where supported),
/// and checks they agree bit for bit all along; the same from an unfitted learner. Returns the
/// fitted learner's checkpoint.
fn resumes_exactly(make: &dyn Fn() -> Box<dyn Learner>, x: &Matrix, y: &[u32], classes: usize) -> Vec<u8> {
    let half: Vec<usize> = (0..x.rows() / 2).collect();
    let last: Vec<usize> = (x.rows() - 6..x.rows()).collect();
    let (xh, xl) = (x.select_rows(&half), x.select_rows(&last));
    let (yh, yl): (Vec<u32>, Vec<u32>) = (half.iter().map(|&i| y[i]).collect(), last.iter().map(|&i| y[i]).collect());
    let continue_both = |a: &mut dyn Learner, b: &mut dyn Learner, what: &str| {
        a.fit(x, y, classes).unwrap();
        b.fit(x, y, classes).unwrap();
        assert_eq!(scores(a, x), scores(b, x), "{}: differs after the next fit ({what})", a.name());
        let (ra, rb) = (a.partial_fit(&xl, &yl, classes), b.partial_fit(&xl, &yl, classes));
        assert_eq!(ra.is_ok(), rb.is_ok());
        assert_eq!(scores(a, x), scores(b, x), "{}: differs after an online step ({what})", a.name());
        assert!(a.checkpoint().unwrap() == b.checkpoint().unwrap(), "{}: states differ ({what})", a.name());
    };

    // Fitted.
    let mut a = make();
    a.fit(&xh, &yh, classes).unwrap();
    let saved = a.checkpoint().unwrap();
    let mut b = make();
    b.restore(&saved).unwrap();
    assert_eq!(scores(&*a, x), scores(&*b, x), "{}: differs right after the restore", a.name());
    assert!(b.checkpoint().unwrap() == saved, "{}: the restored learner checkpoints other bytes", a.name());
    continue_both(&mut *a, &mut *b, "fitted");

    // Unfitted: a learner that has trained since goes back to the unfitted state.
    let fresh = make();
    let unfitted = fresh.checkpoint().unwrap();
    assert_eq!(Checkpoint::parse(&unfitted).unwrap().learner(), Checkpoint::parse(&saved).unwrap().learner());
    let (mut a, mut b) = (make(), make());
    b.fit(&xh, &yh, classes).unwrap();
    b.restore(&unfitted).unwrap();
    assert!(b.checkpoint().unwrap() == unfitted, "{}: unfitted state not restored", a.name());
    continue_both(&mut *a, &mut *b, "unfitted");
    saved
}

fn logreg() -> Box<dyn Learner> {
    Box::new(LogisticRegressionLearner::new(LogisticRegressionParams::new().c(0.3)))
}

fn mlp(hidden: usize, seed: u64) -> Box<dyn Learner> {
    Box::new(NetParams::mlp(12, hidden, 3).dropout(0.2).optimizer(OptimizerKind::adam(3e-3)).epochs(2).batch_size(8).seed(seed).build().unwrap())
}

fn lenet() -> Box<dyn Learner> {
    Box::new(NetParams::lenet5(3).dropout(0.3).batch_size(16).seed(5).build().unwrap())
}

fn bagging(size: usize) -> Box<dyn Learner> {
    Box::new(Committee::bagging(logreg(), size, 7).unwrap())
}

fn mixed() -> Box<dyn Learner> {
    let members = vec![logreg(), mlp(8, 2), Box::new(LogisticRegressionLearner::new(LogisticRegressionParams::new().c(3.0))) as Box<dyn Learner>];
    Box::new(Committee::heterogeneous(logreg(), members).unwrap())
}

#[test]
fn logistic_regression_resumes_exactly() {
    let (x, y) = blobs(60, 12, 3, 1);
    let saved = resumes_exactly(&logreg, &x, &y, 3);
    let ck = Checkpoint::parse(&saved).unwrap();
    assert_eq!(ck.learner(), "logreg");
    assert_eq!(ck.get("c").unwrap(), "0.3");
    assert_eq!(ck.shape("w").unwrap(), &[12, 3]);
    assert_eq!(ck.tensor("w").unwrap().kind, quarry_models::checkpoint::Kind::F64);
}

#[test]
fn mlp_with_dropout_and_adam_resumes_exactly() {
    let (x, y) = blobs(60, 12, 3, 2);
    let saved = resumes_exactly(&|| mlp(16, 4), &x, &y, 3);
    let ck = Checkpoint::parse(&saved).unwrap();
    assert_eq!((ck.learner(), ck.get("hidden").unwrap(), ck.get("optimizer").unwrap()), ("mlp", "16", "adam"));
    assert_eq!(ck.shape("optimizer.exp_avg_sq.fc1.weight").unwrap(), &[16, 12]);
    assert_eq!(ck.count("optimizer.step").unwrap(), 8, "2 epochs of 4 minibatches");
    assert_eq!(ck.count("epochs_done").unwrap(), 2);
}

#[test]
fn mlp_with_sgd_momentum_resumes_exactly() {
    let (x, y) = blobs(40, 12, 3, 3);
    let make = || -> Box<dyn Learner> { Box::new(NetParams::mlp(12, 8, 3).optimizer(OptimizerKind::sgd(0.05, 0.9)).batch_size(7).seed(1).build().unwrap()) };
    let saved = resumes_exactly(&make, &x, &y, 3);
    assert!(Checkpoint::parse(&saved).unwrap().tensor("optimizer.momentum_buffer.fc2.bias").is_some());
}

#[test]
fn lenet5_resumes_exactly() {
    let (x, y) = blobs(36, 784, 3, 4);
    let saved = resumes_exactly(&lenet, &x, &y, 3);
    let ck = Checkpoint::parse(&saved).unwrap();
    assert_eq!(ck.learner(), "lenet5");
    assert_eq!(ck.shape("conv2.weight").unwrap(), &[16, 6, 5, 5]);
}

#[test]
fn committees_resume_exactly_with_each_member_under_its_prefix() {
    let (x, y) = blobs(60, 12, 3, 5);
    let saved = resumes_exactly(&|| bagging(4), &x, &y, 3);
    let ck = Checkpoint::parse(&saved).unwrap();
    assert_eq!((ck.learner(), ck.get("committee").unwrap(), ck.get("size").unwrap()), ("committee", "bagging", "4"));
    assert_eq!(ck.get("member.3.learner").unwrap(), "logreg");
    assert_eq!(ck.shape("member.3.w").unwrap(), &[12, 3]);
    assert_eq!(ck.shape("base.w").unwrap(), &[12, 3]);
    assert_eq!(ck.count("fits").unwrap(), 1);

    let saved = resumes_exactly(&mixed, &x, &y, 3);
    let ck = Checkpoint::parse(&saved).unwrap();
    assert_eq!(ck.get("member.1.learner").unwrap(), "mlp");
    assert_eq!(ck.get("member.2.c").unwrap(), "3");
    assert!(ck.tensor("member.1.optimizer.exp_avg.fc2.weight").is_some());
    assert_eq!(ck.member("member.1").unwrap().learner(), "mlp");
}

const SIDE: usize = 32;

fn effnet_params(train_blocks: usize) -> FineTuneParams {
    FineTuneParams { classes: 2, train_blocks, epochs: 1, batch_size: 4, lr: 0.01, dropout: 0.2, seed: 3 }
}

/// Ten synthetic images through the learner's frozen trunk.
fn frozen_pool(learner: &EfficientNetLearner) -> (Matrix, Vec<u32>) {
    let n = 10;
    let y: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let input: Vec<f32> = (0..n * 3 * SIDE * SIDE)
        .map(|j| {
            let (i, col) = (j / (3 * SIDE * SIDE), j % SIDE);
            ((j * 31 % 17) as f32 / 17.0 - 0.5) + if y[i] == 1 && col < SIDE / 2 { 1.5 } else { 0.0 }
        })
        .collect();
    let (features, [n2, h, w, c]) = learner.trainer().frozen_features(&input, [n, 3, SIDE, SIDE]).unwrap();
    assert_eq!(n2, n);
    (Matrix::new(features, n, h * w * c).unwrap(), y)
}

fn effnet(weights: &Path, train_blocks: usize) -> EfficientNetLearner {
    EfficientNetLearner::load(weights, effnet_params(train_blocks)).unwrap()
}

#[test]
fn efficientnet_resumes_exactly_and_refuses_other_settings() {
    let w = common::synthetic_weights();
    let (x, y) = frozen_pool(&effnet(&w, 2));
    let saved = resumes_exactly(&|| Box::new(effnet(&w, 2)), &x, &y, 2);
    let ck = Checkpoint::parse(&saved).unwrap();
    assert_eq!((ck.learner(), ck.get("train_blocks").unwrap()), ("efficientnet-lite0", "2"));
    assert_eq!(ck.shape("_fc.weight").unwrap(), &[2, 1280]);
    assert_eq!(ck.shape("optimizer.momentum_buffer._blocks.15._project_conv.weight").unwrap(), &[320, 1152, 1, 1]);
    assert!(ck.tensor("_blocks.13._project_conv.weight").is_none(), "frozen blocks are not saved");

    // Other settings: named, and the learner is untouched.
    let mut other = effnet(&w, 3);
    let e = other.restore(&saved).unwrap_err().to_string();
    assert!(e.contains("train_blocks = 2") && e.contains("train_blocks = 3"), "{e}");
    let (x3, _) = frozen_pool(&other);
    assert_eq!(bits(other.predict_proba(&x3).unwrap().as_slice()), bits(effnet(&w, 3).predict_proba(&x3).unwrap().as_slice()));
    let mut seeded = EfficientNetLearner::load(&w, FineTuneParams { seed: 4, ..effnet_params(2) }).unwrap();
    let e = seeded.restore(&saved).unwrap_err().to_string();
    assert!(e.contains("seed = 3") && e.contains("seed = 4"), "{e}");
    assert!(effnet(&w, 2).restore(&[]).is_err());
}

/// One checkpoint of each kind: restoring it into a learner of another kind is an error naming
/// both kinds.
#[test]
fn a_checkpoint_of_another_kind_is_named() {
    let (x, y) = blobs(40, 12, 3, 6);
    type Make = Box<dyn Fn() -> Box<dyn Learner>>;
    let kinds: Vec<(&str, Make)> = vec![
        ("logreg", Box::new(logreg)),
        ("mlp", Box::new(|| mlp(16, 4))),
        ("committee", Box::new(|| bagging(3))),
    ];
    let mut saved = Vec::new();
    for (name, make) in &kinds {
        let mut l = make();
        l.fit(&x, &y, 3).unwrap();
        saved.push((*name, l.checkpoint().unwrap()));
    }
    let (xl, yl) = blobs(12, 784, 3, 7);
    let mut l = lenet();
    l.fit(&xl, &yl, 3).unwrap();
    saved.push(("lenet5", l.checkpoint().unwrap()));
    let w = common::synthetic_weights();
    saved.push(("efficientnet-lite0", effnet(&w, 1).checkpoint().unwrap()));

    let mut into: Vec<(&str, &str, Box<dyn Learner>)> = vec![
        ("logreg", "logreg", logreg()),
        ("mlp", "mlp", mlp(16, 4)),
        ("committee", "a committee of logreg", bagging(3)),
        ("lenet5", "lenet5", lenet()),
        ("efficientnet-lite0", "efficientnet-lite0", Box::new(effnet(&w, 1))),
    ];
    for (kind, bytes) in &saved {
        for (into_kind, this, learner) in &mut into {
            let result = learner.restore(bytes);
            if kind == into_kind {
                result.unwrap();
            } else {
                let e = result.unwrap_err().to_string();
                assert!(e.contains(&format!("checkpoint is of a {kind} learner, this is {this}")), "{e}");
            }
        }
    }
}

/// The same kind with other settings: an error naming the setting and both values.
#[test]
fn a_checkpoint_of_other_settings_is_named() {
    let saved = mlp(16, 4).checkpoint().unwrap();
    let e = mlp(32, 4).restore(&saved).unwrap_err().to_string();
    assert!(e.contains("hidden = 16") && e.contains("hidden = 32"), "{e}");
    let e = mlp(16, 5).restore(&saved).unwrap_err().to_string();
    assert!(e.contains("seed = 4") && e.contains("seed = 5"), "{e}");
    let mut sgd = NetParams::mlp(12, 16, 3).dropout(0.2).optimizer(OptimizerKind::sgd(3e-3, 0.9)).epochs(2).batch_size(8).seed(4).build().unwrap();
    let e = sgd.restore(&saved).unwrap_err().to_string();
    assert!(e.contains("optimizer = adam") && e.contains("optimizer = sgd"), "{e}");

    let saved = bagging(4).checkpoint().unwrap();
    let e = bagging(3).restore(&saved).unwrap_err().to_string();
    assert!(e.contains("size = 4") && e.contains("size = 3"), "{e}");
    // A member of another kind inside a committee is named with its place.
    let mut all_logreg = Committee::heterogeneous(logreg(), vec![logreg(), logreg(), logreg()]).unwrap();
    let e = all_logreg.restore(&mixed().checkpoint().unwrap()).unwrap_err().to_string();
    assert!(e.contains("member.1") && e.contains("checkpoint is of a mlp learner, this is logreg"), "{e}");
}

#[test]
fn foreign_bytes_are_errors() {
    let (x, y) = blobs(40, 12, 3, 8);
    let mut l = mlp(16, 4);
    l.fit(&x, &y, 3).unwrap();
    let before = l.checkpoint().unwrap();
    for bytes in [&b"not a checkpoint"[..], &[0u8; 8], &before[..before.len() / 2], &before[..7]] {
        let e = l.restore(bytes).unwrap_err().to_string();
        assert!(e.contains("not a quarry checkpoint"), "{e}");
    }
    assert!(l.checkpoint().unwrap() == before, "a failed restore changed the learner");
    let meta = safetensors::SafeTensors::read_metadata(&before).unwrap().1;
    assert_eq!(meta.metadata().as_ref().unwrap()["format"], FORMAT);
}

fn learners() -> Vec<Box<dyn Learner>> {
    vec![logreg(), mlp(4, 1), bagging(2), mixed()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random bytes never restore and never panic.
    #[test]
    fn random_bytes_are_an_error(bytes in proptest::collection::vec(any::<u8>(), 1..300)) {
        for mut l in learners() {
            prop_assert!(l.restore(&bytes).is_err());
        }
    }

    /// A damaged checkpoint (cut short, or one byte changed anywhere) is an error or, where the
    /// change fell in a value, restores; it never panics.
    #[test]
    fn damaged_checkpoints_never_panic(cut in 1usize..10_000, at in 0usize..10_000, xor in 1u8..=255) {
        let (x, y) = blobs(20, 12, 3, 9);
        for mut l in learners() {
            l.fit(&x, &y, 3).unwrap();
            let bytes = l.checkpoint().unwrap();
            prop_assert!(l.restore(&bytes[..1 + cut % (bytes.len() - 1)]).is_err());
            let mut flipped = bytes.clone();
            flipped[at % bytes.len()] ^= xor;
            let _ = l.restore(&flipped);
        }
    }
}
