//! `WaitUntil` and `check: Until(..)`: a command polled until it exits 0.

use std::time::Duration;

use plan_core::{Poll, Step};

use super::dispatch::Cancel;
use super::failure::Failure;
use super::{Executor, Transcript};
use crate::command::ExitKind;

/// Runs `poll`'s command every `poll.every` until it exits 0 (`true`) or
/// `poll.within` has passed since the first try (`false`, after one last
/// try). Only the last try's output is kept, with a line saying how many
/// tries it took. A try that cannot run (the host is unreachable) fails the
/// poll; one that runs past its own deadline counts as not holding.
pub(super) async fn poll(
    ex: &Executor,
    step: &Step,
    poll: &Poll,
    transcript: &mut Transcript,
    mut cancel: Cancel<'_>,
) -> Result<bool, Failure> {
    let started = tokio::time::Instant::now();
    let give_up = started + poll.within;
    // A single try may take no longer than what is left of `within` (and
    // at least a second: a command needs a moment to start).
    let mut tries = 0u32;
    loop {
        tries += 1;
        let left = give_up.saturating_duration_since(tokio::time::Instant::now());
        let command = ex.command(
            step,
            &poll.host,
            &poll.command,
            Some(left.max(Duration::from_secs(1))),
        );
        let mut this_try = Transcript::default();
        let outcome = ex
            .exec(
                &step.id,
                &poll.host,
                &command,
                cancel.as_mut(),
                &mut this_try,
            )
            .await?;
        let holds = outcome.status == ExitKind::Exited(0);
        let now = tokio::time::Instant::now();
        if holds || now >= give_up {
            transcript.text.push_str(&this_try.text);
            transcript.note(&format!(
                "[{}] {} after {} tr{} in {:.1}s (every {}, within {})",
                poll.host,
                if holds { "held" } else { "did not hold" },
                tries,
                if tries == 1 { "y" } else { "ies" },
                (now - started).as_secs_f64(),
                plan_core::duration::format_duration(poll.every),
                plan_core::duration::format_duration(poll.within)
            ));
            return Ok(holds);
        }
        let next = (now + poll.every).min(give_up);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = cancel.as_mut() => return Err(Failure::InDoubt("cancelled while polling".into())),
        }
    }
}

/// One try of `poll`'s command: whether it holds now (an in-doubt
/// `WaitUntil` is done when its condition holds).
pub(super) async fn holds_now(
    ex: &Executor,
    step: &Step,
    poll: &Poll,
    transcript: &mut Transcript,
    cancel: Cancel<'_>,
) -> Result<bool, Failure> {
    let command = ex.command(step, &poll.host, &poll.command, Some(super::CHECK_DEADLINE));
    let outcome = ex
        .exec(&step.id, &poll.host, &command, cancel, transcript)
        .await?;
    Ok(outcome.status == ExitKind::Exited(0))
}
