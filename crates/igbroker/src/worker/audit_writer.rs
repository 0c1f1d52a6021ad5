//! The audit group-commit writer: entries that record no change (token reads,
//! Graph calls) from many concurrent requests are chained and committed in one
//! transaction, and each request is answered only once its entry is durable.
//!
//! The chain itself is unchanged: a batch takes the shared head row in the
//! database like a single append does, so several replicas still append to one
//! chain, one batch at a time.

use igbroker_store::{AuditEntry, Store};
use tokio::sync::mpsc;

use crate::service::Error;
use crate::service::audit::PendingEntry;

/// The most entries one transaction takes: a batch stays a few milliseconds of work.
pub const MAX_BATCH: usize = 512;

/// Takes whatever entries are waiting (up to [`MAX_BATCH`]) and commits them
/// together; ends when every sender is gone.
pub async fn run(store: Store, mut rx: mpsc::Receiver<PendingEntry>) {
    let mut batch: Vec<PendingEntry> = Vec::with_capacity(MAX_BATCH);
    let mut entries: Vec<AuditEntry> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        entries.extend(batch.iter().map(|(e, _)| e.clone()));
        let result = commit(&store, &entries).await;
        entries.clear();
        metrics::histogram!("igbroker_audit_batch_size").record(batch.len() as f64);
        match result {
            Ok(()) => {
                for (_, ack) in batch.drain(..) {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, entries = batch.len(), "could not commit audit entries");
                for (_, ack) in batch.drain(..) {
                    let _ = ack.send(Err(Error::Unavailable(
                        "the audit log could not be written, so nothing was handed out; retry"
                            .into(),
                    )));
                }
            }
        }
    }
}

async fn commit(
    store: &Store,
    entries: &[AuditEntry],
) -> std::result::Result<(), igbroker_store::StoreError> {
    let mut tx = store.begin().await?;
    tx.append_audit(entries).await?;
    tx.commit().await
}
