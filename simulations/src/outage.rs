//! Whether users are down during a simulated run, and for how long in all.

/// Whether users are down, and the outage intervals of the run so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outage {
    state: OutageState,
    /// Users are not back before this (DNS propagation of switches made or
    /// reverted during the current outage).
    propagated_until: f64,
    /// Each outage: start, end, and its kind (an index into the plan's
    /// outage kinds: what users get instead of the service).
    intervals: Vec<(f64, f64, usize)>,
    /// The kind of the outage under way (or the last one).
    kind: usize,
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
        self.kind = 0;
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

    /// Users lose the service at `now`; `kind` says how, when a step that
    /// begins an outage says (a revert that takes the service away again
    /// keeps the last kind).
    pub(crate) fn down(&mut self, now: f64, kind: Option<usize>) {
        if let (Some(kind), OutageState::Up) = (kind, self.state) {
            self.kind = kind;
        }
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
                self.intervals.push((start, until, self.kind));
                if let Some(kind) = kind {
                    self.kind = kind;
                }
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
                self.intervals.push((start, now, self.kind));
                true
            }
            OutageState::Recovering { start, at, until } => {
                self.propagation += until - at;
                self.intervals.push((start, until, self.kind));
                false
            }
        };
        self.state = OutageState::Up;
        open
    }

    pub(crate) fn total(&self) -> f64 {
        self.intervals.iter().map(|(a, b, _)| b - a).sum()
    }

    /// The time users spent in outages of `kind`.
    pub(crate) fn total_of(&self, kind: usize) -> f64 {
        self.intervals
            .iter()
            .filter(|(_, _, k)| *k == kind)
            .map(|(a, b, _)| b - a)
            .sum()
    }

    pub(crate) fn overlap(&self, a: f64, b: f64) -> f64 {
        self.intervals
            .iter()
            .map(|&(s, e, _)| (b.min(e) - a.max(s)).max(0.0))
            .sum()
    }
}
