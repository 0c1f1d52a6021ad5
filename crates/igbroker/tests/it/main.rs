//! igbroker's integration tests, one binary: a broker and a sandbox per test, on loopback,
//! each with its own database (a SQLite file, or a fresh PostgreSQL database on the server
//! named by `TEST_PG_URL`).
//!
//! To add a test module: create `tests/it/<topic>.rs` starting with a `//!` line that says
//! what it proves, add `mod <topic>;` below, and take what it needs from `crate::common`
//! (`TestEnv`, `both_backends!`, the sandbox control client as `env.sb`). Drive the sandbox
//! through `env.sb` (its typed control client), never with hand-written `/_sandbox` JSON.
//! Run one module with `cargo test -p igbroker --test it <topic>::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

mod cli;
mod cli_admin;
mod cli_verbs;
mod dashboard;
mod demo;
mod fidelity;
mod flow;
mod followable_pages;
mod meta_callbacks;
mod observability;
mod openapi;
mod otlp;
mod perf_paths;
mod publishing;
mod refresh;
mod refresh_soak;
mod replicas;
mod request_ids;
mod service_layer;
mod storage;
mod trust_boundary;
mod upstream_budget;
