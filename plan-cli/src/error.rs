//! The one error type of the CLI. Every `From` lives here, and every error
//! knows its exit code.

use crate::exit_codes;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The plan file could not be read.
    #[error(transparent)]
    Read(#[from] plan_core::ReadError),
    /// The plan has errors; they were already printed.
    #[error("{path}: {errors} error{s}, the plan is invalid", s = if *.errors == 1 { "" } else { "s" })]
    InvalidPlan {
        /// The plan as named on the command line.
        path: String,
        /// How many errors.
        errors: usize,
    },
    /// A command-line value is wrong (a flag, a phase, a zone name).
    #[error("{0}")]
    Usage(String),
    /// A file or directory the command needs could not be read, written or
    /// created (not the plan itself: that is [`CliError::Read`]).
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. "cannot create the run directory".
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Something that cannot happen did (a bug in cutover); the message says
    /// what, for the report.
    #[error("internal error: {0}")]
    Internal(String),
    /// The plan changed since the journal was written.
    #[error("the plan no longer matches its journal `{journal}`: {detail}")]
    PlanChanged {
        /// The journal's path.
        journal: String,
        /// What changed.
        detail: String,
    },
    /// The journal cannot be read or written.
    #[error("journal: {0}")]
    Journal(String),
    /// The run stopped without an end (second Ctrl-C, no operator to ask).
    #[error("{0}")]
    Interrupted(String),
    /// A run cannot start or resume in the current state.
    #[error("{message}")]
    Refused {
        /// What stands in the way.
        message: String,
        /// What to do instead.
        hint: String,
    },
    /// Writing output failed (e.g. a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// JSON output could not be produced.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::InvalidPlan { .. } | CliError::PlanChanged { .. } => exit_codes::INVALID_PLAN,
            CliError::Read(_)
            | CliError::Usage(_)
            | CliError::Io { .. }
            | CliError::Internal(_)
            | CliError::Output(_)
            | CliError::Json(_)
            | CliError::Journal(_)
            | CliError::Interrupted(_)
            | CliError::Refused { .. } => exit_codes::ERROR,
        }
    }

    /// A hint printed under the error, if there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Read(e) => match e.kind {
                plan_core::ReadErrorKind::NotFound => {
                    Some("check the path; examples live under examples/".into())
                }
                plan_core::ReadErrorKind::IsDirectory => {
                    Some("name the plan file itself, e.g. examples/mailman.ron".into())
                }
                _ => None,
            },
            CliError::InvalidPlan { path, .. } => Some(format!(
                "fix the errors above, then run `cutover check {path}` again"
            )),
            CliError::PlanChanged { .. } => Some(
                "an unfinished or halted run continues only with the plan it was started with: \
                 restore that plan and `cutover resume` it (a halted run: look first); once a \
                 run has ended (completed or rolled back), `cutover run` takes the changed plan \
                 as a new attempt in the same journal"
                    .into(),
            ),
            CliError::Interrupted(_) => Some("continue with `cutover resume PLAN`".into()),
            CliError::Internal(_) => Some(
                "this is a bug in cutover; please report it with the command line and the plan"
                    .into(),
            ),
            CliError::Refused { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }
}

impl CliError {
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }
}

impl CliError {
    /// `announce` could not estimate the plan: the same estimate, run by
    /// `simulate`, says more about why.
    pub fn announce_estimate(e: simulations::SimError) -> CliError {
        CliError::Refused {
            message: e.to_string(),
            hint: "`cutover simulate PLAN` runs the same estimate and says more".into(),
        }
    }
}

impl From<simulations::SimError> for CliError {
    fn from(e: simulations::SimError) -> CliError {
        use simulations::SimError;
        match e {
            SimError::UnknownScenario { .. } => CliError::Refused {
                message: e.to_string(),
                hint: "give a built-in name, or the path of a scenario file (RON)".into(),
            },
            SimError::RunDidNotEnd { .. } => CliError::Refused {
                message: e.to_string(),
                hint: "this is a bug in cutover; please report it with the plan, the seed and the scenarios".into(),
            },
            _ => CliError::Usage(e.to_string()),
        }
    }
}

impl From<simulations::timeline::TimelineError> for CliError {
    fn from(e: simulations::timeline::TimelineError) -> CliError {
        use simulations::timeline::TimelineError;
        match e {
            TimelineError::UnknownPhase { .. } | TimelineError::NothingToRun(_) => {
                CliError::Usage(e.to_string())
            }
            _ => CliError::Refused {
                message: e.to_string(),
                hint: "`cutover timeline` without `--svg` prints the timeline as text".into(),
            },
        }
    }
}
