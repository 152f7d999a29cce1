//! Waiting in the tests: look every so often until what is awaited is there, or fail at a
//! timeout with what the last look saw instead. The one polling loop of the tests.

use anyhow::{Result, ensure};
use std::time::{Duration, Instant};

/// Looks every `every` until `look` finds what it waits for (`Ok(value)`), or fails once
/// `timeout` has passed with what the last look saw instead (`Err(seen)`). An error of
/// `look` itself ends the wait at once.
pub async fn until<T>(
    timeout: Duration,
    every: Duration,
    mut look: impl AsyncFnMut() -> Result<Result<T, String>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match look().await? {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        ensure!(Instant::now() < deadline, "after {timeout:?}: {seen}");
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_value_comes_back_once_a_look_finds_it() -> Result<()> {
        let mut looks = 0;
        let found = until(Duration::from_secs(5), Duration::ZERO, async || {
            looks += 1;
            Ok(if looks == 3 {
                Ok(looks)
            } else {
                Err(format!("look {looks}"))
            })
        })
        .await?;
        assert_eq!(found, 3);
        Ok(())
    }

    #[tokio::test]
    async fn at_the_timeout_the_error_says_what_the_last_look_saw() {
        let error = until::<()>(Duration::ZERO, Duration::ZERO, async || {
            Ok(Err("2 of 3 ready".to_owned()))
        })
        .await
        .unwrap_err();
        assert!(error.to_string().ends_with(": 2 of 3 ready"), "{error}");
    }
}
