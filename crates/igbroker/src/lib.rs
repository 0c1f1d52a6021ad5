//! igbroker: a self-hosted Instagram token broker.
//!
//! The binary (`main.rs`) is a thin shell over this library, so that tests start
//! the real server in-process on port 0.

pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod demo_data;
pub mod error;
pub mod http;
pub mod limits;
pub mod listener;
pub mod otlp;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod stack;
pub mod state;
pub mod telemetry;
pub mod util;
pub mod webhook_net;
pub mod worker;
