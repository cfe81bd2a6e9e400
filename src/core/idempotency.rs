//! Idempotency keys (draft-ietf-httpapi-idempotency-key-header): the key, the fingerprint
//! of the payload it was first used with, and the record that ties a key to its names.
//!
//! A key's record (`idempotency/{sha256(key)}`) is created with cas = 0 as `pending` with a
//! lease, then records the names reserved for it *before* they are claimed, then becomes
//! `done` with the answer. Whoever finds a pending record whose lease ran out (its owner
//! died or stalled) takes it over with check-and-set and finishes the same reservation, so
//! a key never gets two sets of names.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::metadata::Metadata;
use crate::core::validate::{FieldError, Tuple};
use crate::core::vault::Record;

/// The header's longest accepted value.
pub const MAX_KEY: usize = 255;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A validated `Idempotency-Key` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Accepts the draft's structured-field string (`"..."`) and, leniently, a bare token.
    pub fn parse(header: &str) -> Result<Self, FieldError> {
        let trimmed = header.trim();
        let inner = trimmed
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(trimmed);
        let fail = |why: &str| Err(FieldError::new("Idempotency-Key", why));
        if inner.is_empty() {
            return fail("must not be empty");
        }
        if inner.len() > MAX_KEY {
            return fail("must be at most 255 characters");
        }
        if inner
            .chars()
            .any(|c| !c.is_ascii_graphic() || c == '"' || c == '\\')
        {
            return fail("must be printable ASCII without quotes or backslashes");
        }
        Ok(Self(inner.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the key's record lives: hashed, so any key is a safe path segment.
    pub fn path(&self) -> String {
        format!("idempotency/{}", hex(&Sha256::digest(self.0.as_bytes())))
    }
}

/// Identifies a payload: the same key with another payload is refused (422). A payload
/// without metadata has the fingerprint it had before metadata existed.
pub fn fingerprint(request: &Tuple, count: u32, metadata: &Metadata) -> String {
    let mut canonical = format!(
        "{}\n{}\n{}\n{count}",
        request.application.as_str(),
        request.role.as_str(),
        request.environment.as_str()
    );
    let extra = metadata.canonical();
    if !extra.is_empty() {
        canonical.push('\n');
        canonical.push_str(&extra);
    }
    hex(&Sha256::digest(canonical.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Pending,
    Done,
}

/// A number taken from the counter for a key, and the name it makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub number: u64,
    pub hostname: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key: String,
    pub fingerprint: String,
    pub state: KeyState,
    /// Unix milliseconds until which a pending record belongs to its current owner.
    pub lease_until: u64,
    /// Pending: names reserved (maybe not yet claimed). Done: the names issued.
    pub names: Vec<Reserved>,
    pub created_at: String,
    /// A random id of the request holding the key. A write whose node went silent is sent
    /// to the next node; if the first had applied it, the second finds the version moved
    /// on, and only this tells the request's own write from a rival's. Empty in records
    /// written before it existed.
    #[serde(default)]
    pub owner: String,
}

impl Record for KeyRecord {
    const WHAT: &'static str = "an idempotency record";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_and_bare_keys_are_the_same_key() {
        let a = IdempotencyKey::parse("\"8e03978e-40d5\"").unwrap();
        let b = IdempotencyKey::parse("8e03978e-40d5").unwrap();
        assert_eq!(a, b);
        assert!(a.path().starts_with("idempotency/") && a.path().len() == 12 + 64);
    }

    #[test]
    fn empty_long_and_unprintable_keys_are_refused_naming_the_header() {
        for bad in ["", "\"\"", &"k".repeat(256), "a b", "é"] {
            let e = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(e.field, "Idempotency-Key", "{bad}");
        }
    }

    #[test]
    fn the_fingerprint_changes_with_any_field_or_the_count() {
        let r = |a: &str| Tuple::parse(a, "app", "prod").unwrap();
        let none = Metadata::default();
        let owned = Metadata {
            owner: Some("team".into()),
            ..Metadata::default()
        };
        assert_eq!(
            fingerprint(&r("web"), 1, &none),
            fingerprint(&r("web"), 1, &none)
        );
        assert_ne!(
            fingerprint(&r("web"), 1, &none),
            fingerprint(&r("db"), 1, &none)
        );
        assert_ne!(
            fingerprint(&r("web"), 1, &none),
            fingerprint(&r("web"), 2, &none)
        );
        assert_ne!(
            fingerprint(&r("web"), 1, &none),
            fingerprint(&r("web"), 1, &owned)
        );
    }
}
