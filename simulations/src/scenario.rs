//! Failure scenarios: RON files that change what the simulator assumes
//! (failure rates, durations) or force an event at chosen steps.
//!
//! # Format
//!
//! ```ron
//! // Comments are allowed anywhere.
//! Scenario(
//!     // Required: one or two sentences, shown in the report.
//!     description: "The final copy runs past its deadline and is killed.",
//!
//!     // All optional:
//!     failure_rate: 0.02,        // replaces the plan's `failure_rate` (steps that state their own keep it)
//!     revert_failure_rate: 0.0,  // the chance that a revert fails (default: the step's failure rate)
//!     check: "30s",              // how long the check of an in-doubt step takes (default 30s)
//!     answer: "5m",              // how long the operator takes to answer a question (default 5m)
//!
//!     // Overrides for every pending step of an action kind:
//!     // Shell, Service, Rsync, DnsTtl, DnsRecord, WaitTtl, Wait, Manual, Verify.
//!     kinds: {
//!         "Rsync": Override(force: DeadlineExceeded),
//!     },
//!     // Overrides for steps by id; an id the plan does not have is an error.
//!     steps: {
//!         "final-rsync": Override(duration: Pert(min: "30m", likely: "50m", max: "2h"), failure_rate: 0.1),
//!     },
//! )
//! ```
//!
//! An `Override` has these fields, all optional:
//!
//! | field | meaning |
//! |---|---|
//! | `duration` | replaces the step's duration model: `Fixed("5m")`, `Uniform(min: .., max: ..)`, `Pert(min: .., likely: .., max: ..)`, `LogNormal(p50: .., p95: ..)` |
//! | `scale` | multiplies every duration drawn for the step (forward and revert), e.g. `2.0` |
//! | `failure_rate` | the chance that one attempt fails |
//! | `in_doubt_rate` | the chance that the connection is lost during an attempt, leaving it in doubt (automatic steps) |
//! | `checked_done` | when a step is in doubt, the chance that the action had taken effect when the connection was lost (at its end), so its check (or the operator) finds it done; else it was lost partway and the step runs again. Also, when an attempt fails, the chance that it left part of its effect, which its check finds and the rollback undoes (default 0.5) |
//! | `revert_failure_rate` | the chance that its revert fails |
//! | `force` | an event that always happens, see below |
//!
//! `force` is one of:
//!
//! - `Fail`: every attempt fails (a manual step: the operator declines);
//! - `InDoubt`: the first attempt loses its connection midway; the check
//!   (or the operator, for steps that cannot be checked) decides whether it
//!   took effect; automatic steps only;
//! - `DeadlineExceeded`: every attempt runs until the step's deadline and is
//!   killed; steps without a deadline are not affected;
//! - `RevertFails`: the step's revert fails, if a rollback reverts it;
//! - `AbortAfter("5m")`: the step succeeds, and that long after it the run
//!   is aborted (users report errors, say): it rolls back from wherever it
//!   got, so the step itself is reverted.
//!
//! Several scenarios may be given; they apply in order, each field of a
//! later one replacing the same field of an earlier one. Within a scenario,
//! `steps` (by id) win over `kinds`.

use std::collections::BTreeMap;
use std::time::Duration;

use plan_core::duration::parse_duration;
use plan_core::DurationModel;
use serde::Deserialize;

use crate::SimError;

/// The built-in scenarios: (name, RON text), embedded in the binary.
pub const BUILTIN: [(&str, &str); 5] = [
    (
        "rsync-overrun",
        include_str!("../scenarios/rsync-overrun.ron"),
    ),
    (
        "dns-rollback",
        include_str!("../scenarios/dns-rollback.ron"),
    ),
    ("ssh-drop", include_str!("../scenarios/ssh-drop.ron")),
    (
        "revert-fails",
        include_str!("../scenarios/revert-fails.ron"),
    ),
    (
        "slow-operator",
        include_str!("../scenarios/slow-operator.ron"),
    ),
];

/// The action kinds a scenario's `kinds` may name.
pub const KINDS: [&str; 9] = [
    "Shell",
    "Service",
    "Rsync",
    "DnsTtl",
    "DnsRecord",
    "WaitTtl",
    "Wait",
    "Manual",
    "Verify",
];

/// A validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name: the built-in name, or the file as given.
    pub name: String,
    /// What it models.
    pub description: String,
    /// Replaces the plan's default failure rate.
    pub failure_rate: Option<f64>,
    /// The chance that any revert fails.
    pub revert_failure_rate: Option<f64>,
    /// How long checking an in-doubt step takes.
    pub check: Option<Duration>,
    /// How long the operator takes to answer.
    pub answer: Option<Duration>,
    /// Overrides by action kind, in name order.
    pub kinds: Vec<(String, Override)>,
    /// Overrides by step id, in id order.
    pub steps: Vec<(String, Override)>,
}

/// What a scenario changes about a step. `None` leaves it as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Override {
    /// Replaces the duration model.
    pub duration: Option<DurationModel>,
    /// Multiplies every duration drawn.
    pub scale: Option<f64>,
    /// The chance that one attempt fails.
    pub failure_rate: Option<f64>,
    /// The chance that an attempt is left in doubt.
    pub in_doubt_rate: Option<f64>,
    /// The chance that an in-doubt attempt turns out to have taken effect.
    pub checked_done: Option<f64>,
    /// The chance that the revert fails.
    pub revert_failure_rate: Option<f64>,
    /// An event that always happens.
    pub force: Option<Force>,
}

/// An event a scenario forces at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Force {
    /// Every attempt fails.
    Fail,
    /// The first attempt is left in doubt.
    InDoubt,
    /// Every attempt runs past the deadline.
    DeadlineExceeded,
    /// The revert fails.
    RevertFails,
    /// The run is aborted this long after the step succeeded.
    AbortAfter(Duration),
}

impl Override {
    /// Each field of `later` that is set replaces this one's.
    pub(crate) fn then(&mut self, later: &Override) {
        let Override {
            duration,
            scale,
            failure_rate,
            in_doubt_rate,
            checked_done,
            revert_failure_rate,
            force,
        } = later;
        self.duration = duration.or(self.duration);
        self.scale = scale.or(self.scale);
        self.failure_rate = failure_rate.or(self.failure_rate);
        self.in_doubt_rate = in_doubt_rate.or(self.in_doubt_rate);
        self.checked_done = checked_done.or(self.checked_done);
        self.revert_failure_rate = revert_failure_rate.or(self.revert_failure_rate);
        self.force = force.or(self.force);
    }
}

impl Scenario {
    /// The built-in scenario of this name.
    pub fn builtin(name: &str) -> Option<Scenario> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        // The built-in files are tested to parse.
        Scenario::parse(name, text).ok()
    }

    /// The built-in scenario of this name, or an error listing them.
    pub fn named(name: &str) -> Result<Scenario, SimError> {
        Scenario::builtin(name).ok_or_else(|| SimError::UnknownScenario {
            name: name.to_owned(),
            known: BUILTIN
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Parses and checks a scenario written in RON; `name` is how errors call it.
    pub fn parse(name: &str, text: &str) -> Result<Scenario, SimError> {
        let invalid = |message: String| SimError::Scenario {
            scenario: name.to_owned(),
            message,
        };
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let raw: RawScenario = options.from_str(text).map_err(|e| invalid(e.to_string()))?;
        let overrides = |map: BTreeMap<String, RawOverride>, what: &str| {
            map.into_iter()
                .map(|(key, raw)| {
                    raw.validate()
                        .map(|o| (key.clone(), o))
                        .map_err(|e| invalid(format!("{what} `{key}`: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        for kind in raw.kinds.keys() {
            if !KINDS.contains(&kind.as_str()) {
                return Err(invalid(format!(
                    "`{kind}` is not an action kind; kinds are {}",
                    KINDS.join(", ")
                )));
            }
        }
        let duration = |text: Option<String>, what: &str| {
            text.map(|t| parse_duration(&t).map_err(|e| invalid(format!("{what}: {e}"))))
                .transpose()
        };
        Ok(Scenario {
            name: name.to_owned(),
            description: raw.description,
            failure_rate: probability(raw.failure_rate, "failure_rate").map_err(invalid)?,
            revert_failure_rate: probability(raw.revert_failure_rate, "revert_failure_rate")
                .map_err(invalid)?,
            check: duration(raw.check, "check")?,
            answer: duration(raw.answer, "answer")?,
            kinds: overrides(raw.kinds, "kind")?,
            steps: overrides(raw.steps, "step")?,
        })
    }
}

/// A scenario as written.
#[derive(Deserialize)]
#[serde(rename = "Scenario", deny_unknown_fields)]
struct RawScenario {
    description: String,
    #[serde(default)]
    failure_rate: Option<f64>,
    #[serde(default)]
    revert_failure_rate: Option<f64>,
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    kinds: BTreeMap<String, RawOverride>,
    #[serde(default)]
    steps: BTreeMap<String, RawOverride>,
}

#[derive(Deserialize)]
#[serde(rename = "Override", deny_unknown_fields)]
struct RawOverride {
    #[serde(default)]
    duration: Option<RawDuration>,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    failure_rate: Option<f64>,
    #[serde(default)]
    in_doubt_rate: Option<f64>,
    #[serde(default)]
    checked_done: Option<f64>,
    #[serde(default)]
    revert_failure_rate: Option<f64>,
    #[serde(default)]
    force: Option<RawForce>,
}

#[derive(Deserialize)]
enum RawDuration {
    Fixed(String),
    Uniform {
        min: String,
        max: String,
    },
    Pert {
        min: String,
        likely: String,
        max: String,
    },
    LogNormal {
        p50: String,
        p95: String,
    },
}

#[derive(Deserialize)]
enum RawForce {
    Fail,
    InDoubt,
    DeadlineExceeded,
    RevertFails,
    AbortAfter(String),
}

fn probability(value: Option<f64>, what: &str) -> Result<Option<f64>, String> {
    match value {
        Some(p) if !(0.0..=1.0).contains(&p) => {
            Err(format!("{what} must be between 0.0 and 1.0, not {p}"))
        }
        other => Ok(other),
    }
}

impl RawOverride {
    fn validate(self) -> Result<Override, String> {
        let d = |text: &str| parse_duration(text);
        let duration = match self.duration {
            None => None,
            Some(RawDuration::Fixed(x)) => Some(DurationModel::Fixed(d(&x)?)),
            Some(RawDuration::Uniform { min, max }) => {
                let (min, max) = (d(&min)?, d(&max)?);
                if min > max {
                    return Err("Uniform needs min <= max".into());
                }
                Some(DurationModel::Uniform { min, max })
            }
            Some(RawDuration::Pert { min, likely, max }) => {
                let (min, likely, max) = (d(&min)?, d(&likely)?, d(&max)?);
                if !(min <= likely && likely <= max) {
                    return Err("Pert needs min <= likely <= max".into());
                }
                Some(DurationModel::Pert { min, likely, max })
            }
            Some(RawDuration::LogNormal { p50, p95 }) => {
                let (p50, p95) = (d(&p50)?, d(&p95)?);
                if p50.is_zero() || p50 >= p95 {
                    return Err("LogNormal needs 0 < p50 < p95".into());
                }
                Some(DurationModel::LogNormal { p50, p95 })
            }
        };
        if let Some(scale) = self.scale {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(format!("scale must be above 0, not {scale}"));
            }
        }
        let force = match self.force {
            None => None,
            Some(RawForce::Fail) => Some(Force::Fail),
            Some(RawForce::InDoubt) => Some(Force::InDoubt),
            Some(RawForce::DeadlineExceeded) => Some(Force::DeadlineExceeded),
            Some(RawForce::RevertFails) => Some(Force::RevertFails),
            Some(RawForce::AbortAfter(x)) => Some(Force::AbortAfter(d(&x)?)),
        };
        Ok(Override {
            duration,
            scale: self.scale,
            failure_rate: probability(self.failure_rate, "failure_rate")?,
            in_doubt_rate: probability(self.in_doubt_rate, "in_doubt_rate")?,
            checked_done: probability(self.checked_done, "checked_done")?,
            revert_failure_rate: probability(self.revert_failure_rate, "revert_failure_rate")?,
            force,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_parses_and_is_described() {
        for (name, text) in BUILTIN {
            let scenario = Scenario::parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!scenario.description.trim().is_empty(), "{name}");
            assert!(
                text.trim_start().starts_with("//"),
                "{name} opens with a comment saying what it models"
            );
        }
        assert!(Scenario::builtin("rsync-overrun").is_some());
        assert!(Scenario::builtin("meteor-strike").is_none());
    }

    #[test]
    fn a_full_scenario_parses() {
        let text = r#"Scenario(
            description: "everything",
            failure_rate: 0.02, revert_failure_rate: 0.5, check: "1m", answer: "10m",
            kinds: { "Manual": Override(scale: 2.0), "DnsRecord": Override(force: AbortAfter("5m")) },
            steps: { "final-rsync": Override(duration: Pert(min: "10m", likely: "20m", max: "1h"),
                                             failure_rate: 0.3, in_doubt_rate: 0.1, checked_done: 1.0,
                                             force: Fail) },
        )"#;
        let s = Scenario::parse("x", text).expect("valid");
        assert_eq!(s.failure_rate, Some(0.02));
        assert_eq!(s.answer, Some(Duration::from_secs(600)));
        assert_eq!(s.kinds[0].0, "DnsRecord");
        assert_eq!(
            s.kinds[0].1.force,
            Some(Force::AbortAfter(Duration::from_secs(300)))
        );
        assert_eq!(s.steps[0].1.force, Some(Force::Fail));
        assert_eq!(s.steps[0].1.failure_rate, Some(0.3));
    }

    #[test]
    fn mistakes_are_reported_clearly() {
        let err = |text: &str| {
            Scenario::parse("bad.ron", text)
                .expect_err("invalid")
                .to_string()
        };
        assert!(
            err(r#"Scenario(description: "x", kinds: { "Rsnyc": Override() })"#)
                .contains("`Rsnyc` is not an action kind")
        );
        assert!(
            err(r#"Scenario(description: "x", failure_rate: 1.5)"#).contains("between 0.0 and 1.0")
        );
        assert!(err(
            r#"Scenario(description: "x", steps: { "a": Override(duration: Fixed("soon")) })"#
        )
        .contains("step `a`"));
        assert!(err(r#"Scenario(description: "x", colour: "red")"#).contains("colour"));
        let e = err(r#"Scenario(description: "x", steps: { "a": Override(force: Explode) })"#);
        assert!(e.starts_with("scenario `bad.ron`: 1:"), "{e}");
    }

    #[test]
    fn later_overrides_win_field_by_field() {
        let mut a = Override {
            scale: Some(2.0),
            failure_rate: Some(0.1),
            ..Override::default()
        };
        a.then(&Override {
            failure_rate: Some(0.3),
            force: Some(Force::Fail),
            ..Override::default()
        });
        assert_eq!(
            (a.scale, a.failure_rate, a.force),
            (Some(2.0), Some(0.3), Some(Force::Fail))
        );
    }
}
