//! What a successful request is answered with, one function per route, and the last step
//! every answer takes: a failure becomes its problem document, and each answer gets its
//! content type. The bodies here are the ones the OpenAPI document describes.

use serde_json::{json, Value};

use crate::api::auth::Scope;
use crate::api::problem::{self, etag, ApiError};
use crate::api::ui;
use crate::api::OPENAPI;
use crate::core::allocate::{Allocation, IssuedName};
use crate::core::names::{Page, Stored};
use crate::core::registry::NameRecord;
use crate::core::validate::Tuple;
use crate::core::vault::Record;

/// An answer: status, extra headers, JSON body.
pub type Answer = (u16, Vec<(&'static str, String)>, Value);

fn ok(body: Value) -> Answer {
    (200, vec![], body)
}

/// `POST /generate-name`: the names issued for `request`, the first one also on its own.
/// `Hostnaming-Conflicts` counts the races the allocation lost, which the host's
/// admission throttles on.
pub fn generated(request: &Tuple, allocation: &Allocation) -> Answer {
    let mut headers = vec![("hostnaming-conflicts", allocation.conflicts.to_string())];
    if allocation.replayed {
        headers.push(("idempotent-replayed", "true".to_string()));
    }
    let body = names_body(request, &allocation.names, allocation.replayed, false);
    (200, headers, body)
}

/// `POST /generate-name` with `dry_run`: the names the request would get now, marked as a
/// preview (nothing was written, nothing is reserved).
pub fn preview(request: &Tuple, names: &[IssuedName]) -> Answer {
    ok(names_body(request, names, false, true))
}

/// The body both answers of `POST /generate-name` share: the names (the first also on its
/// own), the tuple, and whether they were replayed or only previewed.
fn names_body(request: &Tuple, names: &[IssuedName], replayed: bool, dry_run: bool) -> Value {
    json!({
        "hostname": names[0].hostname,
        "number": names[0].number,
        "hostnames": names.iter().map(|n| &n.hostname).collect::<Vec<_>>(),
        "numbers": names.iter().map(|n| n.number).collect::<Vec<_>>(),
        "application": request.application.as_str(),
        "role": request.role.as_str(),
        "environment": request.environment.as_str(),
        "replayed": replayed,
        "dry_run": dry_run,
    })
}

/// A record as answered: every field there (null or empty when unset, as on records
/// written before they existed), and its history in place of the stored events.
pub fn record_view(record: &NameRecord) -> Value {
    let mut value = record.to_value();
    let fields = value.as_object_mut().expect("a record is an object");
    fields.remove("events");
    for field in [
        "owner",
        "description",
        "created_by",
        "released_at",
        "released_by",
    ] {
        fields.entry(field).or_insert(Value::Null);
    }
    fields.entry("tags").or_insert_with(|| json!({}));
    fields.insert("history".into(), json!(record.history()));
    value
}

/// `GET /names`: one page of a search.
pub fn listing(page: &Page) -> Answer {
    ok(json!({
        "names": page.names.iter().map(record_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    }))
}

/// `GET`, `PATCH` and `DELETE /names/{hostname}`: the name's record as it now stands, and
/// its version as the entity tag a later `If-Match` names.
pub fn record(stored: &Stored) -> Answer {
    (
        200,
        vec![("etag", etag(stored.version))],
        record_view(&stored.record),
    )
}

/// `GET /healthz`: Vault and its mount are usable.
pub fn healthy(mount: &str) -> Answer {
    ok(json!({"status": "ok", "mount": mount}))
}

/// `GET /session`: how callers authenticate here, who this one is, and its scopes.
pub fn session(auth: &str, actor: &str, scopes: &[Scope]) -> Answer {
    ok(json!({
        "auth": auth,
        "actor": actor,
        "scopes": scopes.iter().map(|s| s.name()).collect::<Vec<_>>(),
    }))
}

/// `GET /suggestions`: the values already used for `field`.
pub fn suggestions(field: &str, values: &[String]) -> Answer {
    ok(json!({ "field": field, "values": values }))
}

/// `GET /openapi.json`.
pub fn openapi() -> Answer {
    let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON");
    ok(doc)
}

/// The answer as sent: a failure as its problem document, and the content type of either.
pub fn finish(outcome: Result<Answer, ApiError>) -> Answer {
    let (status, mut headers, body) = match outcome {
        Ok(answer) => answer,
        Err(e) => {
            let p = e.problem();
            (p.status, p.headers, p.body)
        }
    };
    let content_type = if status < 400 {
        "application/json"
    } else {
        problem::CONTENT_TYPE
    };
    headers.push(("content-type", content_type.to_string()));
    headers.extend(ui::SECURITY_HEADERS.map(|(k, v)| (k, v.to_string())));
    (status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::allocate::IssuedName;

    #[test]
    fn a_replayed_allocation_says_so_in_a_header_and_the_body() {
        let request = Tuple::parse("web", "app", "prod").unwrap();
        let names = (7..9)
            .map(|number| IssuedName {
                hostname: format!("web-app-prod-vm{number}"),
                number,
            })
            .collect();
        let allocation = Allocation {
            names,
            replayed: true,
            conflicts: 0,
        };
        let (status, headers, body) = generated(&request, &allocation);
        assert_eq!(status, 200);
        assert!(headers.contains(&("idempotent-replayed", "true".into())));
        assert_eq!(
            (&body["hostname"], &body["numbers"], &body["replayed"]),
            (&json!("web-app-prod-vm7"), &json!([7, 8]), &json!(true))
        );
    }

    #[test]
    fn successes_are_json_and_failures_problem_json() {
        let content_type = |answer: Answer| {
            let headers = answer.1;
            let found = headers.iter().find(|(k, _)| *k == "content-type");
            found.unwrap().1.clone()
        };
        assert_eq!(content_type(finish(Ok(healthy("m")))), "application/json");
        let failure = finish(Err(ApiError::NotFound { path: "/x".into() }));
        assert_eq!(failure.0, 404);
        assert_eq!(content_type(failure), problem::CONTENT_TYPE);
    }

    #[test]
    fn the_openapi_document_parses() {
        assert_eq!(openapi().2["openapi"], "3.1.0");
    }
}
