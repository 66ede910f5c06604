//! Phase one of loading: what the user typed, as serde structs with spans.
//!
//! These types mirror the RON file one to one (`docs/plan-format.md` is their
//! user-facing reference). Nothing here is checked beyond its RON shape; the
//! loader turns them into the validated [`crate::Plan`]. They never leave the
//! crate.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::span::{Spanned, SpannedMap};

type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(rename = "Plan", deny_unknown_fields)]
pub(crate) struct RawPlan {
    pub name: S<String>,
    pub service: S<String>,
    #[serde(default)]
    pub description: Option<S<String>>,
    pub window: RawWindow,
    #[serde(default)]
    pub vars: SpannedMap<S<String>>,
    #[serde(default)]
    pub hosts: SpannedMap<RawHost>,
    #[serde(default)]
    pub dns: Option<S<RawDns>>,
    pub phases: S<Vec<RawPhase>>,
    #[serde(default)]
    pub failure_rate: Option<S<f64>>,
    #[serde(default)]
    pub known_hosts: Option<S<String>>,
    #[serde(default)]
    pub notify: Vec<S<RawHook>>,
    #[serde(default)]
    pub lock: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) enum RawHook {
    Command {
        run: S<String>,
        #[serde(default)]
        on: Vec<crate::plan::NotifyEvent>,
        #[serde(default)]
        timeout: Option<S<String>>,
    },
    Webhook {
        url: S<String>,
        #[serde(default)]
        token_env: Option<S<String>>,
        #[serde(default)]
        on: Vec<crate::plan::NotifyEvent>,
        #[serde(default)]
        timeout: Option<S<String>>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename = "Window", deny_unknown_fields)]
pub(crate) struct RawWindow {
    #[serde(default)]
    pub start: Option<S<String>>,
    pub announced: S<String>,
    #[serde(default)]
    pub deadline: Option<S<String>>,
    #[serde(default)]
    pub downtime_budget: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename = "Host", deny_unknown_fields)]
pub(crate) struct RawHost {
    pub address: S<String>,
    #[serde(default)]
    pub user: Option<S<String>>,
    #[serde(default)]
    pub port: Option<S<RawPort>>,
    #[serde(default)]
    pub identity: Option<S<String>>,
    #[serde(default)]
    pub vars: SpannedMap<S<String>>,
    #[serde(default)]
    pub env: SpannedMap<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) enum RawDns {
    Rfc2136 {
        server: S<String>,
        zone: S<String>,
        key: S<RawTsig>,
        #[serde(default)]
        records: SpannedMap<RawRecord>,
    },
}

#[derive(Debug, Deserialize)]
pub(crate) enum RawTsig {
    TsigFile(S<String>),
    TsigEnv(S<String>),
}

#[derive(Debug, Deserialize)]
#[serde(rename = "Record", deny_unknown_fields)]
pub(crate) struct RawRecord {
    pub ttl: S<String>,
    #[serde(default)]
    pub addresses: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename = "Phase", deny_unknown_fields)]
pub(crate) struct RawPhase {
    pub name: S<String>,
    #[serde(default)]
    pub at: Option<S<String>>,
    pub steps: Vec<RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    clippy::large_enum_variant,
    reason = "lives only while loading; markers are few"
)]
pub(crate) enum RawEntry {
    Step {
        id: S<String>,
        #[serde(default)]
        title: Option<S<String>>,
        #[serde(default)]
        number: Option<S<u32>>,
        #[serde(default)]
        ticket: Option<S<Tickets>>,
        #[serde(default)]
        done: Option<S<RawDone>>,
        action: S<RawAction>,
        #[serde(default)]
        check: Option<S<RawCheck>>,
        #[serde(default)]
        probe: Option<S<RawCheck>>,
        #[serde(default)]
        duration: Option<S<RawDuration>>,
        #[serde(default)]
        deadline: Option<S<String>>,
        #[serde(default)]
        retries: Option<S<u32>>,
        #[serde(default)]
        retry_interval: Option<S<String>>,
        #[serde(default)]
        after: Option<S<Vec<S<String>>>>,
        #[serde(default)]
        downtime: Option<S<RawMarker>>,
        #[serde(default)]
        settle: Option<S<String>>,
        #[serde(default)]
        notice: Option<S<String>>,
        #[serde(default)]
        failure_rate: Option<S<f64>>,
        #[serde(default)]
        revert_after_failure: Option<S<bool>>,
        #[serde(default)]
        loses: Option<S<String>>,
        #[serde(default)]
        outage: Option<S<String>>,
        #[serde(default)]
        in_flight: Option<S<String>>,
        #[serde(default)]
        env: SpannedMap<S<String>>,
    },
    RollbackPoint(S<String>),
    PointOfNoReturn {
        reason: S<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) enum RawAction {
    Shell {
        on: S<String>,
        run: S<String>,
        #[serde(default)]
        revert: Option<S<RawRevert>>,
    },
    Service {
        on: S<String>,
        unit: S<String>,
        state: S<RawServiceState>,
        #[serde(default)]
        start: Option<S<String>>,
        #[serde(default)]
        stop: Option<S<String>>,
        #[serde(default)]
        status: Option<S<String>>,
    },
    Rsync {
        from: S<String>,
        to: S<String>,
        path: S<String>,
        #[serde(default)]
        dest: Option<S<String>>,
        #[serde(default)]
        delete: Option<S<bool>>,
        #[serde(default)]
        args: Vec<S<String>>,
        #[serde(default)]
        size: Option<S<String>>,
    },
    DnsTtl {
        record: S<String>,
        ttl: S<String>,
    },
    DnsRecord {
        record: S<String>,
        addresses: S<Vec<S<String>>>,
    },
    WaitTtl {
        record: S<String>,
    },
    Wait(S<String>),
    WaitUntil {
        on: S<String>,
        run: S<String>,
        every: S<String>,
        within: S<String>,
    },
    Manual {
        prompt: S<String>,
        #[serde(default)]
        revert: Option<S<RawRevert>>,
    },
    Verify,
}

#[derive(Debug, Deserialize)]
pub(crate) enum RawRevert {
    Run(S<String>),
    Manual(S<String>),
    Irreversible(S<String>),
    Nothing(S<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) enum RawCheck {
    Run(S<String>),
    RunOn {
        host: S<String>,
        run: S<String>,
    },
    Tcp {
        host: S<String>,
        port: S<u16>,
    },
    Http {
        url: S<String>,
        #[serde(default)]
        status: Option<S<u16>>,
    },
    Resolves {
        record: S<String>,
        to: S<String>,
    },
    Until {
        run: S<String>,
        every: S<String>,
        within: S<String>,
        #[serde(default)]
        on: Option<S<String>>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) enum RawDuration {
    Fixed(S<String>),
    Uniform {
        min: S<String>,
        max: S<String>,
    },
    Pert {
        min: S<String>,
        likely: S<String>,
        max: S<String>,
    },
    LogNormal {
        p50: S<String>,
        p95: S<String>,
    },
}

#[derive(Clone, Copy, Debug, Deserialize)]
pub(crate) enum RawMarker {
    Begins,
    Ends,
}

#[derive(Clone, Copy, Debug, Deserialize)]
pub(crate) enum RawServiceState {
    Running,
    Stopped,
}

/// A host's `port`: a number, or a text with `{{variables}}` that expands to
/// one (`port: "{{ssh_port}}"`). Its range is checked once it is expanded.
#[derive(Clone, Debug)]
pub(crate) enum RawPort {
    Number(i128),
    Text(String),
}

impl<'de> serde::Deserialize<'de> for RawPort {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = RawPort;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number like 22, or a text like \"{{ssh_port}}\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPort, E> {
                Ok(RawPort::Number(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawPort, E> {
                Ok(RawPort::Number(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawPort, E> {
                Ok(RawPort::Number(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawPort, E> {
                Ok(RawPort::Number(i128::try_from(v).unwrap_or(i128::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPort, E> {
                Ok(RawPort::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `done: true`, `done: false` or `done: "in progress"`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawDone {
    Yes,
    No,
    InProgress,
}

impl<'de> serde::Deserialize<'de> for RawDone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = RawDone;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or \"in progress\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawDone, E> {
                Ok(if v { RawDone::Yes } else { RawDone::No })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDone, E> {
                match v {
                    "in progress" => Ok(RawDone::InProgress),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `ticket: "T1"` or `ticket: ["T1", "T2"]`.
#[derive(Clone, Debug)]
pub(crate) struct Tickets(pub Vec<String>);

impl<'de> serde::Deserialize<'de> for Tickets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Tickets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ticket like \"T110132\" or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tickets, E> {
                Ok(Tickets(vec![v.to_owned()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tickets, A::Error> {
                let mut tickets = Vec::new();
                while let Some(t) = seq.next_element::<String>()? {
                    tickets.push(t);
                }
                Ok(Tickets(tickets))
            }
        }
        deserializer.deserialize_any(V)
    }
}
