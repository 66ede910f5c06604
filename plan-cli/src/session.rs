//! What `run` and `resume` share: the journal next to the plan, replaying
//! it, and driving the machine with a live view and Ctrl-C handling.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use plan_core::machine::{done_by_runs, replay, Event, ReplayedRun, RunEnd, RunMachine, RunRecord};
use plan_core::{NotifyEvent, Plan};
use plan_steps::driver::{Driver, Interrupt};
use plan_steps::journal_file::{JournalFile, JournalFileErrorKind};
use plan_steps::notify::{Notice, RunHooks};
use statig::prelude::StateMachine;
use tokio::sync::mpsc;

use crate::live::{Mode, View};
use crate::operator::TtyOperator;
use crate::{exit_codes, CliError};

/// The journal of `plan` unless `--journal` says otherwise: `<plan>.journal`.
pub fn journal_path(plan: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(
        || {
            let mut name = plan.as_os_str().to_owned();
            name.push(".journal");
            PathBuf::from(name)
        },
        Path::to_path_buf,
    )
}

/// A journal taken for a run: the file, its runs replayed, what its times
/// say, and a warning when its last line was torn.
pub struct Opened {
    /// The file, locked, ready to append.
    pub file: JournalFile,
    /// Its runs, replayed against the plan.
    pub runs: Vec<ReplayedRun>,
    /// TTL changes, interrupted waits and phase ends, from its times.
    pub history: plan_steps::history::History,
    /// Said when the last line was torn by a crash (and dropped).
    pub torn: Option<String>,
    /// Steps earlier attempts (for other versions of the plan) left done
    /// and that did not change since: a new attempt keeps them done.
    pub carried: Vec<String>,
    /// Said when this run starts a new attempt of a changed plan.
    pub new_attempt: Option<String>,
}

/// Opens (creating) the journal and replays the runs of this version of
/// `plan` in it. When the journal's last attempt is of another version,
/// `run` (`new_attempt`) starts a new attempt if that one ended (completed
/// or rolled back), keeping the unchanged steps it left done; otherwise,
/// and for `resume`, the changed plan is refused.
pub fn open_journal(path: &Path, plan: &Plan, new_attempt: bool) -> Result<Opened, CliError> {
    let (file, journal) =
        JournalFile::open::<RunRecord>(path, plan.hash).map_err(|e| match e.kind {
            JournalFileErrorKind::Locked { holder } => CliError::Refused {
                message: format!(
                    "another run of this journal is live{} (journal {})",
                    holder.map(|h| format!(": {h}")).unwrap_or_default(),
                    path.display()
                ),
                hint: "one run writes a journal at a time: watch that run, or wait for it to \
                       end; if its process died, the lock is already free"
                    .into(),
            },
            _ => CliError::Journal(e.to_string()),
        })?;
    let torn = journal.torn_tail.as_ref().map(|t| {
        format!(
            "the journal's last line ({}) was torn by a crash and has been dropped: {}",
            t.line, t.reason
        )
    });
    let history = plan_steps::history::History::read(plan, &journal.records);
    let attempts = plan_core::machine::attempts(&journal.records);
    let (mut carried, mut note) = (Vec::new(), None);
    let runs = match attempts.last() {
        None => Vec::new(),
        Some(last) if last.plan_hash == plan.hash => {
            let records: Vec<RunRecord> = journal.records[last.records.clone()]
                .iter()
                .map(|r| r.entry.clone())
                .collect();
            replay(plan, &records)
                .map_err(|e| CliError::Journal(format!("{}: {e}", path.display())))?
        }
        Some(last) => {
            use plan_core::machine::AttemptEnd;
            let changed = || CliError::PlanChanged {
                journal: path.display().to_string(),
                detail: changed_steps(&journal.records, plan),
            };
            if !new_attempt {
                return Err(changed());
            }
            let ended = match last.end {
                Some(AttemptEnd::Completed) => "completed",
                Some(AttemptEnd::RolledBack) => "rolled back",
                Some(AttemptEnd::Halted) | None => return Err(changed()),
            };
            carried = last.unchanged_done(&fingerprints(plan));
            note = Some(format!(
                "the plan changed since the last run of this journal, which {ended} ({}): this \
                 run starts attempt {} of it; {}",
                changed_steps(&journal.records, plan),
                attempts.len() + 1,
                if carried.is_empty() {
                    "no step is kept done".to_owned()
                } else {
                    format!("kept done (unchanged): {}", carried.join(", "))
                }
            ));
            Vec::new()
        }
    };
    Ok(Opened {
        file,
        runs,
        history,
        torn,
        carried,
        new_attempt: note,
    })
}

/// Other journals of the same plan (same name, any version) beside the plan
/// or beside `journal`, whose runs changed something: a second journal would
/// record the half-migrated state of the first as the new run's "before",
/// and run again what the first one did.
pub fn other_journals(plan_path: &Path, plan: &Plan, journal: &Path) -> Vec<PathBuf> {
    let default = journal_path(plan_path, None);
    let dirs = [plan_path.parent(), journal.parent()]
        .into_iter()
        .flatten()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        });
    let mut candidates: Vec<PathBuf> = vec![default];
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        candidates.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "journal")),
        );
    }
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let mut found: Vec<PathBuf> = Vec::new();
    for candidate in candidates {
        if same(&candidate, journal) || found.iter().any(|f| same(f, &candidate)) {
            continue;
        }
        let Ok(other) = JournalFile::read::<serde_json::Value>(&candidate) else {
            continue;
        };
        let of_this_plan = other.records.iter().any(|r| {
            r.plan_hash == plan.hash
                || r.entry.get("type").and_then(|k| k.as_str()) == Some("run_started")
                    && r.entry.get("plan").and_then(|p| p.as_str()) == Some(plan.name.as_str())
        });
        // Only a journal whose runs changed something matters: one refused
        // at preflight, or not begun, left nothing to take as "before".
        let changed_something = other.records.iter().any(|r| {
            r.entry.get("type").and_then(|k| k.as_str()) == Some("effect_started")
                && matches!(
                    r.entry
                        .get("effect")
                        .and_then(|e| e.get("effect"))
                        .and_then(|e| e.as_str()),
                    Some("forward" | "revert" | "confirm")
                )
        });
        let of_this_plan = of_this_plan && changed_something;
        if of_this_plan {
            found.push(candidate);
        }
    }
    found
}

/// The attempts of a journal's `records` (at `path`), and which one is
/// `plan`'s: the last whose plan hash is this plan's, as the read-only
/// verbs (`status --journal`, `watch`) show it. A journal with attempts
/// but none of this plan is [`CliError::PlanChanged`], naming what
/// changed: the plan file, its variables, or the `--set` values differ
/// from the run's.
pub fn plan_attempt(
    plan: &Plan,
    path: &Path,
    records: &[plan_core::journal::Record<RunRecord>],
) -> Result<(Vec<plan_core::machine::Attempt>, Option<usize>), CliError> {
    let attempts = plan_core::machine::attempts(records);
    let current = attempts.iter().rposition(|a| a.plan_hash == plan.hash);
    if current.is_none() && !attempts.is_empty() {
        return Err(CliError::PlanChanged {
            journal: path.display().to_string(),
            detail: format!(
                "the journal's runs are of another version of this plan ({}); use the plan and --set values the run used",
                changed_steps(records, plan)
            ),
        });
    }
    Ok((attempts, current))
}

/// What differs between the plan the journal's `records` were written for
/// and this one (read from the records in hand: `watch --as-of` has cut
/// them at its moment).
fn changed_steps(records: &[plan_core::journal::Record<RunRecord>], plan: &Plan) -> String {
    let recorded: Vec<(String, u64)> = records
        .iter()
        .rev()
        .find_map(|r| match &r.entry {
            RunRecord::RunStarted { steps, .. } => Some(steps.clone()),
            _ => None,
        })
        .unwrap_or_default();
    // `plan` was loaded before the run's directory was known, as at `run`.
    let now = fingerprints(plan);
    let mut changes = Vec::new();
    for (id, print) in &recorded {
        match now.iter().find(|(i, _)| i == id) {
            None => changes.push(format!("step `{id}` was removed")),
            Some((_, p)) if p != print => changes.push(format!("step `{id}` changed")),
            _ => {}
        }
    }
    for (id, _) in &now {
        if !recorded.iter().any(|(i, _)| i == id) {
            changes.push(format!("step `{id}` was added"));
        }
    }
    if changes.is_empty() {
        "the plan text or its variables changed (no step's action changed)".into()
    } else {
        changes.join(", ")
    }
}

/// A fingerprint of what each step does, to say what changed between runs.
/// Take it from a plan loaded without a run directory, so `{{run_dir}}`,
/// which differs from run to run, reads the same each time.
pub fn fingerprints(plan: &Plan) -> Vec<(String, u64)> {
    plan.steps()
        .map(|s| (s.id.clone(), s.fingerprint()))
        .collect()
}

/// Refuses a `--phase` the plan does not have, naming those it has.
pub fn known_phase(plan: &Plan, phase: Option<&str>) -> Result<(), CliError> {
    match phase {
        Some(phase) if plan.phase(phase).is_none() => {
            let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
            Err(CliError::Usage(format!(
                "the plan has no phase `{phase}`; its phases: {}",
                names.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// Removes the run directory `dir` when it is empty: nothing in it is
/// needed, and `resume` makes it again if a step of the run needs it.
/// A directory a step left files in is kept (the operator may want them);
/// returns whether it was kept.
pub fn tidy_run_dir(dir: &str) -> bool {
    let empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
    !(empty && std::fs::remove_dir(dir).is_ok())
}

/// Makes the run directory `dir` again for `resume`, when it was removed
/// (empty) at the end of an earlier session of the run, or by the system.
pub fn recreate_run_dir(dir: &str) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if Path::new(dir).is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(CliError::io("cannot create the run directory again"))
}

/// The exit code of a run's end. A run refused at preflight changed
/// nothing: that is an error, not a halt that needs an operator.
pub fn exit_code(end: &RunEnd) -> u8 {
    match end {
        RunEnd::Completed => exit_codes::OK,
        RunEnd::RolledBack { .. } => exit_codes::ROLLED_BACK,
        end if refused_at_preflight(end) => exit_codes::ERROR,
        RunEnd::Halted { .. } => exit_codes::HALTED,
    }
}

/// Whether the run stopped at preflight, before changing anything.
pub fn refused_at_preflight(end: &RunEnd) -> bool {
    matches!(
        end,
        RunEnd::Halted {
            cause: plan_core::machine::HaltCause::Preflight,
            ..
        }
    )
}

/// Steps done by earlier runs of this journal: what the last one started
/// with as done (earlier runs', and earlier attempts'), and what it did.
pub fn already_done(runs: &[ReplayedRun]) -> Vec<String> {
    let mut done: std::collections::BTreeSet<String> = runs
        .last()
        .map(|r| r.already_done.iter().cloned().collect())
        .unwrap_or_default();
    let by_runs = done_by_runs(runs);
    if let Some(last) = runs.last() {
        let schedule = last.machine.schedule();
        for (ix, status) in last.machine.statuses().iter().enumerate() {
            if *status == plan_core::machine::StepStatus::Reverted {
                done.remove(&schedule.steps[ix].id);
            }
        }
    }
    done.extend(by_runs);
    done.into_iter().collect()
}

/// How a run talks to its operator.
#[derive(Clone, Debug)]
pub struct Interaction {
    /// Live view, plain lines or JSON.
    pub mode: Mode,
    /// `--yes`: cross the point of no return, roll back after a failure,
    /// without asking.
    pub yes: bool,
    /// `--confirm`: manual steps confirmed in advance.
    pub confirmed: Vec<String>,
    /// `--assume`: the answer for in-doubt steps without a check.
    pub assume: Option<bool>,
    /// After how long a wait for the operator is said and journaled.
    pub remind_after: std::time::Duration,
    /// How many last lines of a failed step's output are shown.
    pub failure_lines: usize,
}

/// What the operator is asked, on the command line of `run` and `resume`.
#[derive(Clone, Debug, clap::Args)]
pub struct OperatorArgs {
    /// Say (and journal) that the run waits for an answer once it has waited this long
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = plan_core::duration::parse_duration)]
    pub remind_after: std::time::Duration,
    /// Confirm this Manual step in advance, without asking (repeat for each; journaled as confirmed by a flag)
    #[arg(long, value_name = "STEP")]
    pub confirm: Vec<String>,
    /// Show this many last lines of a failed step's output with the failure (0: none)
    #[arg(long, value_name = "N", default_value_t = crate::live::FAILURE_LINES)]
    pub failure_lines: usize,
}

impl OperatorArgs {
    /// Checks `--confirm` against the plan, and that every manual step the
    /// run may reach (`ahead`, by id) can be confirmed: by `--confirm`, or
    /// by a person at a terminal. Refuses before anything runs otherwise.
    pub fn check<'a>(
        &self,
        plan: &Plan,
        ahead: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), CliError> {
        for id in &self.confirm {
            match plan.step(id) {
                Some(step) if matches!(step.action, plan_core::Action::Manual { .. }) => {}
                Some(step) => {
                    return Err(CliError::Usage(format!(
                        "--confirm {id}: step `{id}` is a {} step, not a Manual one; only Manual \
                         steps are confirmed",
                        step.action.kind()
                    )))
                }
                None => {
                    return Err(CliError::Usage(format!(
                        "--confirm {id}: the plan has no step `{id}`"
                    )))
                }
            }
        }
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Ok(());
        }
        let unconfirmed: Vec<&str> = ahead
            .into_iter()
            .filter(|id| {
                plan.step(id)
                    .is_some_and(|s| matches!(s.action, plan_core::Action::Manual { .. }))
                    && !self.confirm.iter().any(|c| c == id)
            })
            .collect();
        if unconfirmed.is_empty() {
            return Ok(());
        }
        Err(CliError::Refused {
            message: format!(
                "manual step{} {} need{} a person, and there is no terminal to ask on",
                if unconfirmed.len() == 1 { "" } else { "s" },
                unconfirmed
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if unconfirmed.len() == 1 { "s" } else { "" },
            ),
            hint: format!(
                "run on a terminal, or confirm them in advance: {} (--yes never confirms a \
                 manual step)",
                unconfirmed
                    .iter()
                    .map(|s| format!("--confirm {s}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        })
    }
}

/// What a run carries into the driver besides the machine.
#[derive(Debug, Default)]
pub struct Carried {
    /// Prior state captured by steps of this run (from its journal, on resume).
    pub captured: Vec<(String, String)>,
    /// How SSH hosts are reached.
    pub ssh: plan_steps::executor::SshOptions,
    /// Process groups of in-doubt steps the stopped run may have left running.
    pub leftovers: Vec<(String, plan_core::machine::ProcessGroup)>,
    /// Reach every host before the machine is fed anything (`resume`: the
    /// replayed machine does not preflight again by itself).
    pub preflight_first: bool,
    /// What the journal's times say (TTL changes, interrupted waits).
    pub history: plan_steps::history::History,
    /// Hooks told of the run's events: the plan's `notify` and `--notify`.
    pub notify: Vec<plan_core::Hook>,
    /// The phase run (`--phase`), and the journal's path, for the hooks.
    pub phase: Option<String>,
    /// The journal's path, for the hooks.
    pub journal_path: std::path::PathBuf,
    /// The lock across machines the run holds, if any.
    pub lock: Option<Arc<plan_steps::etcd_lock::EtcdLock>>,
}

/// The lock shared across operator machines, on the command line of `run`
/// and `resume`.
#[derive(Clone, Debug, clap::Args)]
pub struct LockArgs {
    /// Hold the run's lock in etcd too (etcd://HOST:PORT/PREFIX; key PREFIX/<service>), so no other machine runs this service's plan meanwhile (instead of the plan's `lock`)
    #[arg(long, value_name = "URL", env = "CUTOVER_LOCK")]
    pub lock: Option<String>,
    /// Hold no lock in etcd, whatever the plan's `lock`, --lock or CUTOVER_LOCK say (the journal's own lock still holds)
    #[arg(long)]
    pub no_lock: bool,
    /// The etcd lease's TTL: how long a holder that died keeps the lock
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = plan_core::duration::parse_duration)]
    pub lock_ttl: std::time::Duration,
}

impl LockArgs {
    /// Takes the lock `--lock` names, if any, or refuses, naming who holds it.
    pub fn acquire(
        &self,
        plan: &Plan,
    ) -> Result<Option<Arc<plan_steps::etcd_lock::EtcdLock>>, CliError> {
        use plan_steps::etcd_lock::{EtcdLock, EtcdLockError, LockUrl};
        let url = match (&self.lock, &plan.lock) {
            _ if self.no_lock => return Ok(None),
            (Some(given), _) => {
                LockUrl::parse(given).map_err(|e| CliError::Usage(format!("--lock: {e}")))?
            }
            (None, Some(planned)) => planned.clone(),
            (None, None) => return Ok(None),
        };
        match EtcdLock::acquire(&url, &plan.service, self.lock_ttl) {
            Ok(lock) => Ok(Some(Arc::new(lock))),
            Err(e @ EtcdLockError::Held { .. }) => Err(CliError::Refused {
                message: e.to_string(),
                hint: format!(
                    "one run of {} at a time, across machines: watch that run, or wait for it to \
                     end (if its machine died, the lock expires after its TTL)",
                    plan.service
                ),
            }),
            Err(e) => Err(CliError::Refused {
                message: e.to_string(),
                hint:
                    "the run did not start: check that etcd answers there (or run without --lock)"
                        .into(),
            }),
        }
    }
}

/// Hooks given on the command line of `run` and `resume`.
#[derive(Clone, Debug, clap::Args)]
pub struct NotifyArgs {
    /// Also tell this hook of every event: a command (run by sh, the event in CUTOVER_* variables) or an http:// or https:// URL to post the event to as JSON (repeat for several)
    #[arg(long = "notify", value_name = "COMMAND|URL")]
    pub hooks: Vec<String>,
    /// Leave out the plan's `notify` hooks (those given with --notify are still told)
    #[arg(long)]
    pub no_notify: bool,
}

impl NotifyArgs {
    /// The hooks in force: the plan's, then those of `--notify`.
    pub fn hooks(&self, plan: &Plan) -> Result<Vec<plan_core::Hook>, CliError> {
        let mut hooks = if self.no_notify {
            Vec::new()
        } else {
            plan.notify.clone()
        };
        for given in &self.hooks {
            let target = if given.starts_with("http://") || given.starts_with("https://") {
                plan_core::check_hook_url(given).map_err(|message| {
                    CliError::Usage(format!(
                        "--notify {given}: {message}; give a command, or the whole URL to post to"
                    ))
                })?;
                plan_core::HookTarget::Webhook {
                    url: given.clone(),
                    token_env: None,
                }
            } else if given.trim().is_empty() {
                return Err(CliError::Usage(
                    "--notify needs a command or a URL, e.g. --notify 'logger -t cutover \"$CUTOVER_TEXT\"'".into(),
                ));
            } else {
                plan_core::HookTarget::Command { run: given.clone() }
            };
            hooks.push(plan_core::Hook {
                target,
                on: Vec::new(),
                timeout: plan_core::HOOK_TIMEOUT,
            });
        }
        Ok(hooks)
    }
}

/// How SSH hosts are trusted, from the command line.
#[derive(Clone, Debug, clap::Args)]
pub struct SshArgs {
    /// Check host keys against this known_hosts file (default: the plan's `known_hosts`, else ~/.ssh/known_hosts)
    #[arg(long, value_name = "PATH")]
    pub known_hosts: Option<std::path::PathBuf>,
    /// Trust a host key seen for the first time and add it to known_hosts (a changed key is still refused)
    #[arg(long)]
    pub accept_new: bool,
    /// Open at most N SSH sessions at once, at preflight and on reconnects (sshd refuses
    /// unauthenticated connections beyond its MaxStartups, 10 by default)
    #[arg(long, value_name = "N", default_value_t = plan_steps::executor::CONNECT_PARALLEL,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub connect_parallel: u16,
}

impl SshArgs {
    /// The executor's options.
    pub fn options(&self) -> plan_steps::executor::SshOptions {
        plan_steps::executor::SshOptions {
            known_hosts: self.known_hosts.clone(),
            accept_new: self.accept_new,
            connect_parallel: self.connect_parallel,
        }
    }
}

/// Drives `machine` from `first` to its end, with a view and Ctrl-C.
pub fn drive(
    plan: Arc<Plan>,
    journal: &mut JournalFile,
    machine: &mut StateMachine<RunMachine>,
    first: Event,
    start: Option<RunRecord>,
    interaction: Interaction,
    carried: Carried,
) -> Result<u8, CliError> {
    let Carried {
        captured,
        ssh,
        leftovers,
        preflight_first,
        history,
        notify,
        phase,
        journal_path,
        lock,
    } = carried;
    let hooks = RunHooks::new(
        Arc::clone(&plan),
        phase,
        journal_path.display().to_string(),
        notify,
    );
    // How hooks failed, for the driver to journal between its own records.
    let (hook_failed, hook_failures) = std::sync::mpsc::channel();
    let Interaction {
        mode,
        yes,
        confirmed,
        assume,
        remind_after,
        failure_lines,
    } = interaction;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("cannot start the async runtime"))?;
    let view = Arc::new(Mutex::new(
        View::new(
            mode,
            Arc::clone(&plan),
            machine.schedule(),
            machine.statuses(),
        )
        .with_failure_lines(failure_lines),
    ));
    // Ctrl-C presses, counted: the driver gets them as interrupts, and a
    // prompt waiting for an answer sees the count change.
    let (pressed, presses) = tokio::sync::watch::channel(0u32);
    let operator = TtyOperator {
        yes,
        confirmed,
        assume,
        view: Arc::clone(&view),
        interrupts: presses,
    };
    let progress_view = Arc::clone(&view);
    let mut progress = |time: &str, record: &RunRecord| {
        if let Ok(mut v) = progress_view.lock() {
            v.show(time, record);
        }
        for failed in hooks.record(time, record) {
            let _ = hook_failed.send(failed);
        }
    };
    let result = runtime.block_on(async {
        let (interrupts, receiver) = mpsc::unbounded_channel();
        let ctrl_c_view = Arc::clone(&view);
        tokio::spawn(async move {
            let mut count = 0;
            while tokio::signal::ctrl_c().await.is_ok() {
                count += 1;
                let interrupt = if count == 1 { Interrupt::Abort } else { Interrupt::Stop };
                pressed.send_replace(count);
                if let Ok(v) = ctrl_c_view.lock() {
                    v.note(if count == 1 {
                        "Ctrl-C: rolling back in order; press Ctrl-C again to stop at once (resumable)"
                    } else {
                        "Ctrl-C again: stopping at once"
                    });
                }
                if interrupts.send(interrupt).is_err() {
                    break;
                }
            }
        });
        let mut driver = Driver::new(Arc::clone(&plan), journal, operator, &mut progress).with_captured(captured).with_ssh(ssh).with_leftovers(leftovers).with_remind_after(remind_after).with_history(&history).with_outside_records(&hook_failures);
        if let Some(lock) = lock {
            driver = driver.with_lock(lock);
        }
        if preflight_first {
            if let Err(reason) = driver.preflight(machine.schedule()).await {
                let hints = preflight_hints(driver.preflight_problems());
                return Err(CliError::Refused {
                    message: format!("not resumed: preflight failed: {reason}; nothing was changed"),
                    hint: if hints.is_empty() {
                        "make every host reachable, then resume again".into()
                    } else {
                        hints.join("\n")
                    },
                });
            }
        }
        match start {
            Some(record) => driver.start_run(record).map_err(|e| CliError::Journal(e.to_string()))?,
            // A resume: its record is the machine's, not a `RunStarted`.
            None => hooks.tell(|n| Notice {
                reason: Some("resumed from the journal".into()),
                ..n.notice(NotifyEvent::RunStarted, None)
            }),
        }
        match driver.drive(machine, first, receiver).await {
            Ok(end) => {
                hooks.tell(|n| n.ended(&end));
                if let Ok(mut v) = view.lock() {
                    v.end(&end);
                    for hint in preflight_hints(driver.preflight_problems()) {
                        v.note(&format!("  hint: {hint}"));
                    }
                }
                Ok(exit_code(&end))
            }
            Err(e) => {
                hooks.tell(|n| n.stopped(&e.to_string()));
                Err(CliError::Interrupted(format!("{e}{}", where_it_stopped(machine))))
            }
        }
    });
    // The last events (the run's end) go out before the process ends, for a
    // bounded time; what failed is journaled and shown all the same.
    if !hooks.is_empty() {
        // After "stop at once" (or a journal that cannot be written), only
        // what is under way is waited for.
        let wait = if result.is_ok() {
            HOOKS_AT_END
        } else {
            std::time::Duration::ZERO
        };
        if hooks.pending() > 0 && mode != Mode::Json {
            if let Ok(v) = view.lock() {
                v.note(&format!(
                    "telling the hooks of the run's end (at most {}s)...",
                    (wait + hooks.longest_delivery()).as_secs()
                ));
            }
        }
        let (failed, untold) = hooks.finish(wait);
        let mut view = view.lock().ok();
        let failed = hook_failures.try_iter().chain(failed).collect::<Vec<_>>();
        for record in failed {
            let time = jiff::Timestamp::now().to_string();
            let _ = journal.append(&time, &record);
            if let Some(v) = &mut view {
                v.show(&time, &record);
            }
        }
        if untold > 0 {
            if let Some(v) = &view {
                v.note(&format!(
                    "⚠ {untold} event(s) were not told to the hooks: they took too long"
                ));
            }
        }
    }
    result
}

/// How long a run's end waits for hooks to be told what is queued (then at
/// most one hook timeout more for deliveries under way).
const HOOKS_AT_END: std::time::Duration = std::time::Duration::from_secs(10);

/// What had happened when a run stopped without an end (a journal that
/// cannot be written, a full disk, a second Ctrl-C): the steps done, and
/// those under way, whose outcome `resume` will settle.
fn where_it_stopped(machine: &StateMachine<RunMachine>) -> String {
    use plan_core::machine::StepStatus;
    let done: Vec<&str> = machine.completion_order().collect();
    let schedule = machine.schedule();
    let under_way: Vec<&str> = machine
        .statuses()
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            matches!(
                s,
                StepStatus::Running
                    | StepStatus::InDoubt
                    | StepStatus::Reverting
                    | StepStatus::RevertInDoubt
            )
        })
        .map(|(ix, _)| schedule.steps[ix].id.as_str())
        .collect();
    let list = |ids: &[&str]| {
        if ids.is_empty() {
            "none".to_owned()
        } else {
            crate::live::some_names(ids)
        }
    };
    format!(
        "\n  by then: done {}; under way (in doubt until `resume` checks them) {}",
        list(&done),
        list(&under_way)
    )
}

/// What the operator can do about the hosts preflight refused.
fn preflight_hints(problems: &[plan_steps::executor::PreflightProblem]) -> Vec<String> {
    use plan_steps::executor::PreflightProblem;
    problems
        .iter()
        .filter_map(|problem| match problem {
            PreflightProblem::HostKeyUnknown { host } => Some(format!(
                "the host key of `{host}` is not known yet: check its fingerprint (with its admin, \
                 or `ssh-keyscan` on a trusted network), then run again with --accept-new to trust \
                 it and add it to known_hosts"
            )),
            PreflightProblem::HostKeyChanged { host } => Some(format!(
                "the host key of `{host}` changed, which --accept-new never accepts: if the change \
                 is expected, remove the old key (`ssh-keygen -R`) and run again"
            )),
            _ => None,
        })
        .collect()
}
