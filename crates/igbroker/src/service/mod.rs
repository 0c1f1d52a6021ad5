//! What the broker does, independent of how it is asked (HTTP, CLI, demo,
//! workers). Every rule lives here, and every function returns [`Error`].
//!
//! The modules form a chain; each imports only those above it, never one below:
//!
//! ```text
//! error, audit          (no rule module)
//! sign_in               dashboard sign-ins and their sessions
//! apps                  registrations, their secrets
//! events                the payload of every event for the owning service
//! accounts              reading, showing and revoking accounts
//! meta                  Meta's deauthorize and data-deletion callbacks
//! doctor                the registration checks of `apps doctor` (and two probes of Instagram)
//! anomaly               usage anomalies; suspending and resuming accounts
//! instagram_webhooks    Meta's webhooks for an app, relayed to the owning service
//! connect               sessions, the callback, import, marking re-auth
//! refresh               one token's refresh under its lease
//! tokens                handing a token out (may refresh first)
//! upstream_budget       Instagram's rate-limit figures and holds, shared by the replicas
//! pages                 followable paging links (pure)
//! graph                 Graph API calls made with an account's token
//! publish               publishing media, once per Idempotency-Key
//! ```
//!
//! `api_keys`, `rotation` and `dashboard` (the overview's counts, an account's history,
//! the apps page's reads) stand apart: they use only `error`. A state change, its audit
//! entry and its event are written on one `igbroker_store::Tx`.

pub mod error;

pub mod audit;

pub mod sign_in;

pub mod apps;

pub mod events;

pub mod accounts;

pub mod meta;

pub mod doctor;

pub mod anomaly;
pub mod instagram_webhooks;

pub mod connect;

pub mod refresh;

pub mod tokens;

pub mod upstream_budget;

pub mod pages;

pub mod graph;

pub mod publish;

pub mod api_keys;
pub mod dashboard;
pub mod rotation;

pub use error::{Error, Result};
