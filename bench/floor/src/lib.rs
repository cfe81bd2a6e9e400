//! The floor: what any component costs here before it does any work of its own.
//!
//! A fresh instance per request makes the service's three Vault calls for `POST
//! /generate-name` (read the counter, advance it with check-and-set, record the name) and
//! nothing else: no settings beyond the address and token, no validation, no JSON library,
//! no deadline, no retry. Served by the same host and loaded by `hostnaming-bench bench
//! --manifest bench/floor/spin.toml`, its ratio to the ceiling is the most a component can
//! reach; the service's distance from it is what the service's own work costs.
//!
//! A benchmark fixture, never a service: a lost race or any other Vault refusal is a 503,
//! because it does not retry. With one client there is no race.
#![cfg(target_arch = "wasm32")]

use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types as http};
use wasi::io::poll::poll;

/// The string value of `"name":"..."` in a flat JSON object; the bench sends no escapes.
fn field<'a>(body: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":\"");
    let start = body.find(&key).map_or(0, |i| i + key.len());
    let end = body[start..].find('"').map_or(start, |i| start + i);
    &body[start..end]
}

/// The first number after `key`.
fn number_after(s: &str, key: &str) -> Option<u64> {
    let rest = &s[s.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One Vault call as the service makes it (one header list, one body write, one wait);
/// `None` for anything but a 2xx reply, and for a 404 on a read (an absent counter).
fn call(vault: &str, token: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    let mut headers = vec![("x-vault-token".to_string(), token.as_bytes().to_vec())];
    if body.is_some() {
        headers.push(("content-type".into(), b"application/json".to_vec()));
    }
    let request = http::OutgoingRequest::new(http::Fields::from_list(&headers).ok()?);
    let method = if body.is_some() {
        http::Method::Post
    } else {
        http::Method::Get
    };
    request.set_method(&method).ok()?;
    request.set_scheme(Some(&http::Scheme::Http)).ok()?;
    request.set_authority(Some(vault)).ok()?;
    request.set_path_with_query(Some(path)).ok()?;
    let outgoing = match body {
        Some(_) => Some(request.body().ok()?),
        None => None,
    };
    let future = outgoing_handler::handle(request, None).ok()?;
    if let (Some(outgoing), Some(bytes)) = (outgoing, body) {
        let stream = outgoing.write().ok()?;
        let mut rest = bytes.as_bytes();
        while !rest.is_empty() {
            match stream.check_write().ok()? {
                0 => drop(poll(&[&stream.subscribe()])),
                room => {
                    let n = rest.len().min(room as usize);
                    stream.write(&rest[..n]).ok()?;
                    rest = &rest[n..];
                }
            }
        }
        stream.flush().ok()?;
        while stream.check_write().ok()? == 0 {
            poll(&[&stream.subscribe()]);
        }
        drop(stream);
        http::OutgoingBody::finish(outgoing, None).ok()?;
    }
    let ready = future.subscribe();
    let response = loop {
        if let Some(outcome) = future.get() {
            break outcome.ok()?.ok()?;
        }
        poll(&[&ready]);
    };
    let status = response.status();
    let incoming = response.consume().ok()?;
    let stream = incoming.stream().ok()?;
    let mut bytes = Vec::new();
    loop {
        match stream.read(64 * 1024) {
            Ok(chunk) if !chunk.is_empty() => bytes.extend_from_slice(&chunk),
            Ok(_) => drop(poll(&[&stream.subscribe()])),
            Err(_) => break,
        }
    }
    drop(stream);
    http::IncomingBody::finish(incoming);
    let ok = (200..300).contains(&status) || (status == 404 && body.is_none());
    ok.then(|| (status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// The hostname, or `None` when Vault refused or could not be reached.
fn allocate(body: &str) -> Option<String> {
    let (app, role, env) = (
        field(body, "application"),
        field(body, "role"),
        field(body, "environment"),
    );
    let addr = spin_sdk::variables::get("vault_addr").ok()?;
    let token = spin_sdk::variables::get("vault_token").ok()?;
    let vault = addr.split_once("://").map_or(addr.as_str(), |(_, a)| a);
    let counter = format!("/v1/hostnaming/data/applications/{app}/{role}/{env}/counter");
    let (status, read) = call(vault, &token, &counter, None)?;
    let (number, version) = match status {
        404 => (1, 0),
        _ => (
            number_after(&read, "\"counter\":")?,
            number_after(&read, "\"version\":")?,
        ),
    };
    let advance = format!(
        r#"{{"data":{{"counter":{}}},"options":{{"cas":{version}}}}}"#,
        number + 1
    );
    call(vault, &token, &counter, Some(&advance))?;
    let hostname = format!("{app}-{role}-{env}-vm{number}");
    let record = format!(
        r#"{{"data":{{"hostname":"{hostname}","application":"{app}","role":"{role}","environment":"{env}","number":{number},"status":"issued"}},"options":{{"cas":0}}}}"#
    );
    call(
        vault,
        &token,
        &format!("/v1/hostnaming/data/names/{hostname}"),
        Some(&record),
    )?;
    Some(hostname)
}

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
    }
    let (status, answer) = match allocate(&String::from_utf8_lossy(&body)) {
        Some(hostname) => (200, format!(r#"{{"hostname":"{hostname}"}}"#)),
        None => (503, r#"{"title":"the floor does not retry"}"#.to_string()),
    };
    let headers = [("content-type".to_string(), b"application/json".to_vec())];
    let response = OutgoingResponse::new(Fields::from_list(&headers).expect("a valid header"));
    response.set_status_code(status).expect("a valid status");
    let _ = out.set_with_body(response, answer.into_bytes()).await;
}
