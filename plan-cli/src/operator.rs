//! The operator at the terminal: the questions a run asks, and the answers
//! flags give in advance (`--yes`, `--assume`).
//!
//! Each question hides the live view, asks on stderr, and waits for a line
//! without blocking the run (see [`crate::prompt`]). A Ctrl-C at a question
//! is an answer too: the safe one for that question (decline, roll back),
//! or, where no answer is safe, stopping the run for `resume`.

use std::sync::{Arc, Mutex};

use plan_core::machine::FailureChoice;
use plan_core::Step;
use plan_steps::driver::{Answer, Operator};
use plan_steps::executor::{CheckError, CheckErrorKind};
use tokio::sync::watch;

use crate::live::View;
use crate::prompt::{self, is_yes, Reply};

/// Why an in-doubt step is asked about, and what to look at before
/// answering.
fn in_doubt_why(step: &Step, why: Option<&CheckError>) -> String {
    match why.map(|w| (w.kind, w.message.as_str())) {
        Some((CheckErrorKind::TimedOut, _)) => {
            "its outcome is unknown and its check ran past its time limit; look by hand".into()
        }
        Some((CheckErrorKind::Unreachable, message)) => format!(
            "its outcome is unknown and its check could not reach the host ({message}); \
             look by another way, or press Ctrl-C and `cutover resume` once the host answers"
        ),
        Some((CheckErrorKind::Failed, message)) => {
            format!("its outcome is unknown and its check could not run ({message})")
        }
        Some((CheckErrorKind::NoCheck, _)) | Some(_) | None
            if step.check.is_none() && !step.action.checks_itself() =>
        {
            "its outcome is unknown and it has no check".into()
        }
        _ => "its outcome is unknown and its check could not settle it".into(),
    }
}

/// Answers of the operator at a terminal, or fixed by flags.
pub struct TtyOperator {
    /// `--yes`: the point of no return is crossed, and a failure rolls back,
    /// without asking. Never a manual step: a person, or `--confirm`.
    pub yes: bool,
    /// `--confirm STEP`: manual steps confirmed in advance, by name.
    pub confirmed: Vec<String>,
    /// `--assume done|not-done` for in-doubt steps without a check.
    pub assume: Option<bool>,
    /// The view, hidden while asking.
    pub view: Arc<Mutex<View>>,
    /// How many times Ctrl-C was pressed (it ends a wait for an answer).
    pub interrupts: watch::Receiver<u32>,
}

impl TtyOperator {
    /// Asks with the live view hidden. The view's lock is never held while
    /// waiting: the Ctrl-C handler and the progress callback take it.
    async fn ask(&mut self, question: &str) -> Result<Reply, String> {
        if let Ok(mut view) = self.view.lock() {
            view.pause();
        }
        let reply = prompt::ask(question, &mut self.interrupts).await;
        if let Ok(mut view) = self.view.lock() {
            view.resume();
        }
        reply
    }

    /// Asks until one of `choices` (lower-cased) is typed.
    async fn choose<T: Copy>(
        &mut self,
        question: &str,
        choices: &[(&[&str], T)],
        on_interrupt: Result<T, String>,
    ) -> Result<T, String> {
        let mut question = question.to_owned();
        loop {
            match self.ask(&question).await? {
                Reply::Interrupted => return on_interrupt,
                Reply::Line(line) => {
                    let line = line.to_ascii_lowercase();
                    if let Some((_, value)) = choices
                        .iter()
                        .find(|(words, _)| words.contains(&line.as_str()))
                    {
                        return Ok(*value);
                    }
                    let words: Vec<String> =
                        choices.iter().map(|(w, _)| format!("`{}`", w[0])).collect();
                    question = format!("  Please type {}:", words.join(" or "));
                }
            }
        }
    }
}

impl Operator for TtyOperator {
    async fn confirm(&mut self, step: &Step) -> Result<Answer<bool>, String> {
        // `--yes` never confirms a manual step: the journal would say a
        // person did what nobody saw.
        if self.confirmed.contains(&step.id) {
            return Ok(Answer::flag(true));
        }
        let prompt = match &step.action {
            plan_core::Action::Manual { prompt, .. } => prompt.clone(),
            _ => step.title.clone(),
        };
        let question = format!(
            "MANUAL STEP `{}`: {}\n  {prompt}\n  Done? (y: done and go on; n or Enter: not done, the run rolls back) [y/N]",
            step.id, step.title
        );
        match self.ask(&question).await? {
            Reply::Line(answer) => Ok(Answer::operator(is_yes(&answer))),
            // Ctrl-C declines the step: the run rolls back.
            Reply::Interrupted => Ok(Answer::operator(false)),
        }
    }

    async fn ask_done(
        &mut self,
        step: &Step,
        why: Option<&CheckError>,
    ) -> Result<Answer<bool>, String> {
        // `--assume` stands in for a check the step does not have, never for
        // one that exists and could not run: that one decides once it can.
        let has_check = step.check.is_some() || step.action.checks_itself();
        if let (Some(done), false) = (self.assume, has_check) {
            return Ok(Answer::flag(done));
        }
        let question = format!(
            "IN DOUBT `{}` ({}): {}.\n  Did it take effect? (y: it did; n: it did not, run it again) [y/n]",
            step.id,
            step.title,
            in_doubt_why(step, why)
        );
        self.choose(
            &question,
            &[(&["y", "yes"], true), (&["n", "no"], false)],
            Err("Ctrl-C at the question about an in-doubt step".into()),
        )
        .await
        .map(Answer::operator)
        .map_err(|e| {
            if has_check {
                format!(
                    "{e}; step `{}` has a check, which could not settle it: once its host \
                     answers, `cutover resume` runs the check again and it decides",
                    step.id
                )
            } else {
                format!(
                    "{e}; step `{}` has no check: look by hand, then `cutover resume --assume \
                     done` (it took effect) or `--assume not-done` (run it again)",
                    step.id
                )
            }
        })
    }

    async fn revert_by_hand(
        &mut self,
        step: &Step,
        instructions: &str,
    ) -> Result<Answer<bool>, String> {
        let question = format!(
            "UNDO BY HAND `{}`: {instructions}\n  Done? (y: undone; n: not undone, the run halts) [y/n]",
            step.id
        );
        self.choose(
            &question,
            &[(&["y", "yes"], true), (&["n", "no"], false)],
            Err("Ctrl-C at an undo by hand".into()),
        )
        .await
        .map(Answer::operator)
    }

    async fn cross_no_return(&mut self, reason: &str) -> Result<Answer<bool>, String> {
        if self.yes {
            return Ok(Answer::flag(true));
        }
        let question = format!(
            "POINT OF NO RETURN: {reason}\n  Every step so far can still be rolled back. Past this point a failure halts for the operator and nothing is reverted.\n  Type `go` to cross it, or `rollback` to undo the run instead:"
        );
        self.choose(
            &question,
            &[(&["go"], true), (&["rollback", "roll back"], false)],
            // Ctrl-C: do not cross; the run rolls back.
            Ok(false),
        )
        .await
        .map(Answer::operator)
    }

    async fn on_failure(
        &mut self,
        step: &Step,
        reason: &str,
        can_roll_back: bool,
    ) -> Result<Answer<FailureChoice>, String> {
        let safe = if can_roll_back {
            FailureChoice::Rollback
        } else {
            FailureChoice::Halt
        };
        if self.yes {
            return Ok(Answer::flag(safe));
        }
        let (offer, choices): (&str, &[(&[&str], FailureChoice)]) = if can_roll_back {
            (
                "[r]etry it, roll [b]ack, or [h]alt here for the operator?",
                &[
                    (&["r", "retry"], FailureChoice::Retry),
                    (&["b", "rollback", "roll back"], FailureChoice::Rollback),
                    (&["h", "halt"], FailureChoice::Halt),
                ],
            )
        } else {
            (
                "Past the point of no return nothing is rolled back: [r]etry it, or [h]alt here for the operator?",
                &[
                    (&["r", "retry"], FailureChoice::Retry),
                    (&["h", "halt"], FailureChoice::Halt),
                ],
            )
        };
        let question = format!("STEP FAILED `{}`: {reason}\n  {offer}", step.id);
        self.choose(&question, choices, Ok(safe))
            .await
            .map(Answer::operator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plan_core::{load_str, Settings, Source};

    /// Two shell steps: `bare` without a check, `checked` with one.
    fn steps() -> (Step, Step) {
        let text = r#"Plan(name: "t", service: "t", window: Window(announced: "5m"),
            phases: [Phase(name: "window", at: "0", steps: [
                Step(id: "bare", action: Shell(on: "local", run: "true", revert: Nothing("none"))),
                Step(id: "checked", action: Shell(on: "local", run: "true", revert: Nothing("none")),
                     check: Run("true")),
            ])])"#;
        let plan = load_str(Source::new("t.ron", text), &Settings::default())
            .plan
            .expect("a valid plan");
        let step = |id: &str| plan.step(id).expect("the step").clone();
        (step("bare"), step("checked"))
    }

    fn why(kind: CheckErrorKind) -> CheckError {
        CheckError {
            message: "host2: connection refused".into(),
            kind,
        }
    }

    #[test]
    fn the_in_doubt_question_says_why_it_is_asked() {
        let (bare, checked) = steps();
        assert_eq!(
            in_doubt_why(&bare, None),
            "its outcome is unknown and it has no check"
        );
        assert_eq!(
            in_doubt_why(&bare, Some(&why(CheckErrorKind::NoCheck))),
            "its outcome is unknown and it has no check"
        );
        let unreachable = in_doubt_why(&checked, Some(&why(CheckErrorKind::Unreachable)));
        assert!(
            unreachable.contains("could not reach the host (host2: connection refused)")
                && unreachable.contains("cutover resume"),
            "{unreachable}"
        );
        assert!(in_doubt_why(&checked, Some(&why(CheckErrorKind::TimedOut)))
            .contains("ran past its time limit"));
        assert!(in_doubt_why(&checked, Some(&why(CheckErrorKind::Failed)))
            .contains("could not run (host2: connection refused)"));
        assert_eq!(
            in_doubt_why(&checked, None),
            "its outcome is unknown and its check could not settle it"
        );
    }
}
