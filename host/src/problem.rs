//! The host's own answers (no route, no turn to run, component failure) as problem+json,
//! in the component crate's format: [`hostnaming::api::problem`] builds the documents the
//! component sends, and this module only adds the ones only a host can give.

use bytes::Bytes;
use hostnaming::api::problem::{document, ApiError, Problem, CONTENT_TYPE, RETRY_AFTER_SECS};
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// No route of the manifest matches `path`.
pub fn not_found(path: &str) -> Problem {
    ApiError::NotFound {
        path: path.to_string(),
    }
    .problem()
}

/// A 503 that tells the caller to come back in a second: no turn to run in time, or no
/// instance left in the pool.
pub fn overloaded(detail: &str) -> Problem {
    Problem {
        headers: vec![("retry-after", RETRY_AFTER_SECS.to_string())],
        ..host_problem("overloaded", "Overloaded", 503, detail)
    }
}

/// The component trapped, or ended without answering.
pub fn component_failed() -> Problem {
    host_problem(
        "component-failed",
        "Component Failed",
        500,
        "the component failed to handle the request",
    )
}

/// A problem no [`ApiError`] stands for (only a host meets it), as the component crate
/// writes its documents.
fn host_problem(kind: &str, title: &str, status: u16, detail: &str) -> Problem {
    Problem {
        status,
        headers: Vec::new(),
        body: document(kind, title, status, detail.to_string()),
    }
}

/// `problem` as the HTTP response the host sends, its document naming the request id
/// (`request_id`) that the answer's `X-Request-Id` and the request log carry.
pub fn response_for(mut problem: Problem, request_id: &str) -> hyper::Response<HyperOutgoingBody> {
    problem.body["request_id"] = request_id.into();
    response(problem)
}

/// The liveness answer: the process is up and serving.
pub fn alive() -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(br#"{"status":"alive"}"#))
        .map_err(|never| match never {})
        .boxed_unsync();
    hyper::Response::builder()
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body)
        .expect("a valid response")
}

/// `problem` as the HTTP response the host sends.
pub fn response(problem: Problem) -> hyper::Response<HyperOutgoingBody> {
    let mut builder = hyper::Response::builder()
        .status(problem.status)
        .header("content-type", CONTENT_TYPE);
    for (name, value) in problem.headers {
        builder = builder.header(name, value);
    }
    let body = Full::new(Bytes::from(problem.body.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync();
    builder.body(body).expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_answers_in_the_component_crate_shape() {
        for (p, status, kind) in [
            (not_found("/x"), 404, "not-found"),
            (overloaded("busy"), 503, "overloaded"),
            (component_failed(), 500, "component-failed"),
        ] {
            assert_eq!(p.status, status);
            assert_eq!(p.body["status"], status);
            assert_eq!(p.body["type"], format!("urn:hostnaming:problem:{kind}"));
            let keys: Vec<_> = p.body.as_object().unwrap().keys().cloned().collect();
            assert_eq!(keys.len(), 4, "{keys:?}");
        }
        assert_eq!(not_found("/x").body["detail"], "there is no route /x");
    }

    #[test]
    fn an_overloaded_answer_says_when_to_come_back() {
        let resp = response(overloaded("busy"));
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    }
}
