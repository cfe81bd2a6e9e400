//! hostnaming: hostnames that are unique across an estate, forever.
//!
//! The crate has three rooms:
//!
//! - [`core`]: the service itself, with no I/O. Validation, name templates, the allocation
//!   loop, idempotency keys, the name registry, record reads and listings, the Vault KV v2
//!   protocol as data, failover between Vault nodes, retry policy. Vault is reached through
//!   [`core::allocate::Env`], so all of it compiles and is unit-tested natively.
//! - [`api`]: the HTTP API over the core: routes, request parsing, answer bodies, who may
//!   call, problem documents and the OpenAPI document. Also free of I/O, so the native host
//!   can build its own problem documents with it.
//! - `spin` (wasm32 only): the Spin adapter. Configuration from Spin variables, the wasi:http
//!   Vault client, one handler per route behind the `wasi:http` export, and the typed
//!   `hostnaming:naming/allocator` export.

pub mod api;
pub mod core;

#[cfg(target_arch = "wasm32")]
mod spin;
