//! hostnaming: hostnames that are unique across an estate, forever.
//!
//! The pure pieces (validation, the KV v2 protocol, retry policy, the allocation loop,
//! error mapping) compile and are unit-tested natively. `component` (wasm32 only) wires
//! them to Spin: the `wasi:http` handler, the typed `hostnaming:naming/allocator` export,
//! Spin variables and outbound HTTP.

pub mod allocate;
pub mod auth;
pub mod error;
pub mod failover;
pub mod idempotency;
pub mod names;
pub mod problem;
pub mod registry;
pub mod request;
pub mod retry;
pub mod routes;
pub mod template;
pub mod time;
pub mod validate;
pub mod vault;

#[cfg(target_arch = "wasm32")]
mod component;
