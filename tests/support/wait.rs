//! Waiting inside async tests (the runtime keeps running meanwhile).

use std::time::Duration;

/// Waits until `cond` holds, or fails after `limit`: the async form of
/// `process::wait_until`.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}
