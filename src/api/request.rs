//! Turning an HTTP request into what the core takes, naming the field at fault: a
//! `POST /generate-name` body into a [`Generate`], a `GET /names` query string into a
//! [`ListQuery`], a `PATCH /names/{hostname}` body into a merge patch.
//!
//! The body is parsed as a generic JSON value first so that a missing field, a field of
//! the wrong type and an unknown field each get their own message instead of serde's.

use serde_json::Value;

use crate::api::problem::ApiError;
use crate::core::allocate::check_count;
use crate::core::metadata::{self, kind, Metadata};
use crate::core::names::{parse_cursor, Filters, ListQuery, DEFAULT_LIMIT, MAX_LIMIT};
use crate::core::registry::{self, Status};
use crate::core::time::parse_rfc3339;
use crate::core::validate::{FieldError, Fragment, Tuple};

/// Bodies above this are refused with 413 before parsing.
pub const MAX_BODY: usize = 16 * 1024;

const FIELDS: [&str; 3] = ["application", "role", "environment"];
const OPTIONAL: [&str; 5] = ["count", "owner", "description", "tags", "dry_run"];

/// A `POST /generate-name` body, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generate {
    pub tuple: Tuple,
    /// How many names (1 to 100).
    pub count: u32,
    /// Owner, description and tags, recorded with each name.
    pub metadata: Metadata,
    /// Answer the names the request would get now, writing nothing.
    pub dry_run: bool,
}

fn json_object(body: &[u8], what: &str) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY });
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::MalformedJson(format!("the body is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::MalformedJson(format!(
            "the body must be a JSON object {what}, not {}",
            kind(&other)
        ))),
    }
}

/// Parses and validates a `POST /generate-name` body: the tuple, how many names
/// (`count`, 1 to 100, default 1), optional metadata, and whether it is a dry run.
pub fn parse_generate(body: &[u8]) -> Result<Generate, ApiError> {
    let map = json_object(body, "with application, role and environment")?;
    if let Some(unknown) = map
        .keys()
        .find(|k| !FIELDS.contains(&k.as_str()) && !OPTIONAL.contains(&k.as_str()))
    {
        return Err(FieldError::new(
            unknown.as_str(),
            "is not a field of this request; expected application, role, environment \
             and optionally count, owner, description, tags, dry_run",
        )
        .into());
    }
    let mut values = [""; 3];
    for (slot, field) in values.iter_mut().zip(FIELDS) {
        *slot = match map.get(field) {
            None => return Err(FieldError::new(field, "is required").into()),
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(FieldError::new(
                    field,
                    format!("must be a string, not {}", kind(other)),
                )
                .into())
            }
        };
    }
    let tuple = Tuple::parse(values[0], values[1], values[2])?;
    let count = match map.get("count") {
        None => 1,
        Some(v) => check_count(v.as_u64())?,
    };
    let metadata = Metadata::from_request(&map)?;
    let dry_run = match map.get("dry_run") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(FieldError::new(
                "dry_run",
                format!("must be true or false, not {}", kind(other)),
            )
            .into())
        }
    };
    Ok(Generate {
        tuple,
        count,
        metadata,
        dry_run,
    })
}

/// The media type a `PATCH /names/{hostname}` body must have.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// Parses a `PATCH /names/{hostname}` body: a JSON merge patch (RFC 7396) of owner,
/// description and tags, sent as [`MERGE_PATCH`]. Its values are checked by the core
/// before anything is read.
pub fn parse_patch(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if media.as_deref() != Some(MERGE_PATCH) {
        return Err(ApiError::UnsupportedMediaType {
            accept: MERGE_PATCH,
        });
    }
    Ok(Value::Object(json_object(
        body,
        "of owner, description and tags to change",
    )?))
}

/// Reads an `If-Match` header: the entity tag `GET /names/{hostname}` answered (`"7"`),
/// or `*` (any version: the same as no header).
pub fn parse_if_match(value: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    if value == "*" {
        return Ok(None);
    }
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::BadHeader {
            header: "If-Match",
            reason: "must be the ETag of the record, such as \"3\", or *".into(),
        })
}

/// Percent-decodes one query-string component, `+` as a space; a `%` not followed by two
/// hex digits stays as it is.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every `key=value` of a query string, percent-decoded, in order.
fn decoded_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

/// Every `key=value` of a query string, decoded, refusing keys outside `known`.
fn query_pairs(query: &str, known: &[&str]) -> Result<Vec<(String, String)>, FieldError> {
    let mut pairs = Vec::new();
    for (k, v) in decoded_pairs(query) {
        if !known.contains(&k.as_str()) {
            let known = known.join(", ");
            return Err(FieldError::new(
                &k,
                format!("is not a parameter here ({known})"),
            ));
        }
        pairs.push((k, v));
    }
    Ok(pairs)
}

/// Parses `GET /session`'s query: an optional `hostname` the page is about.
pub fn parse_session_query(query: &str) -> Result<Option<String>, FieldError> {
    let mut hostname = None;
    for (_, v) in query_pairs(query, &["hostname"])? {
        registry::parse_hostname(&v)
            .map_err(|_| FieldError::new("hostname", "must be a hostname this service issues"))?;
        hostname = Some(v);
    }
    Ok(hostname)
}

/// Parses `GET /suggestions`'s query: no parameter asks for applications, `application`
/// for its roles, and `role` as well for their environments.
pub fn parse_suggestions_query(
    query: &str,
) -> Result<(Option<Fragment>, Option<Fragment>), FieldError> {
    let (mut application, mut role) = (None, None);
    for (k, v) in query_pairs(query, &["application", "role"])? {
        match k.as_str() {
            "application" => application = Some(Fragment::parse("application", &v)?),
            _ => role = Some(Fragment::parse("role", &v)?),
        }
    }
    if role.is_some() && application.is_none() {
        return Err(FieldError::new(
            "role",
            "needs the application it belongs to",
        ));
    }
    Ok((application, role))
}

/// The filters of `GET /names` and `GET /names/export`.
pub const FILTERS: &str = "application, role, environment, status, owner, created_by, \
                           tag=key:value, created_after, created_before, prefix";

/// Parses a `GET /names` query string: the filters, `limit` and `cursor`, naming the
/// parameter at fault. `extra` names parameters another route reads itself (`format`),
/// which are skipped here.
pub fn parse_list_query(query: &str, extra: &[&str]) -> Result<ListQuery, FieldError> {
    let mut application = None;
    let mut filters = Filters::default();
    let (mut limit, mut after) = (DEFAULT_LIMIT, None);
    let time = |field: &str, v: &str| {
        parse_rfc3339(v).ok_or_else(|| {
            FieldError::new(
                field,
                "must be an RFC 3339 date-time, such as 2026-11-27T19:30:45Z",
            )
        })
    };
    let text = |field: &str, v: String| {
        if v.is_empty() || v.len() > metadata::MAX_VALUE {
            Err(FieldError::new(
                field,
                format!("must be 1 to {} characters", metadata::MAX_VALUE),
            ))
        } else {
            Ok(v)
        }
    };
    for (k, v) in decoded_pairs(query) {
        match k.as_str() {
            "application" => application = Some(Fragment::parse("application", &v)?),
            "role" => filters.role = Some(Fragment::parse("role", &v)?),
            "environment" => filters.environment = Some(Fragment::parse("environment", &v)?),
            "status" => {
                filters.status = Some(match v.as_str() {
                    "issued" => Status::Issued,
                    "released" => Status::Released,
                    _ => return Err(FieldError::new("status", "must be issued or released")),
                })
            }
            "owner" => filters.owner = Some(text("owner", v)?),
            "created_by" => filters.created_by = Some(text("created_by", v)?),
            "tag" => {
                let (key, value) = v.split_once(':').ok_or_else(|| {
                    FieldError::new("tag", "must be key:value, such as tag=team:web")
                })?;
                metadata::tag_key(key).map_err(|e| FieldError::new("tag", e.reason))?;
                filters
                    .tags
                    .push((key.to_string(), text("tag", value.to_string())?));
            }
            "created_after" => filters.created_after = Some(time("created_after", &v)?),
            "created_before" => filters.created_before = Some(time("created_before", &v)?),
            "prefix" => {
                // A prefix may end where a hostname may not: on a hyphen.
                let whole = format!("{v}x");
                if v.is_empty() || registry::parse_hostname(&whole).is_err() {
                    return Err(FieldError::new(
                        "prefix",
                        "must be the start of a hostname: lowercase letters, digits and hyphens",
                    ));
                }
                filters.prefix = Some(v);
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        FieldError::new(
                            "limit",
                            format!("must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?
            }
            "cursor" => {
                after = Some(parse_cursor(&v).ok_or_else(|| {
                    FieldError::new("cursor", "is not a cursor this service returned")
                })?);
            }
            other if extra.contains(&other) => {}
            other => {
                return Err(FieldError::new(
                    other,
                    format!(
                        "is not a parameter; filter with {FILTERS}, page with limit and cursor"
                    ),
                ))
            }
        }
    }
    Ok(ListQuery {
        application,
        filters,
        limit,
        after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::NamingError;
    use crate::core::names::Cursor;

    fn field_of(body: &str) -> (String, String) {
        match parse_generate(body.as_bytes()) {
            Err(ApiError::Naming(NamingError::InvalidInput(e))) => (e.field, e.reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_complete_body_parses() {
        let g =
            parse_generate(br#"{"application":"web","role":"app","environment":"prod"}"#).unwrap();
        assert_eq!(
            (
                g.tuple
                    .hostname(&crate::core::template::Template::default(), 1)
                    .unwrap()
                    .as_str(),
                g.count,
                g.metadata.is_empty(),
                g.dry_run
            ),
            ("web-app-prod-vm1", 1, true, false)
        );
    }

    #[test]
    fn count_is_a_whole_number_from_1_to_100() {
        let body = |c: &str| {
            format!(r#"{{"application":"web","role":"app","environment":"prod","count":{c}}}"#)
        };
        assert_eq!(parse_generate(body("100").as_bytes()).unwrap().count, 100);
        for bad in ["0", "101", "1.5", "\"2\"", "-1", "null"] {
            assert_eq!(field_of(&body(bad)).0, "count", "{bad}");
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        assert_eq!(
            field_of(r#"{"application":"web","role":"app"}"#),
            ("environment".into(), "is required".into())
        );
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_with_its_type() {
        let (f, r) = field_of(r#"{"application":"web","role":7,"environment":"prod"}"#);
        assert_eq!(
            (f.as_str(), r.as_str()),
            ("role", "must be a string, not a number")
        );
    }

    #[test]
    fn an_unknown_field_is_named() {
        let (f, _) = field_of(r#"{"application":"web","role":"a","environment":"p","colour":"x"}"#);
        assert_eq!(f, "colour");
    }

    #[test]
    fn malformed_json_and_non_objects_are_malformed_bodies() {
        assert!(
            matches!(parse_generate(b"{"), Err(ApiError::MalformedJson(m)) if m.contains("not valid JSON"))
        );
        assert!(
            matches!(parse_generate(b"[1]"), Err(ApiError::MalformedJson(m)) if m.contains("an array"))
        );
        assert!(matches!(
            parse_generate(b""),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn a_body_over_16_kib_is_too_large() {
        let body = vec![b' '; MAX_BODY + 1];
        assert_eq!(
            parse_generate(&body),
            Err(ApiError::PayloadTooLarge { limit: MAX_BODY })
        );
    }

    #[test]
    fn metadata_and_dry_run_are_read_and_each_bad_one_is_named() {
        let body = br#"{"application":"web","role":"app","environment":"prod",
            "owner":"team-web","description":"edge","tags":{"cost-center":"42"},"dry_run":true}"#;
        let g = parse_generate(body).unwrap();
        assert_eq!(g.metadata.owner.as_deref(), Some("team-web"));
        assert_eq!(g.metadata.tags["cost-center"], "42");
        assert!(g.dry_run);
        let base = r#""application":"web","role":"app","environment":"prod""#;
        for (extra, field) in [
            (r#""owner":7"#, "owner"),
            (r#""owner":"a\u0007b""#, "owner"),
            (r#""tags":{"Bad":"x"}"#, "tags"),
            (r#""tags":{"k":"a\nb"}"#, "tags.k"),
            (r#""tags":[1]"#, "tags"),
            (r#""dry_run":"yes""#, "dry_run"),
            (r#""description":null"#, "description"),
        ] {
            assert_eq!(field_of(&format!("{{{base},{extra}}}")).0, field, "{extra}");
        }
    }

    #[test]
    fn a_patch_must_be_a_merge_patch_object_and_if_match_an_etag() {
        let json = Some("application/merge-patch+json; charset=utf-8");
        assert!(parse_patch(json, br#"{"owner":"x"}"#).is_ok());
        assert!(matches!(
            parse_patch(Some("application/json"), br#"{"owner":"x"}"#),
            Err(ApiError::UnsupportedMediaType { .. })
        ));
        assert!(matches!(
            parse_patch(json, b"[1]"),
            Err(ApiError::MalformedJson(_))
        ));
        assert_eq!(parse_if_match(Some("\"7\"")), Ok(Some(7)));
        assert_eq!(parse_if_match(Some("*")), Ok(None));
        assert!(parse_if_match(Some("7")).is_err());
    }

    #[test]
    fn search_filters_are_read_and_each_bad_one_is_named() {
        let q = parse_list_query(
            "status=released&owner=team%20web&tag=env:prod&tag=team:web&prefix=web-\
             &created_after=2026-01-01T00:00:00Z&format=csv",
            &["format"],
        )
        .unwrap();
        assert_eq!(q.application, None);
        assert_eq!(q.filters.status, Some(Status::Released));
        assert_eq!(q.filters.owner.as_deref(), Some("team web"));
        assert_eq!(q.filters.tags.len(), 2);
        assert_eq!(q.filters.prefix.as_deref(), Some("web-"));
        for (query, field) in [
            ("status=gone", "status"),
            ("tag=novalue", "tag"),
            ("tag=Bad:x", "tag"),
            ("created_before=yesterday", "created_before"),
            ("prefix=Web", "prefix"),
            ("prefix=", "prefix"),
            ("format=csv", "format"),
        ] {
            assert_eq!(
                parse_list_query(query, &[]).unwrap_err().field,
                field,
                "{query}"
            );
        }
    }

    #[test]
    fn suggestions_and_session_queries_name_what_is_wrong() {
        let field = |e: FieldError| e.field;
        assert_eq!(parse_suggestions_query("").unwrap(), (None, None));
        let (a, r) = parse_suggestions_query("application=web&role=app").unwrap();
        assert_eq!((a.unwrap().as_str(), r.unwrap().as_str()), ("web", "app"));
        assert_eq!(
            field(parse_suggestions_query("role=app").unwrap_err()),
            "role"
        );
        assert_eq!(
            field(parse_suggestions_query("application=Web!").unwrap_err()),
            "application"
        );
        assert_eq!(
            field(parse_suggestions_query("colour=red").unwrap_err()),
            "colour"
        );
        assert_eq!(
            parse_session_query("hostname=web-app-prod-vm1")
                .unwrap()
                .as_deref(),
            Some("web-app-prod-vm1")
        );
        assert_eq!(
            field(parse_session_query("hostname=../x").unwrap_err()),
            "hostname"
        );
    }

    #[test]
    fn query_errors_name_the_parameter() {
        assert_eq!(
            parse_list_query("application=web&limit=0", &[])
                .unwrap_err()
                .field,
            "limit"
        );
        assert_eq!(
            parse_list_query("application=web&limit=101", &[])
                .unwrap_err()
                .field,
            "limit"
        );
        assert_eq!(
            parse_list_query("application=web&cursor=zz.x", &[])
                .unwrap_err()
                .field,
            "cursor"
        );
        assert_eq!(
            parse_list_query("application=Web", &[]).unwrap_err().field,
            "application"
        );
        assert_eq!(
            parse_list_query("application=web&x=1", &[])
                .unwrap_err()
                .field,
            "x"
        );
        assert_eq!(
            parse_list_query("application=w%65b", &[])
                .unwrap()
                .application
                .unwrap()
                .as_str(),
            "web"
        );
        assert_eq!(
            parse_list_query("application=web&cursor=2.web-app-prod-vm2", &[])
                .unwrap()
                .after,
            Some(Cursor::Numbered(2, "web-app-prod-vm2".to_string()))
        );
    }
}
