//! The random numbers of the simulator: a small fast generator per run,
//! derived from `(seed, run index)`, and the draws the duration models need
//! (uniform, standard normal, gamma, beta).
//!
//! The algorithms are fixed here rather than taken from a crate so that a
//! seed keeps giving the same estimate across upgrades:
//!
//! - the generator is xoshiro256++ (Blackman and Vigna), its state filled by
//!   SplitMix64 from a mix of the seed and the run index, so every run has
//!   its own stream and the result does not depend on which thread ran it;
//! - normal draws use the ziggurat method (Marsaglia and Tsang, 2000) with
//!   256 layers, tables computed once per process;
//! - gamma draws (shape ≥ 1) use Marsaglia and Tsang's squeeze method (2000),
//!   and a beta draw is `X / (X + Y)` of two gamma draws.

use std::sync::OnceLock;

/// A xoshiro256++ generator: 256 bits of state, a few nanoseconds a draw.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
    zig: &'static Ziggurat,
}

/// One SplitMix64 step: the usual way to spread a 64-bit value over a state.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator of run `run` of an estimate seeded with `seed`.
    pub fn for_run(seed: u64, run: u64) -> Rng {
        let mut mix = seed;
        let seed_part = splitmix64(&mut mix);
        let mut mix = run ^ 0xD1B5_4A32_D192_ED03;
        let run_part = splitmix64(&mut mix);
        Rng::from_seed(seed_part ^ run_part.rotate_left(17))
    }

    /// A generator whose state SplitMix64 fills from `seed`.
    pub fn from_seed(seed: u64) -> Rng {
        let mut state = seed;
        let mut s = [0u64; 4];
        for word in &mut s {
            *word = splitmix64(&mut state);
        }
        // An all-zero state would only ever produce zeros; SplitMix64 cannot
        // produce four zeros in a row, but make it plain.
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s, zig: ziggurat() }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.s;
        let result = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
        let t = s1 << 17;
        let s2 = s2 ^ s0;
        let s3 = s3 ^ s1;
        let s1 = s1 ^ s2;
        let s0 = s0 ^ s3;
        self.s = [s0, s1, s2 ^ t, s3.rotate_left(45)];
        result
    }

    /// Uniform in `[0, 1)`, 53 bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `(0, 1)`: never 0, so its logarithm is finite.
    #[inline]
    pub fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
    }

    /// A standard normal draw (ziggurat, 256 layers).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let zig = self.zig;
        loop {
            let bits = self.next_u64();
            let i = (bits & 0xff) as usize;
            // The top 52 bits, independent of the layer's 8, as (-1, 1).
            let u = 2.0 * (((bits >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)) - 1.0;
            let x = u * zig.x[i];
            if x.abs() < zig.x[i + 1] {
                return x;
            }
            if i == 0 {
                return self.normal_tail(u < 0.0);
            }
            let y = zig.f[i + 1] + (zig.f[i] - zig.f[i + 1]) * self.uniform();
            if y < (-0.5 * x * x).exp() {
                return x;
            }
        }
    }

    /// A draw from the normal's tail beyond the base layer (Marsaglia, 1964).
    #[cold]
    fn normal_tail(&mut self, negative: bool) -> f64 {
        loop {
            let x = self.open01().ln() / ZIGGURAT_R;
            let y = self.open01().ln();
            if -2.0 * y >= x * x {
                return if negative {
                    x - ZIGGURAT_R
                } else {
                    ZIGGURAT_R - x
                };
            }
        }
    }

    /// A gamma draw of the shape `gamma` was made for (scale 1).
    #[inline]
    pub fn gamma(&mut self, gamma: &Gamma) -> f64 {
        loop {
            let x = self.normal();
            let t = 1.0 + gamma.c * x;
            if t <= 0.0 {
                continue;
            }
            let v = t * t * t;
            let u = self.open01();
            let x2 = x * x;
            // The squeeze accepts about 98% of draws without a logarithm.
            if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + gamma.d * (1.0 - v + v.ln()) {
                return gamma.d * v;
            }
        }
    }

    /// A beta draw: `X / (X + Y)` with `X ~ Gamma(α)`, `Y ~ Gamma(β)`.
    #[inline]
    pub fn beta(&mut self, alpha: &Gamma, beta: &Gamma) -> f64 {
        let x = self.gamma(alpha);
        let y = self.gamma(beta);
        x / (x + y)
    }
}

/// A gamma distribution of shape ≥ 1, prepared for Marsaglia and Tsang's
/// method: `d = shape − 1/3`, `c = 1 / √(9d)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gamma {
    d: f64,
    c: f64,
}

impl Gamma {
    /// Gamma of this shape; shapes below 1 are raised to 1 (the method needs
    /// ≥ 1, and PERT's shapes are always between 1 and 5).
    pub fn new(shape: f64) -> Gamma {
        let d = shape.max(1.0) - 1.0 / 3.0;
        Gamma {
            d,
            c: 1.0 / (9.0 * d).sqrt(),
        }
    }
}

/// Where the ziggurat's base layer ends and the tail begins (256 layers).
const ZIGGURAT_R: f64 = 3.654_152_885_361_009;
/// The area of each layer (256 layers, unnormalised density `exp(-x²/2)`).
const ZIGGURAT_V: f64 = 0.004_928_673_233_99;

/// Layer edges `x[0..=256]` (`x[0]` the base layer's equivalent width,
/// `x[1] = R`, decreasing to `x[256] = 0`) and the density at each.
#[derive(Debug)]
struct Ziggurat {
    x: [f64; 257],
    f: [f64; 257],
}

fn ziggurat() -> &'static Ziggurat {
    static TABLES: OnceLock<Ziggurat> = OnceLock::new();
    TABLES.get_or_init(|| {
        let density = |x: f64| (-0.5 * x * x).exp();
        let mut x = [0.0; 257];
        x[0] = ZIGGURAT_V / density(ZIGGURAT_R);
        x[1] = ZIGGURAT_R;
        for i in 2..256 {
            // Each layer has area V: x[i-1] · (f(x[i]) − f(x[i-1])) = V.
            let level = ZIGGURAT_V / x[i - 1] + density(x[i - 1]);
            x[i] = if level < 1.0 {
                (-2.0 * level.ln()).sqrt()
            } else {
                0.0
            };
        }
        x[256] = 0.0;
        let mut f = [0.0; 257];
        for (fi, xi) in f.iter_mut().zip(x) {
            *fi = density(xi);
        }
        Ziggurat { x, f }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_get_different_streams_and_the_same_run_the_same_stream() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_run(1, 0).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r0 = Rng::for_run(1, 0);
        let mut r1 = Rng::for_run(1, 1);
        let mut s2 = Rng::for_run(2, 0);
        let (x0, x1, x2) = (r0.next_u64(), r1.next_u64(), s2.next_u64());
        assert!(x0 != x1 && x0 != x2 && x1 != x2);
    }

    #[test]
    fn ziggurat_tables_are_well_formed() {
        let z = ziggurat();
        assert!(z.x[0] > z.x[1]);
        for i in 1..256 {
            assert!(
                z.x[i] > z.x[i + 1],
                "layer {i}: {} <= {}",
                z.x[i],
                z.x[i + 1]
            );
        }
        // The recurrence should land close to 0 by itself at the top.
        assert!(z.x[255] > 0.0 && z.x[255] < 0.3, "{}", z.x[255]);
    }

    #[test]
    fn normal_draws_have_the_normal_moments_and_quantiles() {
        let mut rng = Rng::from_seed(7);
        let n = 400_000;
        let mut draws: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
        draws.sort_by(f64::total_cmp);
        for (q, z) in [
            (0.5, 0.0),
            (0.8413, 1.0),
            (0.9772, 2.0),
            (0.99865, 3.0),
            (0.02275, -2.0),
        ] {
            let got = draws[(q * n as f64) as usize];
            assert!((got - z).abs() < 0.03, "quantile {q}: {got}, expected {z}");
        }
        // The tail beyond R is reached and stays sensible.
        let beyond = draws.iter().filter(|x| x.abs() > ZIGGURAT_R).count() as f64 / n as f64;
        assert!(beyond > 0.0001 && beyond < 0.0005, "{beyond}");
    }

    #[test]
    fn gamma_draws_have_mean_and_variance_equal_to_the_shape() {
        let mut rng = Rng::from_seed(3);
        for shape in [1.0, 1.8, 3.0, 5.0] {
            let gamma = Gamma::new(shape);
            let n = 200_000;
            let draws: Vec<f64> = (0..n).map(|_| rng.gamma(&gamma)).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!(
                (mean - shape).abs() < 0.02 * shape,
                "shape {shape}: mean {mean}"
            );
            assert!(
                (var - shape).abs() < 0.05 * shape,
                "shape {shape}: variance {var}"
            );
            assert!(draws.iter().all(|&x| x > 0.0));
        }
    }

    #[test]
    fn uniform_stays_in_range() {
        let mut rng = Rng::from_seed(11);
        for _ in 0..100_000 {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
            let o = rng.open01();
            assert!(o > 0.0 && o < 1.0);
        }
    }
}
