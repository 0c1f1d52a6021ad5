//! The group-commit writer: refreshed tokens from many tasks stored in one
//! transaction, each only while its lease is still held.

use igbroker_store::RefreshCommit;
use tokio::sync::mpsc;

use crate::service::Error;
use crate::service::refresh::Pending;
use crate::state::AppState;

/// Takes whatever results are waiting (up to 256) and stores them together;
/// ends when every sender is gone.
pub async fn run(state: AppState, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(256);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let items: Vec<RefreshCommit> = batch.iter().map(|(i, _)| i.clone()).collect();
        match state.store().commit_refreshes(state.now(), &items).await {
            Ok(stored) => {
                for ((_, ack), ok) in batch.drain(..).zip(stored) {
                    let _ = ack.send(Ok(ok));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (_, ack) in batch.drain(..) {
                    let _ = ack.send(Err(Error::Internal(msg.clone())));
                }
            }
        }
    }
}
