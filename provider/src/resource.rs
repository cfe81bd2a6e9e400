//! `resource "naming"`: one hostname from the service, schema-compatible with the proof of
//! concept's Go provider (three required inputs, `generated_name`, the hostname as `id`).
//! Create allocates with an Idempotency-Key (owner, description and tags in the same
//! request), read follows the registry (so a change made elsewhere shows as drift), a
//! change of the tuple replaces, a change of the metadata patches in place, delete
//! releases, import adopts a hostname with its metadata.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tf_provider::schema::{AttributeConstraint, AttributeType, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{map, AttributePath, Diagnostics, RawValue, Resource};

use crate::client::{Client, Error, Record};
use crate::provider::{attribute, root_schema, Shared};

/// The inputs whose change means another name: a name is never renamed in place.
pub const INPUTS: [&str; 3] = ["application", "role", "environment"];

/// Longest `idempotency_key`: the derived Idempotency-Key adds the three inputs (at most
/// 63 characters together) and a generation, and the service accepts 255.
pub const MAX_USER_KEY: usize = 180;

/// How many released names one `idempotency_key` may skip before giving up.
const MAX_GENERATIONS: u32 = 100;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamingState {
    pub id: Value<String>,
    pub application: Value<String>,
    pub role: Value<String>,
    pub environment: Value<String>,
    pub generated_name: Value<String>,
    pub idempotency_key: Value<String>,
    pub request_id: Value<String>,
    pub owner: Value<String>,
    pub description: Value<String>,
    pub tags: Value<BTreeMap<String, Value<String>>>,
    pub created_by: Value<String>,
    pub created_at: Value<String>,
    pub status: Value<String>,
}

/// Known tags as plain strings (an unknown or null tag value is left out).
fn tag_map(tags: &Value<BTreeMap<String, Value<String>>>) -> BTreeMap<String, String> {
    match tags {
        Value::Value(map) => map
            .iter()
            .filter_map(|(k, v)| known(v).map(|v| (k.clone(), v.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Owner, description and tags as a `POST /generate-name` body carries them (absent ones
/// left out).
pub fn details(state: &NamingState) -> serde_json::Map<String, serde_json::Value> {
    let mut body = serde_json::Map::new();
    if let Some(owner) = known(&state.owner) {
        body.insert("owner".into(), json!(owner));
    }
    if let Some(description) = known(&state.description) {
        body.insert("description".into(), json!(description));
    }
    let tags = tag_map(&state.tags);
    if !tags.is_empty() {
        body.insert("tags".into(), json!(tags));
    }
    body
}

/// The JSON merge patch that takes a name's metadata from `prior` to `planned`: fields and
/// tags that differ, `null` for those removed.
pub fn merge_patch(prior: &NamingState, planned: &NamingState) -> serde_json::Value {
    let mut patch = serde_json::Map::new();
    for (field, before, after) in [
        ("owner", &prior.owner, &planned.owner),
        ("description", &prior.description, &planned.description),
    ] {
        if known(before) != known(after) {
            patch.insert(field.into(), json!(known(after)));
        }
    }
    let (before, after) = (tag_map(&prior.tags), tag_map(&planned.tags));
    let mut tags = serde_json::Map::new();
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        tags.insert(key.clone(), serde_json::Value::Null);
    }
    for (key, value) in &after {
        if before.get(key) != Some(value) {
            tags.insert(key.clone(), json!(value));
        }
    }
    if !tags.is_empty() {
        patch.insert("tags".into(), serde_json::Value::Object(tags));
    }
    serde_json::Value::Object(patch)
}

impl NamingState {
    fn input(&self, name: &str) -> &Value<String> {
        match name {
            "application" => &self.application,
            "role" => &self.role,
            "environment" => &self.environment,
            _ => unreachable!("not an input: {name}"),
        }
    }

    /// Takes what the registry says: the tuple, the metadata (so a change made elsewhere
    /// shows as drift) and the computed attributes.
    fn adopt(&mut self, record: &Record) {
        self.id = Value::Value(record.hostname.clone());
        self.generated_name = Value::Value(record.hostname.clone());
        self.application = Value::Value(record.application.clone());
        self.role = Value::Value(record.role.clone());
        self.environment = Value::Value(record.environment.clone());
        self.owner = record.owner.clone().into();
        self.description = record.description.clone().into();
        // No tags reads as the configuration wrote it: unset, or an empty map.
        self.tags = match (&self.tags, record.tags.is_empty()) {
            (Value::Value(map), true) if map.is_empty() => Value::Value(BTreeMap::new()),
            (_, true) => Value::Null,
            (_, false) => record.tag_values(),
        };
        self.created_by = record.created_by.clone().into();
        self.created_at = record.created_at.clone().into();
        self.status = Value::Value(record.status.clone());
    }
}

/// Why a user's `idempotency_key` cannot be sent, if it cannot.
pub fn check_user_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("must not be empty".into());
    }
    if key.len() > MAX_USER_KEY {
        return Err(format!("must be at most {MAX_USER_KEY} characters"));
    }
    if key
        .chars()
        .any(|c| !c.is_ascii_graphic() || c == '"' || c == '\\')
    {
        return Err("must be printable ASCII without spaces, quotes or backslashes".into());
    }
    Ok(())
}

/// The Idempotency-Key for a resource whose configuration sets `idempotency_key`.
///
/// The inputs are part of it so that a replacement with other inputs gets a new name (the
/// same key with another payload would be refused); the generation moves past names that
/// were released, since a replayed key would hand a released name back.
pub fn derived_key(user_key: &str, inputs: [&str; 3], generation: u32) -> String {
    let [application, role, environment] = inputs;
    format!("{user_key}/{application}/{role}/{environment}/{generation}")
}

/// The Idempotency-Key for a resource without `idempotency_key`: fixed for the whole Create,
/// so the client's retries can never allocate twice.
pub fn random_key() -> String {
    format!("terraform-{}", uuid::Uuid::new_v4())
}

/// Reports an API error, on the input the service blamed if it named one: Terraform then
/// shows the resource's address and that input's line in the configuration.
pub fn report(diags: &mut Diagnostics, error: &Error) {
    match error.field().and_then(attribute_of) {
        Some(path) => diags.error(error.summary(), error.detail(), path),
        None => diags.root_error(error.summary(), error.detail()),
    }
}

/// The resource's attribute for a field the service named: an input, a metadata field, one
/// tag (`tags.{key}`), or the Idempotency-Key header.
fn attribute_of(field: &str) -> Option<AttributePath> {
    if INPUTS.contains(&field) || ["owner", "description", "tags"].contains(&field) {
        return Some(AttributePath::new(field.to_string()));
    }
    if let Some(key) = field.strip_prefix("tags.") {
        return Some(AttributePath::new("tags").key(key.to_string()));
    }
    (field == "Idempotency-Key").then(|| AttributePath::new("idempotency_key"))
}

/// The answer, or None with the API error reported (see [`report`]).
pub fn reported<T>(diags: &mut Diagnostics, result: Result<T, Error>) -> Option<T> {
    result.map_err(|e| report(diags, &e)).ok()
}

pub struct NamingResource {
    shared: Shared,
}

impl NamingResource {
    pub fn new(shared: Shared) -> Self {
        NamingResource { shared }
    }

    /// Allocates a name, skipping names that a replayed key hands back already released.
    async fn allocate(
        client: &Client,
        inputs: [&str; 3],
        details: &serde_json::Map<String, serde_json::Value>,
        user_key: Option<&str>,
    ) -> Result<(String, String), Error> {
        let mut generation = 1;
        loop {
            let key = match user_key {
                Some(user_key) => derived_key(user_key, inputs, generation),
                None => random_key(),
            };
            let generated = client.generate(inputs, details, &key).await?;
            if generated.replayed && generation < MAX_GENERATIONS {
                if let Some(record) = client.get(&generated.hostname).await? {
                    if record.is_released() {
                        generation += 1;
                        continue;
                    }
                }
            }
            return Ok((generated.hostname, key));
        }
    }
}

fn known(value: &Value<String>) -> Option<&str> {
    match value {
        Value::Value(v) => Some(v.as_str()),
        _ => None,
    }
}

#[async_trait]
impl Resource for NamingResource {
    type State<'a> = NamingState;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        use AttributeConstraint::{Computed, Optional, Required};
        use AttributeType::{Map, String};
        // Version 1; version 0 is the proof of concept's Go provider (see `upgrade`).
        let mut schema = root_schema(
            "A hostname allocated by the hostnaming service and released when the resource \
             is destroyed.",
            map! {
                "id" => attribute(String, Computed, "The hostname."),
                "application" => attribute(String, Required,
                    "Application part of the name. Changing it allocates a new name."),
                "role" => attribute(String, Required,
                    "Role part of the name. Changing it allocates a new name."),
                "environment" => attribute(String, Required,
                    "Environment part of the name. Changing it allocates a new name."),
                "generated_name" => attribute(String, Computed,
                    "The hostname, e.g. web-app-prod-vm7."),
                "idempotency_key" => attribute(String, Optional,
                    "A key unique to this resource instance across everything that uses \
                     the service (e.g. \"team/stack/${each.key}\"). With it, an apply that \
                     is retried after a failure gets back the name the failed one \
                     allocated instead of a second one. Changing it changes nothing."),
                "request_id" => attribute(String, Computed,
                    "The Idempotency-Key the name was allocated with (empty if none)."),
                "owner" => attribute(String, Optional,
                    "Who answers for the name (at most 256 characters). Changed in place."),
                "description" => attribute(String, Optional,
                    "What the name is for (at most 1024 characters). Changed in place."),
                "tags" => attribute(Map(Box::new(String)), Optional,
                    "At most 32 tags: keys of lowercase letters, digits, _, . and -, values \
                     of at most 256 characters. Changed in place."),
                "created_by" => attribute(String, Computed,
                    "Who asked for the name: the API token's name, or the caller's Vault \
                     identity."),
                "created_at" => attribute(String, Computed,
                    "When the name was issued (RFC 3339)."),
                "status" => attribute(String, Computed,
                    "\"issued\" (a name released elsewhere is allocated anew)."),
            },
        );
        schema.block.version = 1;
        Some(schema)
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        if let Value::Value(key) = &config.idempotency_key {
            if let Err(why) = check_user_key(key) {
                diags.error(
                    "Invalid idempotency_key",
                    why,
                    AttributePath::new("idempotency_key"),
                );
            }
        }
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        mut state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        // Returning None means "gone": on any doubt keep the state and say why.
        let Some(client) = self.shared.client(diags) else {
            return Some((state, private_state));
        };
        let Some(id) = known(&state.id).map(str::to_string) else {
            return Some((state, private_state));
        };
        match client.get(&id).await {
            Ok(Some(record)) if !record.is_released() => {
                state.adopt(&record);
                Some((state, private_state))
            }
            Ok(Some(_released)) => None,
            Ok(None) if state.request_id.is_null() => {
                // Only state carried over from the proof of concept lacks a request_id,
                // and its service kept no registry: dropping the name would replace every
                // machine named after it.
                diags.root_warning(
                    format!("{id} is not in the hostnaming registry"),
                    format!(
                        "{id} came from the proof-of-concept provider, whose service kept no \
                         registry, so {} cannot tell whether it is still in use. It stays in \
                         the state as it is; destroying it releases nothing.",
                        client.endpoint()
                    ),
                );
                Some((state, private_state))
            }
            Ok(None) => None,
            Err(e) => {
                report(diags, &e);
                Some((state, private_state))
            }
        }
    }

    async fn plan_create<'a>(
        &self,
        _diags: &mut Diagnostics,
        mut proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        // Not known before the service answers. (A key chosen here could not be carried to
        // apply: Terraform plans again during apply and rejects a value that changed.)
        proposed_state.id = Value::Unknown;
        proposed_state.generated_name = Value::Unknown;
        proposed_state.request_id = Value::Unknown;
        proposed_state.created_by = Value::Unknown;
        proposed_state.created_at = Value::Unknown;
        proposed_state.status = Value::Unknown;
        Some((proposed_state, ValueEmpty::default()))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        let replace = INPUTS
            .iter()
            .filter(|name| prior_state.input(name) != proposed_state.input(name))
            .map(|name| AttributePath::new(*name))
            .collect();
        Some((proposed_state, prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        mut planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let client = self.shared.client(diags)?;
        let (Some(application), Some(role), Some(environment)) = (
            known(&planned_state.application),
            known(&planned_state.role),
            known(&planned_state.environment),
        ) else {
            diags.root_error_short("application, role and environment must be known to apply");
            return None;
        };
        let user_key = known(&planned_state.idempotency_key);
        let inputs = [application, role, environment];
        let details = details(&planned_state);
        let allocated = Self::allocate(&client, inputs, &details, user_key).await;
        let (hostname, key) = reported(diags, allocated)?;
        planned_state.request_id = Value::Value(key);
        match reported(diags, client.get(&hostname).await)? {
            Some(record) => planned_state.adopt(&record),
            None => {
                diags.root_error_short(format!("{hostname} was issued but has no record"));
                return None;
            }
        }
        Some((planned_state, planned_private_state))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        mut planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        // The tuple replaces (see plan_update); `idempotency_key` only matters at creation;
        // the metadata is patched in place.
        let patch = merge_patch(&prior_state, &planned_state);
        if patch.as_object().is_some_and(|p| p.is_empty()) {
            return Some((planned_state, planned_private_state));
        }
        let client = self.shared.client(diags)?;
        let Some(id) = known(&prior_state.id).map(str::to_string) else {
            diags.root_error_short("the name's hostname is not known");
            return None;
        };
        match reported(diags, client.annotate(&id, &patch).await)? {
            Some(record) => {
                planned_state.adopt(&record);
                Some((planned_state, planned_private_state))
            }
            None => {
                diags.root_error(
                    format!("{id} is not in the hostnaming registry"),
                    "Its owner, description and tags cannot be changed; refresh to allocate a \
                     new name.",
                );
                None
            }
        }
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        _private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        let client = self.shared.client(diags)?;
        let Some(id) = known(&state.id) else {
            return Some(());
        };
        match client.release(id).await {
            Ok(Some(_)) => {}
            Ok(None) => diags.root_warning(
                format!("{id} was not in the hostnaming registry"),
                format!(
                    "{} has no record of {id}, so there was nothing to release.",
                    client.endpoint()
                ),
            ),
            // Terraform keeps the name in the state, so the next destroy tries again.
            Err(e) => report(diags, &e),
        }
        Some(())
    }

    async fn import<'a>(
        &self,
        diags: &mut Diagnostics,
        id: String,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let client = self.shared.client(diags)?;
        match reported(diags, client.get(&id).await)? {
            Some(record) if !record.is_released() => {
                let mut state = NamingState::default();
                state.adopt(&record);
                state.request_id = Value::Value(record.idempotency_key.unwrap_or_default());
                Some((state, ValueEmpty::default()))
            }
            Some(_) => {
                diags.root_error(
                    format!("Cannot import {id}: it was released"),
                    "A released name is never issued again, so there is nothing to manage.",
                );
                None
            }
            None => {
                diags.root_error(
                    format!("Cannot import {id}: no such name"),
                    format!("{} has no record of {id}.", client.endpoint()),
                );
                None
            }
        }
    }

    async fn upgrade<'a>(
        &self,
        diags: &mut Diagnostics,
        _version: i64,
        prior_state: RawValue,
    ) -> Option<Self::State<'a>> {
        // The proof of concept's state (version 0) has the same inputs, `id` and
        // `generated_name`; what it lacks stays null, which marks it as such (see `read`).
        let mut state: NamingState = prior_state.deserialize(diags)?;
        if state.generated_name.is_null() {
            state.generated_name = state.id.clone();
        }
        if state.id.is_null() {
            state.id = state.generated_name.clone();
        }
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::{client, generated, Fake};
    use serde_json::json;

    #[test]
    fn user_keys_are_checked_like_the_service_checks_keys() {
        assert!(check_user_key("team-a/prod/vm-1").is_ok());
        assert!(check_user_key(&"k".repeat(MAX_USER_KEY)).is_ok());
        for bad in ["", "has space", "quo\"te", "back\\slash", "tab\t", "é"] {
            assert!(check_user_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_user_key(&"k".repeat(MAX_USER_KEY + 1)).is_err());
        // The longest derived key still fits the service's 255.
        let longest = derived_key(
            &"k".repeat(MAX_USER_KEY),
            ["a".repeat(20).as_str(), &"r".repeat(20), &"e".repeat(21)],
            MAX_GENERATIONS,
        );
        assert!(longest.len() <= 255, "{}", longest.len());
    }

    #[test]
    fn derived_keys_differ_by_payload_and_generation_only() {
        let k = |inputs, generation| derived_key("vm-a", inputs, generation);
        assert_eq!(k(["web", "app", "prod"], 1), k(["web", "app", "prod"], 1));
        assert_ne!(k(["web", "app", "prod"], 1), k(["web", "app", "dev"], 1));
        assert_ne!(k(["web", "app", "prod"], 1), k(["web", "app", "prod"], 2));
        assert_ne!(random_key(), random_key());
    }

    #[tokio::test]
    async fn a_key_that_replays_a_released_name_moves_to_the_next_generation() {
        let released = json!({"hostname": "web-app-prod-vm1", "application": "web",
            "role": "app", "environment": "prod", "number": 1, "status": "released"});
        let fake = Fake::start(vec![
            (200, vec![], generated("web-app-prod-vm1", true)),
            (200, vec![], released.to_string()),
            (200, vec![], generated("web-app-prod-vm2", false)),
        ])
        .await;
        let (hostname, key) = NamingResource::allocate(
            &client(&fake.url, 1_000),
            ["web", "app", "prod"],
            &Default::default(),
            Some("vm-a"),
        )
        .await
        .unwrap();
        assert_eq!(hostname, "web-app-prod-vm2");
        assert_eq!(key, "vm-a/web/app/prod/2");
        let seen = fake.seen();
        assert_eq!(seen.len(), 3);
        assert_eq!(
            seen[0].headers["idempotency-key"],
            "\"vm-a/web/app/prod/1\""
        );
        assert_eq!(seen[1].path, "/names/web-app-prod-vm1");
        assert_eq!(
            seen[2].headers["idempotency-key"],
            "\"vm-a/web/app/prod/2\""
        );
    }

    #[tokio::test]
    async fn a_replayed_name_still_issued_is_the_answer() {
        let issued = json!({"hostname": "web-app-prod-vm1", "application": "web",
            "role": "app", "environment": "prod", "number": 1, "status": "issued"});
        let fake = Fake::start(vec![
            (200, vec![], generated("web-app-prod-vm1", true)),
            (200, vec![], issued.to_string()),
        ])
        .await;
        let (hostname, key) = NamingResource::allocate(
            &client(&fake.url, 1_000),
            ["web", "app", "prod"],
            &Default::default(),
            Some("vm-a"),
        )
        .await
        .unwrap();
        assert_eq!(
            (hostname.as_str(), key.as_str()),
            ("web-app-prod-vm1", "vm-a/web/app/prod/1")
        );
        assert_eq!(fake.seen().len(), 2);
    }

    #[test]
    fn a_metadata_change_is_the_merge_patch_of_what_differs() {
        let tags = |pairs: &[(&str, &str)]| {
            Value::Value(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::Value(v.to_string())))
                    .collect(),
            )
        };
        let prior = NamingState {
            owner: Value::Value("a".into()),
            description: Value::Value("same".into()),
            tags: tags(&[("keep", "1"), ("change", "old"), ("drop", "x")]),
            ..NamingState::default()
        };
        let planned = NamingState {
            owner: Value::Null,
            description: Value::Value("same".into()),
            tags: tags(&[("keep", "1"), ("change", "new"), ("add", "y")]),
            ..NamingState::default()
        };
        assert_eq!(
            merge_patch(&prior, &planned),
            json!({"owner": null, "tags": {"change": "new", "drop": null, "add": "y"}})
        );
        assert_eq!(merge_patch(&planned, &planned), json!({}));
        assert_eq!(
            details(&planned),
            json!({"description": "same", "tags": {"keep": "1", "change": "new", "add": "y"}})
                .as_object()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn the_proof_of_concepts_state_upgrades_with_no_request_id() {
        let old = json!({"id": "web-app-prod-vm3", "application": "web", "role": "app",
            "environment": "prod", "generated_name": "web-app-prod-vm3"});
        let mut diags = Diagnostics::default();
        let resource = NamingResource::new(Shared::default());
        let state =
            block_on(resource.upgrade(&mut diags, 0, RawValue::Json(old.to_string().into_bytes())))
                .unwrap();
        assert!(diags.errors.is_empty(), "{diags:?}");
        assert_eq!(state.id, Value::Value("web-app-prod-vm3".to_string()));
        assert_eq!(state.generated_name, state.id);
        assert_eq!(state.application, Value::Value("web".to_string()));
        assert!(state.request_id.is_null());
        assert!(state.idempotency_key.is_null());
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
