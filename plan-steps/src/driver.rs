//! The async driver: feeds events to the run machine, journals them, and
//! performs the effects it asks for, steps in parallel where it allows.
//!
//! The order of writes is what makes a crash safe: an event is journaled
//! (and synced) before the machine sees it, and an effect is journaled as
//! started before it begins. A crash therefore leaves either a step that
//! never started, or one journaled as started whose outcome is unknown; on
//! resume the machine treats the latter as in doubt and its check decides.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use plan_core::machine::{
    feed, AnsweredBy, Effect, Event, FailureChoice, Outbox, Question, RunEnd, RunMachine, RunRecord,
};
use plan_core::{Plan, Step};
use statig::prelude::*;
use tokio::sync::{mpsc, watch};

use crate::executor::{CheckError, Executor, Report, Reporter, Transcript};
use crate::journal_file::{JournalFile, JournalFileError};

/// How much of a step's output goes into the journal.
pub const JOURNAL_OUTPUT_LIMIT: usize = 16 * 1024;

/// How long the run waits for an operator's answer before it says so (and
/// journals the wait), unless the driver is told otherwise.
pub const REMIND_AFTER: Duration = Duration::from_secs(3 * 60);

/// What the driver reports as it goes, for a live view or JSON lines:
/// every journal record, with its time, once it is on disk. The screen, the
/// JSON lines and the journal are the same records, so they cannot disagree.
pub type Progress<'a> = &'a mut dyn FnMut(&str, &RunRecord);

/// An operator's answer, and who gave it: a person at the terminal, or a
/// flag given in advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer<T> {
    /// The answer.
    pub value: T,
    /// Who gave it.
    pub by: AnsweredBy,
}

impl<T> Answer<T> {
    /// An answer a person gave.
    pub fn operator(value: T) -> Answer<T> {
        Answer {
            value,
            by: AnsweredBy::Operator,
        }
    }

    /// An answer a flag gave.
    pub fn flag(value: T) -> Answer<T> {
        Answer {
            value,
            by: AnsweredBy::Flag,
        }
    }
}

/// Someone who answers what the machine cannot decide alone. An `Err` means
/// nobody can be asked (no terminal, input closed): the run stops and is
/// left for `resume`.
pub trait Operator {
    /// Asks the operator to perform a manual step; `true` once done.
    fn confirm(&mut self, step: &Step) -> impl Future<Output = Result<Answer<bool>, String>>;
    /// Asks whether an in-doubt step took effect; `why` says why its check
    /// could not tell (`None`: it was not run, e.g. after a crash).
    fn ask_done(
        &mut self,
        step: &Step,
        why: Option<&CheckError>,
    ) -> impl Future<Output = Result<Answer<bool>, String>>;
    /// Asks the operator to undo a step by hand; `true` once done.
    fn revert_by_hand(
        &mut self,
        step: &Step,
        instructions: &str,
    ) -> impl Future<Output = Result<Answer<bool>, String>>;
    /// Asks whether to cross the point of no return: `true` to go on,
    /// `false` to roll back instead.
    fn cross_no_return(
        &mut self,
        reason: &str,
    ) -> impl Future<Output = Result<Answer<bool>, String>>;
    /// A step failed after its retries: retry it, roll back (only when
    /// `can_roll_back`) or halt.
    fn on_failure(
        &mut self,
        step: &Step,
        reason: &str,
        can_roll_back: bool,
    ) -> impl Future<Output = Result<Answer<FailureChoice>, String>>;
}

/// A request from outside to stop going forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// Roll back in order (first Ctrl-C, window deadline).
    Abort,
    /// Stop at once; running commands are killed and the journal is left
    /// for `resume` (second Ctrl-C).
    Stop,
}

/// Why a run stopped without an end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError {
    /// The journal could not be written: nothing more is done.
    #[error(transparent)]
    Journal(#[from] JournalFileError),
    /// Stopped at once by the operator; `resume` continues.
    #[error("stopped at once; the journal is left for `cutover resume`")]
    Stopped,
    /// The operator could not be asked; `resume` continues.
    #[error("{0}; the journal is left for `cutover resume`")]
    NoOperator(String),
    /// The run's lock across machines could no longer be proven held: no
    /// step was started after that; `resume` continues once it is held
    /// again.
    #[error("stopped: the run's lock is lost ({0}); no step was started after that, the steps under way finished, and the journal is left for `cutover resume`")]
    LockLost(String),
}

/// Drives one run to its end.
pub struct Driver<'a, O: Operator> {
    plan: Arc<Plan>,
    executor: Executor,
    journal: &'a mut JournalFile,
    operator: O,
    progress: Progress<'a>,
    /// Prior state captured by each step, for its revert.
    captured: std::collections::HashMap<String, String>,
    /// After how long a wait for the operator is shown and journaled.
    remind_after: Duration,
    /// Why preflight refused the run, by kind (empty when it did not).
    preflight_problems: Vec<crate::executor::PreflightProblem>,
    /// Steps whose last check could not tell whether they took effect.
    unsettled: std::collections::HashMap<String, CheckError>,
    /// When users went down (the `downtime: Begins` step began), while they
    /// are: the window's `downtime_budget` counts from then.
    down_since: Option<tokio::time::Instant>,
    /// The run's lock across machines, if it holds one: once it is lost,
    /// no effect is started.
    lock: Option<Arc<crate::etcd_lock::EtcdLock>>,
    /// Records others ask to journal ([`Driver::with_outside_records`]).
    outside: Option<&'a std::sync::mpsc::Receiver<RunRecord>>,
    /// Values never journaled as they are: the plan's and the
    /// environment's secrets ([`crate::notify::plan_secrets`]), replaced in
    /// what steps print, so no reader of the journal (`status --output`,
    /// `watch` and its page) sees them.
    secrets: Vec<String>,
}

/// A step's job done: the event it ends in, the step, what it printed, and
/// why its check could not settle it, if that is how it ended.
type Done = (Event, String, Transcript, Option<CheckError>);

impl<'a, O: Operator> Driver<'a, O> {
    /// A driver for `plan` writing to `journal`.
    pub fn new(
        plan: Arc<Plan>,
        journal: &'a mut JournalFile,
        operator: O,
        progress: Progress<'a>,
    ) -> Self {
        let executor = Executor::new(Arc::clone(&plan));
        let secrets = crate::notify::secrets(&plan);
        Driver {
            plan,
            executor,
            journal,
            operator,
            progress,
            captured: Default::default(),
            remind_after: REMIND_AFTER,
            preflight_problems: Vec::new(),
            unsettled: Default::default(),
            down_since: None,
            lock: None,
            outside: None,
            secrets,
        }
    }

    /// Why preflight refused the run, host by host and by kind, for advice
    /// the caller can give (empty unless it did).
    pub fn preflight_problems(&self) -> &[crate::executor::PreflightProblem] {
        &self.preflight_problems
    }

    /// Says (and journals) a wait for the operator after `after`, and again
    /// at each multiple of it (default [`REMIND_AFTER`]).
    pub fn with_remind_after(mut self, after: Duration) -> Self {
        self.remind_after = after.max(Duration::from_millis(1));
        self
    }

    /// Journals `record`, and follows whether users are down as the
    /// journal says it (`users_change`, as a resume reads it back).
    fn record(&mut self, record: &RunRecord) -> Result<(), DriveError> {
        append(self.journal, self.progress, self.outside, record)?;
        match plan_core::machine::users_change(&self.plan, record) {
            Some(plan_core::machine::UsersChange::Down) if self.down_since.is_none() => {
                self.down_since = Some(tokio::time::Instant::now());
            }
            Some(plan_core::machine::UsersChange::Back) => self.down_since = None,
            _ => {}
        }
        Ok(())
    }

    /// Holds `lock` for the run: once it can no longer be proven held, no
    /// step is started; the steps under way finish, and the drive stops
    /// with [`DriveError::LockLost`] (resumable).
    pub fn with_lock(mut self, lock: Arc<crate::etcd_lock::EtcdLock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Journals what arrives on `records` too, after each of the run's own
    /// records: how hooks failed, for instance. What is still there when the
    /// run ends is the caller's to journal.
    pub fn with_outside_records(
        mut self,
        records: &'a std::sync::mpsc::Receiver<RunRecord>,
    ) -> Self {
        self.outside = Some(records);
        self
    }

    /// Asks the operator through `ask` and waits for the answer, saying so
    /// (and journaling it) when the wait grows long; journals the answer and
    /// who gave it.
    async fn ask<T>(
        &mut self,
        step: Option<&str>,
        question: Question,
        ask: impl AsyncFnOnce(&mut O) -> Result<Answer<T>, String>,
        words: impl Fn(&T) -> &'static str,
    ) -> Result<T, DriveError> {
        let Driver {
            operator,
            journal,
            progress,
            remind_after,
            outside,
            ..
        } = self;
        let started = tokio::time::Instant::now();
        let answer = ask(operator);
        tokio::pin!(answer);
        let mut remind_at = started + *remind_after;
        let answer = loop {
            tokio::select! {
                answer = &mut answer => break answer.map_err(DriveError::NoOperator)?,
                () = tokio::time::sleep_until(remind_at) => {
                    append(journal, *progress, *outside, &RunRecord::OperatorWaiting {
                        step: step.map(str::to_owned),
                        question,
                        waited_ms: millis(started.elapsed()),
                    })?;
                    remind_at += *remind_after;
                }
            }
        };
        append(
            journal,
            *progress,
            *outside,
            &RunRecord::Answered {
                step: step.map(str::to_owned),
                question,
                answer: words(&answer.value).to_owned(),
                by: answer.by,
                waited_ms: millis(started.elapsed()),
            },
        )?;
        Ok(answer.value)
    }

    fn transcript(&mut self, step: &str, transcript: Transcript) -> Result<(), DriveError> {
        if transcript.text.is_empty() {
            return Ok(());
        }
        let text = bounded(
            &plan_core::secret::redact(&transcript.text, &self.secrets),
            JOURNAL_OUTPUT_LIMIT,
        );
        self.record(&RunRecord::Output {
            step: step.to_owned(),
            text,
        })
    }

    /// Journals what a running step reported.
    fn report(&mut self, report: Report) -> Result<(), DriveError> {
        match report {
            Report::Spawned { step, group } => self.record(&RunRecord::Process { step, group }),
            Report::Note { step, text } => self.record(&RunRecord::Note { step, text }),
            Report::Captured { step, state, ack } => {
                self.record(&RunRecord::Captured {
                    step: step.clone(),
                    state: state.clone(),
                })?;
                // The first capture is what was there before the plan touched it.
                self.captured.entry(step).or_insert(state);
                // Only now, with the record on disk, may the change go ahead.
                let _ = ack.send(());
                Ok(())
            }
            Report::Transferred {
                step,
                files,
                bytes,
                millis,
            } => self.record(&RunRecord::Transferred {
                step,
                files,
                bytes,
                millis,
            }),
        }
    }

    /// Process groups a crashed run left behind, by step (from its journal).
    pub fn with_leftovers(
        mut self,
        leftovers: impl IntoIterator<Item = (String, plan_core::machine::ProcessGroup)>,
    ) -> Self {
        self.executor = self.executor.with_leftovers(leftovers);
        self
    }

    /// What the journal's times say (TTL changes, interrupted waits).
    pub fn with_history(mut self, history: &crate::history::History) -> Self {
        self.executor = self.executor.with_history(history);
        self.down_since = history.down_since.map(|t| {
            let ago = std::time::SystemTime::now()
                .duration_since(t)
                .unwrap_or_default();
            let now = tokio::time::Instant::now();
            now.checked_sub(ago).unwrap_or(now)
        });
        self
    }

    /// Reaches SSH hosts with these options.
    pub fn with_ssh(mut self, ssh: crate::executor::SshOptions) -> Self {
        self.executor = self.executor.with_ssh(ssh);
        self
    }

    /// Captures recorded by the run so far (from its journal, on resume).
    pub fn with_captured(mut self, captured: impl IntoIterator<Item = (String, String)>) -> Self {
        self.captured.extend(captured);
        self
    }

    /// Reaches every host of `schedule` as the run's preflight does, before
    /// a resume feeds anything to the machine: a host that cannot be reached
    /// (a changed host key, a refused login) refuses the resume before
    /// anything runs, instead of failing its first step into a rollback.
    /// Nothing is journaled. The problems stay in
    /// [`Driver::preflight_problems`] for the caller's hints.
    pub async fn preflight(
        &mut self,
        schedule: &plan_core::machine::Schedule,
    ) -> Result<(), String> {
        match self.executor.preflight(schedule).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.preflight_problems = e.problems;
                Err(e.message)
            }
        }
    }

    /// Records the start of a run (a new one, not a resume).
    pub fn start_run(&mut self, record: RunRecord) -> Result<(), DriveError> {
        self.record(&record)
    }

    /// Feeds `first` to `machine` and performs effects until the run ends.
    pub async fn drive(
        &mut self,
        machine: &mut StateMachine<RunMachine>,
        first: Event,
        mut interrupts: mpsc::UnboundedReceiver<Interrupt>,
    ) -> Result<RunEnd, DriveError> {
        let (results, mut incoming) = mpsc::unbounded_channel::<Done>();
        let (reports, mut reported) = mpsc::unbounded_channel();
        self.executor = self.executor.clone().reporting(Reporter::new(reports));
        let (stop, stopped) = watch::channel(false);
        let mut pending: VecDeque<Event> = VecDeque::from([first]);
        let mut in_flight = 0usize;
        let mut end: Option<RunEnd> = None;
        let mut aborted = false;
        // Why the lock was lost, once it is: nothing is started after that.
        let mut lock_lost: Option<String> = None;
        let deadline = self
            .plan
            .window
            .deadline
            .map(|d| tokio::time::Instant::now() + d);
        loop {
            if lock_lost.is_none() {
                if let Some(reason) = self.lock.as_ref().and_then(|l| l.lost()) {
                    self.record(&RunRecord::LockLost {
                        reason: reason.clone(),
                    })?;
                    lock_lost = Some(reason);
                }
            }
            while let Some(event) = pending.pop_front() {
                self.record(&RunRecord::Event {
                    event: event.clone(),
                })?;
                tracing::info!(target: "cutover::run", ?event, "event");
                let mut outbox = Outbox::recording();
                let effects = feed(machine, &event, &mut outbox);
                for (from, to) in outbox.transitions {
                    self.record(&RunRecord::Transition { from, to })?;
                }
                for effect in effects {
                    if lock_lost.is_some() && !matches!(effect, Effect::Finished { .. }) {
                        // Not started: `resume` asks for it again.
                        continue;
                    }
                    if let Some(event) = self
                        .perform(
                            machine,
                            effect,
                            &results,
                            &stopped,
                            &mut in_flight,
                            &mut end,
                        )
                        .await?
                    {
                        pending.push_back(event);
                    }
                }
            }
            if let Some(end) = &end {
                if in_flight == 0 {
                    return Ok(end.clone());
                }
            }
            if let Some(reason) = &lock_lost {
                if in_flight == 0 {
                    return Err(DriveError::LockLost(reason.clone()));
                }
            }
            // While a lock is held, wake up now and then to see it still is.
            let watching = self.lock.is_some() && lock_lost.is_none();
            let lock_tick = async move {
                if watching {
                    tokio::time::sleep(Duration::from_millis(200)).await
                } else {
                    std::future::pending().await
                }
            };
            let window_over = async {
                match deadline {
                    Some(at) if !aborted => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            // The downtime budget: past it, before the point of no return,
            // the run rolls back on its own.
            let budget_at = match (self.plan.window.downtime_budget, self.down_since) {
                (Some(budget), Some(since)) if !aborted && !machine.past_no_return() => {
                    Some(since + budget)
                }
                _ => None,
            };
            let budget_over = async {
                match budget_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = lock_tick => {}
                Some(report) = reported.recv() => self.report(report)?,
                Some((event, step, transcript, unsettled)) = incoming.recv() => {
                    in_flight -= 1;
                    self.transcript(&step, transcript)?;
                    match unsettled {
                        Some(why) => self.unsettled.insert(step, why),
                        None => self.unsettled.remove(&step),
                    };
                    pending.push_back(event);
                }
                Some(interrupt) = interrupts.recv() => match interrupt {
                    Interrupt::Abort if !aborted => {
                        aborted = true;
                        pending.push_back(Event::Abort { reason: "interrupted by the operator".into() });
                    }
                    Interrupt::Abort => {}
                    Interrupt::Stop => {
                        let _ = stop.send(true);
                        // Let killed commands be reaped; their outcomes stay unjournaled,
                        // so resume finds them in doubt.
                        while in_flight > 0 {
                            if incoming.recv().await.is_none() {
                                break;
                            }
                            in_flight -= 1;
                        }
                        return Err(DriveError::Stopped);
                    }
                },
                () = window_over => {
                    aborted = true;
                    pending.push_back(Event::Abort { reason: "the window deadline passed".into() });
                }
                () = budget_over => {
                    aborted = true;
                    let budget = self.plan.window.downtime_budget.unwrap_or_default();
                    pending.push_back(Event::Abort {
                        reason: format!(
                            "users have been down longer than the downtime budget ({})",
                            plan_core::duration::format_duration(budget)
                        ),
                    });
                }
            }
        }
    }

    /// Performs one effect; returns the event to feed at once, if any.
    async fn perform(
        &mut self,
        machine: &StateMachine<RunMachine>,
        effect: Effect,
        results: &mpsc::UnboundedSender<Done>,
        stopped: &watch::Receiver<bool>,
        in_flight: &mut usize,
        end: &mut Option<RunEnd>,
    ) -> Result<Option<Event>, DriveError> {
        tracing::info!(target: "cutover::run", ?effect, "effect");
        let step_of = |id: &str| self.plan.step(id).cloned();
        match effect {
            Effect::Finished { end: finished } => {
                *end = Some(finished);
                Ok(None)
            }
            Effect::Preflight { .. } => {
                self.record(&RunRecord::EffectStarted { effect })?;
                Ok(Some(
                    match self.executor.preflight(machine.schedule()).await {
                        Ok(()) => Event::PreflightPassed,
                        Err(e) => {
                            self.preflight_problems = e.problems;
                            Event::PreflightFailed { reason: e.message }
                        }
                    },
                ))
            }
            Effect::Forward { ref step, .. }
            | Effect::Check { ref step }
            | Effect::Revert { ref step } => {
                // Manual reverts need the operator, not a process.
                if let (Effect::Revert { .. }, Some(s)) = (&effect, step_of(step)) {
                    if let plan_core::Action::Manual {
                        revert: plan_core::Revert::Manual(text),
                        ..
                    } = &s.action
                    {
                        self.record(&RunRecord::EffectStarted {
                            effect: effect.clone(),
                        })?;
                        let done = self
                            .ask(
                                Some(&s.id),
                                Question::RevertByHand,
                                async |o: &mut O| o.revert_by_hand(&s, text).await,
                                yes_no,
                            )
                            .await?;
                        let id = s.id.clone();
                        return Ok(Some(if done {
                            Event::RevertSucceeded { step: id }
                        } else {
                            Event::RevertFailed {
                                step: id,
                                reason: "the operator could not undo it".into(),
                            }
                        }));
                    }
                }
                self.record(&RunRecord::EffectStarted {
                    effect: effect.clone(),
                })?;
                let job = match effect {
                    Effect::Forward { step, attempt } => {
                        // A retry waits the step's `retry_interval` first.
                        let pause = self
                            .plan
                            .step(&step)
                            .and_then(|s| s.retry_interval)
                            .filter(|_| attempt > 1)
                            .unwrap_or_default();
                        Job::Forward(step, pause)
                    }
                    Effect::Check { step } => Job::Check(step),
                    Effect::Revert { step } => {
                        let captured = self.captured.get(&step).cloned();
                        Job::Revert(step, captured)
                    }
                    _ => return Ok(None),
                };
                let executor = self.executor.clone();
                let results = results.clone();
                let mut stopped = stopped.clone();
                *in_flight += 1;
                tokio::spawn(async move {
                    let cancel = async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    };
                    let done: Done = match job {
                        Job::Forward(step, pause) => {
                            let mut cancel = Box::pin(cancel);
                            let paused = tokio::select! {
                                () = tokio::time::sleep(pause) => true,
                                () = cancel.as_mut() => false,
                            };
                            if paused {
                                let (event, transcript) = executor.forward(&step, cancel).await;
                                (event, step, transcript, None)
                            } else {
                                let event = Event::StepInDoubt {
                                    step: step.clone(),
                                    reason: "stopped before the retry began".into(),
                                };
                                (event, step, Transcript::default(), None)
                            }
                        }
                        Job::Check(step) => {
                            let (result, transcript) = executor.check(&step, cancel).await;
                            match result {
                                Ok(done) => (
                                    Event::Checked {
                                        step: step.clone(),
                                        done,
                                    },
                                    step,
                                    transcript,
                                    None,
                                ),
                                // A check that cannot run leaves the operator
                                // to decide, told why.
                                Err(why) => (
                                    Event::StepInDoubt {
                                        step: step.clone(),
                                        reason: why.message.clone(),
                                    },
                                    step,
                                    transcript,
                                    Some(why),
                                ),
                            }
                        }
                        Job::Revert(step, captured) => {
                            let (event, transcript) =
                                executor.revert(&step, captured.as_deref(), cancel).await;
                            (event, step, transcript, None)
                        }
                    };
                    let _ = results.send(done);
                });
                Ok(None)
            }
            Effect::Confirm { ref step } => {
                let s = step_of(step)
                    .ok_or_else(|| DriveError::NoOperator(format!("no step `{step}`")))?;
                self.record(&RunRecord::EffectStarted {
                    effect: effect.clone(),
                })?;
                let done = self
                    .ask(
                        Some(&s.id),
                        Question::Confirm,
                        async |o: &mut O| o.confirm(&s).await,
                        yes_no,
                    )
                    .await?;
                let id = s.id.clone();
                Ok(Some(if done {
                    Event::OperatorConfirmed { step: id }
                } else {
                    Event::OperatorDeclined { step: id }
                }))
            }
            Effect::AskOperator { ref step } => {
                let s = step_of(step)
                    .ok_or_else(|| DriveError::NoOperator(format!("no step `{step}`")))?;
                // Why its check could not settle it, when it has one.
                let why = self.unsettled.get(step).cloned();
                let done = self
                    .ask(
                        Some(&s.id),
                        Question::InDoubt,
                        async |o: &mut O| o.ask_done(&s, why.as_ref()).await,
                        |done| if *done { "done" } else { "not done" },
                    )
                    .await?;
                Ok(Some(Event::OperatorAnswered {
                    step: s.id.clone(),
                    done,
                }))
            }
            Effect::CrossNoReturn { ref reason } => {
                self.record(&RunRecord::EffectStarted {
                    effect: effect.clone(),
                })?;
                let go = self
                    .ask(
                        None,
                        Question::CrossNoReturn,
                        async |o: &mut O| o.cross_no_return(reason).await,
                        |go| if *go { "go" } else { "roll back" },
                    )
                    .await?;
                Ok(Some(if go {
                    Event::CrossedNoReturn
                } else {
                    Event::Abort {
                        reason: "the operator did not cross the point of no return".into(),
                    }
                }))
            }
            Effect::AskOnFailure {
                ref step,
                ref reason,
                can_roll_back,
            } => {
                let s = step_of(step)
                    .ok_or_else(|| DriveError::NoOperator(format!("no step `{step}`")))?;
                self.record(&RunRecord::EffectStarted {
                    effect: effect.clone(),
                })?;
                let choice = self
                    .ask(
                        Some(&s.id),
                        Question::OnFailure,
                        async |o: &mut O| o.on_failure(&s, reason, can_roll_back).await,
                        |choice| match choice {
                            FailureChoice::Retry => "retry",
                            FailureChoice::Rollback => "roll back",
                            FailureChoice::Halt => "halt",
                        },
                    )
                    .await?;
                Ok(Some(Event::OperatorChose {
                    step: s.id.clone(),
                    choice,
                }))
            }
        }
    }
}

/// Appends `record` to `journal`, stamped with the time now, then shows it.
/// Journals `record`, then what arrived on `outside` meanwhile (showing
/// each may bring more: they are journaled too).
fn append(
    journal: &mut JournalFile,
    progress: &mut dyn FnMut(&str, &RunRecord),
    outside: Option<&std::sync::mpsc::Receiver<RunRecord>>,
    record: &RunRecord,
) -> Result<(), DriveError> {
    let time = jiff::Timestamp::now().to_string();
    journal.append(&time, record)?;
    progress(&time, record);
    while let Some(record) = outside.and_then(|r| r.try_recv().ok()) {
        let time = jiff::Timestamp::now().to_string();
        journal.append(&time, &record)?;
        progress(&time, &record);
    }
    Ok(())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn yes_no(yes: &bool) -> &'static str {
    if *yes {
        "yes"
    } else {
        "no"
    }
}

/// Work done off the driver's task.
enum Job {
    /// A step's forward, after a pause (a retry's `retry_interval`).
    Forward(String, Duration),
    Check(String),
    Revert(String, Option<String>),
}

/// Keeps the head and tail of `text` within `limit` bytes.
pub fn bounded(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let floor = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let head = floor(limit / 2);
    let tail = floor(text.len() - limit / 2);
    format!(
        "{}\n[... {} bytes left out ...]\n{}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}
