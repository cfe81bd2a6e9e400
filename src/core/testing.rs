//! The one stand-in for Vault that unit tests across the core share: an in-memory KV v2
//! behind [`Env`], with the failures a real cluster shows (lost races, lagging standbys,
//! nodes that go silent after applying a write, no answer at all), and the helpers that
//! run an allocation against it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde_json::{json, Value};

use crate::core::allocate::{self, Allocation, Env, NameRequest, Settings};
use crate::core::error::NamingError;
use crate::core::idempotency::IdempotencyKey;
use crate::core::metadata::Metadata;
use crate::core::validate::Tuple;
use crate::core::vault::{Call, Method, Reply, VaultConfig};

/// Runs a future that never waits on I/O (the stub answers at once).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the stub never waits"),
    }
}

/// An in-memory KV v2 with real check-and-set semantics, and a scripted rival that
/// writes between our read and our write.
#[derive(Default)]
pub struct StubVault {
    pub store: HashMap<String, (u64, Value)>,
    pub calls: Vec<(Method, String)>,
    /// How many of our counter writes a rival beats by writing first.
    pub lose_races: u32,
    pub down: bool,
    /// For paths containing each fragment, how many reads answer the version before
    /// the latest (absent, if the latest is the first), as a lagging standby could.
    pub stale_reads: Vec<(&'static str, u32)>,
    /// Each key's version before its latest, which a stale read answers.
    pub previous: HashMap<String, (u64, Value)>,
    /// How often the allocation reported a stale read.
    pub stale_reported: u32,
    /// How often the allocation asked for reads that see every acknowledged write.
    pub fresh_wanted: u32,
    pub clock: Duration,
    pub slept: Vec<Duration>,
    pub seed: u64,
    /// How many writes to idempotency records a node applies and then goes silent on,
    /// so that the request sends them again to the next node (which refuses them: the
    /// version has moved on).
    pub silent_key_writes: u32,
    /// Answer every LIST whole, ignoring `after` and `limit`, as Vault does.
    pub whole_lists: bool,
    /// The display name a token lookup answers.
    pub identity: String,
}

impl StubVault {
    fn key(url: &str) -> String {
        url.split("/data/").nth(1).unwrap().to_string()
    }

    pub fn put(&mut self, key: &str, data: Value) {
        let version = self.store.get(key).map_or(0, |(v, _)| *v) + 1;
        if let Some(old) = self.store.insert(key.to_string(), (version, data)) {
            self.previous.insert(key.to_string(), old);
        }
    }

    pub fn writes(&self) -> usize {
        self.calls
            .iter()
            .filter(|(m, _)| *m == Method::Post)
            .count()
    }

    fn answer(&mut self, call: Call) -> Result<Reply, String> {
        self.calls.push((call.method, call.path.clone()));
        self.clock += Duration::from_millis(1);
        if self.down {
            return Err("connection refused".into());
        }
        if call.path == "/v1/auth/token/lookup-self" {
            let body = json!({"data": {"display_name": self.identity, "entity_id": ""}});
            return Ok(Reply {
                status: 200,
                body: body.to_string().into_bytes(),
            });
        }
        if call.path.contains("?list=true") {
            let (dir, query) = call
                .path
                .split("/metadata/")
                .nth(1)
                .unwrap()
                .split_once("?list=true")
                .unwrap();
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix(&format!("{name}=")))
                    .map(String::from)
            };
            let mut keys: Vec<String> = self
                .store
                .keys()
                .filter_map(|k| k.strip_prefix(dir))
                .map(|rest| match rest.split_once('/') {
                    Some((d, _)) => format!("{d}/"),
                    None => rest.to_string(),
                })
                .collect();
            keys.sort();
            keys.dedup();
            // OpenBao pages a LIST; Vault answers it whole.
            if !self.whole_lists {
                let after = param("after").unwrap_or_default();
                let after = match after.split_once('%') {
                    Some((head, hex)) => {
                        let byte = u8::from_str_radix(&hex[..2], 16).unwrap();
                        format!("{head}{}{}", char::from(byte), &hex[2..])
                    }
                    None => after,
                };
                keys.retain(|k| k.as_str() > after.as_str());
                if let Some(limit) = param("limit").and_then(|l| l.parse().ok()) {
                    keys.truncate(limit);
                }
            }
            return if keys.is_empty() {
                Ok(Reply {
                    status: 404,
                    body: b"{\"errors\":[]}".to_vec(),
                })
            } else {
                Ok(Reply {
                    status: 200,
                    body: json!({"data": {"keys": keys}}).to_string().into_bytes(),
                })
            };
        }
        let key = Self::key(&call.path);
        let mut current = self.store.get(&key).cloned();
        let lagging = self
            .stale_reads
            .iter_mut()
            .find(|(fragment, n)| key.contains(fragment) && *n > 0);
        if let (Method::Get, Some((_, n)), Some(_)) = (call.method, lagging, &current) {
            *n -= 1;
            current = self.previous.get(&key).cloned();
        }
        let reply = |status, body: Value| {
            Ok(Reply {
                status,
                body: body.to_string().into_bytes(),
            })
        };
        match call.method {
            Method::Get => match current {
                Some((v, data)) => reply(
                    200,
                    json!({"data": {"data": data, "metadata": {"version": v}}}),
                ),
                None => reply(404, json!({"errors": []})),
            },
            Method::Post => {
                let body: Value = serde_json::from_slice(&call.body.unwrap()).unwrap();
                if key.ends_with("/counter") && self.lose_races > 0 {
                    self.lose_races -= 1;
                    let data = current.map(|(_, d)| d).unwrap_or(json!({"counter": 1}));
                    let n = data["counter"].as_u64().unwrap();
                    self.put(&key, json!({"counter": n + 1}));
                }
                let version = self.store.get(&key).map_or(0, |(v, _)| *v);
                if body["options"]["cas"].as_u64() != Some(version) {
                    return reply(
                        400,
                        json!({"errors": ["check-and-set parameter did not match the current version"]}),
                    );
                }
                self.put(&key, body["data"].clone());
                reply(200, json!({"data": {"version": version + 1}}))
            }
        }
    }
}

impl Env for StubVault {
    async fn send(&mut self, call: Call) -> Result<Reply, String> {
        if call.method == Method::Post
            && call.path.contains("/idempotency/")
            && self.silent_key_writes > 0
        {
            let unheard = self.answer(call.clone());
            if unheard.as_ref().is_ok_and(|r| r.status == 200) {
                self.silent_key_writes -= 1;
                return self.answer(call);
            }
            return unheard;
        }
        self.answer(call)
    }
    async fn sleep(&mut self, d: Duration) {
        self.slept.push(d);
        self.clock += d;
    }
    fn elapsed(&self) -> Duration {
        self.clock
    }
    fn random(&mut self) -> u64 {
        self.seed = self
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.seed >> 11
    }
    fn unix_millis(&self) -> u64 {
        1_795_807_845_000 + self.clock.as_millis() as u64
    }
    fn stale_read(&mut self) {
        self.stale_reported += 1;
    }
    async fn read_fresh(&mut self) {
        self.fresh_wanted += 1;
    }
}

/// The Vault the stub stands for, as the messages name it.
pub fn vault_config() -> VaultConfig {
    VaultConfig::parse("http://vault:8200", "hostnaming").unwrap()
}

/// Allocates `count` names for the tuple `(application, role, environment)` from `vault`,
/// with an idempotency key when one is given.
pub fn allocate(
    vault: &mut StubVault,
    settings: &Settings,
    (application, role, environment): (&str, &str, &str),
    count: u32,
    key: Option<&str>,
) -> Result<Allocation, NamingError> {
    let request = Tuple::parse(application, role, environment).unwrap();
    let key = key.map(|k| IdempotencyKey::parse(k).unwrap());
    let order = NameRequest {
        tuple: &request,
        count,
        key: key.as_ref(),
        metadata: &Metadata::default(),
        actor: "tester",
    };
    block_on(allocate::allocate(vault, &vault_config(), settings, order))
}
