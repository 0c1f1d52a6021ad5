//! igbroker's domain: identifiers, scopes, statuses, the refresh policy and the clock.
//!
//! Nothing here does I/O: storage, HTTP and Instagram live in other crates and call in.

pub mod account;
pub mod anomaly;
pub mod clock;
pub mod graph_policy;
pub mod ids;
pub mod key_policy;
pub mod net_policy;
pub mod refresh_policy;
pub mod scopes;
pub mod secrets;
pub mod signed_request;
pub mod urls;

pub use account::{AccountStatus, ConnectSessionStatus, RefreshState};
pub use clock::{Clock, FixedClock, SystemClock};
pub use ids::{IdError, IdKind, PrefixedId};
pub use refresh_policy::{RefreshCheck, RefreshPolicy};
pub use scopes::{ApiScope, InstagramScope, ScopeError};
