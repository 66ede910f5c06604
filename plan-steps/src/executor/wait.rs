//! The `Wait` action: a fixed wait, which leaves nothing behind to check or undo.

use std::time::Duration;

use super::dispatch::Cancel;
use super::failure::Failure;

/// Waits `duration`, unless cancelled first.
pub(super) async fn forward(duration: Duration, cancel: Cancel<'_>) -> Result<(), Failure> {
    tokio::select! {
        () = tokio::time::sleep(duration) => Ok(()),
        () = cancel => Err(Failure::InDoubt("cancelled while waiting".into())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use plan_core::machine::Event;

    use super::super::test_plan::{plan, scratch};
    use super::super::Executor;

    fn pending() -> std::future::Pending<()> {
        std::future::pending()
    }

    #[tokio::test]
    async fn a_wait_waits_and_leaves_nothing_to_check_or_undo() {
        let dir = scratch();
        let ex = Executor::new(plan(
            dir.path(),
            "",
            r#"Step(id: "pause", action: Wait("200ms"))"#,
        ));
        let started = Instant::now();
        let (event, _) = ex.forward("pause", pending()).await;
        assert_eq!(
            event,
            Event::StepSucceeded {
                step: "pause".into()
            }
        );
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        // In doubt, a wait is run again: nothing shows it happened.
        assert_eq!(ex.check("pause", pending()).await.0, Ok(false));
        let (event, _) = ex.revert("pause", None, pending()).await;
        assert_eq!(
            event,
            Event::RevertSucceeded {
                step: "pause".into()
            }
        );
    }

    #[tokio::test]
    async fn a_cancelled_wait_is_in_doubt() {
        let dir = scratch();
        let ex = Executor::new(plan(
            dir.path(),
            "",
            r#"Step(id: "pause", action: Wait("1h"))"#,
        ));
        let (event, _) = ex.forward("pause", std::future::ready(())).await;
        assert_eq!(
            event,
            Event::StepInDoubt {
                step: "pause".into(),
                reason: "cancelled while waiting".into()
            }
        );
    }
}
