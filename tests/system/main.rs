//! The system tests: one binary, so wasmtime is linked and the component compiled once.
//! Every test starts its own OpenBao (or 3-node Raft cluster) and serves the real
//! component through the real host ([`hostnaming_testkit`]); some run the real
//! `hostnaming` binary.

mod auth;
mod bootstrap;
mod cli;
mod cluster;
mod component_shape;
mod faults;
mod generate;
mod host_ops;
mod kill;
mod operators;
mod page;
mod registry;
mod runtimes;
mod schemathesis;
mod secrets;
