//! igbroker's storage: one `Store` over SQLite (one machine) or PostgreSQL (many
//! replicas), with per-backend migrations and the same queries on both.
//!
//! Columns stay in the portable subset of `sqlx::Any` (TEXT, BIGINT, BLOB/BYTEA):
//! times are unix seconds, flags are 0/1 integers. Rows come out typed: a stored value this
//! version does not know is an error naming the row, never a silent default.

mod accounts;
mod api_keys;
mod apps;
mod audit;
mod batch;
mod connect_sessions;
mod dashboard;
mod error;
mod instagram_relay;
mod meta;
mod pool;
mod publish;
mod replicas;
mod rotation;
mod scheduler;
#[cfg(feature = "test-support")]
pub mod test_support;
mod trust;
mod tx;
mod upstream_budgets;
mod usage;
mod webhooks;

pub use accounts::{
    AccountFilter, AccountRow, NewAccount, RefreshCommit, TokenUpdate, list_accounts_sql,
    list_accounts_sql_postgres,
};
pub use api_keys::ApiKeyRow;
pub use apps::AppRow;
pub use audit::{AuditEntry, AuditRow, ChainCheck, plain_link};
pub use connect_sessions::ConnectSessionRow;
pub use dashboard::UiSessionRow;
pub use error::StoreError;
pub use instagram_relay::{RelaySettings, RelayTarget};
pub use meta::{DataDeletionRow, Deleted};
pub use pool::{Backend, Store};
pub use publish::{PublishAttempt, PublishOutcome, PublishRequestRow};
pub use replicas::ReplicaRow;
pub use rotation::{SealedColumn, SealedPage, SealedSwap, SealedValue};
pub use scheduler::claim_due_sql;
pub use scheduler::{AccountGauges, Claimed};
pub use tx::Tx;
pub use upstream_budgets::BudgetRow;
pub use usage::{BaselineRow, UsageEntry};
pub use webhooks::{OutboxRow, WebhookDelivery, WebhookSecrets};
