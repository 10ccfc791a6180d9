//! Whole-learner tests of the neural networks: learning on real data (the digits the repository
//! ships; Fashion-MNIST from `../shared/data`, ignored by plain `cargo test`), determinism across
//! thread counts, checkpoints, MC dropout, embeddings, continuous training. (Layer gradients are
//! checked against finite differences in `src/nn/gradcheck.rs`.)

use quarry_core::{Learner, Matrix};
use quarry_data::{read_idx_images, read_idx_labels, stratified_split};
use quarry_models::nn::{NetLearner, NetParams, NetSpec, OptimizerKind, simd::Isa};

#[path = "../../data/tests/common/shared_data.rs"]
mod shared_data;
use shared_data::{fashion_mnist, repo_file};

/// The first `n` images of a Fashion-MNIST split (pixels / 255).
fn fashion_mnist_split(split: &str, n: usize) -> (Matrix, Vec<u32>) {
    let mut x = read_idx_images(&fashion_mnist(&format!("{split}-images-idx3-ubyte.gz"))).expect("readable images");
    x.scale(1.0 / 255.0);
    let y = read_idx_labels(&fashion_mnist(&format!("{split}-labels-idx1-ubyte.gz"))).expect("readable labels");
    let rows: Vec<usize> = (0..n.min(x.rows())).collect();
    (x.select_rows(&rows), rows.iter().map(|&i| y[i] as u32).collect())
}

/// The repository's 8×8 digits (`data/digits-8x8.csv`, values 0–16) as 28×28 images for LeNet-5:
/// each pixel a 3×3 block, centred, values / 16.
fn digits_28x28() -> (Matrix, Vec<u32>) {
    let ds = quarry_data::load(&repo_file("data/digits-8x8.csv"), Some("digit"), None, None).expect("readable digits");
    let mut x = Matrix::zeros(ds.len(), 784);
    for i in 0..ds.len() {
        let (src, dst) = (ds.features.row(i), x.row_mut(i));
        for (j, v) in dst.iter_mut().enumerate() {
            let (py, px) = (j / 28, j % 28);
            if (2..26).contains(&py) && (2..26).contains(&px) {
                *v = src[(py - 2) / 3 * 8 + (px - 2) / 3] / 16.0;
            }
        }
    }
    (x, ds.labels)
}

/// `n` synthetic 28×28 images of `classes` classes: class `c` is a bright 6×6 square at a
/// class-specific place, plus deterministic noise.
fn synthetic(n: usize, classes: usize, seed: u32) -> (Matrix, Vec<u32>) {
    let mut x = Matrix::zeros(n, 784);
    let mut y = Vec::with_capacity(n);
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for i in 0..n {
        let c = (i % classes) as u32;
        y.push(c);
        let (oy, ox) = (3 + (c as usize * 7) % 18, 3 + (c as usize * 11) % 18);
        let row = x.row_mut(i);
        for (j, v) in row.iter_mut().enumerate() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let (py, px) = (j / 28, j % 28);
            let inside = py >= oy && py < oy + 6 && px >= ox && px < ox + 6;
            *v = (state % 1000) as f32 / 4000.0 + if inside { 0.7 } else { 0.0 };
        }
    }
    (x, y)
}

fn accuracy(learner: &dyn Learner, x: &Matrix, y: &[u32]) -> f64 {
    let pred = learner.predict_proba(x).unwrap().argmax();
    pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}

#[test]
fn lenet_learns_the_digits() {
    let (x, y) = digits_28x28();
    let (train, test) = stratified_split(&y, 10, 0.3, 1).unwrap();
    let pick = |rows: &[usize]| (x.select_rows(rows), rows.iter().map(|&i| y[i]).collect::<Vec<u32>>());
    let ((x, y), (xt, yt)) = (pick(&train), pick(&test));
    let mut learner = NetParams::lenet5(10).optimizer(OptimizerKind::adam(1e-3)).batch_size(32).epochs(4).seed(1).build().unwrap();
    learner.fit(&x, &y, 10).unwrap();
    let steps = 4 * y.len().div_ceil(32);
    assert_eq!(learner.optimizer().steps(), steps as u64);
    let acc = accuracy(&learner, &xt, &yt);
    eprintln!("LeNet-5, {steps} Adam steps on {} digits: test accuracy {acc:.3}", y.len());
    assert!(acc > 0.9, "test accuracy {acc} after {steps} steps on {} digits", y.len());
}

#[test]
#[ignore = "needs ../shared/data/fashion-mnist"]
fn lenet_learns_a_fashion_mnist_subset() {
    let ((x, y), (xt, yt)) = (fashion_mnist_split("train", 2000), fashion_mnist_split("t10k", 1000));
    let mut learner = NetParams::lenet5(10).optimizer(OptimizerKind::adam(1e-3)).batch_size(32).epochs(5).seed(1).build().unwrap();
    learner.fit(&x, &y, 10).unwrap(); // 5 epochs of 63 batches: 315 steps
    assert_eq!(learner.optimizer().steps(), 315);
    let acc = accuracy(&learner, &xt, &yt);
    eprintln!("LeNet-5, 315 Adam steps on 2,000 Fashion-MNIST images: test accuracy {acc:.3}");
    assert!(acc > 0.60, "test accuracy {acc} after 315 steps on 2,000 images");
}

#[test]
fn mlp_learns_and_online_steps_lower_the_loss() {
    let (x, y) = synthetic(300, 4, 1);
    let mut learner = NetParams::mlp(784, 32, 4).dropout(0.2).batch_size(10).seed(3).build().unwrap();
    let first = learner.train_step(&x.select_rows(&(0..10).collect::<Vec<_>>()), &y[..10]).unwrap();
    assert_eq!(learner.optimizer().steps(), 1, "train_step takes exactly one optimizer step");
    learner.fit(&x, &y, 4).unwrap();
    let last = learner.train_step(&x.select_rows(&(0..10).collect::<Vec<_>>()), &y[..10]).unwrap();
    assert!(last < first, "loss {first} → {last}");
    assert!(accuracy(&learner, &x, &y) > 0.9);
}

/// Trains a few steps with dropout inside a pool of `threads` threads; returns the weights.
fn train_in_pool(spec: NetSpec, threads: usize) -> Vec<f32> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let (x, y) = synthetic(150, 3, 5);
        let mut learner = NetParams::with_spec(spec).optimizer(OptimizerKind::sgd(0.05, 0.9)).batch_size(70).epochs(2).seed(9).build().unwrap();
        learner.fit(&x, &y, 3).unwrap();
        learner.net().params().as_slice().to_vec()
    })
}

#[test]
fn same_seed_gives_identical_weights_whatever_the_thread_count() {
    for spec in [NetSpec::LeNet5 { classes: 3, dropout: 0.5 }, NetSpec::Mlp { inputs: 784, hidden: 16, classes: 3, dropout: 0.5 }] {
        let one = train_in_pool(spec, 1);
        let three = train_in_pool(spec, 3);
        assert!(one == three, "{}: weights differ between 1 and 3 threads", spec.name());
        assert_eq!(one, train_in_pool(spec, 1), "{}: not reproducible", spec.name());
        let init = NetParams::with_spec(spec).seed(9).build().unwrap();
        assert_ne!(one.as_slice(), init.net().params().as_slice(), "training changed nothing");
    }
}

#[test]
fn checkpoint_round_trip_restores_weights_optimizer_and_counters() {
    let (x, y) = synthetic(100, 3, 7);
    let params = NetParams::lenet5(3).dropout(0.3).batch_size(25).seed(2);
    let mut a = params.clone().build().unwrap();
    a.fit(&x, &y, 3).unwrap();
    let bytes = a.checkpoint().unwrap();
    // A resumed run is built with the same settings (the seed keys shuffles and dropout).
    let mut b = params.clone().build().unwrap();
    assert_ne!(a.predict_proba(&x).unwrap(), b.predict_proba(&x).unwrap());
    b.restore(&bytes).unwrap();
    assert_eq!(a.predict_proba(&x).unwrap(), b.predict_proba(&x).unwrap());
    assert_eq!(a.optimizer().steps(), b.optimizer().steps());
    assert_eq!(a.epochs_done(), b.epochs_done());
    // Adam's moments came back too: the next steps are the same.
    a.fit(&x, &y, 3).unwrap();
    b.fit(&x, &y, 3).unwrap();
    assert!(a.net().params() == b.net().params(), "weights differ after continuing from a checkpoint");
    assert!(a.checkpoint().unwrap() == b.checkpoint().unwrap());

    // The tensors carry PyTorch's names and shapes.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("conv2.weight").unwrap().shape(), &[16, 6, 5, 5]);
    assert_eq!(st.tensor("optimizer.exp_avg_sq.fc1.weight").unwrap().shape(), &[120, 400]);

    // Another architecture, another optimizer, or garbage: errors, and the learner is unchanged.
    let before = b.net().params().clone();
    assert!(NetParams::lenet5(4).build().unwrap().restore(&bytes).is_err());
    assert!(NetParams::mlp(784, 16, 3).build().unwrap().restore(&bytes).is_err());
    assert!(params.clone().optimizer(OptimizerKind::sgd(0.1, 0.9)).build().unwrap().restore(&bytes).is_err());
    assert!(b.restore(&bytes[..bytes.len() / 2]).is_err());
    assert!(b.restore(b"not a checkpoint").is_err());
    assert!(b.net().params() == &before, "a failed restore changed the weights");
    // Empty bytes: back to the initial weights.
    b.restore(&[]).unwrap();
    assert!(b.net().params() == params.clone().build().unwrap().net().params());
}

#[test]
fn mc_samples_are_distributions_that_vary_only_with_dropout() {
    let (x, _) = synthetic(40, 3, 11);
    let with = NetParams::lenet5(3).dropout(0.5).seed(4).build().unwrap();
    let mc = with.mc_samples(&x, 5, 123).unwrap();
    assert_eq!((mc.draws(), mc.len(), mc.n_classes()), (5, 40, 3));
    for t in 0..5 {
        for i in 0..40 {
            let s: f32 = mc.row(t, i).iter().sum();
            assert!((s - 1.0).abs() < 1e-5 && mc.row(t, i).iter().all(|&p| p >= 0.0));
        }
    }
    assert!((0..40).all(|i| mc.row(0, i) != mc.row(1, i)), "dropout draws should differ");
    // A draw depends on (seed, draw, row), not on what else is scored or the seed of others.
    assert_eq!(mc, with.mc_samples(&x, 5, 123).unwrap());
    let head = with.mc_samples(&x.select_rows(&(0..7).collect::<Vec<_>>()), 5, 123).unwrap();
    assert!((0..5).all(|t| (0..7).all(|i| head.row(t, i) == mc.row(t, i))));
    assert_ne!(mc, with.mc_samples(&x, 5, 124).unwrap());

    let without = NetParams::lenet5(3).seed(4).build().unwrap();
    let mc0 = without.mc_samples(&x, 4, 123).unwrap();
    let p = without.predict_proba(&x).unwrap();
    assert!((0..4).all(|t| (0..40).all(|i| mc0.row(t, i) == p.row(i))));
    assert!(without.mc_samples(&x, 0, 1).is_err());
}

#[test]
fn embeddings_are_the_penultimate_layer_and_badge_is_its_outer_product() {
    let (x, y) = synthetic(20, 10, 13);
    let mut learner = NetParams::lenet5(10).seed(5).build().unwrap();
    learner.fit(&x, &y, 10).unwrap();
    let e = learner.embed(&x).unwrap();
    assert_eq!((e.rows(), e.cols()), (20, 84));
    assert!(e.as_slice().iter().all(|&v| v >= 0.0), "post-ReLU activations");
    let g = learner.gradient_embedding(&x).unwrap();
    assert_eq!((g.rows(), g.cols()), (20, 840));
    let p = learner.predict_proba(&x).unwrap();
    for (i, &yhat) in p.argmax().iter().enumerate() {
        for c in 0..10 {
            let coef = p.row(i)[c] - (c as u32 == yhat) as u8 as f32;
            for k in [0, 41, 83] {
                assert!((g.row(i)[c * 84 + k] - coef * e.row(i)[k]).abs() < 1e-6);
            }
        }
    }
    let mlp = NetParams::mlp(784, 24, 10).build().unwrap();
    assert_eq!(mlp.embed(&x).unwrap().cols(), 24);
}

#[test]
fn fit_continues_from_the_current_weights_until_reset() {
    let (x, y) = synthetic(64, 3, 17);
    let fresh = || NetParams::mlp(784, 16, 3).batch_size(16).epochs(1).seed(6).build().unwrap();
    let mut twice = fresh();
    twice.fit(&x, &y, 3).unwrap();
    twice.fit(&x, &y, 3).unwrap();
    assert_eq!((twice.optimizer().steps(), twice.epochs_done()), (8, 2));
    let mut once = fresh();
    once.fit(&x, &y, 3).unwrap();
    assert!(once.net().params() != twice.net().params(), "the second fit should continue, not restart");
    twice.reset();
    assert!(twice.net().params() == fresh().net().params(), "reset should restore the initial weights");
    assert_eq!((twice.optimizer().steps(), twice.epochs_done()), (0, 0));
    // A clone is independent.
    let mut clone = once.boxed_clone();
    clone.fit(&x, &y, 3).unwrap();
    assert_ne!(clone.predict_proba(&x).unwrap(), once.predict_proba(&x).unwrap());
}

#[test]
fn every_instruction_set_predicts_the_same() {
    let (x, y) = synthetic(50, 10, 19);
    let mut learner: NetLearner = NetParams::lenet5(10).seed(8).build().unwrap();
    learner.fit(&x, &y, 10).unwrap();
    let best = learner.predict_proba(&x).unwrap();
    for isa in Isa::available() {
        learner.net_mut().set_isa(isa);
        let p = learner.predict_proba(&x).unwrap();
        let diff = p.as_slice().iter().zip(best.as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-4, "{isa:?} differs by {diff}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let (x, y) = synthetic(10, 3, 23);
    let mut learner = NetParams::lenet5(3).build().unwrap();
    assert!(learner.fit(&x, &y, 4).is_err(), "class count differs from the network's");
    assert!(learner.fit(&x, &y[..5], 3).is_err());
    assert!(learner.fit(&x, &[7; 10], 3).is_err(), "label out of range");
    assert!(learner.predict_proba(&Matrix::zeros(2, 100)).is_err());
    assert!(learner.train_step(&Matrix::zeros(0, 784), &[]).is_err());
    assert!(NetParams::lenet5(3).batch_size(0).build().is_err());
    assert!(NetParams::lenet5(3).dropout(1.5).build().is_err());
    assert!(NetParams::lenet5(3).optimizer(OptimizerKind::adam(-1.0)).build().is_err());
    assert_eq!(learner.optimizer().steps(), 0, "failed calls take no step");
}
