//! Background work: everything that runs without a request. Each worker keeps
//! its state in the database under leases, so replicas share the work, and
//! stops on the process's [`Shutdown`](crate::shutdown::Shutdown).
//!
//! - `scheduler`: claims due refreshes and queued webhooks, runs them bounded.
//! - `commit_writer`: stores refreshed tokens in group commits.
//! - `webhooks`: delivers one committed outbox event.
//! - `anomaly`: learns each account's usual use from the audit log, raises anomalies.
//! - `replica`: this process's heartbeat and key ring reloads.
//!
//! Workers call the service layer; the service layer never calls a worker.

pub mod anomaly;
pub mod commit_writer;
pub mod replica;
pub mod scheduler;
pub mod webhooks;
