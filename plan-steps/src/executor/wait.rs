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
