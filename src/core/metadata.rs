//! What a name is for: its owner, a description and tags, given when the name is asked for
//! and changed later with a JSON merge patch (RFC 7396). Every value is bounded and checked
//! here, before anything touches Vault, and each refusal names the field at fault
//! (`owner`, `description`, `tags` or `tags.{key}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::validate::FieldError;

/// At most this many tags on one name.
pub const MAX_TAGS: usize = 32;
/// The longest tag key.
pub const MAX_TAG_KEY: usize = 63;
/// The longest tag value and the longest owner.
pub const MAX_VALUE: usize = 256;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 1024;

/// The fields a caller may set on a name, when it is issued or later.
pub const FIELDS: [&str; 3] = ["owner", "description", "tags"];

/// A name's metadata, as stored in its record and answered with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks free text: at most `max` characters, and no control characters but the ones
/// `allowed` (a description may hold line breaks and tabs; an owner or a tag value not).
fn text(field: &str, value: &Value, max: usize, allowed: &[char]) -> Result<String, FieldError> {
    let Value::String(s) = value else {
        return Err(FieldError::new(
            field,
            format!("must be a string, not {}", kind(value)),
        ));
    };
    let length = s.chars().count();
    if length > max {
        return Err(FieldError::new(
            field,
            format!("is {length} characters long; at most {max} are allowed"),
        ));
    }
    if let Some(c) = s.chars().find(|c| c.is_control() && !allowed.contains(c)) {
        return Err(FieldError::new(
            field,
            format!("contains the control character {c:?}"),
        ));
    }
    Ok(s.clone())
}

fn owner(value: &Value) -> Result<String, FieldError> {
    let owner = text("owner", value, MAX_VALUE, &[])?;
    if owner.trim().is_empty() {
        return Err(FieldError::new(
            "owner",
            "must not be blank; leave it out (or null in a patch) for no owner",
        ));
    }
    Ok(owner)
}

fn description(value: &Value) -> Result<String, FieldError> {
    text("description", value, MAX_DESCRIPTION, &['\n', '\t'])
}

/// Checks a tag key: lowercase letters, digits, `_`, `.` and `-`, a letter or digit first,
/// at most [`MAX_TAG_KEY`] characters.
pub fn tag_key(key: &str) -> Result<(), FieldError> {
    let fail = |reason: String| Err(FieldError::new("tags", reason));
    let Some(first) = key.chars().next() else {
        return fail("has an empty key; a key is 1 to 63 characters".into());
    };
    if key.chars().count() > MAX_TAG_KEY {
        return fail(format!(
            "has the key {key:?}, longer than {MAX_TAG_KEY} characters"
        ));
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return fail(format!(
            "has the key {key:?}; a key starts with a lowercase letter or a digit"
        ));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')))
    {
        return fail(format!(
            "has the key {key:?} with {c:?}; keys hold lowercase letters, digits, '_', '.' \
             and '-'"
        ));
    }
    Ok(())
}

fn tag_value(key: &str, value: &Value) -> Result<String, FieldError> {
    text(&format!("tags.{key}"), value, MAX_VALUE, &[])
}

fn too_many(count: usize) -> FieldError {
    FieldError::new(
        "tags",
        format!("would hold {count} tags; at most {MAX_TAGS} are allowed"),
    )
}

fn tags_object(value: &Value) -> Result<&Map<String, Value>, FieldError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(FieldError::new(
            "tags",
            format!(
                "must be an object of string keys to string values, not {}",
                kind(other)
            ),
        )),
    }
}

impl Metadata {
    /// Reads the metadata fields of a request body; fields it does not hold are left out
    /// of the result. `null` is refused: on a new name, leave the field out instead.
    pub fn from_request(body: &Map<String, Value>) -> Result<Self, FieldError> {
        let mut meta = Self::default();
        for field in FIELDS {
            match body.get(field) {
                None => {}
                Some(Value::Null) => {
                    return Err(FieldError::new(
                        field,
                        "must not be null; leave it out for none",
                    ))
                }
                Some(value) => meta.set(field, value)?,
            }
        }
        Ok(meta)
    }

    fn set(&mut self, field: &str, value: &Value) -> Result<(), FieldError> {
        match field {
            "owner" => self.owner = Some(owner(value)?),
            "description" => self.description = Some(description(value)?),
            _ => {
                let map = tags_object(value)?;
                if map.len() > MAX_TAGS {
                    return Err(too_many(map.len()));
                }
                let mut tags = BTreeMap::new();
                for (key, value) in map {
                    tag_key(key)?;
                    tags.insert(key.clone(), tag_value(key, value)?);
                }
                self.tags = tags;
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Applies a JSON merge patch (RFC 7396) on the metadata: a field set to `null` is
    /// removed, `tags` merges key by key (a key set to `null` is removed). Answers the
    /// changed fields (`owner`, `description`, `tags.{key}`), none when nothing changed.
    /// Nothing is changed when any part of the patch is refused.
    pub fn merge(&mut self, patch: &Value) -> Result<Vec<String>, FieldError> {
        let Value::Object(patch) = patch else {
            return Err(FieldError::new(
                "body",
                format!(
                    "a merge patch on a name is a JSON object, not {}",
                    kind(patch)
                ),
            ));
        };
        if let Some(unknown) = patch.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(FieldError::new(
                unknown.as_str(),
                "cannot be changed; a patch may change owner, description and tags",
            ));
        }
        let mut next = self.clone();
        for (field, value) in patch {
            match (field.as_str(), value) {
                ("owner", Value::Null) => next.owner = None,
                ("description", Value::Null) => next.description = None,
                ("tags", Value::Null) => next.tags.clear(),
                ("tags", value) => {
                    for (key, value) in tags_object(value)? {
                        if value.is_null() {
                            next.tags.remove(key);
                        } else {
                            tag_key(key)?;
                            next.tags.insert(key.clone(), tag_value(key, value)?);
                        }
                    }
                    if next.tags.len() > MAX_TAGS {
                        return Err(too_many(next.tags.len()));
                    }
                }
                (field, value) => next.set(field, value)?,
            }
        }
        let changed = self.changes_to(&next);
        *self = next;
        Ok(changed)
    }

    /// The fields that differ between `self` and `other`, in a fixed order.
    fn changes_to(&self, other: &Self) -> Vec<String> {
        let mut changed = Vec::new();
        if self.owner != other.owner {
            changed.push("owner".to_string());
        }
        if self.description != other.description {
            changed.push("description".to_string());
        }
        let keys: std::collections::BTreeSet<&String> =
            self.tags.keys().chain(other.tags.keys()).collect();
        for key in keys {
            if self.tags.get(key) != other.tags.get(key) {
                changed.push(format!("tags.{key}"));
            }
        }
        changed
    }

    /// Folded into an idempotency fingerprint: empty metadata adds nothing, so keys used
    /// before metadata existed keep their fingerprint.
    pub fn canonical(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        serde_json::to_string(self).expect("metadata serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from(body: Value) -> Result<Metadata, FieldError> {
        Metadata::from_request(body.as_object().unwrap())
    }

    fn field(body: Value) -> String {
        from(body).unwrap_err().field
    }

    #[test]
    fn owner_description_and_tags_are_read_from_a_request() {
        let meta = from(json!({
            "application": "web",
            "owner": "team-web",
            "description": "front end\nsecond line",
            "tags": {"cost-center": "42", "env.tier": "gold"},
        }))
        .unwrap();
        assert_eq!(meta.owner.as_deref(), Some("team-web"));
        assert_eq!(meta.tags["env.tier"], "gold");
        assert!(from(json!({})).unwrap().is_empty());
    }

    #[test]
    fn each_bad_value_names_its_field() {
        assert_eq!(field(json!({"owner": 7})), "owner");
        assert_eq!(field(json!({"owner": "  "})), "owner");
        assert_eq!(field(json!({"owner": null})), "owner");
        assert_eq!(field(json!({"owner": "a\u{7}b"})), "owner");
        assert_eq!(field(json!({"owner": "x".repeat(257)})), "owner");
        assert_eq!(
            field(json!({"description": "x".repeat(1025)})),
            "description"
        );
        assert_eq!(field(json!({"description": "a\rb"})), "description");
        assert_eq!(field(json!({"tags": ["a"]})), "tags");
        assert_eq!(field(json!({"tags": {"Team": "x"}})), "tags");
        assert_eq!(field(json!({"tags": {"-team": "x"}})), "tags");
        assert_eq!(field(json!({"tags": {"team/x": "x"}})), "tags");
        assert_eq!(field(json!({"tags": {"": "x"}})), "tags");
        assert_eq!(field(json!({"tags": {"k".repeat(64): "x"}})), "tags");
        assert_eq!(field(json!({"tags": {"team": 1}})), "tags.team");
        assert_eq!(field(json!({"tags": {"team": "a\nb"}})), "tags.team");
        assert_eq!(
            field(json!({"tags": {"team": "x".repeat(257)}})),
            "tags.team"
        );
        let many: Map<String, Value> = (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(field(json!({ "tags": many })), "tags");
    }

    #[test]
    fn the_limits_themselves_are_accepted() {
        let tags: Map<String, Value> = (0..32)
            .map(|i| (format!("{i}{}", "k".repeat(61)), json!("é".repeat(256))))
            .collect();
        let meta = from(json!({"owner": "o".repeat(256), "tags": tags})).unwrap();
        assert_eq!(meta.tags.len(), 32);
    }

    #[test]
    fn a_merge_patch_sets_removes_and_merges_tags_and_says_what_changed() {
        let mut meta = from(json!({"owner": "a", "tags": {"team": "x", "tier": "1"}})).unwrap();
        let changed = meta
            .merge(
                &json!({"owner": null, "description": "d", "tags": {"team": null, "os": "linux"}}),
            )
            .unwrap();
        assert_eq!(changed, ["owner", "description", "tags.os", "tags.team"]);
        assert_eq!(meta.owner, None);
        assert_eq!(
            meta.tags.into_iter().collect::<Vec<_>>(),
            [("os".into(), "linux".into()), ("tier".into(), "1".into())]
        );
    }

    #[test]
    fn a_refused_patch_changes_nothing() {
        let mut meta = from(json!({"owner": "a"})).unwrap();
        let before = meta.clone();
        assert_eq!(
            meta.merge(&json!({"owner": "b", "tags": {"Bad": "x"}}))
                .unwrap_err()
                .field,
            "tags"
        );
        assert_eq!(
            meta.merge(&json!({"hostname": "x"})).unwrap_err().field,
            "hostname"
        );
        assert_eq!(meta.merge(&json!([1])).unwrap_err().field, "body");
        assert_eq!(meta, before);
        assert!(meta.merge(&json!({"owner": "a"})).unwrap().is_empty());
    }

    #[test]
    fn a_patch_cannot_grow_the_tags_past_the_limit() {
        let tags: Map<String, Value> = (0..32).map(|i| (format!("k{i}"), json!("v"))).collect();
        let mut meta = from(json!({ "tags": tags })).unwrap();
        assert_eq!(
            meta.merge(&json!({"tags": {"one-more": "v"}}))
                .unwrap_err()
                .field,
            "tags"
        );
        assert_eq!(
            meta.merge(&json!({"tags": {"k0": null, "one-more": "v"}}))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn empty_metadata_leaves_a_fingerprint_as_it_was() {
        assert_eq!(Metadata::default().canonical(), "");
        assert_ne!(from(json!({"owner": "a"})).unwrap().canonical(), "");
    }
}
