//! The name registry: one KV v2 secret per issued name, at `names/{hostname}`, created with
//! cas = 0 so that a name can be written only once. Released names keep their record (with
//! `status = released`), which is what stops them from ever being issued again.

use serde::{Deserialize, Serialize};

use crate::core::validate::{FieldError, MAX_LABEL};
use crate::core::vault::Record;

/// Where a name's record lives in the mount.
pub fn path(hostname: &str) -> String {
    format!("names/{hostname}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Issued,
    Released,
}

/// Everything known about an issued name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRecord {
    pub hostname: String,
    pub application: String,
    pub role: String,
    pub environment: String,
    pub number: u64,
    pub status: Status,
    pub created_at: String,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
}

impl Record for NameRecord {
    const WHAT: &'static str = "a name record";
}

impl NameRecord {
    pub fn is_of(&self, application: &str, role: &str, environment: &str) -> bool {
        self.application == application && self.role == role && self.environment == environment
    }
}

/// Checks a hostname taken from a URL before it becomes part of a Vault path.
pub fn parse_hostname(value: &str) -> Result<&str, FieldError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_LABEL
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(value)
    } else {
        Err(FieldError::new(
            "hostname",
            "is not a hostname this service issues (one DNS label of lowercase letters, \
             digits and hyphens)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_vault_data() {
        let r = NameRecord {
            hostname: "web-app-prod-vm1".into(),
            application: "web".into(),
            role: "app".into(),
            environment: "prod".into(),
            number: 1,
            status: Status::Issued,
            created_at: "2026-11-27T19:30:45Z".into(),
            idempotency_key: None,
            released_at: None,
        };
        let v = r.to_value();
        assert_eq!(v["status"], "issued");
        assert_eq!(NameRecord::from_data(v.as_object().unwrap()).unwrap(), r);
    }

    #[test]
    fn hostnames_with_path_characters_are_refused() {
        assert!(parse_hostname("web-app-prod-vm1").is_ok());
        for bad in ["", "../x", "a/b", "A", "a-", "a.b", &"a".repeat(64)] {
            assert!(parse_hostname(bad).is_err(), "{bad}");
        }
    }
}
