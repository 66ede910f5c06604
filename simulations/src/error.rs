//! Why an estimate cannot be made.

/// Why a simulation could not run, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// `--scenario NAME` names no built-in scenario (and no file was given).
    #[error("there is no built-in scenario `{name}`; the built-in ones are {known}")]
    UnknownScenario {
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// A scenario file is not a valid scenario, or does not fit the plan.
    #[error("scenario `{scenario}`: {message}")]
    Scenario {
        /// The scenario's name (built-in name or file path).
        scenario: String,
        /// What is wrong, with its line and column where there is one.
        message: String,
    },
    /// A journal given with `--measured` cannot be used.
    #[error("measured durations from `{journal}`: {message}")]
    Measured {
        /// The journal as named.
        journal: String,
        /// What is wrong.
        message: String,
    },
    /// The phase asked for is not in the plan.
    #[error("the plan has no phase `{0}`")]
    UnknownPhase(String),
    /// A count or option is out of range (no runs, say).
    #[error("{0}")]
    Options(String),
    /// The machine got stuck or did not end in a simulated run: a bug in the
    /// machine or the simulator, reported with the run to replay.
    #[error("simulated run {run} (seed {seed}) did not end properly: {problem}")]
    RunDidNotEnd {
        /// The run's index.
        run: u64,
        /// The estimate's seed.
        seed: u64,
        /// What happened.
        problem: String,
    },
    /// The histogram could not be drawn.
    #[error("cannot draw the histogram: {0}")]
    Plot(String),
}
