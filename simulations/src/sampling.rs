//! Duration models prepared for fast sampling, in seconds.
//!
//! | model | draw |
//! |---|---|
//! | `Fixed(d)` | `d` |
//! | `Uniform(min, max)` | `min + (max − min)·U` |
//! | `Pert(min, likely, max)` | `min + (max − min)·B`, `B ~ Beta(α, β)` with `α = 1 + 4(likely − min)/(max − min)`, `β = 1 + 4(max − likely)/(max − min)`; the mean is `(min + 4·likely + max)/6` |
//! | `LogNormal(p50, p95)` | `exp(μ + σ·Z)`, `μ = ln p50`, `σ = (ln p95 − ln p50)/1.6449` |
//! | measured | one of the observed durations, each equally likely (a bootstrap) |

use std::time::Duration;

use plan_core::DurationModel;

use crate::random::{Gamma, Rng};

/// The 95th percentile of the standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472_2;

/// A duration model ready to draw from.
#[derive(Clone, Debug, PartialEq)]
pub enum DurationSampler {
    /// Always this many seconds.
    Fixed(f64),
    /// Evenly between `min` and `min + width`.
    Uniform {
        /// Shortest, seconds.
        min: f64,
        /// `max − min`, seconds.
        width: f64,
    },
    /// A scaled beta distribution (PERT).
    Pert {
        /// Shortest, seconds.
        min: f64,
        /// `max − min`, seconds.
        range: f64,
        /// Gamma of shape α.
        alpha: Gamma,
        /// Gamma of shape β.
        beta: Gamma,
    },
    /// A log-normal distribution.
    LogNormal {
        /// Mean of the logarithm (`ln p50`, p50 in seconds).
        mu: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
    },
    /// Resampled from observations, in seconds (never empty).
    Observed(Vec<f64>),
}

impl DurationSampler {
    /// The sampler for a plan's duration model.
    pub fn new(model: &DurationModel) -> DurationSampler {
        match *model {
            DurationModel::Fixed(d) => DurationSampler::Fixed(d.as_secs_f64()),
            DurationModel::Uniform { min, max } => DurationSampler::Uniform {
                min: min.as_secs_f64(),
                width: max.saturating_sub(min).as_secs_f64(),
            },
            DurationModel::Pert { min, likely, max } => {
                let (min, likely, max) =
                    (min.as_secs_f64(), likely.as_secs_f64(), max.as_secs_f64());
                let range = max - min;
                if range <= 0.0 {
                    return DurationSampler::Fixed(min);
                }
                DurationSampler::Pert {
                    min,
                    range,
                    alpha: Gamma::new(1.0 + 4.0 * (likely - min) / range),
                    beta: Gamma::new(1.0 + 4.0 * (max - likely) / range),
                }
            }
            DurationModel::LogNormal { p50, p95 } => {
                let (p50, p95) = (p50.as_secs_f64(), p95.as_secs_f64());
                if p50 <= 0.0 || p95 <= p50 {
                    return DurationSampler::Fixed(p50);
                }
                let mu = p50.ln();
                DurationSampler::LogNormal {
                    mu,
                    sigma: (p95.ln() - mu) / Z95,
                }
            }
        }
    }

    /// A sampler that resamples these observations; `None` when there are none.
    pub fn observed(durations: &[Duration]) -> Option<DurationSampler> {
        if durations.is_empty() {
            return None;
        }
        let mut seconds: Vec<f64> = durations.iter().map(Duration::as_secs_f64).collect();
        seconds.sort_by(f64::total_cmp);
        Some(DurationSampler::Observed(seconds))
    }

    /// One draw, in seconds.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match self {
            DurationSampler::Fixed(d) => *d,
            DurationSampler::Uniform { min, width } => min + width * rng.uniform(),
            DurationSampler::Pert {
                min,
                range,
                alpha,
                beta,
            } => min + range * rng.beta(alpha, beta),
            DurationSampler::LogNormal { mu, sigma } => (mu + sigma * rng.normal()).exp(),
            DurationSampler::Observed(values) => {
                let i = ((rng.uniform() * values.len() as f64) as usize).min(values.len() - 1);
                values[i]
            }
        }
    }

    /// Whether every draw is the same (no random numbers are used then).
    pub fn is_fixed(&self) -> bool {
        matches!(self, DurationSampler::Fixed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    fn draws(model: &DurationModel, n: usize) -> Vec<f64> {
        let sampler = DurationSampler::new(model);
        let mut rng = Rng::from_seed(42);
        let mut v: Vec<f64> = (0..n).map(|_| sampler.sample(&mut rng)).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn pert_mean_is_the_three_point_mean_and_bounds_hold() {
        for (min, likely, max) in [(10, 20, 70), (30, 60, 90), (1, 1, 5), (5, 9, 10)] {
            let model = DurationModel::Pert {
                min: minutes(min),
                likely: minutes(likely),
                max: minutes(max),
            };
            let v = draws(&model, 200_000);
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let expected = 60.0 * (min + 4 * likely + max) as f64 / 6.0;
            assert!(
                (mean - expected).abs() < 0.005 * expected,
                "{min}/{likely}/{max}: mean {mean}, expected {expected}"
            );
            assert!(v[0] >= 60.0 * min as f64 && v[v.len() - 1] <= 60.0 * max as f64);
            // The mode is near `likely`: more draws there than near the far end.
            let near = |c: f64| v.iter().filter(|&&x| (x - c).abs() < 30.0).count();
            if likely != max {
                assert!(near(60.0 * likely as f64) > near(60.0 * max as f64 - 30.0));
            }
        }
    }

    #[test]
    fn lognormal_median_and_95th_percentile_are_the_given_ones() {
        let model = DurationModel::LogNormal {
            p50: minutes(20),
            p95: minutes(45),
        };
        let v = draws(&model, 400_000);
        let p50 = v[v.len() / 2];
        let p95 = v[v.len() * 95 / 100];
        assert!((p50 - 1200.0).abs() < 0.01 * 1200.0, "p50 {p50}");
        assert!((p95 - 2700.0).abs() < 0.015 * 2700.0, "p95 {p95}");
    }

    #[test]
    fn uniform_and_fixed() {
        let v = draws(
            &DurationModel::Uniform {
                min: minutes(10),
                max: minutes(20),
            },
            100_000,
        );
        assert!(v[0] >= 600.0 && v[v.len() - 1] < 1200.0);
        assert!((v[v.len() / 2] - 900.0).abs() < 10.0);
        let v = draws(&DurationModel::Fixed(minutes(3)), 10);
        assert!(v.iter().all(|&x| x == 180.0));
        let degenerate = DurationModel::Pert {
            min: minutes(3),
            likely: minutes(3),
            max: minutes(3),
        };
        assert_eq!(
            DurationSampler::new(&degenerate),
            DurationSampler::Fixed(180.0)
        );
    }

    #[test]
    fn observed_durations_are_resampled() {
        let sampler =
            DurationSampler::observed(&[minutes(3), minutes(1), minutes(2)]).expect("three");
        let mut rng = Rng::from_seed(1);
        let mut seen = [0usize; 3];
        for _ in 0..30_000 {
            let x = sampler.sample(&mut rng);
            seen[(x / 60.0) as usize - 1] += 1;
        }
        assert!(
            seen.iter().all(|&n| (9_000..11_000).contains(&n)),
            "{seen:?}"
        );
        assert!(DurationSampler::observed(&[]).is_none());
    }
}
