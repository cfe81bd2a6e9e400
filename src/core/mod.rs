//! The service without I/O: what a valid request is, how a name is spelled, how numbers are
//! taken and names recorded in Vault KV v2, and what Vault's answers mean. Everything here
//! runs natively under a stub Vault ([`allocate::Env`]) and in the component over wasi:http.

pub mod allocate;
pub mod error;
pub mod failover;
pub mod idempotency;
pub mod metadata;
pub mod names;
pub mod registry;
pub mod retry;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;
pub mod time;
pub mod validate;
pub mod vault;
