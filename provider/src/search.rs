//! `data "naming_names"`: every name in the registry that matches filters, as `GET /names`
//! searches it, read page by page.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint, AttributeType, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{map, DataSource, Diagnostics};

use crate::client::Record;
use crate::provider::{attribute, root_schema, Shared};
use crate::resource::reported;

/// The most names one search reads, so that a filter matching everything cannot make a
/// plan read a registry of any size.
pub const MAX_NAMES: usize = 10_000;

/// The filters, as `GET /names` names them.
pub const FILTERS: [&str; 9] = [
    "application",
    "role",
    "environment",
    "status",
    "owner",
    "created_by",
    "created_after",
    "created_before",
    "prefix",
];

/// One name found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Found {
    pub hostname: Value<String>,
    pub application: Value<String>,
    pub role: Value<String>,
    pub environment: Value<String>,
    pub number: Value<i64>,
    pub status: Value<String>,
    pub owner: Value<String>,
    pub description: Value<String>,
    pub tags: Value<BTreeMap<String, Value<String>>>,
    pub created_by: Value<String>,
    pub created_at: Value<String>,
}

impl From<Record> for Found {
    fn from(r: Record) -> Self {
        Self {
            tags: r.tag_values(),
            hostname: Value::Value(r.hostname),
            application: Value::Value(r.application),
            role: Value::Value(r.role),
            environment: Value::Value(r.environment),
            number: Value::Value(r.number),
            status: Value::Value(r.status),
            owner: r.owner.into(),
            description: r.description.into(),
            created_by: r.created_by.into(),
            created_at: r.created_at.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchState {
    pub id: Value<String>,
    pub application: Value<String>,
    pub role: Value<String>,
    pub environment: Value<String>,
    pub status: Value<String>,
    pub owner: Value<String>,
    pub created_by: Value<String>,
    pub created_after: Value<String>,
    pub created_before: Value<String>,
    pub prefix: Value<String>,
    pub tags: Value<BTreeMap<String, Value<String>>>,
    pub names: Value<Vec<Found>>,
    pub hostnames: Value<Vec<Value<String>>>,
}

impl SearchState {
    fn filter(&self, name: &str) -> &Value<String> {
        match name {
            "application" => &self.application,
            "role" => &self.role,
            "environment" => &self.environment,
            "status" => &self.status,
            "owner" => &self.owner,
            "created_by" => &self.created_by,
            "created_after" => &self.created_after,
            "created_before" => &self.created_before,
            "prefix" => &self.prefix,
            _ => unreachable!("not a filter: {name}"),
        }
    }

    /// The query-string pairs of the filters given; each tag is a `tag=key:value`.
    pub fn query(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = FILTERS
            .iter()
            .filter_map(|f| match self.filter(f) {
                Value::Value(v) => Some((f.to_string(), v.clone())),
                _ => None,
            })
            .collect();
        if let Value::Value(tags) = &self.tags {
            for (key, value) in tags {
                if let Value::Value(value) = value {
                    pairs.push(("tag".into(), format!("{key}:{value}")));
                }
            }
        }
        pairs
    }
}

pub struct SearchDataSource {
    shared: Shared,
}

impl SearchDataSource {
    pub fn new(shared: Shared) -> Self {
        SearchDataSource { shared }
    }
}

#[async_trait]
impl DataSource for SearchDataSource {
    type State<'a> = SearchState;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        use AttributeConstraint::{Computed, Optional};
        use AttributeType::{List, Map, Number, Object, String};
        let filter = |description: &str| attribute(String, Optional, description);
        let found = Object(
            [
                ("hostname", String),
                ("application", String),
                ("role", String),
                ("environment", String),
                ("number", Number),
                ("status", String),
                ("owner", String),
                ("description", String),
                ("tags", Map(Box::new(String))),
                ("created_by", String),
                ("created_at", String),
            ]
            .into_iter()
            .map(|(k, t)| (k.to_string(), t))
            .collect(),
        );
        Some(root_schema(
            "The names in the registry that match every filter given, in hostname order (in \
             number order with `application`). At most 10,000.",
            map! {
                "id" => attribute(String, Computed, "The search, as a query string."),
                "application" => filter("Only this application's names."),
                "role" => filter("Only names with this role."),
                "environment" => filter("Only names in this environment."),
                "status" => filter("\"issued\" or \"released\"."),
                "owner" => filter("Only names with this owner."),
                "created_by" => filter("Only names asked for by this actor."),
                "created_after" => filter("RFC 3339: created at or after."),
                "created_before" => filter("RFC 3339: created strictly before."),
                "prefix" => filter("Only hostnames starting with this."),
                "tags" => attribute(Map(Box::new(String)), Optional,
                    "Only names carrying every one of these tags with these values."),
                "names" => attribute(List(Box::new(found)), Computed,
                    "The names found, with their records."),
                "hostnames" => attribute(List(Box::new(String)), Computed,
                    "The hostnames found."),
            },
        ))
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::State<'a>> {
        let client = self.shared.client(diags)?;
        let query = config.query();
        let (mut found, mut cursor) = (Vec::new(), None);
        loop {
            let page = reported(diags, client.search(&query, cursor.as_deref()).await)?;
            found.extend(page.names);
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
            if found.len() >= MAX_NAMES {
                diags.root_error(
                    "Too many names",
                    format!(
                        "More than {MAX_NAMES} names match; narrow the search with more \
                         filters."
                    ),
                );
                return None;
            }
        }
        let id = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        Some(SearchState {
            id: Value::Value(id),
            hostnames: Value::Value(
                found
                    .iter()
                    .map(|r| Value::Value(r.hostname.clone()))
                    .collect(),
            ),
            names: Value::Value(found.into_iter().map(Found::from).collect()),
            ..config
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_given_become_the_query_and_each_tag_one_pair() {
        let state = SearchState {
            owner: Value::Value("team-web".into()),
            status: Value::Value("issued".into()),
            tags: Value::Value(
                [("env", "prod"), ("tier", "gold")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::Value(v.to_string())))
                    .collect(),
            ),
            ..SearchState::default()
        };
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            state.query(),
            [
                pair("status", "issued"),
                pair("owner", "team-web"),
                pair("tag", "env:prod"),
                pair("tag", "tier:gold")
            ]
        );
    }
}
