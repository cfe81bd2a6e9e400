//! Turning an HTTP request into what the core takes, naming the field at fault: a
//! `POST /generate-name` body into a [`Tuple`] and a count, a `GET /names` query
//! string into a [`ListQuery`].
//!
//! The body is parsed as a generic JSON value first so that a missing field, a field of
//! the wrong type and an unknown field each get their own message instead of serde's.

use serde_json::Value;

use crate::api::problem::ApiError;
use crate::core::allocate::check_count;
use crate::core::names::{parse_cursor, ListQuery, DEFAULT_LIMIT, MAX_LIMIT};
use crate::core::validate::{FieldError, Fragment, Tuple};

/// Bodies above this are refused with 413 before parsing.
pub const MAX_BODY: usize = 16 * 1024;

const FIELDS: [&str; 3] = ["application", "role", "environment"];
const OPTIONAL: [&str; 1] = ["count"];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses and validates a `POST /generate-name` body: the tuple and how many names
/// (`count`, 1 to 100, default 1).
pub fn parse_generate(body: &[u8]) -> Result<(Tuple, u32), ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY });
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::MalformedJson(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::MalformedJson(format!(
            "the body must be a JSON object with application, role and environment, not {}",
            kind(&value)
        )));
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !FIELDS.contains(&k.as_str()) && !OPTIONAL.contains(&k.as_str()))
    {
        return Err(FieldError::new(
            unknown.as_str(),
            "is not a field of this request; expected application, role, environment \
             and optionally count",
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
    let request = Tuple::parse(values[0], values[1], values[2])?;
    let count = match map.get("count") {
        None => 1,
        Some(v) => check_count(v.as_u64())?,
    };
    Ok((request, count))
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

/// Parses a `GET /names` query string
/// (`application=..&role=..&environment=..&limit=..&cursor=..`), naming the parameter at
/// fault.
pub fn parse_list_query(query: &str) -> Result<ListQuery, FieldError> {
    let mut application = None;
    let (mut role, mut environment, mut limit, mut after) = (None, None, DEFAULT_LIMIT, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        match k.as_str() {
            "application" => application = Some(Fragment::parse("application", &v)?),
            "role" => role = Some(Fragment::parse("role", &v)?),
            "environment" => environment = Some(Fragment::parse("environment", &v)?),
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
            other => {
                return Err(FieldError::new(
                    other,
                    "is not a filter; use application, role, environment, limit, cursor",
                ))
            }
        }
    }
    let application = application.ok_or_else(|| FieldError::new("application", "is required"))?;
    Ok(ListQuery {
        application,
        role,
        environment,
        limit,
        after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::NamingError;

    fn field_of(body: &str) -> (String, String) {
        match parse_generate(body.as_bytes()) {
            Err(ApiError::Naming(NamingError::InvalidInput(e))) => (e.field, e.reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_complete_body_parses() {
        let (r, count) =
            parse_generate(br#"{"application":"web","role":"app","environment":"prod"}"#).unwrap();
        assert_eq!(
            (
                r.hostname(&crate::core::template::Template::default(), 1)
                    .unwrap()
                    .as_str(),
                count
            ),
            ("web-app-prod-vm1", 1)
        );
    }

    #[test]
    fn count_is_a_whole_number_from_1_to_100() {
        let body = |c: &str| {
            format!(r#"{{"application":"web","role":"app","environment":"prod","count":{c}}}"#)
        };
        assert_eq!(parse_generate(body("100").as_bytes()).unwrap().1, 100);
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
    fn query_errors_name_the_parameter() {
        assert_eq!(parse_list_query("role=x").unwrap_err().field, "application");
        assert_eq!(
            parse_list_query("application=web&limit=0")
                .unwrap_err()
                .field,
            "limit"
        );
        assert_eq!(
            parse_list_query("application=web&limit=101")
                .unwrap_err()
                .field,
            "limit"
        );
        assert_eq!(
            parse_list_query("application=web&cursor=zz")
                .unwrap_err()
                .field,
            "cursor"
        );
        assert_eq!(
            parse_list_query("application=Web").unwrap_err().field,
            "application"
        );
        assert_eq!(
            parse_list_query("application=web&x=1").unwrap_err().field,
            "x"
        );
        assert_eq!(
            parse_list_query("application=w%65b")
                .unwrap()
                .application
                .as_str(),
            "web"
        );
        assert_eq!(
            parse_list_query("application=web&cursor=2.web-app-prod-vm2")
                .unwrap()
                .after,
            Some((2, "web-app-prod-vm2".to_string()))
        );
    }
}
