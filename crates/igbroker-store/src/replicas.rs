//! The registry of running brokers and the key versions each holds.

use sqlx::FromRow;

use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ReplicaRow {
    pub node_id: String,
    /// Host, pid and listen address, for messages that must name the process.
    pub description: String,
    /// Comma-separated versions, e.g. `"1,2"`.
    pub key_versions: String,
    /// Comma-separated `version:fingerprint` pairs (public fingerprints, never keys).
    pub fingerprints: String,
    pub current_version: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

impl ReplicaRow {
    pub fn versions(&self) -> Vec<u32> {
        self.key_versions
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    }

    pub fn fingerprint(&self, version: u32) -> Option<&str> {
        self.fingerprints.split(',').find_map(|pair| {
            let (v, fp) = pair.split_once(':')?;
            (v.trim().parse::<u32>().ok()? == version).then_some(fp.trim())
        })
    }
}

const COLUMNS: &str =
    "node_id, description, key_versions, fingerprints, current_version, started_at, heartbeat_at";

impl Store {
    /// Registers a replica or refreshes its heartbeat and key versions.
    pub async fn upsert_replica(&self, r: &ReplicaRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO replicas (node_id, description, key_versions, fingerprints, current_version, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (node_id) DO UPDATE SET description = $2, key_versions = $3, fingerprints = $4,
                current_version = $5, heartbeat_at = $7",
        )
        .bind(&r.node_id)
        .bind(&r.description)
        .bind(&r.key_versions)
        .bind(&r.fingerprints)
        .bind(r.current_version)
        .bind(r.started_at)
        .bind(r.heartbeat_at)
        .execute(self.w())
        .await?;
        Ok(())
    }

    pub async fn remove_replica(&self, node_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM replicas WHERE node_id = $1")
            .bind(node_id)
            .execute(self.w())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replicas whose last heartbeat is at or after `since`.
    pub async fn live_replicas(&self, since: i64) -> Result<Vec<ReplicaRow>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM replicas WHERE heartbeat_at >= $1 ORDER BY node_id");
        Ok(sqlx::query_as::<_, ReplicaRow>(sqlx::AssertSqlSafe(sql))
            .bind(since)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Forgets replicas that stopped without saying so (killed, host lost) long ago.
    pub async fn prune_replicas(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM replicas WHERE heartbeat_at < $1")
            .bind(before)
            .execute(self.w())
            .await?;
        Ok(done.rows_affected())
    }
}
