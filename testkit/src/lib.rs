//! The test kit: everything the tests, the provider's acceptance tests, the benchmark and
//! the scripts need to stand the service up for real.
//!
//! - [`openbao`]: an OpenBao server (dev, or single-node Raft on files) or a 3-node Raft
//!   cluster, bootstrapped with the `hostnaming` mount and policy, stopped when dropped;
//! - [`service`]: the real component served by the real host, in-process, on a free port;
//! - [`proxy`]: an HTTP proxy in front of Vault that holds or delays calls (faults);
//! - [`client`]: one-shot HTTP requests as tests look at them;
//! - [`ports`]: free loopback ports, and waiting until something listens.
//!
//! The build script builds the wasm components, so `cargo test` needs no step before it.

pub mod client;
pub mod openbao;
pub mod ports;
pub mod proxy;
pub mod service;
pub mod spin;

/// The native Vault client the kit's servers are driven with.
pub use hostnaming_host::vault;

pub use client::{request, request_with, try_request_with, Resp};
pub use openbao::{Bao, Cluster, Storage, MOUNT};
pub use ports::{free_port, wait_listening};
pub use proxy::{Cut, Proxy};
pub use service::{runtime, workspace, Service};
pub use spin::SpinService;

/// The naming component, built by this crate's build script.
pub const COMPONENT: &str = env!("HOSTNAMING_COMPONENT");
/// The benchmark's floor component (bench/floor), built by this crate's build script.
pub const FLOOR_COMPONENT: &str = env!("HOSTNAMING_FLOOR");
