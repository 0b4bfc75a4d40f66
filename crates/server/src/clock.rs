//! The server's one source of wall time. Every timestamp the server stores or sends, and every
//! deadline it derives from them (session expiry, idle timeout, invite expiry), comes from
//! [`Clock::now_ms`]; the waits themselves are tokio timers.

use tokio::time::Instant;

/// Where the server's wall time comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system's clock.
    System,
    /// The system's clock as it was when the server started, moved on by the async runtime's
    /// clock since (`testing.paused_clock`): a test that pauses tokio's clock and advances it
    /// moves the server's wall time and its timers together, so deadlines are exact and nobody
    /// waits for them.
    Runtime {
        /// Wall time at `at`.
        wall: i64,
        at: Instant,
    },
}

impl Clock {
    /// The runtime-following clock, starting from the system's time now.
    pub fn runtime() -> Clock {
        Clock::Runtime {
            wall: system_now_ms(),
            at: Instant::now(),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Runtime { wall, at } => {
                let since = i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX);
                wall.saturating_add(since)
            }
        }
    }
}

fn system_now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Runs `work` within `limit`: `None` when it did not finish in time. Most socket writes finish
/// at once (into a buffer, or the kernel's): those are not given a timer, whose setting up costs
/// more than the write.
pub async fn within<T>(limit: std::time::Duration, work: impl Future<Output = T>) -> Option<T> {
    let mut work = std::pin::pin!(work);
    if let Some(done) = futures_util::FutureExt::now_or_never(&mut work) {
        return Some(done);
    }
    tokio::time::timeout(limit, work).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_runtime_clock_moves_with_the_paused_runtime_and_nothing_else() {
        let clock = Clock::runtime();
        let start = clock.now_ms();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now_ms(), start, "real time passing moves it");
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now_ms(), start + 1500);
    }
}
