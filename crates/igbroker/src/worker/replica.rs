//! This broker's entry in the replica registry: the key versions it holds, refreshed by a
//! heartbeat, so that `igbroker keys rotate` can refuse a key some live replica lacks.
//!
//! The heartbeat also re-reads the ring file, so `keys add` and `keys rotate` reach a running
//! broker without a restart: a new version becomes openable, a new current key starts sealing.
//! Heartbeats use the machine's wall clock, not the broker's (possibly simulated) clock:
//! liveness is about processes, not token lifetimes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use igbroker_store::{ReplicaRow, Store};
use igbroker_vault::KeyRing;
use tokio::task::JoinHandle;

use crate::shutdown::Shutdown;
use crate::state::AppState;

/// How often a replica says it is alive and re-reads the ring file.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A replica whose last heartbeat is older than this is presumed gone.
pub const LIVE_WITHIN_SECS: i64 = 60;
/// Rows of replicas silent this long are deleted by the others.
const FORGET_AFTER_SECS: i64 = 7 * 86_400;

pub fn wall_clock_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Replicas that sent a heartbeat within [`LIVE_WITHIN_SECS`].
pub async fn live_replicas(store: &Store) -> Result<Vec<ReplicaRow>, igbroker_store::StoreError> {
    store
        .live_replicas(wall_clock_now() - LIVE_WITHIN_SECS)
        .await
}

/// Registers this node (before returning, so a `keys rotate` started right after sees it)
/// and keeps its row fresh every [`HEARTBEAT`] until `shutdown`, then removes the row.
pub async fn register_and_heartbeat(state: AppState, shutdown: Shutdown) -> JoinHandle<()> {
    register_with_interval(state, shutdown, HEARTBEAT).await
}

/// [`register_and_heartbeat`] with another period (tests).
pub async fn register_with_interval(
    state: AppState,
    shutdown: Shutdown,
    every: Duration,
) -> JoinHandle<()> {
    let started_at = wall_clock_now();
    let description = describe(&state);
    beat(&state, &description, started_at).await;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait() => break,
            }
            reload_ring(&state);
            beat(&state, &description, started_at).await;
        }
        if let Err(e) = state.store().remove_replica(state.node_id()).await {
            tracing::warn!(error = %e, "could not remove this replica from the registry");
        }
    })
}

async fn beat(state: &AppState, description: &str, started_at: i64) {
    let row = replica_row(state, description, started_at);
    if let Err(e) = state.store().upsert_replica(&row).await {
        tracing::warn!(error = %e, "replica heartbeat failed");
    }
    if let Err(e) = state
        .store()
        .prune_replicas(row.heartbeat_at - FORGET_AFTER_SECS)
        .await
    {
        tracing::debug!(error = %e, "pruning stale replicas failed");
    }
}

fn replica_row(state: &AppState, description: &str, started_at: i64) -> ReplicaRow {
    let ring = state.vault().ring();
    let versions = ring.versions();
    ReplicaRow {
        node_id: state.node_id().to_string(),
        description: description.to_string(),
        key_versions: versions
            .iter()
            .map(|(v, _)| v.to_string())
            .collect::<Vec<_>>()
            .join(","),
        fingerprints: versions
            .iter()
            .filter_map(|(v, _)| ring.fingerprint(*v).map(|fp| format!("{v}:{fp}")))
            .collect::<Vec<_>>()
            .join(","),
        current_version: i64::from(ring.current_version()),
        started_at,
        heartbeat_at: wall_clock_now(),
    }
}

fn describe(state: &AppState) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into());
    format!(
        "host {host}, pid {}, listening on {}",
        std::process::id(),
        state.config().listen
    )
}

/// What a reload of the ring file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingReload {
    /// The ring comes from IGBROKER_KEYS__RING, which cannot change under a running process.
    FromEnvironment,
    Unchanged,
    Reloaded {
        current: u32,
    },
    /// The file could not be read or would drop or change a key this broker holds; the
    /// broker keeps its ring (and says why in the log).
    Refused(String),
}

/// Re-reads the ring file and switches the vault to it when it only adds versions or changes
/// states. A file that lost a key or holds other material under a known version is refused:
/// records sealed with the old key must stay readable.
pub fn reload_ring(state: &AppState) -> RingReload {
    if state.config().keys.ring.is_some() {
        return RingReload::FromEnvironment;
    }
    let outcome = match KeyRing::load_file(&state.config().keys.ring_file) {
        Ok(next) => apply(state, next),
        Err(e) => RingReload::Refused(e.to_string()),
    };
    match &outcome {
        RingReload::Reloaded { current } => {
            tracing::info!(current_version = current, "key ring reloaded")
        }
        RingReload::Refused(why) => {
            tracing::warn!(reason = %why, "key ring file not reloaded; keeping the ring in use")
        }
        _ => {}
    }
    outcome
}

fn apply(state: &AppState, next: KeyRing) -> RingReload {
    let held = state.vault().ring();
    for (v, _) in held.versions() {
        match next.fingerprint(v) {
            None => {
                return RingReload::Refused(format!(
                    "the ring file no longer holds key v{v}; restart the broker to drop a key"
                ));
            }
            Some(fp) if Some(fp.as_str()) != held.fingerprint(v).as_deref() => {
                return RingReload::Refused(format!(
                    "the ring file holds different key material under v{v} than this broker loaded"
                ));
            }
            Some(_) => {}
        }
    }
    if next.versions() == held.versions() {
        return RingReload::Unchanged;
    }
    let current = next.current_version();
    state.vault().replace_ring(next);
    RingReload::Reloaded { current }
}
