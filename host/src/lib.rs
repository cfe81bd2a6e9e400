//! The `hostnaming` host: runs the naming component like Spin does, and bootstraps Vault.
//!
//! `manifest` reads spin.toml, `server` serves the component over HTTP (and calls its typed
//! export), `admission` decides how many requests run at once, `outbound` polices and pools
//! its outgoing requests, `gate` lets its instances take turns on a counter, `problem`
//! words the host's own answers, `telemetry` logs each request and `metrics` counts them,
//! `vault` is a small native client used for bootstrap and by tests, and `cli` holds the `hostnaming` commands. The benchmark is a crate of its own
//! (bench/) built on this API.

pub mod admission;
pub mod cli;
pub mod gate;
pub mod manifest;
pub mod metrics;
pub mod outbound;
mod problem;
pub mod server;
pub mod telemetry;
pub mod vault;

pub use manifest::Manifest;
pub use server::{App, Runtime};
