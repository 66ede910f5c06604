//! `cutover run PLAN`: verify, confirm, then execute with automatic rollback.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use plan_core::machine::{
    simulate, Effect, Event, FaultPoint, OnFailure, RunEnd, RunMachine, RunRecord, Schedule,
    Selection,
};
use plan_core::{Entry, Plan};
use statig::prelude::IntoStateMachineExt as _;

use crate::live::Mode;
use crate::prompt::ask_yes_no;
use crate::session::{
    self, already_done, fingerprints, journal_path, open_journal, Carried, Interaction,
};
use crate::{exit_codes, CliError, PlanArgs};

/// What `cutover run --help` (and its man page) says about the prompts.
const PROMPTS: &str = "\
What the operator is asked (without --yes), on the terminal:

Before the first change: \"Run N steps of ...? [y/N]\"
    y runs; anything else changes nothing (exit 1).
A Manual step: \"MANUAL STEP `id` ... Done? [y/N]\"
    y goes on; n or Enter declines it, and the run rolls back.
    --yes does not answer it: a person does, or --confirm STEP in advance.
The point of no return: \"POINT OF NO RETURN: <reason>\"
    go crosses it; rollback undoes the run instead.
A failed step, with --on-failure ask: \"STEP FAILED `id`: ...\"
    r retries it, b rolls back, h halts for the operator.

Ctrl-C rolls back (at a question too); a second Ctrl-C stops at once, for `cutover resume`. A question \
unanswered for --remind-after (3m) is said on the terminal and journaled.

Exit codes: 0 completed, 1 error or not started, 2 invalid plan, 3 rolled back, 4 halted.";

/// Arguments of `cutover run`.
#[derive(Debug, Args)]
#[command(after_long_help = PROMPTS)]
pub struct RunArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Run only this phase (required when several phases still have steps to run)
    #[arg(long, value_name = "NAME")]
    phase: Option<String>,
    /// Print what would run, in order, with the revert plan; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not ask before the first change, at the point of no return, nor after a failure (Manual steps still need a person or --confirm)
    #[arg(long, short = 'y')]
    yes: bool,
    /// When a step fails after its retries: roll back at once, or ask the operator (retry, roll back, halt)
    #[arg(long, value_enum, value_name = "POLICY", default_value = "rollback")]
    on_failure: OnFailureArg,
    /// Journal file (default: the plan's path with `.journal` appended)
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// Start although another journal of this plan exists, or a phase's anchor time has not come
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    output: crate::JsonArgs,
    #[command(flatten)]
    ssh: crate::session::SshArgs,
    #[command(flatten)]
    operator: crate::session::OperatorArgs,
    #[command(flatten)]
    notify: crate::session::NotifyArgs,
    #[command(flatten)]
    lock: crate::session::LockArgs,
}

/// What a failed step leads to, on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum OnFailureArg {
    /// Roll back to the rollback point (halt past the point of no return)
    Rollback,
    /// Ask: retry the step, roll back, or halt (with --yes: roll back without asking)
    Ask,
}

impl From<OnFailureArg> for OnFailure {
    fn from(arg: OnFailureArg) -> OnFailure {
        match arg {
            OnFailureArg::Rollback => OnFailure::Rollback,
            OnFailureArg::Ask => OnFailure::Ask,
        }
    }
}

/// Runs the plan: exit 0 completed, 3 rolled back, 4 halted, 2 invalid plan.
pub fn cmd_run(
    args: &RunArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    // Verification first, exploration included: an invalid plan touches nothing.
    let plan = args.plan.load_valid(stderr)?;
    session::known_phase(&plan, args.phase.as_deref())?;
    // A hook that cannot be is refused before anything is opened.
    let hooks = args.notify.hooks(&plan)?;
    if args.dry_run {
        return dry_run(&plan, args.phase.as_deref(), stdout);
    }
    // Across machines first: the journal is this machine's.
    let lock = args.lock.acquire(&plan)?;
    let path = journal_path(&args.plan.plan, args.journal.as_deref());
    let session::Opened {
        file: mut journal,
        runs,
        history,
        torn,
        carried,
        new_attempt,
    } = open_journal(&path, &plan, true)?;
    if let Some(warning) = torn {
        writeln!(stderr, "warning: {warning}")?;
    }
    if let Some(last) = runs.last() {
        if last.end.is_none() {
            return Err(CliError::Refused {
                message: format!(
                    "a run of this plan is unfinished (journal {})",
                    path.display()
                ),
                hint: format!(
                    "continue it with `cutover resume {}`",
                    args.plan.plan.display()
                ),
            });
        }
    }
    if runs.is_empty() {
        let others = session::other_journals(&args.plan.plan, &plan, &path);
        if !others.is_empty() {
            let list: Vec<String> = others.iter().map(|p| p.display().to_string()).collect();
            writeln!(
                stderr,
                "warning: another journal of this plan exists: {}; a run in a second journal \
                 takes whatever the first one changed as its \"before\"",
                list.join(", ")
            )?;
            if !args.force {
                return Err(CliError::Refused {
                    message: format!(
                        "not starting a second journal ({}) for this plan",
                        path.display()
                    ),
                    hint: format!(
                        "continue in that journal (`--journal {}`), or pass --force to start \
                         this one anyway",
                        list[0]
                    ),
                });
            }
        }
    }
    if let Some(note) = &new_attempt {
        writeln!(stderr, "{note}")?;
    }
    let mut done = already_done(&runs);
    done.extend(carried);
    done.sort();
    done.dedup();
    let phase = pick_phase(&plan, args.phase.as_deref(), &done)?;
    let selection = Selection {
        phase: phase.clone(),
        already_done: done.iter().cloned().collect(),
    };
    let steps = Schedule::new(&plan, &selection);
    let mode = Mode::pick(args.output.json());
    if let Some(early) = phase_too_early(&plan, phase.as_deref(), &history) {
        writeln!(stderr, "warning: {early}")?;
        if !args.force {
            let asked = !args.yes && std::io::IsTerminal::is_terminal(&std::io::stdin());
            let go = asked && ask_yes_no("Run it now anyway?").unwrap_or(false);
            if !go {
                return Err(CliError::Refused {
                    message: format!("not started: {early}"),
                    hint: "wait for the phase's time, or pass --force to run it early".into(),
                });
            }
        }
    }
    ttl_rule(&plan, &steps, &history)?;
    args.operator
        .check(&plan, steps.steps.iter().map(|s| s.id.as_str()))?;
    if steps.steps.is_empty() {
        writeln!(
            stderr,
            "nothing to run: every step of the selection is done"
        )?;
        return Ok(exit_codes::OK);
    }
    if !args.yes {
        let question = format!(
            "Run {} step{} of \"{}\"{} on {}?",
            steps.steps.len(),
            if steps.steps.len() == 1 { "" } else { "s" },
            plan.name,
            phase
                .as_ref()
                .map(|p| format!(", phase `{p}`"))
                .unwrap_or_default(),
            steps.hosts().join(", ")
        );
        match ask_yes_no(&question) {
            Ok(true) => {}
            Ok(false) => {
                writeln!(stderr, "not started; nothing changed")?;
                return Ok(exit_codes::ERROR);
            }
            Err(e) => {
                return Err(CliError::Refused {
                    message: format!("{e}, so the run was not started"),
                    hint: "pass --yes to run without asking".into(),
                })
            }
        }
    }
    // Fingerprints are taken with `{{run_dir}}` unset, as resume compares them.
    let fingerprints = fingerprints(&plan);
    let run_dir = tempfile::Builder::new()
        .prefix("cutover-run-")
        .tempdir()
        .map_err(CliError::io("cannot create the run directory"))?
        .keep();
    let run_dir = run_dir.display().to_string();
    // Load again with the run's directory in `{{run_dir}}`.
    let mut settings = args.plan.settings();
    settings.run_dir = Some(run_dir.clone());
    let plan = plan_core::load_path(&args.plan.plan, &settings)?
        .plan
        .ok_or_else(|| CliError::Refused {
            message: "the plan file changed while the run was starting, and is now invalid".into(),
            hint: "run `cutover check` on it, then start the run again".into(),
        })?;
    let schedule = Arc::new(Schedule::new(&plan, &selection));
    if mode != Mode::Json {
        writeln!(stderr, "run directory: {run_dir}")?;
        writeln!(stderr, "journal: {}", path.display())?;
    }
    let start = RunRecord::RunStarted {
        plan: plan.name.clone(),
        phase,
        already_done: done,
        run_dir: run_dir.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        steps: fingerprints,
        on_failure: args.on_failure.into(),
    };
    let mut machine = RunMachine::new(schedule)
        .with_on_failure(args.on_failure.into())
        .state_machine();
    let plan = Arc::new(plan);
    let result = session::drive(
        plan,
        &mut journal,
        &mut machine,
        Event::Start,
        Some(start),
        Interaction {
            mode,
            yes: args.yes,
            confirmed: args.operator.confirm.clone(),
            assume: None,
            remind_after: args.operator.remind_after,
            failure_lines: args.operator.failure_lines,
        },
        Carried {
            ssh: args.ssh.options(),
            history,
            notify: hooks,
            phase: args.phase.clone(),
            journal_path: path.clone(),
            lock,
            ..Carried::default()
        },
    );
    if session::tidy_run_dir(&run_dir) && result.is_ok() && mode != Mode::Json {
        writeln!(
            stderr,
            "the run directory {run_dir} is kept: steps left files in it"
        )?;
    }
    result
}

/// The run-time TTL rule, before anything starts: a `DnsRecord` switch in
/// this run whose record had its TTL changed (by an earlier run of the
/// journal) less than the old TTL ago, by more than a switch waits
/// ([`MAX_TTL_WAIT`](plan_steps::history::MAX_TTL_WAIT)), refuses the run:
/// resolvers would keep sending users to the old address.
fn ttl_rule(
    plan: &Plan,
    schedule: &Schedule,
    history: &plan_steps::history::History,
) -> Result<(), CliError> {
    use plan_core::duration::format_duration;
    use plan_steps::history::MAX_TTL_WAIT;
    let now = std::time::SystemTime::now();
    for scheduled in &schedule.steps {
        let Some(plan_core::Action::DnsRecord { record, .. }) =
            plan.step(&scheduled.id).map(|s| &s.action)
        else {
            continue;
        };
        let Some(change) = history.ttl_changes.get(record) else {
            continue;
        };
        let left = change.remaining(now);
        if left > MAX_TTL_WAIT {
            let utc = |t| {
                jiff::Timestamp::try_from(t)
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default()
            };
            let (at, until) = (utc(change.at), utc(change.expires()));
            return Err(CliError::Refused {
                message: format!(
                    "step `{}` switches {record}, whose TTL was changed at {at} from {}s: \
                     resolvers may send users to the old address until {until}, {} from now",
                    scheduled.id,
                    change.previous,
                    format_duration(std::time::Duration::from_secs(left.as_secs()))
                ),
                hint: format!(
                    "run this phase after {until}; a switch waits for an old TTL to run out \
                     only when that takes {} or less",
                    format_duration(MAX_TTL_WAIT)
                ),
            });
        }
    }
    Ok(())
}

/// Whether `phase` would start earlier than its anchor allows, measured
/// from the end of the last completed run of the scheduled phase before it;
/// says by how much.
fn phase_too_early(
    plan: &Plan,
    phase: Option<&str>,
    history: &plan_steps::history::History,
) -> Option<String> {
    use plan_core::duration::{format_anchor, format_duration};
    let index = plan
        .phases
        .iter()
        .position(|p| Some(p.name.as_str()) == phase)?;
    let this = &plan.phases[index];
    let at = this.at?;
    let (before, ended) = plan.phases[..index].iter().rev().find_map(|p| {
        let end = history.phase_ends.get(&p.name)?;
        Some((p, *end))
    })?;
    let gap = at.checked_sub(before.at?)?;
    let gap = std::time::Duration::from_secs(u64::try_from(gap).ok()?);
    let since = std::time::SystemTime::now()
        .duration_since(ended)
        .unwrap_or_default();
    let early = gap.checked_sub(since).filter(|e| !e.is_zero())?;
    Some(format!(
        "phase `{}` is anchored at {}, {} after phase `{}` (at {}), which ended {} ago: it \
         would start {} early",
        this.name,
        format_anchor(at),
        format_duration(gap),
        before.name,
        format_anchor(before.at.unwrap_or_default()),
        format_duration(std::time::Duration::from_secs(since.as_secs())),
        format_duration(std::time::Duration::from_secs(early.as_secs()))
    ))
}

/// Which phase a run takes: the one given, or the only one with steps left.
fn pick_phase(
    plan: &Plan,
    phase: Option<&str>,
    done: &[String],
) -> Result<Option<String>, CliError> {
    let pending = |p: &plan_core::Phase| -> Vec<String> {
        p.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Step(s) if s.pending() && !done.contains(&s.id) => Some(s.id.clone()),
                _ => None,
            })
            .collect()
    };
    match phase {
        Some(name) => {
            for earlier in plan.phases.iter().take_while(|p| p.name != name) {
                let left = pending(earlier);
                if !left.is_empty() {
                    return Err(CliError::Refused {
                        message: format!(
                            "phase `{}` comes before `{name}` and has steps not done: {}",
                            earlier.name,
                            left.join(", ")
                        ),
                        hint: format!(
                            "run `--phase {}` first, or mark those steps `done: true` in the plan",
                            earlier.name
                        ),
                    });
                }
            }
            Ok(Some(name.to_owned()))
        }
        None => {
            let open: Vec<&str> = plan
                .phases
                .iter()
                .filter(|p| !pending(p).is_empty())
                .map(|p| p.name.as_str())
                .collect();
            if open.len() > 1 {
                return Err(CliError::Refused {
                    message: format!(
                        "several phases still have steps to run: {}",
                        open.join(", ")
                    ),
                    hint: format!(
                        "phases run at their own times; start with `--phase {}`",
                        open[0]
                    ),
                });
            }
            Ok(open.first().map(|p| (*p).to_owned()))
        }
    }
}

/// Prints the forward order and, for each step, what a failure there undoes.
fn dry_run(plan: &Plan, phase: Option<&str>, out: &mut dyn Write) -> Result<u8, CliError> {
    let selection = Selection {
        phase: phase.map(str::to_owned),
        already_done: Default::default(),
    };
    let schedule = Arc::new(Schedule::new(plan, &selection));
    writeln!(out, "Dry run of \"{}\": nothing is executed.", plan.name)?;
    writeln!(
        out,
        "`{{{{run_dir}}}}` is shown as {}.\n",
        plan_core::RUN_DIR_UNSET
    )?;
    let (effects, _) = simulate(Arc::clone(&schedule), &[]).map_err(CliError::Usage)?;
    writeln!(out, "Forward order ({} steps):", schedule.steps.len())?;
    let mut number = 0;
    let mut last_phase = None;
    let mut last_step: Option<usize> = None;
    for effect in &effects {
        let (Effect::Forward { step, .. } | Effect::Confirm { step }) = effect else {
            continue;
        };
        let Some(ix) = schedule.index_of(step) else {
            continue;
        };
        let Some(s) = plan.step(step) else { continue };
        let phase_name = plan.phases.iter().find(|p| {
            p.entries
                .iter()
                .any(|e| matches!(e, Entry::Step(x) if x.id == s.id))
        });
        if let Some(p) = phase_name {
            if last_phase != Some(p.name.as_str()) {
                let at = p.at.map_or("unscheduled".to_owned(), |a| {
                    format!("at {}", plan_core::duration::format_anchor(a))
                });
                writeln!(out, "\n  phase {} ({at})", p.name)?;
                last_phase = Some(p.name.as_str());
            }
        }
        let scheduled = &schedule.steps[ix];
        let before = last_step.map(|p: usize| &schedule.steps[p]);
        if scheduled.past_no_return && !before.is_some_and(|b| b.past_no_return) {
            writeln!(
                out,
                "  -- point of no return: a failure from here on halts; nothing is reverted"
            )?;
        } else if !scheduled.past_no_return
            && scheduled.rollback_point
                != before.map_or(plan_core::machine::START_POINT, |b| {
                    b.rollback_point.as_str()
                })
        {
            writeln!(out, "  -- rollback point `{}`", scheduled.rollback_point)?;
        }
        last_step = Some(ix);
        number += 1;
        writeln!(
            out,
            "  {number:>3}. {} [{}] {}",
            s.id,
            s.action.kind(),
            s.title
        )?;
        for line in describe(plan, s) {
            writeln!(out, "         {line}")?;
        }
    }
    writeln!(out, "\nRevert plan (a failed step is retried per `retries`; then its check decides whether it left part of its effect, which is undone first; then completed steps are undone in reverse order):")?;
    let mut groups: Vec<(Vec<String>, String, Vec<String>, bool)> = Vec::new();
    for (ix, step) in schedule.steps.iter().enumerate() {
        let (effects, end) =
            simulate(Arc::clone(&schedule), &[FaultPoint::Forward(ix)]).map_err(CliError::Usage)?;
        let reverts: Vec<String> = effects
            .iter()
            .filter_map(|e| {
                if let Effect::Revert { step } = e {
                    Some(step.clone())
                } else {
                    None
                }
            })
            .collect();
        let ending = match end {
            RunEnd::RolledBack { point, .. } => format!("rolled back to `{point}`"),
            RunEnd::Halted { .. } => {
                "halt for the operator (past the point of no return)".to_owned()
            }
            RunEnd::Completed => "completed".to_owned(),
        };
        // A step whose failure undoes its own partial effect stands alone:
        // the line says so.
        let own = reverts.first() == Some(&step.id);
        match groups.last_mut() {
            Some((steps, e, r, false)) if *e == ending && *r == reverts && !own => {
                steps.push(step.id.clone())
            }
            _ => groups.push((vec![step.id.clone()], ending, reverts, own)),
        }
    }
    for (steps, ending, reverts, _) in groups {
        let which = if steps.len() == 1 {
            format!("`{}`", steps[0])
        } else {
            format!("`{}` .. `{}`", steps[0], steps[steps.len() - 1])
        };
        // A failed step whose check finds part of its effect is undone
        // first (the machine asks its check); the rest either way.
        let own = steps.len() == 1 && reverts.first() == Some(&steps[0]);
        let checked = own
            && schedule
                .steps
                .iter()
                .any(|s| s.id == steps[0] && s.checkable);
        // A revert that loses what users did says so where it runs.
        let named = |id: &String| match plan.step(id).and_then(|s| s.loses.as_ref()) {
            Some(loses) => format!("{id} (loses {loses})"),
            None => id.clone(),
        };
        let shown: Vec<String> = reverts.iter().map(named).collect();
        let first = match (own, checked) {
            (true, true) => format!("{} if its check finds part of its effect", shown[0]),
            (true, false) => format!("{} (its revert is safe on a partial effect)", shown[0]),
            (false, _) => String::new(),
        };
        let undo = match (own, shown.len()) {
            (_, 0) => "nothing to undo".to_owned(),
            (true, 1) if checked => format!("undo {first}, else nothing"),
            (true, 1) => format!("undo {first}"),
            (true, _) => format!("undo {first}, then {}", shown[1..].join(", then ")),
            (false, _) => format!("undo {}", shown.join(", then ")),
        };
        writeln!(out, "  if {which} fails: {undo}; {ending}")?;
    }
    Ok(exit_codes::OK)
}

/// The commands a step runs, for the dry run.
fn describe(plan: &Plan, step: &plan_core::Step) -> Vec<String> {
    use plan_core::{Action, Check, Revert, RevertPlan};
    let mut lines = Vec::new();
    match &step.action {
        Action::Shell { host, run, .. } => lines.push(format!("on {host}: {run}")),
        Action::Service {
            host,
            unit,
            state,
            control,
        } => {
            let how = match control {
                plan_core::ServiceControl::Systemd => "systemctl".to_owned(),
                plan_core::ServiceControl::Commands { start, stop, .. } => {
                    if *state == plan_core::ServiceState::Running {
                        start.clone()
                    } else {
                        stop.clone()
                    }
                }
            };
            lines.push(format!("on {host}: {unit} -> {state:?} ({how})"))
        }
        Action::Rsync {
            from,
            to,
            path,
            dest,
            delete,
            ..
        } => lines.push(format!(
            "rsync {from}:{path} -> {to}:{dest}{}",
            if *delete { " (--delete)" } else { "" }
        )),
        Action::DnsTtl { record, ttl } => lines.push(format!(
            "{record} TTL -> {}",
            plan_core::duration::format_duration(*ttl)
        )),
        Action::DnsRecord { record, addresses } => {
            let list: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            lines.push(format!("{record} -> {}", list.join(", ")))
        }
        Action::WaitTtl { record } => lines.push(format!("wait for caches of {record} to expire")),
        Action::Wait(d) => lines.push(format!("wait {}", plan_core::duration::format_duration(*d))),
        Action::WaitUntil(poll) => lines.push(format!(
            "wait until on {}: {} (every {}, at most {})",
            poll.host,
            poll.command,
            plan_core::duration::format_duration(poll.every),
            plan_core::duration::format_duration(poll.within)
        )),
        Action::Manual { prompt, .. } => lines.push(format!("operator: {prompt}")),
        Action::Verify => {}
    }
    match &step.check {
        Some(Check::Run { host, command }) => lines.push(format!("check on {host}: {command}")),
        Some(Check::Tcp { host, port }) => {
            lines.push(format!("check: {host} port {port} accepts connections"))
        }
        Some(Check::Http { url, status }) => lines.push(format!("check: {url} answers {status}")),
        Some(Check::Resolves { record, to }) => {
            lines.push(format!("check: {record} resolves to {to}"))
        }
        Some(Check::Until(poll)) => lines.push(format!(
            "check on {}: until {} (every {}, at most {})",
            poll.host,
            poll.command,
            plan_core::duration::format_duration(poll.every),
            plan_core::duration::format_duration(poll.within)
        )),
        None => {}
    }
    lines.push(match step.revert() {
        RevertPlan::Stated(Revert::Run(command)) => format!("revert: {command}"),
        RevertPlan::Stated(Revert::Manual(text)) => format!("revert by hand: {text}"),
        RevertPlan::Stated(Revert::Irreversible(reason)) => format!("irreversible: {reason}"),
        RevertPlan::Stated(Revert::Nothing(reason)) => {
            format!("revert: nothing to undo ({reason})")
        }
        RevertPlan::RestoreService(_) => "revert: restore the unit's captured state".into(),
        RevertPlan::RestoreRecord => {
            "revert: restore the record's captured addresses and TTL".into()
        }
        RevertPlan::NothingToUndo => "revert: nothing to undo".into(),
    });
    if let Some(deadline) = step.deadline {
        lines.push(format!(
            "deadline {}",
            plan_core::duration::format_duration(deadline)
        ));
    }
    // The environment its commands run with: its host's, the step's over it.
    let env = plan.command_env(step, step.host().unwrap_or(plan_core::Host::LOCAL));
    if !env.is_empty() {
        let shown: Vec<String> = env
            .iter()
            .map(|(name, value)| {
                if plan_core::secret::secret_name(name) {
                    format!("{name}={}", plan_core::secret::REDACTED)
                } else {
                    format!("{name}={}", plan_core::template::quote(value))
                }
            })
            .collect();
        lines.push(format!("env: {}", shown.join(" ")));
    }
    lines
}
