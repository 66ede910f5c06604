//! Hooks told of a run's events (`notify`): commands run with the event in
//! their environment, and webhooks posted the event as JSON.
//!
//! A hook never holds the run up. [`Notices`] turns the journal's records
//! into [`Notice`]s as the run writes them; [`Notifier::tell`] only queues
//! one for each hook that wants it, and every hook has a thread of its own
//! that delivers its queue in order, each delivery bounded by the hook's
//! timeout (retries of a webhook included). What fails comes back as a
//! [`Delivery`] for the caller to journal and show; [`Notifier::finish`]
//! waits a bounded time for the last events (the run's end) to go out.
//!
//! Secrets stay out of what hooks get: a command runs without the plan's
//! TSIG key variable and the webhooks' token variables in its environment,
//! a webhook's token goes only in its `Authorization` header, and a token's
//! value found in any text of an event is replaced by `<redacted>`.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use plan_steps::notify::{Notifier, Notice};
//! # fn example(plan: &plan_core::Plan, notice: Notice) {
//! let notifier = Notifier::start(plan.notify.clone(), Vec::new(), Vec::new());
//! notifier.tell(&notice);
//! let (failed, untold) = notifier.finish(Duration::from_secs(10));
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use plan_core::machine::{Effect, Event, RunEnd, RunRecord};
use plan_core::{Hook, HookTarget, NotifyEvent, Plan};

use crate::command::ShellCommand;

/// After this many failures in a row, a hook is told only the run's end.
const GIVE_UP_AFTER: u32 = 3;

/// How much of a failed hook command's output its failure keeps.
const HOOK_OUTPUT_LIMIT: usize = 2048;

/// One event of a run, as hooks are told of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// What happened.
    pub event: NotifyEvent,
    /// The plan's name.
    pub plan: String,
    /// The service that moves.
    pub service: String,
    /// The phase run (`--phase`), if one.
    pub phase: Option<String>,
    /// The journal's path.
    pub journal: String,
    /// The step it is about, if one.
    pub step: Option<String>,
    /// That step's title.
    pub title: Option<String>,
    /// That step's tickets, in plan order.
    pub tickets: Vec<String>,
    /// Which attempt of the step (`step_started`, `step_failed`).
    pub attempt: Option<u32>,
    /// Seconds since the run (this invocation) began.
    pub elapsed_s: f64,
    /// Seconds the step took (`step_succeeded`, `step_failed`,
    /// `step_in_doubt`), or the operator has been waited for
    /// (`operator_awaited`).
    pub step_elapsed_s: Option<f64>,
    /// How the run ended (`run_ended`): `completed`, `rolled_back`,
    /// `halted`, `refused` (at preflight: nothing changed), or `stopped`
    /// (it stopped without an end; `resume` continues).
    pub outcome: Option<String>,
    /// Why (a failure, a rollback, a halt).
    pub reason: Option<String>,
    /// When, RFC 3339.
    pub time: String,
}

impl Notice {
    /// The event as environment variables for a hook command.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("CUTOVER_EVENT".to_owned(), self.event.name().to_owned()),
            ("CUTOVER_PLAN".to_owned(), self.plan.clone()),
            ("CUTOVER_SERVICE".to_owned(), self.service.clone()),
            ("CUTOVER_JOURNAL".to_owned(), self.journal.clone()),
            ("CUTOVER_ELAPSED_S".to_owned(), seconds(self.elapsed_s)),
            ("CUTOVER_TIME".to_owned(), self.time.clone()),
            ("CUTOVER_TEXT".to_owned(), self.text()),
        ];
        let optional = [
            ("CUTOVER_PHASE", self.phase.clone()),
            ("CUTOVER_STEP", self.step.clone()),
            ("CUTOVER_STEP_TITLE", self.title.clone()),
            ("CUTOVER_TICKET", self.tickets.first().cloned()),
            (
                "CUTOVER_TICKETS",
                (!self.tickets.is_empty()).then(|| self.tickets.join(" ")),
            ),
            ("CUTOVER_ATTEMPT", self.attempt.map(|a| a.to_string())),
            ("CUTOVER_STEP_ELAPSED_S", self.step_elapsed_s.map(seconds)),
            ("CUTOVER_OUTCOME", self.outcome.clone()),
            ("CUTOVER_REASON", self.reason.clone()),
        ];
        env.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_owned(), value?))),
        );
        env
    }

    /// The event as a webhook's JSON body: `text` for chat (Slack,
    /// Mattermost) and the event's fields under `event`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "text": self.text(),
            "event": {
                "event": self.event.name(),
                "plan": self.plan,
                "service": self.service,
                "phase": self.phase,
                "journal": self.journal,
                "step": self.step,
                "title": self.title,
                "tickets": self.tickets,
                "attempt": self.attempt,
                "elapsed_s": round(self.elapsed_s),
                "step_elapsed_s": self.step_elapsed_s.map(round),
                "outcome": self.outcome,
                "reason": self.reason,
                "time": self.time,
            }
        })
    }

    /// One line for people.
    pub fn text(&self) -> String {
        let step = || {
            let id = self.step.as_deref().unwrap_or("?");
            match &self.title {
                Some(title) if title != id => format!("`{id}` ({title})"),
                _ => format!("`{id}`"),
            }
        };
        let took = self
            .step_elapsed_s
            .map(|s| format!(" in {}", human(s)))
            .unwrap_or_default();
        let why = self
            .reason
            .as_deref()
            .map(|r| format!(": {}", first_line(r)))
            .unwrap_or_default();
        let what = match self.event {
            NotifyEvent::RunStarted => format!(
                "run started{}",
                self.phase
                    .as_deref()
                    .map(|p| format!(" (phase {p})"))
                    .unwrap_or_default()
            ),
            NotifyEvent::RunEnded => format!(
                "run {} after {}{why}",
                match self.outcome.as_deref() {
                    Some("completed") => "completed",
                    Some("rolled_back") => "rolled back",
                    Some("halted") => "halted: an operator is needed",
                    Some("refused") => "refused before anything changed",
                    _ => "stopped (resumable)",
                },
                human(self.elapsed_s)
            ),
            NotifyEvent::StepStarted => match self.attempt {
                Some(n) if n > 1 => format!("{} started (attempt {n})", step()),
                _ => format!("{} started", step()),
            },
            NotifyEvent::StepSucceeded => format!("{} done{took}", step()),
            NotifyEvent::StepFailed => format!("{} failed{took}{why}", step()),
            NotifyEvent::StepInDoubt => format!("{} in doubt{why}", step()),
            NotifyEvent::RollbackStarted => format!("rolling back{why}"),
            NotifyEvent::NoReturnCrossed => "crossed the point of no return".to_owned(),
            NotifyEvent::OperatorAwaited => format!(
                "waiting for the operator{}{took}",
                self.step
                    .as_ref()
                    .map(|_| format!(" at {}", step()))
                    .unwrap_or_default()
            ),
        };
        format!("cutover: {}: {what}", self.plan)
    }

    /// The same notice with every `secret` in its texts replaced.
    fn redacted(&self, secrets: &[String]) -> Notice {
        let hide = |text: &str| plan_core::secret::redact(text, secrets);
        let hide_opt = |text: &Option<String>| text.as_deref().map(hide);
        Notice {
            plan: hide(&self.plan),
            service: hide(&self.service),
            phase: hide_opt(&self.phase),
            journal: hide(&self.journal),
            step: hide_opt(&self.step),
            title: hide_opt(&self.title),
            tickets: self.tickets.iter().map(|t| hide(t)).collect(),
            outcome: hide_opt(&self.outcome),
            reason: hide_opt(&self.reason),
            ..self.clone()
        }
    }
}

fn seconds(s: f64) -> String {
    format!("{s:.1}")
}

fn round(s: f64) -> f64 {
    (s * 10.0).round() / 10.0
}

/// Seconds as people write them, to a tenth of a second: `12.4s`, `2m5s`.
fn human(s: f64) -> String {
    let tenths = Duration::from_millis((s.max(0.0) * 10.0).round() as u64 * 100);
    plan_core::duration::format_duration(tenths)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// Turns a run's journal records into notices, as the run writes them.
pub struct Notices {
    plan: Arc<Plan>,
    phase: Option<String>,
    journal: String,
    began: Instant,
    /// When each running step's current attempt began, and which it is.
    running: HashMap<String, (Instant, u32)>,
    /// The last failure, for the rollback's reason.
    last_failure: Option<String>,
    /// Step ids to (title, tickets), looked up once.
    steps: HashMap<String, (String, Vec<String>)>,
}

impl Notices {
    /// Notices of a run of `plan` (phase `phase`) journaled at `journal`.
    pub fn new(plan: Arc<Plan>, phase: Option<String>, journal: String) -> Notices {
        let steps = plan
            .steps()
            .map(|s| (s.id.clone(), (s.title.clone(), s.tickets.clone())))
            .collect();
        Notices {
            plan,
            phase,
            journal,
            began: Instant::now(),
            running: HashMap::new(),
            last_failure: None,
            steps,
        }
    }

    /// A notice of `event` now, about `step` if given.
    pub fn notice(&self, event: NotifyEvent, step: Option<&str>) -> Notice {
        self.notice_at(&jiff::Timestamp::now().to_string(), event, step)
    }

    /// A notice of `event` at `time` (RFC 3339), about `step` if given.
    fn notice_at(&self, time: &str, event: NotifyEvent, step: Option<&str>) -> Notice {
        let (title, tickets) = step
            .and_then(|id| self.steps.get(id))
            .map(|(title, tickets)| (Some(title.clone()), tickets.clone()))
            .unwrap_or_default();
        Notice {
            event,
            plan: self.plan.name.clone(),
            service: self.plan.service.clone(),
            phase: self.phase.clone(),
            journal: self.journal.clone(),
            step: step.map(str::to_owned),
            title,
            tickets,
            attempt: None,
            elapsed_s: self.began.elapsed().as_secs_f64(),
            step_elapsed_s: None,
            outcome: None,
            reason: None,
            time: time.to_owned(),
        }
    }

    /// What `record`, journaled at `time`, tells hooks, if anything.
    pub fn of(&mut self, time: &str, record: &RunRecord) -> Option<Notice> {
        match record {
            RunRecord::RunStarted { .. } => {
                Some(self.notice_at(time, NotifyEvent::RunStarted, None))
            }
            RunRecord::EffectStarted {
                effect: Effect::Forward { step, attempt },
            } => Some(self.started(time, step, Some(*attempt))),
            // A manual step: the operator is asked to perform it.
            RunRecord::EffectStarted {
                effect: Effect::Confirm { step },
            } => Some(self.started(time, step, None)),
            RunRecord::Event { event } => self.of_event(time, event),
            RunRecord::Transition { to, .. } if to.starts_with("Reverting") => Some(Notice {
                reason: self.last_failure.clone(),
                ..self.notice_at(time, NotifyEvent::RollbackStarted, None)
            }),
            RunRecord::OperatorWaiting {
                step, waited_ms, ..
            } => Some(Notice {
                step_elapsed_s: Some(*waited_ms as f64 / 1000.0),
                ..self.notice_at(time, NotifyEvent::OperatorAwaited, step.as_deref())
            }),
            _ => None,
        }
    }

    fn started(&mut self, time: &str, step: &str, attempt: Option<u32>) -> Notice {
        self.running
            .insert(step.to_owned(), (Instant::now(), attempt.unwrap_or(1)));
        Notice {
            attempt,
            ..self.notice_at(time, NotifyEvent::StepStarted, Some(step))
        }
    }

    fn of_event(&mut self, time: &str, event: &Event) -> Option<Notice> {
        let failed =
            |step: &str, why: String| (NotifyEvent::StepFailed, step.to_owned(), Some(why));
        let (kind, step, reason) = match event {
            Event::StepSucceeded { step } | Event::OperatorConfirmed { step } => {
                (NotifyEvent::StepSucceeded, step.clone(), None)
            }
            // An in-doubt step settled as done, by its check or the operator.
            Event::Checked { step, done: true } => (
                NotifyEvent::StepSucceeded,
                step.clone(),
                Some("its check found it done".to_owned()),
            ),
            Event::OperatorAnswered { step, done: true } => (
                NotifyEvent::StepSucceeded,
                step.clone(),
                Some("the operator said it took effect".to_owned()),
            ),
            Event::StepFailed { step, reason } | Event::CheckFailed { step, reason } => {
                failed(step, reason.clone())
            }
            Event::DeadlineExceeded { step } => failed(step, "it passed its deadline".to_owned()),
            Event::OperatorDeclined { step } => failed(step, "the operator declined it".to_owned()),
            Event::StepInDoubt { step, reason } => {
                (NotifyEvent::StepInDoubt, step.clone(), Some(reason.clone()))
            }
            Event::Abort { reason } => {
                self.last_failure = Some(reason.clone());
                return None;
            }
            Event::CrossedNoReturn => {
                return Some(self.notice_at(time, NotifyEvent::NoReturnCrossed, None))
            }
            _ => return None,
        };
        if kind == NotifyEvent::StepFailed {
            let why = reason.as_deref().map(first_line).unwrap_or("failed");
            self.last_failure = Some(format!("`{step}` failed: {why}"));
        }
        let (took, attempt) = match self.running.remove(&step) {
            Some((since, attempt)) => (Some(since.elapsed().as_secs_f64()), Some(attempt)),
            None => (None, None),
        };
        Some(Notice {
            step_elapsed_s: took,
            attempt,
            reason,
            ..self.notice_at(time, kind, Some(&step))
        })
    }

    /// The notice of the run's end.
    pub fn ended(&self, end: &RunEnd) -> Notice {
        let (outcome, reason) = match end {
            RunEnd::Completed => ("completed", None),
            RunEnd::RolledBack { point, cause } => (
                "rolled_back",
                Some(format!("{} (back to `{point}`)", first_line(cause))),
            ),
            RunEnd::Halted {
                reason,
                cause: plan_core::machine::HaltCause::Preflight,
                ..
            } => ("refused", Some(reason.clone())),
            RunEnd::Halted { reason, .. } => ("halted", Some(reason.clone())),
        };
        Notice {
            outcome: Some(outcome.to_owned()),
            reason,
            ..self.notice(NotifyEvent::RunEnded, None)
        }
    }

    /// The notice of a run that stopped without an end (`resume` goes on).
    pub fn stopped(&self, why: &str) -> Notice {
        Notice {
            outcome: Some("stopped".to_owned()),
            reason: Some(why.to_owned()),
            ..self.notice(NotifyEvent::RunEnded, None)
        }
    }
}

/// A delivery that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The hook, in words (`command scripts/hooks/x`, `webhook https://...`).
    pub hook: String,
    /// The event it was told of.
    pub event: NotifyEvent,
    /// The step the event is about.
    pub step: Option<String>,
    /// What went wrong.
    pub error: String,
}

impl Delivery {
    /// The failure as the journal keeps it.
    pub fn record(self) -> RunRecord {
        RunRecord::HookFailed {
            hook: self.hook,
            event: self.event.name().to_owned(),
            step: self.step,
            error: self.error,
        }
    }
}

/// The plan's secrets: the names of the environment variables that hold
/// them (its TSIG key variable), and the values of its hosts' and steps'
/// `env` entries with secret names ([`plan_core::secret::secret_name`]).
/// [`plan_core::secret::secret_values`] adds the environment's.
pub fn plan_secrets(plan: &Plan) -> (Vec<String>, Vec<String>) {
    let vars = match plan.dns.as_ref().map(|d| &d.key) {
        Some(plan_core::TsigKeySource::Env(name)) => vec![name.clone()],
        _ => Vec::new(),
    };
    let values = plan
        .hosts
        .iter()
        .flat_map(|h| &h.env)
        .chain(plan.steps().flat_map(|s| &s.env))
        .filter(|(name, _)| plan_core::secret::secret_name(name))
        .map(|(_, value)| value.clone())
        .collect();
    (vars, values)
}

/// Every secret value of the plan and of this process's environment, to be
/// replaced wherever a text that leaves the run (the journal's output,
/// `watch`) might hold one.
pub fn secrets(plan: &Plan) -> Vec<String> {
    let (vars, values) = plan_secrets(plan);
    plan_core::secret::secret_values(&vars, values)
}

/// A run's hooks, as a run uses them: told what each journal record says,
/// and of the run's start and end where no record says it.
pub struct RunHooks {
    notices: std::sync::Mutex<Notices>,
    notifier: Notifier,
}

impl RunHooks {
    /// `hooks` for a run of `plan` (phase `phase`) journaled at `journal`.
    /// Commands run without the plan's TSIG key variable; secret values of
    /// the plan's `env` are redacted like those of the environment.
    pub fn new(
        plan: Arc<Plan>,
        phase: Option<String>,
        journal: String,
        hooks: Vec<Hook>,
    ) -> RunHooks {
        let (secret_vars, secret_values) = plan_secrets(&plan);
        RunHooks {
            notifier: Notifier::start(hooks, secret_vars, secret_values),
            notices: std::sync::Mutex::new(Notices::new(plan, phase, journal)),
        }
    }

    /// Whether there are hooks at all.
    pub fn is_empty(&self) -> bool {
        self.notifier.is_empty()
    }

    /// Tells the hooks what `record`, journaled at `time`, says; returns
    /// the deliveries that failed since last asked, as journal records.
    pub fn record(&self, time: &str, record: &RunRecord) -> Vec<RunRecord> {
        if self.is_empty() {
            return Vec::new();
        }
        if let Some(notice) = self
            .notices
            .lock()
            .ok()
            .and_then(|mut n| n.of(time, record))
        {
            self.notifier.tell(&notice);
        }
        self.failures()
    }

    /// The deliveries that failed since last asked, as journal records.
    pub fn failures(&self) -> Vec<RunRecord> {
        self.notifier
            .failures()
            .into_iter()
            .map(Delivery::record)
            .collect()
    }

    /// Tells the hooks `notice(notices)`: a resume's start, the run's end.
    pub fn tell(&self, notice: impl FnOnce(&Notices) -> Notice) {
        if let Ok(n) = self.notices.lock() {
            self.notifier.tell(&notice(&n));
        }
    }

    /// See [`Notifier::pending`].
    pub fn pending(&self) -> usize {
        self.notifier.pending()
    }

    /// See [`Notifier::longest_delivery`].
    pub fn longest_delivery(&self) -> Duration {
        self.notifier.longest_delivery()
    }

    /// [`Notifier::finish`], its failures as journal records.
    pub fn finish(self, wait: Duration) -> (Vec<RunRecord>, usize) {
        let (failed, untold) = self.notifier.finish(wait);
        (failed.into_iter().map(Delivery::record).collect(), untold)
    }
}

/// The hooks of a run, each with its own thread and queue.
pub struct Notifier {
    workers: Vec<Worker>,
    failed: mpsc::Receiver<Delivery>,
    /// Notices queued and not yet delivered (or given up on).
    pending: Arc<AtomicUsize>,
    /// Set when the run's end has waited long enough: queued notices are dropped.
    closing: Arc<AtomicBool>,
    longest: Duration,
}

struct Worker {
    hook: Hook,
    queue: mpsc::Sender<Notice>,
    thread: JoinHandle<()>,
}

impl Notifier {
    /// Starts a thread for each of `hooks`. Commands run without the
    /// environment variables named in `secret_vars` (the plan's TSIG key
    /// variable) nor any webhook's token variable; the values of those, of
    /// secret-named variables ([`plan_core::secret::secret_name`]) and
    /// `secret_values` (the plan's `env` secrets) are replaced wherever they
    /// show up in an event.
    pub fn start(
        hooks: Vec<Hook>,
        secret_vars: Vec<String>,
        secret_values: Vec<String>,
    ) -> Notifier {
        let (report, failed) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let closing = Arc::new(AtomicBool::new(false));
        let mut hidden = secret_vars;
        for hook in &hooks {
            if let HookTarget::Webhook {
                token_env: Some(name),
                ..
            } = &hook.target
            {
                hidden.push(name.clone());
            }
        }
        hidden.sort_unstable();
        hidden.dedup();
        let secrets = plan_core::secret::secret_values(&hidden, secret_values);
        // A command stopped at its timeout gets SIGTERM, then SIGKILL after
        // a grace period.
        let longest = hooks
            .iter()
            .map(|h| h.timeout)
            .max()
            .map_or(Duration::ZERO, |t| {
                t + crate::local::KILL_GRACE + Duration::from_secs(1)
            });
        let workers = hooks
            .into_iter()
            .map(|hook| {
                let (queue, notices) = mpsc::channel::<Notice>();
                let context = Context {
                    hook: hook.clone(),
                    hidden: hidden.clone(),
                    secrets: secrets.clone(),
                    report: report.clone(),
                    pending: Arc::clone(&pending),
                    closing: Arc::clone(&closing),
                };
                let thread = std::thread::spawn(move || context.serve(notices));
                Worker {
                    hook,
                    queue,
                    thread,
                }
            })
            .collect();
        Notifier {
            workers,
            failed,
            pending,
            closing,
            longest,
        }
    }

    /// How many notices are queued or under way.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// The longest one delivery can take (the longest timeout, and a
    /// command's grace after it).
    pub fn longest_delivery(&self) -> Duration {
        self.longest
    }

    /// Whether there are hooks at all.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Queues `notice` for every hook that wants it; never waits.
    pub fn tell(&self, notice: &Notice) {
        for worker in &self.workers {
            if worker.hook.wants(notice.event) {
                self.pending.fetch_add(1, Ordering::SeqCst);
                if worker.queue.send(notice.clone()).is_err() {
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }

    /// The deliveries that failed since last asked.
    pub fn failures(&self) -> Vec<Delivery> {
        self.failed.try_iter().collect()
    }

    /// Lets the hooks deliver what is queued, for at most `wait`; then only
    /// the run's end is still told, for at most [`Notifier::longest_delivery`]
    /// more. Returns the failures not yet collected and how many notices
    /// were not told.
    pub fn finish(self, wait: Duration) -> (Vec<Delivery>, usize) {
        let Notifier {
            workers,
            failed,
            pending,
            closing,
            longest,
        } = self;
        let threads: Vec<JoinHandle<()>> = workers
            .into_iter()
            .map(|w| {
                drop(w.queue);
                w.thread
            })
            .collect();
        let done = |threads: &[JoinHandle<()>]| threads.iter().all(JoinHandle::is_finished);
        let until = Instant::now() + wait;
        while !done(&threads) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        closing.store(true, Ordering::SeqCst);
        let until = Instant::now() + longest;
        while !done(&threads) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let untold = pending.load(Ordering::SeqCst);
        (failed.try_iter().collect(), untold)
    }
}

/// What one hook's thread needs.
struct Context {
    hook: Hook,
    hidden: Vec<String>,
    secrets: Vec<String>,
    report: mpsc::Sender<Delivery>,
    pending: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
}

impl Context {
    fn serve(self, notices: mpsc::Receiver<Notice>) {
        // A runtime of its own, for commands (their process groups and
        // deadlines are the steps' own code).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let mut failures_in_a_row = 0;
        for notice in notices {
            // Once the run is over and has waited long enough, or once the
            // hook failed GIVE_UP_AFTER times in a row, only the run's end is
            // still told (the rest is counted by `pending`).
            let skip = self.closing.load(Ordering::SeqCst) || failures_in_a_row >= GIVE_UP_AFTER;
            if skip && notice.event != NotifyEvent::RunEnded {
                self.pending.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let notice = notice.redacted(&self.secrets);
            let result = match (&self.hook.target, &runtime) {
                (HookTarget::Command { run }, Ok(runtime)) => {
                    runtime.block_on(self.command(run, &notice))
                }
                (HookTarget::Command { .. }, Err(e)) => {
                    Err(format!("cannot start a runtime for the hook: {e}"))
                }
                (HookTarget::Webhook { url, token_env }, _) => {
                    self.webhook(url, token_env.as_deref(), &notice)
                }
            };
            match result {
                Ok(()) => failures_in_a_row = 0,
                Err(error) => {
                    failures_in_a_row += 1;
                    let error = if failures_in_a_row == GIVE_UP_AFTER {
                        format!(
                            "{error} ({GIVE_UP_AFTER} failures in a row: from now on only the run's end is told to it)"
                        )
                    } else {
                        error
                    };
                    let _ = self.report.send(Delivery {
                        hook: describe(&self.hook),
                        event: notice.event,
                        step: notice.step.clone(),
                        error,
                    });
                }
            }
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    async fn command(&self, run: &str, notice: &Notice) -> Result<(), String> {
        let command = ShellCommand::new(run)
            .with_env(notice.env())
            .without_env(self.hidden.clone())
            .with_deadline(self.hook.timeout)
            .with_output_limit(HOOK_OUTPUT_LIMIT);
        let outcome = crate::local::run(&command, std::future::pending::<()>())
            .await
            .map_err(|e| e.to_string())?;
        if outcome.success() {
            return Ok(());
        }
        let output = outcome.output.trim();
        let status = match outcome.status {
            crate::command::ExitKind::Exited(code) => format!("exited with status {code}"),
            crate::command::ExitKind::Signalled(signal) => format!("killed by signal {signal}"),
            crate::command::ExitKind::TimedOut => format!(
                "did not finish within its timeout ({}s) and was stopped",
                self.hook.timeout.as_secs()
            ),
            crate::command::ExitKind::Cancelled => "was cancelled".to_owned(),
        };
        Err(if output.is_empty() {
            status
        } else {
            format!("{status}: {}", last_line(output))
        })
    }

    /// Posts `notice`, retrying a connection failure, a timeout, a 429 or a
    /// 5xx after 0.5 s, 1 s, 2 s... while the hook's timeout allows.
    fn webhook(&self, url: &str, token_env: Option<&str>, notice: &Notice) -> Result<(), String> {
        let body = notice.json().to_string();
        let shown = shown_url(url);
        let token = token_env.and_then(|name| std::env::var(name).ok());
        if let (Some(name), None) = (token_env, &token) {
            return Err(format!("${name} (the webhook's token) is not set"));
        }
        let until = Instant::now() + self.hook.timeout;
        let mut pause = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = until.saturating_duration_since(Instant::now());
            let agent: ureq::Agent =
                crate::checks::http_config(left.max(Duration::from_millis(100)))
                    .build()
                    .into();
            let mut request = agent
                .post(url)
                .header("Content-Type", "application/json")
                .header("User-Agent", concat!("cutover/", env!("CARGO_PKG_VERSION")));
            if let Some(token) = &token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let (error, again) = match request.send(body.as_str()) {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if (200..300).contains(&status) {
                        return Ok(());
                    }
                    (
                        format!("POST {shown}: HTTP {status}"),
                        status == 429 || status >= 500,
                    )
                }
                Err(e) => (
                    format!(
                        "POST {shown}: {}",
                        plan_core::secret::redact(&e.to_string(), &[url.to_owned()])
                    ),
                    true,
                ),
            };
            if !again || Instant::now() + pause >= until {
                return Err(format!("{error} (attempt {attempt})"));
            }
            std::thread::sleep(pause);
            pause *= 2;
        }
    }
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

/// A hook in words, for messages: a webhook by its scheme and host only
/// (chat webhooks carry their secret in the path).
pub fn describe(hook: &Hook) -> String {
    match &hook.target {
        HookTarget::Command { run } => format!("command `{run}`"),
        HookTarget::Webhook { url, .. } => format!("webhook {}", shown_url(url)),
    }
}

/// `scheme://host[:port]/...` of `url`: no user, password, path or query.
fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let more = if rest.len() > authority.len() {
        "/..."
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Arc<Plan> {
        let text = r#"Plan(name: "p", service: "s", window: Window(announced: "10m"),
            phases: [Phase(name: "window", at: "0", steps: [
                RollbackPoint("before"),
                Step(id: "a", title: "step a", ticket: ["T1", "T2"],
                     action: Shell(on: "local", run: "true", revert: Run("true"))),
                Step(id: "b", action: Manual(prompt: "do it", revert: Manual("undo it"))),
            ])])"#;
        let loaded = plan_core::load_str(
            plan_core::Source::new("p.ron", text),
            &plan_core::Settings::default(),
        );
        Arc::new(loaded.plan.expect("the test plan loads"))
    }

    fn event(event: Event) -> RunRecord {
        RunRecord::Event { event }
    }

    #[test]
    fn records_become_the_events_hooks_are_told_of() {
        let mut notices = Notices::new(plan(), Some("window".into()), "j".into());
        let records = [
            RunRecord::EffectStarted {
                effect: Effect::Forward {
                    step: "a".into(),
                    attempt: 2,
                },
            },
            RunRecord::Output {
                step: "a".into(),
                text: "hi".into(),
            },
            event(Event::StepFailed {
                step: "a".into(),
                reason: "exit 3\nmore".into(),
            }),
            RunRecord::EffectStarted {
                effect: Effect::Confirm { step: "b".into() },
            },
            event(Event::OperatorDeclined { step: "b".into() }),
            RunRecord::Transition {
                from: "Forward".into(),
                to: "Reverting".into(),
            },
            event(Event::CrossedNoReturn),
        ];
        let told: Vec<Notice> = records
            .iter()
            .filter_map(|r| notices.of("2026-12-03T02:00:00Z", r))
            .collect();
        let kinds: Vec<&str> = told.iter().map(|n| n.event.name()).collect();
        assert_eq!(
            kinds,
            [
                "step_started",
                "step_failed",
                "step_started",
                "step_failed",
                "rollback_started",
                "no_return_crossed"
            ]
        );
        assert_eq!(told[0].attempt, Some(2));
        assert_eq!(told[0].tickets, ["T1", "T2"]);
        assert_eq!(told[0].time, "2026-12-03T02:00:00Z");
        assert_eq!(told[1].attempt, Some(2));
        assert!(told[1].step_elapsed_s.is_some());
        assert_eq!(told[3].reason.as_deref(), Some("the operator declined it"));
        // The rollback says the last failure.
        assert_eq!(
            told[4].reason.as_deref(),
            Some("`b` failed: the operator declined it")
        );
        let env = told[1].env();
        let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("CUTOVER_EVENT"), Some("step_failed"));
        assert_eq!(get("CUTOVER_TICKET"), Some("T1"));
        assert_eq!(get("CUTOVER_TICKETS"), Some("T1 T2"));
        assert_eq!(get("CUTOVER_PHASE"), Some("window"));
        assert_eq!(get("CUTOVER_REASON"), Some("exit 3\nmore"));
        assert_eq!(
            get("CUTOVER_TEXT"),
            Some(
                format!(
                    "cutover: p: `a` (step a) failed in {}: exit 3",
                    human(told[1].step_elapsed_s.unwrap_or(0.0))
                )
                .as_str()
            )
        );
    }

    #[test]
    fn ends_say_how_the_run_ended() {
        let notices = Notices::new(plan(), None, "j".into());
        let end = notices.ended(&RunEnd::RolledBack {
            point: "start".into(),
            cause: "`a` failed".into(),
        });
        assert_eq!(end.outcome.as_deref(), Some("rolled_back"));
        assert!(
            end.text().contains("run rolled back after"),
            "{}",
            end.text()
        );
        let refused = notices.ended(&RunEnd::Halted {
            step: None,
            reason: "host unreachable".into(),
            done: Vec::new(),
            left: Vec::new(),
            cause: plan_core::machine::HaltCause::Preflight,
        });
        assert_eq!(refused.outcome.as_deref(), Some("refused"));
        assert_eq!(
            notices.stopped("stopped at once").outcome.as_deref(),
            Some("stopped")
        );
    }

    #[test]
    fn secrets_are_replaced_in_every_text() {
        let notices = Notices::new(plan(), None, "j".into());
        let notice = Notice {
            reason: Some("login failed for hunter2hunter2 (key c2VjcmV0)".into()),
            ..notices.notice(NotifyEvent::StepFailed, Some("a"))
        };
        let secrets = vec!["hunter2hunter2".to_owned(), "c2VjcmV0".to_owned()];
        let hidden = notice.redacted(&secrets);
        let json = hidden.json().to_string();
        assert!(
            !json.contains("hunter2") && !json.contains("c2VjcmV0"),
            "{json}"
        );
        assert!(json.contains("<redacted>"), "{json}");
    }

    #[test]
    fn webhooks_are_named_by_scheme_and_host_only() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T0/B0/secret?x=1"),
            "https://hooks.slack.com/..."
        );
        assert_eq!(
            shown_url("http://user:pw@127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
    }
}
