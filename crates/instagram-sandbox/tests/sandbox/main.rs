//! Black-box tests: the sandbox served on loopback, called over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod common;

mod checklist;
mod comments;
mod control;
mod events;
mod faults;
mod fidelity;
mod insights;
mod me;
mod media;
mod oauth;
mod persistence;
mod publish;
mod ratelimit;
mod robustness;
