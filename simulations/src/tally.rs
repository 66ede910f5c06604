//! What simulated runs add up to: histograms, end states and the time each
//! step spends inside the outage, in integers so that merging the tallies of
//! several threads gives the same result in any order.

use crate::histogram::{bin_of, Histogram, BINS};
use crate::model::Model;

/// Seconds to whole milliseconds, for the integer tallies.
pub(crate) fn millis(secs: f64) -> u64 {
    // `(secs * 1000.0).round().max(0.0) as u64` without libm's `round`
    // (the baseline x86-64 target has no instruction for it, and a
    // rehearsal calls this a few dozen times a run): the whole part by
    // truncation, exact below 2^53, then half away from zero. Negatives
    // and NaN are 0, as before.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let x = secs * 1000.0;
    if x.is_nan() || x < 0.0 {
        return 0;
    }
    if x >= EXACT {
        return x.round() as u64;
    }
    // Below 2^53 the conversions through i64 are single instructions
    // (through u64 they are not, on the baseline target).
    let whole = x as i64;
    whole as u64 + u64::from(x - whole as f64 >= 0.5)
}

/// Each step's time inside the outage, by downtime, for the tail report:
/// rows per coarse downtime bin (32 histogram bins, about 3% wide).
#[derive(Clone, Debug)]
pub(crate) struct Drivers {
    /// Steps, then one column for DNS propagation.
    width: usize,
    rows: Vec<Option<Box<[u64]>>>,
    runs: Vec<u64>,
    downtime_ms: Vec<u64>,
}

const COARSE_SHIFT: usize = 5;
const COARSE_BINS: usize = (BINS >> COARSE_SHIFT) + 1;

impl Drivers {
    fn new(steps: usize) -> Drivers {
        Drivers {
            width: steps + 1,
            rows: vec![None; COARSE_BINS],
            runs: vec![0; COARSE_BINS],
            downtime_ms: vec![0; COARSE_BINS],
        }
    }

    pub(crate) fn record(&mut self, downtime_ms: u64, times: &[u64]) {
        let coarse = bin_of(downtime_ms) >> COARSE_SHIFT;
        self.runs[coarse] += 1;
        self.downtime_ms[coarse] += downtime_ms;
        let width = self.width;
        let row = self.rows[coarse].get_or_insert_with(|| vec![0; width].into_boxed_slice());
        for (a, b) in row.iter_mut().zip(times) {
            *a += b;
        }
    }

    pub(crate) fn merge(&mut self, other: &Drivers) {
        for (c, other_row) in other.rows.iter().enumerate() {
            let Some(other_row) = other_row else { continue };
            let width = self.width;
            let row = self.rows[c].get_or_insert_with(|| vec![0; width].into_boxed_slice());
            for (a, b) in row.iter_mut().zip(other_row.iter()) {
                *a += b;
            }
            self.runs[c] += other.runs[c];
            self.downtime_ms[c] += other.downtime_ms[c];
        }
    }

    /// Runs, their summed downtime and each column's summed time, over the
    /// runs whose downtime falls in the coarse bin of `from_ms` or above.
    pub(crate) fn from(&self, from_ms: u64) -> (u64, u64, Vec<u64>) {
        let first = bin_of(from_ms) >> COARSE_SHIFT;
        let mut sums = vec![0u64; self.width];
        for row in self.rows[first..].iter().flatten() {
            for (s, v) in sums.iter_mut().zip(row.iter()) {
                *s += v;
            }
        }
        (
            self.runs[first..].iter().sum(),
            self.downtime_ms[first..].iter().sum(),
            sums,
        )
    }
}

/// What a set of runs added up to; merged across threads.
#[derive(Clone, Debug)]
pub(crate) struct Tally {
    pub(crate) runs: u64,
    pub(crate) downtime: Histogram,
    /// The downtime without the time spent waiting for DNS caches.
    pub(crate) fresh: Histogram,
    pub(crate) duration: Histogram,
    pub(crate) ends: Vec<u64>,
    pub(crate) rollbacks: u64,
    pub(crate) open_outages: u64,
    pub(crate) drivers: Drivers,
    /// The downtime of each outage kind per run (see `Model::outage_kinds`).
    pub(crate) by_kind: Vec<Histogram>,
}

impl Tally {
    pub(crate) fn new(model: &Model) -> Tally {
        Tally {
            runs: 0,
            downtime: Histogram::default(),
            fresh: Histogram::default(),
            duration: Histogram::default(),
            ends: vec![0; model.end_slots()],
            rollbacks: 0,
            open_outages: 0,
            drivers: Drivers::new(model.step_count()),
            // Only when the plan names kinds: otherwise it is `downtime`.
            by_kind: if model.outage_kinds.len() > 1 {
                vec![Histogram::default(); model.outage_kinds.len()]
            } else {
                Vec::new()
            },
        }
    }

    pub(crate) fn merge(&mut self, other: &Tally) {
        self.runs += other.runs;
        self.downtime.merge(&other.downtime);
        self.fresh.merge(&other.fresh);
        for (mine, theirs) in self.by_kind.iter_mut().zip(&other.by_kind) {
            mine.merge(theirs);
        }
        self.duration.merge(&other.duration);
        for (a, b) in self.ends.iter_mut().zip(&other.ends) {
            *a += b;
        }
        self.rollbacks += other.rollbacks;
        self.open_outages += other.open_outages;
        self.drivers.merge(&other.drivers);
    }
}

#[cfg(test)]
mod tests {
    use super::millis;

    /// The same milliseconds as `round()` gave, halves, negatives, NaN,
    /// infinities and the edge of exact integers included.
    #[test]
    fn millis_rounds_as_round_did() {
        let old = |secs: f64| (secs * 1000.0).round().max(0.0) as u64;
        let mut values = vec![
            0.0,
            -0.0,
            0.0005,
            0.0004999,
            0.0015,
            0.0025,
            1.2345,
            -0.0004,
            -3.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            (2f64.powi(53) - 1.0) / 1000.0,
            2f64.powi(53) / 1000.0,
            2f64.powi(54) / 1000.0,
            1e300,
        ];
        // A deterministic sweep of ordinary durations and their halves.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = (x >> 11) as f64 / (1u64 << 53) as f64 * 10_000.0;
            values.push(secs);
            values.push((secs * 1000.0).floor() / 1000.0 + 0.0005);
        }
        for secs in values {
            assert_eq!(millis(secs), old(secs), "{secs:e}");
        }
    }
}
