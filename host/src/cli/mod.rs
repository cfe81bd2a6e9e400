//! The `hostnaming` commands, one module each: an `Args` struct for clap and an
//! `execute(args)` that runs it. In the library, so that the benchmark's service is
//! started through exactly the code path `hostnaming serve` runs.

pub mod bootstrap;
pub mod serve;
pub mod token;
