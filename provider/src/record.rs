//! `data "naming_record"`: a hostname's registry record, for names this configuration does
//! not manage (another team's, or one allocated with curl).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{Attribute, AttributeConstraint, AttributeType, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{map, AttributePath, DataSource, Diagnostics};

use crate::provider::{attribute, root_schema, Shared};
use crate::resource::reported;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordState {
    pub hostname: Value<String>,
    pub id: Value<String>,
    pub application: Value<String>,
    pub role: Value<String>,
    pub environment: Value<String>,
    pub number: Value<i64>,
    pub status: Value<String>,
    pub created_at: Value<String>,
    pub released_at: Value<String>,
    pub idempotency_key: Value<String>,
    pub owner: Value<String>,
    pub description: Value<String>,
    pub tags: Value<BTreeMap<String, Value<String>>>,
    pub created_by: Value<String>,
}

pub struct RecordDataSource {
    shared: Shared,
}

impl RecordDataSource {
    pub fn new(shared: Shared) -> Self {
        RecordDataSource { shared }
    }
}

fn computed(attr_type: AttributeType, description: &str) -> Attribute {
    attribute(attr_type, AttributeConstraint::Computed, description)
}

#[async_trait]
impl DataSource for RecordDataSource {
    type State<'a> = RecordState;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        use AttributeType::{Map, Number, String};
        Some(root_schema(
            "The registry record of a hostname. Fails if the service has never issued it.",
            map! {
                "hostname" => attribute(String, AttributeConstraint::Required,
                    "The hostname to look up."),
                "id" => computed(String, "The hostname."),
                "application" => computed(String, "Application part of the name."),
                "role" => computed(String, "Role part of the name."),
                "environment" => computed(String, "Environment part of the name."),
                "number" => computed(Number, "The counter value the name was made from."),
                "status" => computed(String, "\"issued\" or \"released\"."),
                "created_at" => computed(String, "When the name was issued (RFC 3339)."),
                "released_at" => computed(String, "When it was released, or null."),
                "idempotency_key" => computed(String,
                    "The Idempotency-Key it was allocated with, or null."),
                "owner" => computed(String, "Who answers for the name, or null."),
                "description" => computed(String, "What the name is for, or null."),
                "tags" => computed(Map(Box::new(String)), "Its tags."),
                "created_by" => computed(String,
                    "Who asked for it, or null for names issued before actors were recorded."),
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
        let Value::Value(hostname) = &config.hostname else {
            diags.error_short("hostname must be known", AttributePath::new("hostname"));
            return None;
        };
        match reported(diags, client.get(hostname).await)? {
            Some(record) => Some(RecordState {
                tags: record.tag_values(),
                hostname: config.hostname.clone(),
                id: Value::Value(record.hostname),
                application: Value::Value(record.application),
                role: Value::Value(record.role),
                environment: Value::Value(record.environment),
                number: Value::Value(record.number),
                status: Value::Value(record.status),
                created_at: record.created_at.into(),
                released_at: record.released_at.into(),
                idempotency_key: record.idempotency_key.into(),
                owner: record.owner.into(),
                description: record.description.into(),
                created_by: record.created_by.into(),
            }),
            None => {
                diags.error(
                    format!("No such name: {hostname}"),
                    format!("{} has never issued {hostname}.", client.endpoint()),
                    AttributePath::new("hostname"),
                );
                None
            }
        }
    }
}
