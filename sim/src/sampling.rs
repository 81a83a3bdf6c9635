//! Seeded randomness for the world: one generator per (seed, purpose, ...) so that each part of
//! the world (a user's day, a region's outage) is the same however the world is advanced, plus
//! the few distributions the world draws from.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Tags that keep the streams of different purposes apart.
pub(crate) mod tag {
    /// The company: users, devices, habits.
    pub(crate) const COMPANY: u64 = 1;
    /// A user's day.
    pub(crate) const USER_DAY: u64 = 2;
    /// An office's day (login storms).
    pub(crate) const OFFICE_DAY: u64 = 3;
    /// Whether and when a region fails on a day.
    pub(crate) const OUTAGE: u64 = 4;
    /// What an outage does to the sessions it cuts.
    pub(crate) const OUTAGE_EFFECT: u64 = 5;
    /// Session ids.
    pub(crate) const SESSION_ID: u64 = 6;
    /// A steady world's population and changes.
    pub(crate) const STEADY: u64 = 7;
    /// A user's account: status, role, authentication.
    pub(crate) const ACCOUNT: u64 = 8;
    /// Devices added or removed to reach a configured total.
    pub(crate) const DEVICES: u64 = 9;
    /// Ids of the tenant's objects beyond the company's own draws, and generated sites.
    pub(crate) const INVENTORY: u64 = 10;
    /// A connector's spells of trouble on a day.
    pub(crate) const CONNECTOR_STATE: u64 = 11;
    /// Users added while the simulator runs.
    pub(crate) const ADDED_USER: u64 = 12;
}

/// SplitMix64 finaliser: a fast, well-mixed 64-bit hash step.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Mixes several words into one seed.
pub(crate) fn mix(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x5EED_0FC0_FFEE_u64, |acc, &p| splitmix(acc ^ splitmix(p)))
}

/// A generator for the stream named by `parts`.
pub(crate) fn rng_for(parts: &[u64]) -> SmallRng {
    SmallRng::seed_from_u64(mix(parts))
}

/// A standard normal draw (Box-Muller).
pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with the given median and shape: many small values, a long tail.
pub(crate) fn log_normal(rng: &mut impl Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// A Poisson draw (Knuth's method; the world only needs small means).
pub(crate) fn poisson(rng: &mut impl Rng, mean: f64) -> u32 {
    let limit = (-mean).exp();
    let mut product: f64 = rng.random();
    let mut count = 0;
    while product > limit && count < 1_000 {
        product *= rng.random::<f64>();
        count += 1;
    }
    count
}

/// An index drawn with the given (not necessarily normalised) weights.
pub(crate) fn weighted(
    rng: &mut impl Rng,
    weights: impl IntoIterator<Item = f64> + Clone,
) -> usize {
    let total: f64 = weights.clone().into_iter().sum();
    let mut pick = rng.random::<f64>() * total;
    let mut last = 0;
    for (i, w) in weights.into_iter().enumerate() {
        if w > 0.0 {
            last = i;
            if pick < w {
                return i;
            }
            pick -= w;
        }
    }
    last
}

/// A random (version 4) UUID in its usual text form.
pub(crate) fn uuid(rng: &mut impl Rng) -> String {
    let hi: u64 = rng.random();
    let lo: u64 = rng.random();
    let hi = (hi & !0xF000) | 0x4000;
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = rng_for(&[1, 2, 3]).random();
        let b: u64 = rng_for(&[1, 2, 3]).random();
        let c: u64 = rng_for(&[1, 2, 4]).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn distributions_have_their_shape() {
        let mut rng = rng_for(&[7]);
        let n = 20_000;
        let mut draws: Vec<f64> = (0..n).map(|_| log_normal(&mut rng, 600.0, 1.0)).collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[n / 2];
        let mean = draws.iter().sum::<f64>() / n as f64;
        assert!((500.0..720.0).contains(&median), "median {median}");
        assert!(
            mean > median * 1.4,
            "a long tail pulls the mean above the median"
        );

        let mean_poisson = (0..n)
            .map(|_| f64::from(poisson(&mut rng, 2.5)))
            .sum::<f64>()
            / n as f64;
        assert!(
            (2.4..2.6).contains(&mean_poisson),
            "poisson mean {mean_poisson}"
        );

        let picks = (0..n)
            .filter(|_| weighted(&mut rng, [1.0, 0.0, 3.0]) == 2)
            .count();
        assert!((14_000..16_000).contains(&picks), "weighted picks {picks}");
    }

    #[test]
    fn uuids_look_like_version_4() {
        let id = uuid(&mut rng_for(&[9]));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
