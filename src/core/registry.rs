//! The name registry: one KV v2 secret per issued name, at `names/{hostname}`, created with
//! cas = 0 so that a name can be written only once. Released names keep their record (with
//! `status = released`), which is what stops them from ever being issued again.
//!
//! A record also says who asked for the name and what for ([`Metadata`]), and keeps a
//! bounded history of what happened to it. Records written before these fields existed
//! read as having no actor, no metadata and no stored history.

use serde::{Deserialize, Serialize};

use crate::core::metadata::Metadata;
use crate::core::validate::{FieldError, MAX_LABEL};
use crate::core::vault::Record;

/// How many stored events a record keeps (its issue is never dropped: it is the record's
/// own `created_at` and `created_by`); older ones give way to newer.
pub const MAX_HISTORY: usize = 50;

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

/// What happened to a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Issued,
    Annotated,
    Released,
}

/// One entry of a name's history: what, when (RFC 3339), by whom, and for an annotation
/// which fields changed (`owner`, `description`, `tags.{key}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub action: Action,
    pub at: String,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
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
    /// Who asked for the name; absent on records written before actors were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(flatten)]
    pub metadata: Metadata,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_by: Option<String>,
    /// Annotations and the release, oldest first, at most [`MAX_HISTORY`]; the issue is
    /// not stored here (see [`NameRecord::history`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

impl Record for NameRecord {
    const WHAT: &'static str = "a name record";
}

impl NameRecord {
    pub fn is_of(&self, application: &str, role: &str, environment: &str) -> bool {
        self.application == application && self.role == role && self.environment == environment
    }

    /// Adds an event, dropping the oldest stored ones past [`MAX_HISTORY`].
    pub fn record_event(&mut self, event: Event) {
        self.events.push(event);
        let excess = self.events.len().saturating_sub(MAX_HISTORY);
        self.events.drain(..excess);
    }

    /// The whole history as answered: the issue first (from `created_at` and
    /// `created_by`), then the stored events. A record released before events were kept
    /// gets its release from `released_at`.
    pub fn history(&self) -> Vec<Event> {
        let actor = |who: &Option<String>| who.clone().unwrap_or_else(|| UNKNOWN.to_string());
        let mut history = vec![Event {
            action: Action::Issued,
            at: self.created_at.clone(),
            actor: actor(&self.created_by),
            changed: Vec::new(),
        }];
        history.extend(self.events.iter().cloned());
        let release_kept = self.events.iter().any(|e| e.action == Action::Released);
        if let (Some(at), false) = (&self.released_at, release_kept) {
            history.push(Event {
                action: Action::Released,
                at: at.clone(),
                actor: actor(&self.released_by),
                changed: Vec::new(),
            });
        }
        history
    }
}

/// The actor of an event recorded before actors were kept.
pub const UNKNOWN: &str = "unknown";

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
    use serde_json::json;

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
            created_by: Some("ci-prod".into()),
            metadata: Metadata {
                owner: Some("team-web".into()),
                ..Metadata::default()
            },
            idempotency_key: None,
            released_at: None,
            released_by: None,
            events: Vec::new(),
        };
        let v = r.to_value();
        assert_eq!(
            (&v["status"], &v["owner"]),
            (&json!("issued"), &json!("team-web"))
        );
        assert_eq!(NameRecord::from_data(v.as_object().unwrap()).unwrap(), r);
    }

    #[test]
    fn a_record_written_before_actors_and_metadata_still_reads_with_its_history() {
        let old = json!({
            "hostname": "web-app-prod-vm1", "application": "web", "role": "app",
            "environment": "prod", "number": 1, "status": "released",
            "created_at": "2026-11-01T00:00:00Z", "idempotency_key": null,
            "released_at": "2026-11-02T00:00:00Z",
        });
        let r = NameRecord::from_data(old.as_object().unwrap()).unwrap();
        assert!(r.metadata.is_empty() && r.created_by.is_none());
        let history = r.history();
        assert_eq!(
            history
                .iter()
                .map(|e| (e.action, e.actor.as_str()))
                .collect::<Vec<_>>(),
            [(Action::Issued, UNKNOWN), (Action::Released, UNKNOWN)]
        );
        assert_eq!(history[1].at, "2026-11-02T00:00:00Z");
    }

    #[test]
    fn the_stored_history_is_bounded_and_keeps_the_newest() {
        let mut r = NameRecord::from_data(
            json!({"hostname": "a-vm1", "application": "a", "role": "b", "environment": "c",
                   "number": 1, "status": "issued", "created_at": "t0"})
            .as_object()
            .unwrap(),
        )
        .unwrap();
        for i in 0..MAX_HISTORY + 5 {
            r.record_event(Event {
                action: Action::Annotated,
                at: format!("t{}", i + 1),
                actor: "a".into(),
                changed: vec!["owner".into()],
            });
        }
        assert_eq!(r.events.len(), MAX_HISTORY);
        assert_eq!(r.events[0].at, "t6");
        assert_eq!(r.history()[0].action, Action::Issued);
    }

    #[test]
    fn hostnames_with_path_characters_are_refused() {
        assert!(parse_hostname("web-app-prod-vm1").is_ok());
        for bad in ["", "../x", "a/b", "A", "a-", "a.b", &"a".repeat(64)] {
            assert!(parse_hostname(bad).is_err(), "{bad}");
        }
    }
}
