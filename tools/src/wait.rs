//! Waiting for something the databases do on their own time (a replica
//! catching up, a slot being released), with a deadline.

use std::time::{Duration, Instant};

use crate::db::ToolResult;

/// Calls `attempt` every `interval` until it answers `Some`, and returns
/// that; `None` once `timeout` has passed without it. Errors end the wait.
pub async fn until<T>(
    timeout: Duration,
    interval: Duration,
    mut attempt: impl AsyncFnMut() -> ToolResult<Option<T>>,
) -> ToolResult<Option<T>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(done) = attempt().await? {
            return Ok(Some(done));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(interval.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_or_times_out() {
        let mut calls = 0;
        let got = until(Duration::from_secs(5), Duration::from_millis(1), async || {
            calls += 1;
            Ok((calls == 3).then_some(calls))
        })
        .await
        .unwrap();
        assert_eq!(got, Some(3));
        let never: Option<()> =
            until(Duration::from_millis(20), Duration::from_millis(5), async || Ok(None)).await.unwrap();
        assert_eq!(never, None);
    }
}
