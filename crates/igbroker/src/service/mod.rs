//! What the broker does, independent of how it is asked (HTTP, CLI, demo).

pub mod accounts;
pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod connect;
pub mod graph;
pub mod refresh;
pub mod rotation;
pub mod webhooks;
