//! A fixed-size histogram of durations, for quantiles of millions of runs in
//! constant memory.
//!
//! Values are whole milliseconds. Below about 2 seconds every millisecond has
//! its bin; above, each power of two is split into 1024 bins, so a bin is at
//! most 1/1024 (0.1%) of its value wide: about 0.9 s at 15 minutes, 3.5 s at
//! one hour. The smallest and largest values are kept exactly. Counts are
//! integers, so merging histograms is exact and does not depend on order,
//! which is what makes an estimate the same whatever the number of threads.

use std::time::Duration;

/// Bins per power of two (and the number of 1 ms bins is twice this).
const SUB_BITS: u32 = 10;
const SUB: usize = 1 << SUB_BITS;
/// Values are capped at 2^41 ms (about 70 years).
const MAX_EXPONENT: u32 = 41;
/// How many bins there are.
pub(crate) const BINS: usize = (MAX_EXPONENT - SUB_BITS) as usize * SUB + SUB;

/// Counts of durations in log-linear bins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_ms: u128,
    min_ms: u64,
    max_ms: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BINS],
            total: 0,
            sum_ms: 0,
            min_ms: u64::MAX,
            max_ms: 0,
        }
    }
}

/// The bin of `ms`.
#[inline]
pub(crate) fn bin_of(ms: u64) -> usize {
    let ms = ms.min((1u64 << MAX_EXPONENT) - 1);
    if ms < 2 * SUB as u64 {
        return ms as usize;
    }
    let exponent = 63 - ms.leading_zeros() - SUB_BITS;
    (exponent as usize + 1) * SUB + ((ms >> exponent) as usize - SUB)
}

/// The smallest value of bin `bin`, in ms.
pub(crate) fn bin_start(bin: usize) -> u64 {
    if bin < 2 * SUB {
        return bin as u64;
    }
    let exponent = (bin / SUB - 1) as u32;
    ((bin % SUB + SUB) as u64) << exponent
}

impl Histogram {
    /// Counts one value.
    #[inline]
    pub fn record(&mut self, ms: u64) {
        self.counts[bin_of(ms)] += 1;
        self.total += 1;
        self.sum_ms += u128::from(ms);
        self.min_ms = self.min_ms.min(ms);
        self.max_ms = self.max_ms.max(ms);
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum_ms += other.sum_ms;
        self.min_ms = self.min_ms.min(other.min_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value counted (zero when empty).
    pub fn max(&self) -> Duration {
        Duration::from_millis(if self.total == 0 { 0 } else { self.max_ms })
    }

    /// The smallest value counted (zero when empty).
    pub fn min(&self) -> Duration {
        Duration::from_millis(if self.total == 0 { 0 } else { self.min_ms })
    }

    /// The mean of the values counted.
    pub fn mean(&self) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis((self.sum_ms / u128::from(self.total)) as u64)
    }

    /// The `q` quantile (0 ≤ q ≤ 1): the smallest value that at least a
    /// share `q` of the values do not exceed, to within its bin (the bin's
    /// middle is returned, clamped to the exact minimum and maximum).
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_millis(self.quantile_ms(q))
    }

    pub(crate) fn quantile_ms(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        if rank >= self.total {
            return self.max_ms;
        }
        let mut seen = 0u64;
        for (bin, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (start, end) = (bin_start(bin), bin_start(bin + 1));
                let middle = start + (end - start) / 2;
                return middle.clamp(self.min_ms, self.max_ms);
            }
        }
        self.max_ms
    }

    /// The share of values at or below `d`, to within a bin.
    pub fn share_at_most(&self, d: Duration) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let last = bin_of(d.as_millis().min(u128::from(u64::MAX)) as u64);
        let below: u64 = self.counts[..=last].iter().sum();
        below as f64 / self.total as f64
    }

    /// The non-empty bins in order: (start, end, count); `end` is exclusive.
    pub fn bins(&self) -> impl Iterator<Item = (Duration, Duration, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(bin, &c)| {
                (
                    Duration::from_millis(bin_start(bin)),
                    Duration::from_millis(bin_start(bin + 1)),
                    c,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_contiguous_and_narrow() {
        let mut previous_end = 0;
        for bin in 0..BINS - 1 {
            let (start, end) = (bin_start(bin), bin_start(bin + 1));
            assert_eq!(start, previous_end, "bin {bin}");
            assert!(end > start);
            assert!(
                end - start <= start.max(1024) / 1024 + 1,
                "bin {bin} is too wide: {start}..{end}"
            );
            assert_eq!(bin_of(start), bin);
            assert_eq!(bin_of(end - 1), bin);
            previous_end = end;
        }
    }

    #[test]
    fn quantiles_of_known_values() {
        let mut h = Histogram::default();
        for s in 1..=100u64 {
            h.record(s * 60_000);
        }
        let close = |d: Duration, minutes: u64| {
            (d.as_secs_f64() - 60.0 * minutes as f64).abs() < 0.002 * 60.0 * minutes as f64
        };
        assert!(close(h.quantile(0.5), 50), "{:?}", h.quantile(0.5));
        assert!(close(h.quantile(0.9), 90));
        assert!(close(h.quantile(0.99), 99));
        assert_eq!(h.quantile(1.0), Duration::from_secs(6000));
        assert_eq!(h.max(), Duration::from_secs(6000));
        assert_eq!(h.min(), Duration::from_secs(60));
        assert_eq!(h.mean(), Duration::from_millis(3_030_000));
        assert!((h.share_at_most(Duration::from_secs(50 * 60)) - 0.5).abs() < 0.011);
    }

    #[test]
    fn a_single_value_is_every_quantile() {
        let mut h = Histogram::default();
        for _ in 0..10 {
            h.record(1_234_567);
        }
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(h.quantile(q), Duration::from_millis(1_234_567));
        }
    }

    #[test]
    fn merging_adds_counts() {
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        a.record(5);
        b.record(5_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max(), Duration::from_millis(5_000_000));
        assert_eq!(a.bins().count(), 2);
    }
}
