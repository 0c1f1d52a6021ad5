//! `[dev] clock_url`: take "now" from a sandbox so that moving its clock moves ours.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use igbroker_core::Clock;
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Deserialize)]
struct ClockAnswer {
    offset_secs: i64,
}

/// System time plus the sandbox's offset, polled in the background.
#[derive(Clone)]
pub struct RemoteClock {
    offset: Arc<AtomicI64>,
}

impl RemoteClock {
    /// Reads the offset once (so the first `now` is right) and keeps it fresh.
    pub async fn start(
        url: &str,
        shutdown: crate::shutdown::Shutdown,
    ) -> anyhow::Result<RemoteClock> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let first: ClockAnswer = client
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let clock = RemoteClock {
            offset: Arc::new(AtomicI64::new(first.offset_secs)),
        };
        let offset = clock.offset.clone();
        let url = url.to_string();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.wait() => break,
                }
                if let Ok(resp) = client.get(&url).send().await
                    && let Ok(ans) = resp.json::<ClockAnswer>().await
                {
                    offset.store(ans.offset_secs, Ordering::SeqCst);
                }
            }
        });
        Ok(clock)
    }
}

impl Clock for RemoteClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset.load(Ordering::SeqCst))
    }
}

/// A clock that reads a sandbox in the same process (the demo, tests).
#[derive(Clone)]
pub struct SandboxClockAdapter(pub instagram_sandbox::SandboxClock);

impl Clock for SandboxClockAdapter {
    fn now(&self) -> OffsetDateTime {
        self.0.now()
    }
}
