//! The bootstrap's error policy: a boot is a loop of rounds (read, decide, act), and a failed
//! call to AWS or the engine only costs a round. At boot both may be busy or still starting,
//! and a node that gives up at its first error never joins at all.

use std::time::Duration;

// Tokio's clock, not std's: the tests pause it and the deadline moves with it.
use tokio::time::Instant;

use swarm_aws::error::{Error, error_chain};

use crate::BootstrapError;

/// How a run of rounds ended, short of an error that is not retried.
#[derive(Debug)]
pub enum Rounds<T> {
    /// A round gave the value.
    Done(T),
    /// The deadline came first; the last failed call, if there was one.
    OutOfTime(Option<Box<Error>>),
}

/// The pause after a failed call.
const PAUSE: Duration = Duration::from_secs(2);

/// Runs `round` until it gives a value or `deadline` has passed. A round returns `None` to
/// be run again (it sleeps itself when it waits on someone). A failed call is logged and
/// retried after a pause; any other error ends the run at once.
pub async fn retrying<T>(
    deadline: Duration,
    mut round: impl AsyncFnMut() -> Result<Option<T>, BootstrapError>,
) -> Result<Rounds<T>, BootstrapError> {
    let started = Instant::now();
    let mut last_error = None;
    while started.elapsed() < deadline {
        match round().await {
            Ok(Some(value)) => return Ok(Rounds::Done(value)),
            Ok(None) => {}
            Err(BootstrapError::Adapter(error)) if retried(&error) => {
                tracing::warn!(step = "retry", error = %error, cause = error_chain(&error).as_deref(), "a call failed: retrying");
                last_error = Some(Box::new(error));
                tokio::time::sleep(PAUSE).await;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(Rounds::OutOfTime(last_error))
}

/// Runs `read` until it answers or `patience` has passed, a pause between tries: for a read
/// nothing can go on without that may fail for a moment at boot (instance metadata, whose
/// connection can time out while the instance is at its busiest), and answers the same when
/// it answers at all.
pub async fn patiently<T>(
    patience: Duration,
    mut read: impl AsyncFnMut() -> Result<T, BootstrapError>,
) -> Result<T, BootstrapError> {
    let started = Instant::now();
    loop {
        match read().await {
            Ok(value) => return Ok(value),
            Err(error) if started.elapsed() < patience => {
                tracing::warn!(step = "retry", error = %error, cause = std::error::Error::source(&error).map(ToString::to_string), "cannot read it yet: retrying");
                tokio::time::sleep(PAUSE).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether a failed call is worth another round: any call to AWS or the engine, not a record
/// this code cannot read or a certificate it cannot make, which fail the same way again.
fn retried(error: &Error) -> bool {
    !matches!(error, Error::MalformedRecord(_) | Error::Certificate { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamodb_down() -> BootstrapError {
        BootstrapError::Adapter(Error::DynamoDb {
            call: "GetItem",
            source: "connection refused".into(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_call_costs_a_round_and_the_next_round_goes_on() {
        let mut calls = 0;
        let outcome = retrying(Duration::from_secs(60), async || {
            calls += 1;
            if calls < 3 {
                Err(dynamodb_down())
            } else {
                Ok(Some(calls))
            }
        })
        .await;
        assert!(matches!(outcome, Ok(Rounds::Done(3))));
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_deadline_the_last_failed_call_is_given_back() {
        let outcome = retrying::<()>(Duration::from_secs(10), async || Err(dynamodb_down())).await;
        let Ok(Rounds::OutOfTime(Some(last))) = outcome else {
            panic!("{outcome:?}");
        };
        assert!(last.to_string().contains("GetItem"));
    }

    fn metadata_timeout() -> BootstrapError {
        BootstrapError::Metadata {
            what: "/latest/meta-data/instance-id",
            source: "HTTP connect timeout occurred after 5s".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_that_fails_at_boot_is_tried_again_until_it_answers() {
        let mut reads = 0;
        let answer = patiently(Duration::from_secs(60), async || {
            reads += 1;
            if reads < 4 {
                Err(metadata_timeout())
            } else {
                Ok("i-0598c7d356eba48d7")
            }
        })
        .await;
        assert_eq!(answer.ok(), Some("i-0598c7d356eba48d7"));
        assert_eq!(reads, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_that_never_answers_fails_once_patience_has_passed() {
        let started = Instant::now();
        let answer =
            patiently::<()>(Duration::from_secs(60), async || Err(metadata_timeout())).await;
        assert!(matches!(answer, Err(BootstrapError::Metadata { .. })));
        assert!(started.elapsed() >= Duration::from_secs(60));
        assert!(started.elapsed() < Duration::from_secs(63));
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_this_code_cannot_read_ends_the_run_at_once() {
        let mut calls = 0;
        let outcome = retrying::<()>(Duration::from_secs(60), async || {
            calls += 1;
            Err(BootstrapError::Adapter(Error::MalformedRecord(
                "no status".into(),
            )))
        })
        .await;
        assert!(matches!(
            outcome,
            Err(BootstrapError::Adapter(Error::MalformedRecord(_)))
        ));
        assert_eq!(calls, 1);
    }
}
