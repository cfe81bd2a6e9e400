//! The HTTP API over [`crate::core`]: which routes exist, how a request is read, who may
//! call, and how every failure becomes a problem document. No I/O here either: the Spin
//! adapter moves the bytes, and the native host uses [`problem`] for its own answers.

pub mod auth;
pub mod export;
pub mod problem;
pub mod request;
pub mod response;
pub mod routes;
pub mod ui;

/// The OpenAPI 3.1 description of every route (src/api/openapi.json, its indentation
/// removed by the build script).
pub const OPENAPI: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));
