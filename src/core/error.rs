//! The one error type of an allocation, shared by the typed WIT export and the HTTP API.

use crate::core::validate::FieldError;
use crate::core::vault::Fault;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamingError {
    /// A field failed validation; nothing was written.
    InvalidInput(FieldError),
    /// The name would exceed one DNS label; nothing was written.
    NameTooLong { length: usize },
    /// Vault unreachable, sealed, failing, or its mount missing.
    VaultUnavailable(String),
    /// Vault refused the token (the text never contains it).
    VaultDenied(String),
    /// Check-and-set lost to concurrent writers until the deadline.
    ContentionExhausted { attempts: u32 },
    /// A variable is missing or malformed.
    Misconfigured(String),
    /// The idempotency key was first used with another payload.
    IdempotencyMismatch,
    /// A request with the same idempotency key is still being served.
    InFlight,
    /// No name record by that hostname.
    NotFound(String),
    /// A change was made on the condition that the record was still at a version, and it
    /// had moved on (`If-Match`).
    PreconditionFailed { current: u64 },
}

impl From<FieldError> for NamingError {
    fn from(e: FieldError) -> Self {
        Self::InvalidInput(e)
    }
}

impl From<Fault> for NamingError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Denied(m) => Self::VaultDenied(m),
            Fault::Unavailable(m) | Fault::MountMissing(m) | Fault::Unexpected(m) => {
                Self::VaultUnavailable(m)
            }
        }
    }
}
