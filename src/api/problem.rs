//! Every way a request can fail, mapped to an HTTP status and an RFC 9457
//! `application/problem+json` body in exactly one place.

use serde_json::{json, Value};

use crate::core::error::NamingError;
use crate::core::validate::{FieldError, MAX_LABEL};

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECS: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    NotFound {
        path: String,
    },
    MethodNotAllowed {
        allow: &'static str,
    },
    PayloadTooLarge {
        limit: usize,
    },
    MalformedJson(String),
    /// No credentials, or unknown ones (401). `challenge` is the WWW-Authenticate value.
    Unauthenticated {
        detail: String,
        challenge: String,
    },
    /// Known credentials without the right (403).
    Forbidden(String),
    /// A body in a media type the route does not take (415); `accept` names the one it
    /// does.
    UnsupportedMediaType {
        accept: &'static str,
    },
    /// A response the client's `Accept-Encoding` refuses (406).
    NotAcceptable(String),
    /// A request header that cannot be read, named with what is wrong (400).
    BadHeader {
        header: &'static str,
        reason: String,
    },
    Naming(NamingError),
}

impl From<NamingError> for ApiError {
    fn from(e: NamingError) -> Self {
        Self::Naming(e)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::Naming(e.into())
    }
}

/// A response ready to send: status, extra headers and the problem document.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem document of type `urn:hostnaming:problem:{kind}`, for this module's answers
/// and for any other part of the service (the host) that answers on its own.
pub fn document(kind: &str, title: &str, status: u16, detail: String) -> Value {
    json!({
        "type": format!("urn:hostnaming:problem:{kind}"),
        "title": title,
        "status": status,
        "detail": detail,
    })
}

/// Whether a caller's `X-Request-Id` may be repeated in answers and logs: 1 to 128 of
/// `[A-Za-z0-9._-]`, so it can forge no log line and carry no secret's punctuation.
pub fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// Puts the request's id into a problem document, so a caller reporting one names the
/// request the operator finds in the log.
pub fn with_request_id(body: &mut Value, id: Option<&str>) {
    if let (Some(id), Some(fields)) = (id.filter(|id| valid_request_id(id)), body.as_object_mut()) {
        fields.insert("request_id".into(), json!(id));
    }
}

/// The entity tag of a record at a KV v2 version: the version, quoted (RFC 9110).
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        let retry = || vec![("retry-after", RETRY_AFTER_SECS.to_string())];
        let (status, headers, body) = match self {
            Self::NotFound { path } => (
                404,
                vec![],
                document(
                    "not-found",
                    "Not Found",
                    404,
                    format!("there is no route {path}"),
                ),
            ),
            Self::MethodNotAllowed { allow } => (
                405,
                vec![("allow", allow.to_string())],
                document(
                    "method-not-allowed",
                    "Method Not Allowed",
                    405,
                    format!("this route accepts {allow}"),
                ),
            ),
            Self::PayloadTooLarge { limit } => (
                413,
                vec![],
                document(
                    "payload-too-large",
                    "Payload Too Large",
                    413,
                    format!("the body exceeds {limit} bytes"),
                ),
            ),
            Self::Unauthenticated { detail, challenge } => (
                401,
                vec![("www-authenticate", challenge.clone())],
                document("unauthenticated", "Unauthenticated", 401, detail.clone()),
            ),
            Self::Forbidden(detail) => (
                403,
                vec![],
                document("forbidden", "Forbidden", 403, detail.clone()),
            ),
            Self::NotAcceptable(detail) => (
                406,
                vec![],
                document("not-acceptable", "Not Acceptable", 406, detail.clone()),
            ),
            Self::UnsupportedMediaType { accept } => (
                415,
                vec![("accept-patch", accept.to_string())],
                document(
                    "unsupported-media-type",
                    "Unsupported Media Type",
                    415,
                    format!("send the body as {accept}"),
                ),
            ),
            Self::BadHeader { header, reason } => {
                let mut body = document(
                    "invalid-header",
                    "Invalid Header",
                    400,
                    format!("the {header} header {reason}"),
                );
                body["header"] = json!(header);
                (400, vec![], body)
            }
            Self::MalformedJson(detail) => (
                400,
                vec![],
                document("malformed-body", "Malformed Body", 400, detail.clone()),
            ),
            Self::Naming(NamingError::InvalidInput(e)) => {
                let mut body = document("invalid-field", "Invalid Field", 400, e.to_string());
                body["field"] = json!(e.field);
                (400, vec![], body)
            }
            Self::Naming(NamingError::NameTooLong { length }) => {
                let mut body = document(
                    "name-too-long",
                    "Name Too Long",
                    400,
                    format!(
                        "the next hostname for this tuple would be {length} characters; a \
                         hostname is one DNS label of at most {MAX_LABEL}"
                    ),
                );
                body["limit"] = json!(MAX_LABEL);
                (400, vec![], body)
            }
            Self::Naming(NamingError::VaultUnavailable(m)) => (
                503,
                retry(),
                document("vault-unavailable", "Vault Unavailable", 503, m.clone()),
            ),
            Self::Naming(NamingError::VaultDenied(m)) => (
                503,
                retry(),
                document("vault-denied", "Vault Refused The Service", 503, m.clone()),
            ),
            Self::Naming(NamingError::ContentionExhausted { attempts }) => (
                503,
                // Every attempt lost: the host's admission hears of it like any lost race.
                [
                    retry(),
                    vec![("hostnaming-conflicts", attempts.to_string())],
                ]
                .concat(),
                document(
                    "contention",
                    "Too Much Contention",
                    503,
                    format!(
                        "{attempts} check-and-set attempts lost to concurrent allocations \
                         before the deadline; retry"
                    ),
                ),
            ),
            Self::Naming(NamingError::IdempotencyMismatch) => (
                422,
                vec![],
                document(
                    "idempotency-key-reused",
                    "Idempotency Key Reused",
                    422,
                    "this Idempotency-Key was first used with a different payload".into(),
                ),
            ),
            Self::Naming(NamingError::InFlight) => (
                409,
                retry(),
                document(
                    "idempotency-key-in-flight",
                    "Request In Flight",
                    409,
                    "a request with this Idempotency-Key is still being served; retry".into(),
                ),
            ),
            Self::Naming(NamingError::NotFound(hostname)) => (
                404,
                vec![],
                document(
                    "name-not-found",
                    "Name Not Found",
                    404,
                    format!("no name {hostname} has been issued"),
                ),
            ),
            Self::Naming(NamingError::PreconditionFailed { current }) => (
                412,
                vec![("etag", etag(*current))],
                document(
                    "precondition-failed",
                    "Precondition Failed",
                    412,
                    format!(
                        "the record changed since the version you sent in If-Match; it is now \
                         at {}: read it again and decide on the change anew",
                        etag(*current)
                    ),
                ),
            ),
            Self::Naming(NamingError::Misconfigured(m)) => (
                500,
                vec![],
                document("misconfigured", "Service Misconfigured", 500, m.clone()),
            ),
        };
        Problem {
            status,
            headers,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_request_id_goes_into_the_problem_and_any_other_is_left_out() {
        let mut body = document("not-found", "Not Found", 404, "x".into());
        with_request_id(&mut body, Some("a\nfake log line"));
        assert!(body.get("request_id").is_none());
        with_request_id(&mut body, Some(&"a".repeat(129)));
        assert!(body.get("request_id").is_none());
        with_request_id(&mut body, Some("trace-42.A_b"));
        assert_eq!(body["request_id"], "trace-42.A_b");
    }

    #[test]
    fn an_invalid_field_is_a_400_that_names_the_field() {
        let p = ApiError::from(FieldError::new("role", "is required")).problem();
        assert_eq!(p.status, 400);
        assert_eq!(p.body["field"], "role");
        assert_eq!(p.body["detail"], "`role` is required");
        assert_eq!(p.body["status"], 400);
    }

    #[test]
    fn every_vault_side_failure_is_a_503_with_retry_after() {
        for e in [
            NamingError::VaultUnavailable("x".into()),
            NamingError::VaultDenied("x".into()),
            NamingError::ContentionExhausted { attempts: 3 },
        ] {
            let p = ApiError::from(e).problem();
            assert_eq!(p.status, 503);
            assert!(p.headers.contains(&("retry-after", "1".to_string())));
        }
    }

    #[test]
    fn running_out_of_attempts_reports_every_one_as_a_lost_race() {
        let p = ApiError::from(NamingError::ContentionExhausted { attempts: 7 }).problem();
        assert!(p
            .headers
            .contains(&("hostnaming-conflicts", "7".to_string())));
    }

    #[test]
    fn a_wrong_method_names_the_allowed_ones() {
        let p = ApiError::MethodNotAllowed { allow: "POST" }.problem();
        assert_eq!(
            (p.status, p.headers[0].clone()),
            (405, ("allow", "POST".to_string()))
        );
    }

    #[test]
    fn a_name_too_long_names_the_limit() {
        let p = ApiError::from(NamingError::NameTooLong { length: 64 }).problem();
        assert_eq!((p.status, p.body["limit"].clone()), (400, json!(63)));
    }
}
