//! One write transaction: a state change, its audit entry and its outbox event are
//! written on the same `Tx` and become visible together at `commit`, or not at all
//! (dropping a `Tx` without committing rolls it back).
//!
//! On SQLite the writer pool holds one connection, so while a `Tx` is open every
//! other write of this process waits: keep it short, and never call a `Store`
//! method that writes while holding one (it would wait for this very `Tx`).

use sqlx::{Any, AnyConnection, Transaction};

use crate::{AuditEntry, Store, StoreError};

pub struct Tx {
    inner: Transaction<'static, Any>,
    audit_key: Option<std::sync::Arc<igbroker_vault::KeyMaterial>>,
}

impl Store {
    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx {
            inner: self.w().begin().await?,
            audit_key: self.audit_key.clone(),
        })
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.inner.commit().await?;
        Ok(())
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }

    pub(crate) fn raw(&mut self) -> &mut Transaction<'static, Any> {
        &mut self.inner
    }

    /// Appends audit entries to the hash chain, committed with the rest.
    pub async fn append_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let key = self.audit_key.clone();
        crate::audit::append_in_tx(self.raw(), key.as_deref(), entries).await
    }
}
