use rand::SeedableRng;

/// The one random-number generator quarry uses: portable and reproducible across machines.
pub type QuarryRng = rand_chacha::ChaCha8Rng;

/// A generator for one purpose of one run: the same `(seed, stream)` always gives the same
/// numbers, and different streams (initial set, strategy tie-breaks, candidate subsampling)
/// do not disturb each other, so adding a strategy never changes another's selections.
pub fn seeded_rng(seed: u64, stream: u64) -> QuarryRng {
    let mut rng = QuarryRng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
