//! Black-box tests: the sandbox served on loopback, called over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod common;

mod control;
mod me;
mod oauth;
mod persistence;
