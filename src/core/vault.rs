//! The Vault / OpenBao KV v2 protocol, as data: the calls an allocation makes and what
//! their answers mean. No I/O here; the component sends the calls over wasi:http
//! (`spin::outbound`), the host's benchmark over its own client, and the unit tests
//! answer them from a stub (`core::testing`).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Where the counters live. The token is not here: only the transport holds it, so no
/// value built from this type can leak it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// `scheme://host:port` of each node, without a trailing slash, in the order they are
    /// tried: one for a single server, several for a cluster (see [`crate::core::failover`]).
    pub nodes: Vec<String>,
    /// The KV v2 mount, `hostnaming` unless configured otherwise.
    pub mount: String,
}

impl VaultConfig {
    /// Checks the two variables; the error text names the variable at fault. `addr` is one
    /// address or several separated by commas.
    pub fn parse(addr: &str, mount: &str) -> Result<Self, String> {
        let mut nodes = Vec::new();
        for node in addr.split(',') {
            let node = node.trim().trim_end_matches('/');
            let rest = node
                .strip_prefix("http://")
                .or_else(|| node.strip_prefix("https://"))
                .ok_or_else(|| {
                    format!("vault_addr must start with http:// or https://, got {node:?}")
                })?;
            if rest.is_empty() || rest.contains('/') {
                return Err(format!(
                    "vault_addr must be scheme://host[:port] without a path, got {node:?}"
                ));
            }
            if !nodes.iter().any(|n| n == node) {
                nodes.push(node.to_string());
            }
        }
        let mount = mount.trim().trim_matches('/');
        if mount.is_empty()
            || !mount
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))
        {
            return Err(format!(
                "vault_mount must be a non-empty mount path of letters, digits, '-', '_' \
                 and '/', got {mount:?}"
            ));
        }
        Ok(Self {
            nodes,
            mount: mount.to_string(),
        })
    }

    /// The nodes as an operator wrote them, for messages.
    pub fn describe(&self) -> String {
        self.nodes.join(", ")
    }

    fn data_path(&self, path: &str) -> String {
        format!("/v1/{}/data/{path}", self.mount)
    }
}

/// Lists the keys directly under `dir` (which ends in `/`, or is empty for the root).
pub fn list(cfg: &VaultConfig, dir: &str) -> Call {
    Call {
        method: Method::Get,
        path: format!("/v1/{}/metadata/{dir}?list=true", cfg.mount),
        body: None,
    }
}

/// One page of the keys directly under `dir`, in key order, those after `after`: OpenBao
/// pages a LIST with `after` and `limit`. Vault ignores both and answers every key, which
/// [`list_page_is_whole`] tells.
pub fn list_page(cfg: &VaultConfig, dir: &str, after: &str, limit: usize) -> Call {
    let mut path = format!("/v1/{}/metadata/{dir}?list=true&limit={limit}", cfg.mount);
    if !after.is_empty() {
        path.push_str("&after=");
        for b in after.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                path.push(char::from(b));
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Call {
        method: Method::Get,
        path,
        body: None,
    }
}

/// Whether the server ignored a page's `limit` and answered every key (Vault does): more
/// keys than asked for.
pub fn list_page_is_whole(keys: &[String], limit: usize) -> bool {
    keys.len() > limit
}

/// Who the token a call is sent with belongs to. Vault's `default` policy lets every token
/// look itself up.
pub fn lookup_self() -> Call {
    Call {
        method: Method::Get,
        path: "/v1/auth/token/lookup-self".into(),
        body: None,
    }
}

/// The longest identity kept from Vault's answer.
const MAX_IDENTITY: usize = 256;

/// Interprets [`lookup_self`]: the token's display name (`token-ci`, `userpass-alice`), or
/// `entity:{id}` when it has none. Never the token or its accessor.
pub fn parse_identity(cfg: &VaultConfig, reply: &Reply) -> Result<String, Fault> {
    if reply.status != 200 {
        return Err(fault(cfg, "look up the caller's token", reply));
    }
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|_| Fault::Unexpected("Vault's answer to a token lookup is not JSON".into()))?;
    let field = |name: &str| {
        body.pointer(&format!("/data/{name}"))
            .and_then(Value::as_str)
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_IDENTITY)
                    .collect::<String>()
            })
            .filter(|s| !s.trim().is_empty())
    };
    field("display_name")
        .or_else(|| field("entity_id").map(|id| format!("entity:{id}")))
        .ok_or_else(|| {
            Fault::Unexpected(
                "Vault's token lookup names neither a display name nor an entity".into(),
            )
        })
}

/// What the call's token may do on each of `paths` (relative to the mount).
pub fn capabilities_self(cfg: &VaultConfig, paths: &[String]) -> Call {
    let full: Vec<String> = paths.iter().map(|p| format!("{}/{p}", cfg.mount)).collect();
    Call {
        method: Method::Post,
        path: "/v1/sys/capabilities-self".into(),
        body: Some(json!({ "paths": full }).to_string().into_bytes()),
    }
}

/// Interprets [`capabilities_self`]: each path's capabilities, in the order asked (Vault
/// answers them keyed by the full path; `deny` alone means none).
pub fn parse_capabilities(
    cfg: &VaultConfig,
    paths: &[String],
    reply: &Reply,
) -> Result<Vec<Vec<String>>, Fault> {
    if reply.status != 200 {
        return Err(fault(
            cfg,
            "ask Vault what the caller's token may do",
            reply,
        ));
    }
    let body: Value = serde_json::from_slice(&reply.body).map_err(|_| {
        Fault::Unexpected("Vault's answer to sys/capabilities-self is not JSON".into())
    })?;
    let of = |path: &String| {
        let full = format!("{}/{path}", cfg.mount);
        let caps = body
            .get(&full)
            .or_else(|| body.pointer("/data").and_then(|d| d.get(&full)))
            .and_then(Value::as_array)
            .map(|caps| {
                caps.iter()
                    .filter_map(Value::as_str)
                    .filter(|c| *c != "deny")
                    .map(String::from)
                    .collect()
            });
        caps.ok_or_else(|| {
            Fault::Unexpected(format!(
                "Vault's answer to sys/capabilities-self does not mention {full}"
            ))
        })
    };
    paths.iter().map(of).collect()
}

/// Vault's own health endpoint (unauthenticated).
pub fn health() -> Call {
    Call {
        method: Method::Get,
        path: "/v1/sys/health?standbyok=true&perfstandbyok=true".into(),
        body: None,
    }
}

/// Vault's health as the active node alone answers it with 200 (a standby says 429, a
/// sealed node 503): how a client with several nodes finds the one whose reads are never
/// stale.
pub fn active_health() -> Call {
    Call {
        method: Method::Get,
        path: "/v1/sys/health".into(),
        body: None,
    }
}

/// The KV v2 mount's configuration: answers 200 only if the mount exists and is KV v2.
pub fn mount_config(cfg: &VaultConfig) -> Call {
    Call {
        method: Method::Get,
        path: format!("/v1/{}/config", cfg.mount),
        body: None,
    }
}

/// Interprets the answer to [`list`]: the keys, sub-directories ending in `/`.
pub fn parse_list(cfg: &VaultConfig, what: &str, reply: &Reply) -> Result<Vec<String>, Fault> {
    match reply.status {
        200 => {
            let body: Value = serde_json::from_slice(&reply.body)
                .map_err(|_| Fault::Unexpected(format!("Vault's answer to {what} is not JSON")))?;
            Ok(body
                .pointer("/data/keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default())
        }
        404 => Ok(Vec::new()),
        _ => Err(fault(cfg, what, reply)),
    }
}

/// Interprets the answer to [`health`] and then [`mount_config`]: `Ok` when Vault is
/// reachable, initialised, unsealed and the mount is KV v2.
pub fn check_health(cfg: &VaultConfig, health: &Reply) -> Result<(), Fault> {
    match health.status {
        200 | 429 | 473 => Ok(()),
        503 => Err(Fault::Unavailable("Vault is sealed".into())),
        501 => Err(Fault::Unavailable("Vault is not initialised".into())),
        _ => Err(fault(cfg, "check Vault's health", health)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One HTTP call to Vault, without the token (the transport adds `X-Vault-Token`) or the
/// node (the transport picks one).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    /// From `/v1/` on, with the query.
    pub path: String,
    pub body: Option<Vec<u8>>,
}

/// Vault's answer to a [`Call`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Reads the latest version of a KV v2 secret.
pub fn read(cfg: &VaultConfig, path: &str) -> Call {
    Call {
        method: Method::Get,
        path: cfg.data_path(path),
        body: None,
    }
}

/// Writes a KV v2 secret only if its current version is `cas` (0: only if it does not
/// exist yet).
pub fn write(cfg: &VaultConfig, path: &str, cas: u64, data: Value) -> Call {
    let body = json!({ "options": { "cas": cas }, "data": data });
    Call {
        method: Method::Post,
        path: cfg.data_path(path),
        body: Some(body.to_string().into_bytes()),
    }
}

/// A secret as read: its data (absent when it never existed or its latest version was
/// deleted) and the version a check-and-set write must name.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    pub version: u64,
    pub data: Option<serde_json::Map<String, Value>>,
}

/// A record kept as the data of one secret, written and read back as JSON.
pub trait Record: Serialize + DeserializeOwned {
    /// What the record is, for the message when one in Vault cannot be read.
    const WHAT: &'static str;

    fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a record serialises")
    }

    fn from_data(data: &Map<String, Value>) -> Result<Self, String> {
        serde_json::from_value(Value::Object(data.clone()))
            .map_err(|e| format!("{} in Vault is not readable: {e}", Self::WHAT))
    }
}

/// What went wrong talking to Vault, in words that never include the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Unreachable, sealed, overloaded or failing: worth retrying later.
    Unavailable(String),
    /// Vault refused the token.
    Denied(String),
    /// The mount does not exist (or is not KV v2).
    MountMissing(String),
    /// An answer this client does not understand.
    Unexpected(String),
}

/// The outcome of a check-and-set write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored as this version.
    Version(u64),
    /// The secret's version was not the one named: someone else wrote first.
    CasMismatch,
}

fn errors(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let list = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    if list.is_empty() {
        String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
    } else {
        list
    }
}

/// Classifies a failed answer; `what` says which call it was, for the message.
fn fault(cfg: &VaultConfig, what: &str, reply: &Reply) -> Fault {
    let detail = errors(&reply.body);
    match reply.status {
        403 => Fault::Denied(format!(
            "Vault refused the service's token when it tried to {what} ({detail}); check \
             the token and its policy"
        )),
        503 if detail.contains("sealed") => Fault::Unavailable("Vault is sealed".into()),
        429 | 500..=599 => Fault::Unavailable(format!(
            "Vault answered {} when the service tried to {what}: {detail}",
            reply.status
        )),
        404 | 405 => Fault::MountMissing(format!(
            "there is no KV v2 mount at '{}' (Vault answered {} to {what}: {detail}); run \
             `hostnaming bootstrap`",
            cfg.mount, reply.status
        )),
        s => Fault::Unexpected(format!(
            "Vault answered {s} when the service tried to {what}: {detail}"
        )),
    }
}

/// Interprets the answer to [`read`].
pub fn parse_read(cfg: &VaultConfig, what: &str, reply: &Reply) -> Result<Secret, Fault> {
    let body: Option<Value> = serde_json::from_slice(&reply.body).ok();
    let metadata_version = body
        .as_ref()
        .and_then(|b| b.pointer("/data/metadata/version"))
        .and_then(Value::as_u64);
    match reply.status {
        200 => {
            let data = body
                .as_ref()
                .and_then(|b| b.pointer("/data/data"))
                .and_then(Value::as_object)
                .cloned();
            let version = metadata_version.ok_or_else(|| {
                Fault::Unexpected(format!("Vault's answer to {what} has no version"))
            })?;
            Ok(Secret { version, data })
        }
        // KV v2 answers 404 both for a key that never existed (no body data) and for one
        // whose latest version was deleted (metadata still there, and a CAS write must
        // name that version). A missing mount also reads as 404 here; the write that
        // follows tells it apart.
        404 if body.as_ref().and_then(|b| b.get("errors")).is_some()
            || metadata_version.is_some() =>
        {
            Ok(Secret {
                version: metadata_version.unwrap_or(0),
                data: None,
            })
        }
        _ => Err(fault(cfg, what, reply)),
    }
}

/// Interprets the answer to [`write()`].
pub fn parse_write(cfg: &VaultConfig, what: &str, reply: &Reply) -> Result<Written, Fault> {
    match reply.status {
        200 | 204 => {
            let body: Option<Value> = serde_json::from_slice(&reply.body).ok();
            let version = body
                .as_ref()
                .and_then(|b| b.pointer("/data/version"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            Ok(Written::Version(version))
        }
        400 if errors(&reply.body).contains("check-and-set parameter did not match") => {
            Ok(Written::CasMismatch)
        }
        _ => Err(fault(cfg, what, reply)),
    }
}

/// Reads a counter field: a JSON number, or a string of digits as `vault kv put` and
/// older clients store it.
pub fn counter_value(data: &serde_json::Map<String, Value>, field: &str) -> Result<u64, String> {
    match data.get(field) {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("field `{field}` holds {n}, not a whole number")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("field `{field}` holds {s:?}, not a whole number")),
        Some(other) => Err(format!("field `{field}` holds {other}, not a number")),
        None => Err(format!("field `{field}` is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VaultConfig {
        VaultConfig::parse("http://127.0.0.1:8200/", "hostnaming").unwrap()
    }

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn an_address_without_a_scheme_or_with_a_path_is_refused() {
        assert!(VaultConfig::parse("127.0.0.1:8200", "m")
            .unwrap_err()
            .contains("vault_addr"));
        assert!(VaultConfig::parse("http://v:8200/x", "m")
            .unwrap_err()
            .contains("without a path"));
        assert!(VaultConfig::parse("http://v", "a b")
            .unwrap_err()
            .contains("vault_mount"));
    }

    #[test]
    fn several_comma_separated_nodes_are_kept_in_order_without_repeats() {
        let cfg = VaultConfig::parse(
            " http://10.0.0.2:8200/, https://vault-b:8200,http://10.0.0.2:8200",
            "hostnaming",
        )
        .unwrap();
        assert_eq!(cfg.nodes, ["http://10.0.0.2:8200", "https://vault-b:8200"]);
        assert!(VaultConfig::parse("http://a:1,,http://b:2", "m")
            .unwrap_err()
            .contains("vault_addr"));
    }

    #[test]
    fn writes_name_the_version_they_replace() {
        let call = write(&cfg(), "a/counter", 3, json!({"counter": 5}));
        assert_eq!(call.path, "/v1/hostnaming/data/a/counter");
        let body: Value = serde_json::from_slice(&call.body.unwrap()).unwrap();
        assert_eq!(body, json!({"options": {"cas": 3}, "data": {"counter": 5}}));
    }

    #[test]
    fn a_missing_key_reads_as_version_zero() {
        let s = parse_read(&cfg(), "read", &reply(404, json!({"errors": []}))).unwrap();
        assert_eq!(
            s,
            Secret {
                version: 0,
                data: None
            }
        );
    }

    #[test]
    fn a_deleted_key_reads_as_its_last_version_without_data() {
        let body =
            json!({"data": {"data": null, "metadata": {"version": 4, "deletion_time": "x"}}});
        let s = parse_read(&cfg(), "read", &reply(404, body)).unwrap();
        assert_eq!(
            s,
            Secret {
                version: 4,
                data: None
            }
        );
    }

    #[test]
    fn a_present_key_reads_with_data_and_version() {
        let body = json!({"data": {"data": {"counter": 4}, "metadata": {"version": 2}}});
        let s = parse_read(&cfg(), "read", &reply(200, body)).unwrap();
        assert_eq!(s.version, 2);
        assert_eq!(counter_value(&s.data.unwrap(), "counter"), Ok(4));
    }

    #[test]
    fn a_cas_mismatch_is_told_apart_from_other_bad_requests() {
        let mismatch =
            json!({"errors": ["check-and-set parameter did not match the current version"]});
        assert_eq!(
            parse_write(&cfg(), "w", &reply(400, mismatch)),
            Ok(Written::CasMismatch)
        );
        let other = json!({"errors": ["something else"]});
        assert!(matches!(
            parse_write(&cfg(), "w", &reply(400, other)),
            Err(Fault::Unexpected(_))
        ));
    }

    #[test]
    fn sealed_denied_and_missing_mount_are_classified() {
        let sealed = reply(503, json!({"errors": ["Vault is sealed"]}));
        assert_eq!(
            parse_write(&cfg(), "w", &sealed),
            Err(Fault::Unavailable("Vault is sealed".into()))
        );
        let denied = reply(403, json!({"errors": ["permission denied"]}));
        assert!(
            matches!(parse_write(&cfg(), "w", &denied), Err(Fault::Denied(m)) if m.contains("refused"))
        );
        let nohandler = reply(404, json!({"errors": ["no handler for route \"x\""]}));
        assert!(
            matches!(parse_write(&cfg(), "w", &nohandler), Err(Fault::MountMissing(m)) if m.contains("bootstrap"))
        );
    }

    #[test]
    fn counters_written_as_strings_are_read() {
        let data = json!({"counter": "12"}).as_object().unwrap().clone();
        assert_eq!(counter_value(&data, "counter"), Ok(12));
        let bad = json!({"counter": "x"}).as_object().unwrap().clone();
        assert!(counter_value(&bad, "counter").is_err());
        let neg = json!({"counter": -1}).as_object().unwrap().clone();
        assert!(counter_value(&neg, "counter").is_err());
    }
}
