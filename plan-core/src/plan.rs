//! The validated plan: every reference resolved, every value parsed.
//!
//! A [`Plan`] only comes out of [`crate::load`]; holding one means the file
//! was well-formed, its names resolve and its values parse. Whether it is
//! *safe* (the verifier's rules) is reported next to it as diagnostics.
//! Spans are kept so later stages can still point into the file.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::diagnostic::Source;
use crate::span::Span;

/// A whole migration plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What the plan is called (`"lists.wikimedia.org: sodium -> fermium"`).
    pub name: String,
    /// The service that moves, as users know it.
    pub service: String,
    /// Why it moves, in a few sentences (used in announcements).
    pub description: Option<String>,
    /// The maintenance window.
    pub window: Window,
    /// Plan-level variables after `--set` and environment overrides.
    pub vars: Vec<Variable>,
    /// Hosts, in file order.
    pub hosts: Vec<Host>,
    /// How DNS records are changed, if the plan changes any.
    pub dns: Option<Dns>,
    /// Phases in time order.
    pub phases: Vec<Phase>,
    /// The text it was loaded from.
    pub source: Source,
    /// FNV-1a hash of the text and the settings, to tie journals to this plan.
    pub hash: u64,
    /// The chance that one attempt of a step fails, for steps that do not
    /// say (rehearsal only).
    pub failure_rate: f64,
    /// The known_hosts file SSH host keys are checked against, if the plan
    /// names one (else the user's, or `--known-hosts`).
    pub known_hosts: Option<PathBuf>,
    /// Who is told what while a run goes on (`notify`), in file order.
    pub notify: Vec<Hook>,
    /// Where runs of the plan hold their lock across machines (`lock`).
    pub lock: Option<LockUrl>,
}

/// Where a run's lock across machines lives (`lock`, `--lock`):
/// `etcd://HOST:PORT/PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockUrl {
    /// As written (variables expanded).
    pub text: String,
    /// `http://HOST:PORT`.
    pub endpoint: String,
    /// The key prefix, without a trailing `/` (may be empty).
    pub prefix: String,
}

impl LockUrl {
    /// Reads `etcd://HOST:PORT/PREFIX`.
    pub fn parse(text: &str) -> Result<LockUrl, String> {
        let rest = text
            .strip_prefix("etcd://")
            .ok_or_else(|| format!("`{text}` is not an etcd:// URL (etcd://HOST:PORT/PREFIX)"))?;
        let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| format!("`{text}` names no port (etcd://HOST:PORT/PREFIX, e.g. etcd://127.0.0.1:2379/cutover)"))?;
        if host.is_empty() {
            return Err(format!("`{text}` names no host"));
        }
        port.parse::<u16>()
            .map_err(|_| format!("`{port}` in `{text}` is not a port number"))?;
        Ok(LockUrl {
            text: text.to_owned(),
            endpoint: format!("http://{authority}"),
            prefix: prefix.trim_end_matches('/').to_owned(),
        })
    }

    /// The key of `service`'s lock.
    pub fn key(&self, service: &str) -> String {
        if self.prefix.is_empty() {
            format!("/{service}")
        } else {
            format!("/{}/{service}", self.prefix.trim_start_matches('/'))
        }
    }
}

/// A hook told of a run's events (`notify`): a command or a webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// Where the event goes.
    pub target: HookTarget,
    /// The events it is told of; empty: every event.
    pub on: Vec<NotifyEvent>,
    /// How long one event may take to deliver, retries included.
    pub timeout: Duration,
}

/// How long a hook may take with one event when the plan does not say.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a hook's events go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookTarget {
    /// A shell command on this machine (`sh -c`), the event in its
    /// environment (`CUTOVER_EVENT`, `CUTOVER_STEP`, ...).
    Command {
        /// The command.
        run: String,
    },
    /// An HTTP POST of the event as JSON (with a Slack- and
    /// Mattermost-compatible `text`).
    Webhook {
        /// Where to post (`http://` or `https://`).
        url: String,
        /// The environment variable holding a bearer token, sent as
        /// `Authorization: Bearer ...` (never in the body).
        token_env: Option<String>,
    },
}

/// An event of a run a hook can be told of (in a plan's `on: [...]`, by
/// its variant's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
pub enum NotifyEvent {
    /// A run (or a resume) began.
    RunStarted,
    /// A run ended: completed, rolled back or halted.
    RunEnded,
    /// A step's forward action began (each attempt).
    StepStarted,
    /// A step succeeded.
    StepSucceeded,
    /// A step failed (each failed attempt).
    StepFailed,
    /// Whether a step took effect is not known.
    StepInDoubt,
    /// The run began to roll back.
    RollbackStarted,
    /// The run crossed the point of no return.
    NoReturnCrossed,
    /// The run has waited for its operator longer than `--remind-after`
    /// (told again at each multiple).
    OperatorAwaited,
}

impl NotifyEvent {
    /// Every event, in the order of a run.
    pub const ALL: [NotifyEvent; 9] = [
        NotifyEvent::RunStarted,
        NotifyEvent::StepStarted,
        NotifyEvent::StepSucceeded,
        NotifyEvent::StepFailed,
        NotifyEvent::StepInDoubt,
        NotifyEvent::RollbackStarted,
        NotifyEvent::NoReturnCrossed,
        NotifyEvent::OperatorAwaited,
        NotifyEvent::RunEnded,
    ];

    /// Its name in the plan file (`StepSucceeded`).
    pub fn plan_name(self) -> &'static str {
        match self {
            NotifyEvent::RunStarted => "RunStarted",
            NotifyEvent::RunEnded => "RunEnded",
            NotifyEvent::StepStarted => "StepStarted",
            NotifyEvent::StepSucceeded => "StepSucceeded",
            NotifyEvent::StepFailed => "StepFailed",
            NotifyEvent::StepInDoubt => "StepInDoubt",
            NotifyEvent::RollbackStarted => "RollbackStarted",
            NotifyEvent::NoReturnCrossed => "NoReturnCrossed",
            NotifyEvent::OperatorAwaited => "OperatorAwaited",
        }
    }

    /// Its name in `CUTOVER_EVENT` and JSON (`step_succeeded`).
    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::RunStarted => "run_started",
            NotifyEvent::RunEnded => "run_ended",
            NotifyEvent::StepStarted => "step_started",
            NotifyEvent::StepSucceeded => "step_succeeded",
            NotifyEvent::StepFailed => "step_failed",
            NotifyEvent::StepInDoubt => "step_in_doubt",
            NotifyEvent::RollbackStarted => "rollback_started",
            NotifyEvent::NoReturnCrossed => "no_return_crossed",
            NotifyEvent::OperatorAwaited => "operator_awaited",
        }
    }
}

impl Hook {
    /// Whether it is told of `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.on.is_empty() || self.on.contains(&event)
    }
}

/// The failure rate of a step attempt when neither the plan nor the step says.
pub const DEFAULT_FAILURE_RATE: f64 = 0.01;

/// The announced maintenance window.
#[derive(Clone, Debug)]
pub struct Window {
    /// When it starts, if fixed in the plan.
    pub start: Option<jiff::Timestamp>,
    /// How long it was announced to last.
    pub announced: Duration,
    /// Past this, the run is aborted and rolled back.
    pub deadline: Option<Duration>,
    /// When users have been down longer than this and the point of no
    /// return is not crossed, the run rolls back on its own.
    pub downtime_budget: Option<Duration>,
    /// Where `announced` was written.
    pub announced_span: Span,
    /// Where `downtime_budget` was written.
    pub budget_span: Option<Span>,
}

/// A named value usable as `{{name}}` in commands. Two variables are equal
/// when their name, value and origin are: where they were written is not
/// part of what they say.
#[derive(Clone, Debug, Eq)]
pub struct Variable {
    /// The name.
    pub name: String,
    /// The value in force.
    pub value: String,
    /// Where the value came from.
    pub origin: VarOrigin,
    /// Where the value is written in the plan (for diagnostics); `None`
    /// for a value from `--set` or the environment.
    pub span: Option<Span>,
}

impl PartialEq for Variable {
    fn eq(&self, other: &Variable) -> bool {
        (&self.name, &self.value, self.origin) == (&other.name, &other.value, other.origin)
    }
}

/// Where a variable's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarOrigin {
    /// Written in the plan.
    Plan,
    /// `CUTOVER_VAR_<name>` in the environment.
    Environment,
    /// `--set` on the command line.
    CommandLine,
}

/// Where commands run: `local` (built in) or a host reached over SSH.
#[derive(Clone, Debug)]
pub struct Host {
    /// The name steps use.
    pub name: String,
    /// DNS name, address or `~/.ssh/config` alias.
    pub address: String,
    /// Login user; `~/.ssh/config` or the current user when absent.
    pub user: Option<String>,
    /// SSH port; `~/.ssh/config` or 22 when absent.
    pub port: Option<u16>,
    /// Private key file; the agent and `~/.ssh/config` when absent.
    pub identity: Option<PathBuf>,
    /// Host variables after overrides; they shadow plan variables.
    pub vars: Vec<Variable>,
    /// Environment variables every command on this host runs with (values
    /// expanded, not quoted: they are quoted when the command is sent).
    pub env: Vec<(String, String)>,
    /// Where the name was written (or the empty span for `local`).
    pub span: Span,
}

impl Host {
    /// The name of the built-in host that runs commands on this machine.
    pub const LOCAL: &'static str = "local";

    /// Whether this is the built-in local host.
    pub fn is_local(&self) -> bool {
        self.name == Self::LOCAL
    }
}

/// RFC 2136 dynamic DNS settings.
#[derive(Clone, Debug)]
pub struct Dns {
    /// `host:port` of the authoritative server.
    pub server: String,
    /// The zone, fully qualified (`wikimedia.org.`).
    pub zone: String,
    /// Where the TSIG key comes from; never the plan text.
    pub key: TsigKeySource,
    /// The records the plan changes.
    pub records: Vec<Record>,
}

/// Where the TSIG secret is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TsigKeySource {
    /// A BIND key file as written by `tsig-keygen`.
    File(PathBuf),
    /// An environment variable holding `algorithm:name:base64secret`.
    Env(String),
}

/// A DNS record the plan manages.
#[derive(Clone, Debug)]
pub struct Record {
    /// Fully qualified name (`lists.wikimedia.org.`).
    pub name: String,
    /// Its TTL before the plan starts.
    pub ttl: Duration,
    /// Its addresses before the plan starts, if given.
    pub addresses: Vec<IpAddr>,
    /// Where the name was written.
    pub span: Span,
}

/// A group of steps anchored to the window start.
#[derive(Clone, Debug)]
pub struct Phase {
    /// The name, for `--phase`.
    pub name: String,
    /// Seconds from the window start, or `None` for unscheduled preparation.
    pub at: Option<i64>,
    /// Steps and markers in file order.
    pub entries: Vec<Entry>,
    /// Where the name was written.
    pub span: Span,
}

/// One item of a phase.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "markers are few; boxing every step would only add indirection"
)]
pub enum Entry {
    /// A step.
    Step(Step),
    /// On failure, revert back to here.
    RollbackPoint(Marker),
    /// Past here, failures halt instead of reverting.
    PointOfNoReturn(Marker),
}

/// A rollback point or the point of no return.
#[derive(Clone, Debug)]
pub struct Marker {
    /// The rollback point's name, or the reason there is no way back.
    pub text: String,
    /// Where it was written.
    pub span: Span,
}

/// One step of the plan.
#[derive(Clone, Debug)]
pub struct Step {
    /// Unique id.
    pub id: String,
    /// The row text shown by `status` (defaults to the id).
    pub title: String,
    /// The row number shown by `status`.
    pub number: u32,
    /// Tickets that track it.
    pub tickets: Vec<String>,
    /// Whether it was already performed before this plan runs.
    pub done: Done,
    /// What it does.
    pub action: Action,
    /// How to tell that the action took effect.
    pub check: Option<Check>,
    /// What `cutover probe` runs to see that the step can run, instead of
    /// looking for its commands' programs: a read-only check the plan
    /// vouches for. Never run by `run`, and not in the fingerprint.
    pub probe: Option<Check>,
    /// How long it takes.
    pub duration: DurationModel,
    /// Cancel and fail it past this.
    pub deadline: Option<Duration>,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// How long to wait before each retry (none: at once).
    pub retry_interval: Option<Duration>,
    /// Steps that must finish first.
    pub after: Vec<String>,
    /// Whether `after` was written (or is the previous step).
    pub after_explicit: bool,
    /// The user-visible outage begins or ends with this step.
    pub downtime: Option<Downtime>,
    /// Wait this long after the action succeeds (e.g. to let queues drain).
    pub settle: Option<Duration>,
    /// What users notice while this step runs.
    pub notice: Option<String>,
    /// The chance that one attempt fails, if the step says (rehearsal only).
    pub failure_rate: Option<f64>,
    /// On a `downtime: Begins` step: what users get instead of the service
    /// while this outage lasts (`"read-only"`); `None` is "unavailable".
    pub outage: Option<String>,
    /// On a `downtime: Begins` step: work users started up to this long
    /// before the step (requests being served, mail in transit) is caught
    /// by it, so their outage begins that much earlier. Estimates only.
    pub in_flight: Option<Duration>,
    /// What undoing this step costs users (`"writes made on host2 after the
    /// switch"`): said by `check`, the dry run's revert plan and `announce`.
    pub loses: Option<String>,
    /// Environment variables the step's commands run with, on top of (and
    /// over) their host's `env` (values expanded, not quoted).
    pub env: Vec<(String, String)>,
    /// Run the revert after a failed attempt too, as for a completed step:
    /// the plan says the revert is safe on a partial effect. (A step with a
    /// check needs no such word: its check decides.)
    pub revert_after_failure: bool,
    /// Bytes an `Rsync` step expects to copy (the action's `size`): the
    /// estimate scales measured copies to it. Not part of the step's
    /// fingerprint: saying how much will be copied changes nothing it does.
    pub transfer_size: Option<u64>,
    /// Where its parts were written.
    pub spans: StepSpans,
}

/// Places of a step's parts in the file.
#[derive(Clone, Debug, Default)]
pub struct StepSpans {
    /// The id.
    pub id: Span,
    /// The whole action.
    pub action: Span,
    /// The revert, when written.
    pub revert: Option<Span>,
    /// The check, when written.
    pub check: Option<Span>,
    /// The duration model, when written.
    pub duration: Option<Span>,
    /// The deadline, when written.
    pub deadline: Option<Span>,
    /// The downtime marker, when written.
    pub downtime: Option<Span>,
    /// Each `after` entry.
    pub after: Vec<Span>,
    /// `loses`, when written.
    pub loses: Option<Span>,
}

impl Step {
    /// Whether two steps say the same thing, wherever they were written:
    /// every field but the spans. (Printing a plan and loading it again must
    /// give the same steps; this is how tests tell.)
    pub fn same_as(&self, other: &Step) -> bool {
        self.what() == other.what()
    }

    /// Every field but the spans, as text. Destructured whole, so that a
    /// field added to `Step` cannot be left out of [`Step::same_as`].
    pub fn what(&self) -> String {
        let Step {
            id,
            title,
            number,
            tickets,
            done,
            action,
            check,
            probe,
            duration,
            deadline,
            retries,
            retry_interval,
            after,
            after_explicit,
            downtime,
            settle,
            notice,
            failure_rate,
            outage,
            in_flight,
            loses,
            env,
            revert_after_failure,
            transfer_size,
            spans: _,
        } = self;
        format!(
            "{id:?} {title:?} {number} {tickets:?} {done:?} | {action:?} | {check:?} | \
             {duration:?} {deadline:?} {retries} {retry_interval:?} {after:?} {after_explicit} {downtime:?} \
             {settle:?} {notice:?} {failure_rate:?} {outage:?} {in_flight:?} {loses:?} {env:?} {revert_after_failure} \
             {transfer_size:?} {probe:?}"
        )
    }

    /// Whether the step still has to run.
    pub fn pending(&self) -> bool {
        self.done != Done::Yes
    }

    /// How the step is undone.
    pub fn revert(&self) -> RevertPlan<'_> {
        match &self.action {
            Action::Shell { revert, .. } | Action::Manual { revert, .. } => {
                RevertPlan::Stated(revert)
            }
            Action::Service { state, .. } => RevertPlan::RestoreService(*state),
            Action::DnsTtl { .. } | Action::DnsRecord { .. } => RevertPlan::RestoreRecord,
            Action::Rsync { .. }
            | Action::WaitTtl { .. }
            | Action::Wait(_)
            | Action::WaitUntil(_)
            | Action::Verify => RevertPlan::NothingToUndo,
        }
    }

    /// Whether a rollback has anything to undo for this step.
    pub fn undoable(&self) -> bool {
        !matches!(
            self.revert(),
            RevertPlan::NothingToUndo | RevertPlan::Stated(Revert::Nothing(_))
        )
    }

    /// The host commands of this step run on, if it has one.
    pub fn host(&self) -> Option<&str> {
        self.action.host()
    }

    /// A hash of what the step does (action, check, order, deadline,
    /// retries, done), to tell which steps changed between two plans.
    pub fn fingerprint(&self) -> u64 {
        let mut text = format!(
            "{:?}|{:?}|{:?}|{:?}|{}|{:?}",
            self.action, self.check, self.after, self.deadline, self.retries, self.done
        );
        // Only when set, so fingerprints journaled before they existed hold.
        if self.revert_after_failure {
            text.push_str("|revert_after_failure");
        }
        if !self.env.is_empty() {
            text.push_str(&format!("|env {:?}", self.env));
        }
        if let Some(interval) = self.retry_interval {
            text.push_str(&format!("|retry_interval {interval:?}"));
        }
        crate::hash::fnv1a(&[text.as_bytes()])
    }
}

/// How a step is undone.
#[derive(Clone, Copy, Debug)]
pub enum RevertPlan<'a> {
    /// As written in the plan.
    Stated(&'a Revert),
    /// Put the unit back in its captured state (the opposite of this one).
    RestoreService(ServiceState),
    /// Put the captured RRset (addresses and TTL) back.
    RestoreRecord,
    /// The action changes nothing that a rollback must undo.
    NothingToUndo,
}

/// Performed already?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Yes: skipped, shown as done.
    Yes,
    /// No: runs.
    No,
    /// Started by hand, not finished: runs.
    InProgress,
}

impl Done {
    /// As the seed tables say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Done::Yes => "yes",
            Done::No => "no",
            Done::InProgress => "in progress",
        }
    }
}

/// Which end of the outage a step marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Downtime {
    /// Users lose the service when this step starts.
    Begins,
    /// Users have the service back when this step (and DNS propagation) ends.
    Ends,
}

/// Desired state of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// Started.
    Running,
    /// Stopped.
    Stopped,
}

/// What a step does.
#[derive(Clone, Debug)]
pub enum Action {
    /// A shell command on a host, with its stated revert.
    Shell {
        /// Host name.
        host: String,
        /// The command, variables expanded and quoted.
        run: String,
        /// How to undo it.
        revert: Revert,
    },
    /// Start or stop a service; the previous state is captured.
    Service {
        /// Host name.
        host: String,
        /// Unit name (for systemd) or the service's name.
        unit: String,
        /// Wanted state.
        state: ServiceState,
        /// How it is started, stopped and asked.
        control: ServiceControl,
    },
    /// Copy a directory tree from one host to another.
    Rsync {
        /// Source host.
        from: String,
        /// Destination host.
        to: String,
        /// Source path.
        path: String,
        /// Destination path (defaults to `path`).
        dest: String,
        /// Delete files at the destination that the source lacks.
        delete: bool,
        /// Extra rsync arguments.
        args: Vec<String>,
    },
    /// Change a record's TTL; the previous TTL is captured.
    DnsTtl {
        /// Record name.
        record: String,
        /// New TTL.
        ttl: Duration,
    },
    /// Point a record at new addresses; the previous RRset is captured.
    DnsRecord {
        /// Record name.
        record: String,
        /// New addresses (A and AAAA by family).
        addresses: Vec<IpAddr>,
    },
    /// Wait until caches can no longer hold the record's previous TTL.
    WaitTtl {
        /// Record name.
        record: String,
    },
    /// Wait a fixed time.
    Wait(Duration),
    /// Wait until a command succeeds (polled), at most a while.
    WaitUntil(Poll),
    /// An operator does something and confirms.
    Manual {
        /// What to do, variables expanded.
        prompt: String,
        /// How to undo it.
        revert: Revert,
    },
    /// Only run the step's check.
    Verify,
}

impl Action {
    /// The kind's name as written in plans.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Shell { .. } => "Shell",
            Action::Service { .. } => "Service",
            Action::Rsync { .. } => "Rsync",
            Action::DnsTtl { .. } => "DnsTtl",
            Action::DnsRecord { .. } => "DnsRecord",
            Action::WaitTtl { .. } => "WaitTtl",
            Action::Wait(_) => "Wait",
            Action::WaitUntil(_) => "WaitUntil",
            Action::Manual { .. } => "Manual",
            Action::Verify => "Verify",
        }
    }

    /// The duration a step with this action gets when the plan does not say;
    /// the printer leaves out a duration equal to it.
    pub fn default_duration(&self) -> DurationModel {
        match self {
            Action::Wait(d) => DurationModel::Fixed(*d),
            // Anything from the first poll to the limit, when the plan does
            // not know better.
            Action::WaitUntil(poll) => DurationModel::Uniform {
                min: Duration::ZERO,
                max: poll.within,
            },
            Action::Manual { .. } => DurationModel::Fixed(Duration::from_secs(300)),
            // WaitTtl's length is the record's TTL in force; the verifier works it out.
            Action::WaitTtl { .. } => DurationModel::Fixed(Duration::ZERO),
            _ => DurationModel::Fixed(Duration::from_secs(30)),
        }
    }

    /// The host its commands (and a `check: Run(..)`) run on: `on` for
    /// Shell and Service, the destination for Rsync; none for the others.
    pub fn host(&self) -> Option<&str> {
        match self {
            Action::Shell { host, .. } | Action::Service { host, .. } => Some(host),
            Action::WaitUntil(poll) => Some(&poll.host),
            Action::Rsync { to, .. } => Some(to),
            _ => None,
        }
    }

    /// Whether the kind knows how to check itself, so no `check` is needed.
    pub fn checks_itself(&self) -> bool {
        matches!(
            self,
            Action::Service { .. }
                | Action::DnsTtl { .. }
                | Action::DnsRecord { .. }
                | Action::Rsync { .. }
                | Action::Wait(_)
                | Action::WaitUntil(_)
                | Action::WaitTtl { .. }
        )
    }
}

/// How a service is controlled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceControl {
    /// `systemctl start|stop|is-active UNIT`.
    Systemd,
    /// Commands given in the plan, variables expanded and quoted.
    Commands {
        /// Starts it.
        start: String,
        /// Stops it.
        stop: String,
        /// Exits 0 when it is running.
        status: String,
    },
}

/// A stated revert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revert {
    /// Run this command on the step's host.
    Run(String),
    /// Ask the operator to do this.
    Manual(String),
    /// It cannot be undone, for this reason; only allowed past the point of no return.
    Irreversible(String),
    /// There is nothing to undo, for this reason.
    Nothing(String),
}

/// How to tell that a step's action took effect.
#[derive(Clone, Debug)]
pub enum Check {
    /// A command exits 0 on a host.
    Run {
        /// Host name.
        host: String,
        /// The command, variables expanded and quoted.
        command: String,
    },
    /// A TCP port accepts connections.
    Tcp {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
    },
    /// An HTTP(S) URL answers with this status.
    Http {
        /// URL.
        url: String,
        /// Expected status (200 when not written).
        status: u16,
    },
    /// A record resolves to this address at the plan's DNS server.
    Resolves {
        /// Record name.
        record: String,
        /// Expected address.
        to: IpAddr,
    },
    /// A command comes to exit 0 on a host, polled until a limit.
    Until(Poll),
}

/// A command polled until it exits 0: every `every`, at most `within`
/// (`WaitUntil`, `check: Until(..)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poll {
    /// Host name.
    pub host: String,
    /// The command, variables expanded and quoted.
    pub command: String,
    /// How long to wait between two tries.
    pub every: Duration,
    /// How long to keep trying, from the first try.
    pub within: Duration,
}

/// How long a step takes, for estimates and the verifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DurationModel {
    /// Always this long.
    Fixed(Duration),
    /// Anywhere between, evenly.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// Three-point estimate.
    Pert {
        /// Shortest.
        min: Duration,
        /// Most likely.
        likely: Duration,
        /// Longest.
        max: Duration,
    },
    /// Log-normal through a median and a 95th percentile.
    LogNormal {
        /// Median.
        p50: Duration,
        /// 95th percentile.
        p95: Duration,
    },
}

impl DurationModel {
    /// The shortest the step can take.
    pub fn min(&self) -> Duration {
        match *self {
            DurationModel::Fixed(d) => d,
            DurationModel::Uniform { min, .. } | DurationModel::Pert { min, .. } => min,
            DurationModel::LogNormal { .. } => Duration::ZERO,
        }
    }

    /// The most likely length (the median for log-normal, the middle for uniform).
    pub fn likely(&self) -> Duration {
        match *self {
            DurationModel::Fixed(d) => d,
            DurationModel::Uniform { min, max } => (min + max) / 2,
            DurationModel::Pert { likely, .. } => likely,
            DurationModel::LogNormal { p50, .. } => p50,
        }
    }

    /// The longest it can take, or the 95th percentile where unbounded.
    pub fn high(&self) -> Duration {
        match *self {
            DurationModel::Fixed(d) => d,
            DurationModel::Uniform { max, .. } | DurationModel::Pert { max, .. } => max,
            DurationModel::LogNormal { p95, .. } => p95,
        }
    }
}

impl Phase {
    /// The phase's steps, in order (its markers left out).
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Step(s) => Some(s),
            _ => None,
        })
    }
}

impl Plan {
    /// Every step of every phase, in plan order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.phases.iter().flat_map(Phase::steps)
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps().find(|s| s.id == id)
    }

    /// The host with this name (`local` included).
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The environment `step`'s commands run with on `host`: the host's
    /// `env`, then the step's, a name the step sets replacing the host's.
    pub fn command_env(&self, step: &Step, host: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> =
            self.host(host).map(|h| h.env.clone()).unwrap_or_default();
        for (name, value) in &step.env {
            match env.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1.clone_from(value),
                None => env.push((name.clone(), value.clone())),
            }
        }
        env
    }

    /// The managed record with this name.
    pub fn record(&self, name: &str) -> Option<&Record> {
        self.dns.as_ref()?.records.iter().find(|r| r.name == name)
    }

    /// The phase with this name.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_durations_follow_the_action() {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(
            Action::Wait(minutes(2)).default_duration(),
            DurationModel::Fixed(minutes(2))
        );
        let manual = Action::Manual {
            prompt: "p".into(),
            revert: Revert::Nothing("no".into()),
        };
        assert_eq!(manual.default_duration(), DurationModel::Fixed(minutes(5)));
        let wait_ttl = Action::WaitTtl {
            record: "www.example.org.".into(),
        };
        assert_eq!(
            wait_ttl.default_duration(),
            DurationModel::Fixed(Duration::ZERO)
        );
        assert_eq!(
            Action::Verify.default_duration(),
            DurationModel::Fixed(Duration::from_secs(30))
        );
    }

    #[test]
    fn lock_urls_are_read_and_refused_with_reasons() {
        let url = LockUrl::parse("etcd://127.0.0.1:2379/cutover/locks/").expect("valid");
        assert_eq!(url.endpoint, "http://127.0.0.1:2379");
        assert_eq!(
            url.key("lists.wikimedia.org"),
            "/cutover/locks/lists.wikimedia.org"
        );
        assert_eq!(
            LockUrl::parse("etcd://etcd1:2379").expect("valid").key("s"),
            "/s"
        );
        for (bad, says) in [
            ("http://127.0.0.1:2379/x", "not an etcd:// URL"),
            ("etcd://127.0.0.1/x", "names no port"),
            ("etcd://:2379/x", "names no host"),
            ("etcd://h:99999/x", "not a port number"),
        ] {
            let error = LockUrl::parse(bad).expect_err(bad);
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
