//! A small native Vault / OpenBao client for the host's own needs: bootstrapping the KV v2
//! mount, and letting tests and operators read what the component wrote.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

#[derive(Clone)]
pub struct VaultClient {
    addr: String,
    token: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is deliberately left out.
        f.debug_struct("VaultClient")
            .field("addr", &self.addr)
            .finish()
    }
}

impl VaultClient {
    pub fn new(addr: &str, token: &str) -> Result<Self> {
        if !addr.starts_with("http://") {
            bail!("the host's Vault client speaks plain http only; got {addr:?}");
        }
        Ok(Self {
            addr: addr.trim_end_matches('/').to_string(),
            token: token.to_string(),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// One call: `path` starts after `/v1/`. Returns the status and the JSON body
    /// (`null` when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        self.call_within(method, path, body, Duration::from_secs(10))
            .await
    }

    /// [`Self::call`] with its own deadline, for slow calls such as initialising Raft.
    pub async fn call_within(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        deadline: Duration,
    ) -> Result<(u16, Value)> {
        let uri = format!("{}/v1/{path}", self.addr);
        let req = hyper::Request::builder()
            .method(method)
            .uri(&uri)
            .header("x-vault-token", &self.token)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))?;
        let resp = tokio::time::timeout(deadline, self.client.request(req))
            .await
            .map_err(|_| anyhow!("{method} {uri}: no answer within {deadline:?}"))?
            .with_context(|| format!("{method} {uri}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
        };
        Ok((status, value))
    }

    /// Reads a KV v2 secret's data, `None` when absent.
    pub async fn kv_get(&self, mount: &str, path: &str) -> Result<Option<Value>> {
        match self
            .call("GET", &format!("{mount}/data/{path}"), None)
            .await?
        {
            (200, v) => Ok(Some(v["data"]["data"].clone())),
            (404, _) => Ok(None),
            (s, v) => bail!("reading {mount}/{path}: {s} {v}"),
        }
    }

    /// Writes a KV v2 secret with check-and-set.
    pub async fn kv_put(&self, mount: &str, path: &str, cas: u64, data: Value) -> Result<()> {
        let body = json!({"options": {"cas": cas}, "data": data});
        match self
            .call("POST", &format!("{mount}/data/{path}"), Some(body))
            .await?
        {
            (200 | 204, _) => Ok(()),
            (s, v) => bail!("writing {mount}/{path}: {s} {v}"),
        }
    }

    /// Every key under `prefix` (recursively), as paths relative to the mount.
    pub async fn kv_list_all(&self, mount: &str, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut pending = vec![prefix.to_string()];
        while let Some(dir) = pending.pop() {
            match self
                .call("LIST", &format!("{mount}/metadata/{dir}"), None)
                .await?
            {
                (200, v) => {
                    for key in v["data"]["keys"].as_array().into_iter().flatten() {
                        let key = format!("{dir}{}", key.as_str().unwrap_or_default());
                        if key.ends_with('/') {
                            pending.push(key);
                        } else {
                            out.push(key);
                        }
                    }
                }
                (404, _) => {}
                (s, v) => bail!("listing {mount}/{dir}: {s} {v}"),
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether Vault answers, initialised and unsealed.
    pub async fn healthy(&self) -> bool {
        matches!(self.call("GET", "sys/health", None).await, Ok((200, _)))
    }

    /// Waits until [`Self::healthy`], at most `deadline`.
    pub async fn wait_healthy(&self, deadline: Duration) -> Result<()> {
        let until = tokio::time::Instant::now() + deadline;
        while tokio::time::Instant::now() < until {
            if self.healthy().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("Vault at {} was not healthy within {deadline:?}", self.addr)
    }
}

/// The service's least-privilege policy, for the mount `hostnaming`.
pub const SERVICE_POLICY: &str = include_str!("../../policy/hostnaming-service.hcl");

/// The name under which [`bootstrap`] installs [`SERVICE_POLICY`].
pub const SERVICE_POLICY_NAME: &str = "hostnaming-service";

/// [`SERVICE_POLICY`] for another mount.
pub fn service_policy(mount: &str) -> String {
    SERVICE_POLICY.replace("\"hostnaming/", &format!("\"{mount}/"))
}

/// What [`bootstrap`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrapped {
    Created,
    AlreadyThere,
}

/// Makes sure `mount` is a KV v2 mount with `cas_required = true`, and installs the
/// service's policy for it. Safe to run any number of times; refuses to touch a mount of
/// another kind.
pub async fn bootstrap(vault: &VaultClient, mount: &str) -> Result<Bootstrapped> {
    let (status, mounts) = vault.call("GET", "sys/mounts", None).await?;
    if status != 200 {
        bail!(
            "listing mounts at {} failed: {status} {}",
            vault.addr(),
            mounts["errors"]
        );
    }
    let table = if mounts["data"].is_object() {
        &mounts["data"]
    } else {
        &mounts
    };
    let existing = &table[format!("{mount}/")];
    let outcome = if existing.is_object() {
        let kind = existing["type"].as_str().unwrap_or_default();
        let version = existing["options"]["version"].as_str().unwrap_or("1");
        if kind != "kv" || version != "2" {
            bail!("the mount {mount}/ exists but is {kind} version {version}, not kv version 2");
        }
        Bootstrapped::AlreadyThere
    } else {
        let body = json!({
            "type": "kv",
            "options": {"version": "2"},
            "description": "hostnaming: counters and the name registry",
        });
        match vault
            .call("POST", &format!("sys/mounts/{mount}"), Some(body))
            .await?
        {
            (200 | 204, _) => Bootstrapped::Created,
            (s, v) => bail!("creating the mount {mount}/ failed: {s} {}", v["errors"]),
        }
    };
    let policy = json!({ "policy": service_policy(mount) });
    match vault
        .call(
            "PUT",
            &format!("sys/policies/acl/{SERVICE_POLICY_NAME}"),
            Some(policy),
        )
        .await?
    {
        (200 | 204, _) => {}
        (s, v) => bail!(
            "writing the policy {SERVICE_POLICY_NAME} failed: {s} {}",
            v["errors"]
        ),
    }
    // A fresh KV v2 mount is briefly not ready for config writes ("upgrading"); retry.
    let mut last = String::new();
    for _ in 0..100 {
        match vault
            .call(
                "POST",
                &format!("{mount}/config"),
                Some(json!({"cas_required": true})),
            )
            .await?
        {
            (200 | 204, _) => return Ok(outcome),
            (s, v) => last = format!("{s} {}", v["errors"]),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("setting cas_required on {mount}/ failed: {last}")
}

impl VaultClient {
    /// Creates a token holding only `policies` (no default policy), for the service or a
    /// team. Returns the token.
    pub async fn create_token(&self, policies: &[&str]) -> Result<String> {
        let body = json!({"policies": policies, "no_default_policy": true, "ttl": "24h"});
        match self.call("POST", "auth/token/create", Some(body)).await? {
            (200, v) => v["auth"]["client_token"]
                .as_str()
                .map(String::from)
                .ok_or_else(|| anyhow!("no token in Vault's answer")),
            (s, v) => bail!("creating a token failed: {s} {}", v["errors"]),
        }
    }
}
