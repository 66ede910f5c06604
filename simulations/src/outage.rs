//! Whether users are down during a simulated run, and for how long in all.

/// Whether users are down, and the outage intervals of the run so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outage {
    state: OutageState,
    /// Users are not back before this (DNS propagation of switches made or
    /// reverted during the current outage).
    propagated_until: f64,
    intervals: Vec<(f64, f64)>,
    /// Seconds of the outage spent only waiting for DNS caches.
    pub(crate) propagation: f64,
}

#[derive(Clone, Copy, Debug, Default)]
enum OutageState {
    #[default]
    Up,
    Down {
        start: f64,
    },
    /// The service is back at `at`, but resolvers may hold the old address
    /// until `until`.
    Recovering {
        start: f64,
        at: f64,
        until: f64,
    },
}

impl Outage {
    pub(crate) fn reset(&mut self) {
        self.state = OutageState::Up;
        self.propagated_until = 0.0;
        self.intervals.clear();
        self.propagation = 0.0;
    }

    pub(crate) fn is_down(&self) -> bool {
        matches!(self.state, OutageState::Down { .. })
    }

    /// When the outage users are in began, while they are down.
    pub(crate) fn down_since(&self) -> Option<f64> {
        match self.state {
            OutageState::Down { start } => Some(start),
            _ => None,
        }
    }

    pub(crate) fn down(&mut self, now: f64) {
        match self.state {
            OutageState::Up => {
                self.state = OutageState::Down { start: now };
                self.propagated_until = 0.0;
            }
            OutageState::Down { .. } => {}
            OutageState::Recovering { start, at, until } if now < until => {
                self.propagation += now - at;
                self.state = OutageState::Down { start };
            }
            OutageState::Recovering { start, at, until } => {
                self.propagation += until - at;
                self.intervals.push((start, until));
                self.state = OutageState::Down { start: now };
                self.propagated_until = 0.0;
            }
        }
    }

    pub(crate) fn propagate(&mut self, until: f64) {
        if self.is_down() {
            self.propagated_until = self.propagated_until.max(until);
        }
    }

    pub(crate) fn up(&mut self, now: f64) {
        if let OutageState::Down { start } = self.state {
            self.state = OutageState::Recovering {
                start,
                at: now,
                until: now.max(self.propagated_until),
            };
        }
    }

    /// Closes the outage at the end of the run; whether users were still down.
    pub(crate) fn finish(&mut self, now: f64) -> bool {
        let open = match self.state {
            OutageState::Up => false,
            OutageState::Down { start } => {
                self.intervals.push((start, now));
                true
            }
            OutageState::Recovering { start, at, until } => {
                self.propagation += until - at;
                self.intervals.push((start, until));
                false
            }
        };
        self.state = OutageState::Up;
        open
    }

    pub(crate) fn total(&self) -> f64 {
        self.intervals.iter().map(|(a, b)| b - a).sum()
    }

    pub(crate) fn overlap(&self, a: f64, b: f64) -> f64 {
        self.intervals
            .iter()
            .map(|&(s, e)| (b.min(e) - a.max(s)).max(0.0))
            .sum()
    }
}
