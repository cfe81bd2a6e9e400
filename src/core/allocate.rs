//! The allocation algorithm, generic over how Vault is reached.
//!
//! 1. Read the tuple's counter (`counter` = the next number; absent means 1).
//! 2. Check the names fit a label, then write `counter + count` with cas = the version
//!    read. A lost race waits (jittered backoff) and starts over.
//! 3. With an idempotency key, record the reserved names in the key's record first.
//! 4. Claim each name in the registry (cas = 0: create only). A name already there belongs
//!    to another tuple that spells the same string (or, with a key, to this key's earlier
//!    attempt); a foreign one is skipped and replaced by a fresh number.
//!
//! A crash between two writes burns numbers, never reuses one; nothing is issued without
//! its registry record, and a key's names are fixed before the first is claimed.

use std::time::Duration;

use serde_json::{json, Value};

use crate::core::error::NamingError;
use crate::core::idempotency::{self, IdempotencyKey, KeyRecord, KeyState, Reserved};
use crate::core::metadata::Metadata;
use crate::core::registry::{self, NameRecord, Status};
use crate::core::retry::RetryPolicy;
use crate::core::template::Template;
use crate::core::validate::{FieldError, TooLong, Tuple};
use crate::core::vault::{self, Call, Fault, Record, Reply, Secret, VaultConfig, Written};

/// The counter field the proof of concept wrote; kept for compatibility.
pub const COUNTER_FIELD: &str = "counter";

/// Bulk requests may ask for at most this many names at once.
pub const MAX_COUNT: u32 = 100;

/// Checks how many names a request asks for: a whole number from 1 to [`MAX_COUNT`]
/// (`None`: not a whole number at all).
pub fn check_count(count: Option<u64>) -> Result<u32, FieldError> {
    match count {
        Some(n) if (1..=u64::from(MAX_COUNT)).contains(&n) => Ok(n as u32),
        _ => Err(FieldError::new(
            "count",
            format!("must be a whole number from 1 to {MAX_COUNT}"),
        )),
    }
}

/// Everything the algorithm needs from the world, so it runs natively under a stub and in
/// the component over wasi:http.
#[allow(async_fn_in_trait)] // used only with concrete types, never as `dyn` or across threads
pub trait Env {
    /// Sends one call to Vault with the service's token. `Err` means no answer at all
    /// (refused, reset, timed out), described without secrets.
    async fn send(&mut self, call: Call) -> Result<Reply, String>;
    /// Sends calls that do not depend on each other (reads of many records), answering in
    /// their order. A transport that can have several calls in flight does so; this
    /// default sends them one after another.
    async fn send_all(&mut self, calls: Vec<Call>) -> Vec<Result<Reply, String>> {
        let mut replies = Vec::with_capacity(calls.len());
        for call in calls {
            replies.push(self.send(call).await);
        }
        replies
    }
    async fn sleep(&mut self, duration: Duration);
    /// Time since the allocation started (monotonic).
    fn elapsed(&self) -> Duration;
    /// A uniformly random u64, for jitter.
    fn random(&mut self) -> u64;
    /// Wall-clock milliseconds since the Unix epoch, for records and leases.
    fn unix_millis(&self) -> u64;
    /// The last read answered a version already known to be superseded: whoever served it
    /// lags behind (a standby serving reads from its own copy). A transport with several
    /// nodes reads from another one next.
    fn stale_read(&mut self) {}
    /// A check-and-set just lost to a write this request has not seen, so the next read
    /// must not miss an acknowledged write: a transport with several nodes reads from the
    /// active one from now on, where a standby may serve its own older copy.
    async fn read_fresh(&mut self) {}
}

/// How allocations behave; the defaults suit production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub retry: RetryPolicy,
    /// How names are spelled, and so which counter a tuple uses.
    pub template: Template,
    /// How long a pending idempotency key belongs to the request that holds it. Must
    /// exceed the time one allocation can take, or a slow request could be taken over.
    pub lease: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            template: Template::default(),
            lease: Duration::from_secs(30),
        }
    }
}

/// What a caller asked for (the WIT `name-request`): a tuple, how many names, an optional
/// idempotency key, what the names are for, and who asked (recorded as `created_by`).
#[derive(Debug, Clone, Copy)]
pub struct NameRequest<'a> {
    pub tuple: &'a Tuple,
    pub count: u32,
    pub key: Option<&'a IdempotencyKey>,
    pub metadata: &'a Metadata,
    pub actor: &'a str,
}

/// A name that was issued and recorded (the WIT `issued-name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedName {
    pub hostname: String,
    pub number: u64,
}

/// The answer to an [`NameRequest`] (the WIT `allocation`): its names, and whether they were
/// issued by an earlier request with the same idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub names: Vec<IssuedName>,
    pub replayed: bool,
    /// Counter reads that did not end in a won check-and-set: the races this order lost
    /// (or stale reads it skipped). A server can throttle on it.
    pub conflicts: u32,
}

fn allocation(names: &[Reserved], replayed: bool) -> Allocation {
    Allocation {
        conflicts: 0,
        names: names
            .iter()
            .map(|r| IssuedName {
                hostname: r.hostname.clone(),
                number: r.number,
            })
            .collect(),
        replayed,
    }
}

pub(crate) async fn send<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    call: Call,
) -> Result<Reply, NamingError> {
    env.send(call).await.map_err(|e| {
        NamingError::VaultUnavailable(format!("Vault at {} is unreachable: {e}", cfg.describe()))
    })
}

pub(crate) async fn read<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    path: &str,
    what: &str,
) -> Result<Secret, NamingError> {
    let reply = send(env, cfg, vault::read(cfg, path)).await?;
    Ok(vault::parse_read(cfg, what, &reply)?)
}

pub(crate) async fn write<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    path: &str,
    cas: u64,
    data: Value,
    what: &str,
) -> Result<Written, NamingError> {
    let reply = send(env, cfg, vault::write(cfg, path, cas, data)).await?;
    match vault::parse_write(cfg, what, &reply) {
        Err(Fault::MountMissing(m)) | Err(Fault::Unexpected(m)) => {
            Err(NamingError::VaultUnavailable(m))
        }
        other => Ok(other?),
    }
}

fn now(env: &impl Env) -> String {
    crate::core::time::rfc3339(env.unix_millis() / 1000)
}

/// The next number a counter read as `secret` hands out (1 for a counter never written).
fn next_number(cfg: &VaultConfig, counter_path: &str, secret: &Secret) -> Result<u64, NamingError> {
    match &secret.data {
        Some(data) => vault::counter_value(data, COUNTER_FIELD).map_err(|e| {
            NamingError::VaultUnavailable(format!(
                "the counter at {}/{counter_path} is unusable: {e}",
                cfg.mount
            ))
        }),
        None => Ok(1),
    }
}

/// Takes `count` consecutive numbers from the tuple's counter.
async fn advance<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    settings: &Settings,
    request: &Tuple,
    count: u32,
    attempts: &mut u32,
) -> Result<Vec<Reserved>, NamingError> {
    let (policy, template) = (&settings.retry, &settings.template);
    let counter_path = template.counter_path(request);
    // The version our last check-and-set named and lost with: the counter is past it.
    let mut superseded = None;
    loop {
        *attempts += 1;
        let what = "read the counter";
        let secret = match superseded {
            // A write with a version no newer is bound to lose too.
            Some(lost) => read_past(env, cfg, policy, &counter_path, lost, what, attempts).await?,
            None => read(env, cfg, &counter_path, what).await?,
        };
        let next = next_number(cfg, &counter_path, &secret)?;
        let exhausted =
            || NamingError::VaultUnavailable(format!("the counter at {counter_path} is exhausted"));
        let following = next.checked_add(u64::from(count)).ok_or_else(exhausted)?;
        // The longest name is the last one; checking it before writing keeps a refused
        // request from touching Vault.
        request
            .hostname(template, following - 1)
            .map_err(|TooLong { length }| NamingError::NameTooLong { length })?;
        let data = json!({ COUNTER_FIELD: following });
        match write(
            env,
            cfg,
            &counter_path,
            secret.version,
            data,
            "advance the counter",
        )
        .await?
        {
            Written::Version(_) => {
                return Ok((next..following)
                    .map(|number| Reserved {
                        number,
                        hostname: request.hostname(template, number).expect("checked above"),
                    })
                    .collect())
            }
            Written::CasMismatch => {
                superseded = Some(secret.version);
                backoff(env, policy, *attempts).await?;
            }
        }
    }
}

/// Waits before another try, or gives up once the deadline leaves no room.
async fn backoff<E: Env>(
    env: &mut E,
    policy: &RetryPolicy,
    attempts: u32,
) -> Result<(), NamingError> {
    match policy.delay(attempts, env.elapsed(), env.random()) {
        Some(wait) => {
            env.sleep(wait).await;
            Ok(())
        }
        None => Err(NamingError::ContentionExhausted { attempts }),
    }
}

/// Reads `path` after a check-and-set naming version `lost` failed there, so Vault holds a
/// later version, from the active node where there are several. An answer no newer comes
/// from a node that lags (a standby serving its own copy, or a node that is no longer
/// active), and acting on it would misread the state: that node is skipped and the read
/// tried again after a backoff, each counted in `attempts`.
async fn read_past<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    policy: &RetryPolicy,
    path: &str,
    lost: u64,
    what: &str,
    attempts: &mut u32,
) -> Result<Secret, NamingError> {
    loop {
        env.read_fresh().await;
        let secret = read(env, cfg, path, what).await?;
        if secret.version > lost {
            return Ok(secret);
        }
        env.stale_read();
        *attempts += 1;
        backoff(env, policy, *attempts).await?;
    }
}

/// Claims one name in the registry, its actor and metadata in the same write.
/// `Ok(false)`: the name belongs to someone else.
async fn claim<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    policy: &RetryPolicy,
    order: &NameRequest<'_>,
    name: &Reserved,
) -> Result<bool, NamingError> {
    let (request, key) = (order.tuple, order.key);
    let record = NameRecord {
        hostname: name.hostname.clone(),
        application: request.application.as_str().into(),
        role: request.role.as_str().into(),
        environment: request.environment.as_str().into(),
        number: name.number,
        status: Status::Issued,
        created_at: now(env),
        created_by: Some(order.actor.to_string()),
        metadata: order.metadata.clone(),
        idempotency_key: key.map(|k| k.as_str().to_string()),
        released_at: None,
        released_by: None,
        events: Vec::new(),
    };
    let path = registry::path(&name.hostname);
    match write(env, cfg, &path, 0, record.to_value(), "record the name").await? {
        Written::Version(_) => Ok(true),
        Written::CasMismatch => {
            let Some(key) = key else { return Ok(false) };
            // With a key, the name may have been claimed by this key's earlier attempt.
            let what = "read a name record";
            let existing = read_past(env, cfg, policy, &path, 0, what, &mut 0).await?;
            let owner = existing
                .data
                .as_ref()
                .and_then(|d| NameRecord::from_data(d).ok())
                .and_then(|r| r.idempotency_key);
            Ok(owner.as_deref() == Some(key.as_str()))
        }
    }
}

/// The names `order` would get if it were sent now, writing nothing (a dry run): the
/// counter's next numbers, past any name the registry already holds (which an allocation
/// would skip too). Checks the same limits an allocation does. Another request may take
/// these numbers first: a preview reserves nothing.
pub async fn preview<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    settings: &Settings,
    order: NameRequest<'_>,
) -> Result<Vec<IssuedName>, NamingError> {
    let template = &settings.template;
    let counter_path = template.counter_path(order.tuple);
    let secret = read(env, cfg, &counter_path, "read the counter").await?;
    let mut number = next_number(cfg, &counter_path, &secret)?;
    let mut names = Vec::new();
    let mut looked = 0;
    while names.len() < order.count as usize {
        let missing = order.count as u64 - names.len() as u64;
        let candidates = (number..number + missing)
            .map(|n| {
                let hostname = order
                    .tuple
                    .hostname(template, n)
                    .map_err(|TooLong { length }| NamingError::NameTooLong { length })?;
                Ok(IssuedName {
                    hostname,
                    number: n,
                })
            })
            .collect::<Result<Vec<_>, NamingError>>()?;
        let calls = candidates
            .iter()
            .map(|c| vault::read(cfg, &registry::path(&c.hostname)))
            .collect();
        for (candidate, reply) in candidates.into_iter().zip(env.send_all(calls).await) {
            let reply = reply.map_err(|e| {
                NamingError::VaultUnavailable(format!(
                    "Vault at {} is unreachable: {e}",
                    cfg.describe()
                ))
            })?;
            if vault::parse_read(cfg, "read a name record", &reply)?
                .data
                .is_none()
            {
                names.push(candidate);
            }
        }
        number += missing;
        looked += missing;
        if looked > u64::from(MAX_COUNT) * 10 && names.len() < order.count as usize {
            return Err(NamingError::VaultUnavailable(format!(
                "past the counter at {counter_path}, {looked} names are already taken; the \
                 counter is behind the registry"
            )));
        }
    }
    Ok(names)
}

/// Issues the names for `order`.
pub async fn allocate<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    settings: &Settings,
    order: NameRequest<'_>,
) -> Result<Allocation, NamingError> {
    match order.key {
        None => allocate_unkeyed(env, cfg, settings, order).await,
        Some(key) => allocate_keyed(env, cfg, settings, order, key).await,
    }
}

async fn allocate_unkeyed<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    settings: &Settings,
    order: NameRequest<'_>,
) -> Result<Allocation, NamingError> {
    let (mut attempts, mut advances) = (0, 0);
    let mut issued = Vec::new();
    while issued.len() < order.count as usize {
        let missing = order.count - issued.len() as u32;
        let batch = advance(env, cfg, settings, order.tuple, missing, &mut attempts).await?;
        advances += 1;
        for name in batch {
            if claim(env, cfg, &settings.retry, &order, &name).await? {
                issued.push(name);
            }
        }
        if issued.len() < order.count as usize && env.elapsed() >= settings.retry.deadline {
            return Err(NamingError::ContentionExhausted { attempts });
        }
    }
    Ok(Allocation {
        conflicts: attempts - advances,
        ..allocation(&issued, false)
    })
}

/// What taking hold of an idempotency key found: its record, now this request's to finish,
/// or the names an earlier request was answered with.
enum KeyHold {
    Owned { version: u64, record: KeyRecord },
    Answered(Vec<Reserved>),
}

async fn hold_key<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    settings: &Settings,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> Result<KeyHold, NamingError> {
    let path = key.path();
    let lease_until = |env: &E| env.unix_millis() + settings.lease.as_millis() as u64;
    let owner = format!("{:016x}", env.random());
    let (policy, mut attempts) = (&settings.retry, 0);
    let mut cas = 0;
    loop {
        let record = KeyRecord {
            key: key.as_str().into(),
            fingerprint: fingerprint.into(),
            state: KeyState::Pending,
            lease_until: lease_until(env),
            names: Vec::new(),
            created_at: now(env),
            owner: owner.clone(),
        };
        if let Written::Version(version) = write(
            env,
            cfg,
            &path,
            cas,
            record.to_value(),
            "record the idempotency key",
        )
        .await?
        {
            return Ok(KeyHold::Owned { version, record });
        }
        let what = "read the idempotency key";
        let secret = read_past(env, cfg, policy, &path, cas, what, &mut attempts).await?;
        let Some(data) = secret.data else {
            cas = secret.version; // deleted by hand: start afresh on top of it
            continue;
        };
        let mut record = KeyRecord::from_data(&data).map_err(NamingError::VaultUnavailable)?;
        if record.owner == owner {
            // Our own write, applied by a node that went silent before it answered.
            return Ok(KeyHold::Owned {
                version: secret.version,
                record,
            });
        }
        if record.fingerprint != fingerprint {
            return Err(NamingError::IdempotencyMismatch);
        }
        if record.state == KeyState::Done {
            return Ok(KeyHold::Answered(record.names));
        }
        if record.lease_until > env.unix_millis() {
            return Err(NamingError::InFlight);
        }
        // The holder died or stalled past its lease: take over its reservation.
        record.lease_until = lease_until(env);
        record.owner = owner.clone();
        match write(
            env,
            cfg,
            &path,
            secret.version,
            record.to_value(),
            "take over the idempotency key",
        )
        .await?
        {
            Written::Version(version) => return Ok(KeyHold::Owned { version, record }),
            Written::CasMismatch => {
                let lost = secret.version;
                return match own_write(env, cfg, policy, &path, lost, &record).await? {
                    Some(version) => Ok(KeyHold::Owned { version, record }),
                    None => Err(NamingError::InFlight),
                };
            }
        }
    }
}

/// After a check-and-set on a key record naming version `lost` failed: the version now
/// there when it is exactly `wrote`, i.e. the write did land (on a node that went silent
/// before it answered, the request then sent it again to the next); `None` when someone
/// else wrote.
async fn own_write<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    policy: &RetryPolicy,
    path: &str,
    lost: u64,
    wrote: &KeyRecord,
) -> Result<Option<u64>, NamingError> {
    let what = "read the idempotency key";
    let secret = read_past(env, cfg, policy, path, lost, what, &mut 0).await?;
    let there = secret
        .data
        .as_ref()
        .and_then(|d| KeyRecord::from_data(d).ok());
    Ok((there.as_ref() == Some(wrote)).then_some(secret.version))
}

async fn allocate_keyed<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    settings: &Settings,
    order: NameRequest<'_>,
    key: &IdempotencyKey,
) -> Result<Allocation, NamingError> {
    let fingerprint = idempotency::fingerprint(order.tuple, order.count, order.metadata);
    let (mut version, mut record) = match hold_key(env, cfg, settings, key, &fingerprint).await? {
        KeyHold::Answered(names) => return Ok(allocation(&names, true)),
        KeyHold::Owned { version, record } => (version, record),
    };
    let path = key.path();
    let (mut attempts, mut advances) = (0, 0);
    let mut claimed: Vec<Reserved> = Vec::new();
    let mut to_claim = std::mem::take(&mut record.names);
    loop {
        for name in to_claim.drain(..) {
            if claim(env, cfg, &settings.retry, &order, &name).await? {
                claimed.push(name);
            }
        }
        if claimed.len() == order.count as usize {
            break;
        }
        if attempts > 0 && env.elapsed() >= settings.retry.deadline {
            return Err(NamingError::ContentionExhausted { attempts });
        }
        let missing = order.count - claimed.len() as u32;
        to_claim = advance(env, cfg, settings, order.tuple, missing, &mut attempts).await?;
        advances += 1;
        // The reservation is recorded before any of it is claimed, so whoever takes the
        // key over after a crash claims these same names rather than new ones.
        record.names = claimed.iter().chain(&to_claim).cloned().collect();
        record.lease_until = env.unix_millis() + settings.lease.as_millis() as u64;
        match write(
            env,
            cfg,
            &path,
            version,
            record.to_value(),
            "reserve names for the idempotency key",
        )
        .await?
        {
            Written::Version(v) => version = v,
            Written::CasMismatch => {
                match own_write(env, cfg, &settings.retry, &path, version, &record).await? {
                    Some(v) => version = v,
                    None => return Err(NamingError::InFlight),
                }
            }
        }
    }
    claimed.sort_by_key(|n| n.number);
    record.names = claimed.clone();
    record.state = KeyState::Done;
    // A lost race here means our lease ran out and another request took the key over; it
    // finishes with these same names, so ours is still the right answer.
    write(
        env,
        cfg,
        &path,
        version,
        record.to_value(),
        "complete the idempotency key",
    )
    .await?;
    Ok(Allocation {
        conflicts: attempts - advances,
        ..allocation(&claimed, false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{self, StubVault};
    use crate::core::vault::Method;
    use serde_json::Value;

    fn order(
        vault: &mut StubVault,
        tuple: (&str, &str, &str),
        count: u32,
        key: Option<&str>,
    ) -> Result<Allocation, NamingError> {
        testing::allocate(vault, &Settings::default(), tuple, count, key)
    }

    fn run(vault: &mut StubVault, a: &str, r: &str, e: &str) -> Result<IssuedName, NamingError> {
        let allocation = order(vault, (a, r, e), 1, None)?;
        assert!(!allocation.replayed);
        Ok(allocation.names.into_iter().next().unwrap())
    }

    fn hostnames(allocation: &Allocation) -> Vec<&str> {
        allocation
            .names
            .iter()
            .map(|n| n.hostname.as_str())
            .collect()
    }

    const WEB: (&str, &str, &str) = ("web", "app", "prod");

    #[test]
    fn metadata_and_the_actor_ride_in_the_claim_write_with_no_extra_round_trip() {
        let tuple = Tuple::parse("web", "app", "prod").unwrap();
        let details = Metadata {
            owner: Some("team-web".into()),
            tags: [("tier".to_string(), "gold".to_string())].into(),
            ..Metadata::default()
        };
        let mut calls = Vec::new();
        for metadata in [Metadata::default(), details.clone()] {
            let mut v = StubVault::default();
            let order = NameRequest {
                tuple: &tuple,
                count: 1,
                key: None,
                metadata: &metadata,
                actor: "ci-prod",
            };
            let cfg = testing::vault_config();
            testing::block_on(allocate(&mut v, &cfg, &Settings::default(), order)).unwrap();
            let record = &v.store["names/web-app-prod-vm1"];
            assert_eq!(
                (record.0, &record.1["created_by"]),
                (1, &serde_json::json!("ci-prod"))
            );
            calls.push(v.calls);
        }
        assert_eq!(
            calls[0], calls[1],
            "metadata changed the calls an allocation makes"
        );
        assert_eq!(calls[1].len(), 3, "{:?}", calls[1]); // read counter, write counter, claim
    }

    #[test]
    fn a_preview_answers_the_next_free_names_and_writes_nothing() {
        let mut v = StubVault::default();
        testing::allocate(
            &mut v,
            &Settings::default(),
            ("web", "app", "prod"),
            1,
            None,
        )
        .unwrap();
        v.put("names/web-app-prod-vm3", serde_json::json!({"taken": true}));
        let tuple = Tuple::parse("web", "app", "prod").unwrap();
        let none = Metadata::default();
        let order = NameRequest {
            tuple: &tuple,
            count: 2,
            key: None,
            metadata: &none,
            actor: "",
        };
        let writes = v.writes();
        let cfg = testing::vault_config();
        let names = testing::block_on(preview(&mut v, &cfg, &Settings::default(), order)).unwrap();
        let hostnames: Vec<_> = names.iter().map(|n| n.hostname.as_str()).collect();
        assert_eq!(hostnames, ["web-app-prod-vm2", "web-app-prod-vm4"]);
        assert_eq!(v.writes(), writes);
    }

    #[test]
    fn a_bulk_order_takes_consecutive_numbers_in_one_counter_advance() {
        let mut v = StubVault::default();
        let allocation = order(&mut v, WEB, 3, None).unwrap();
        assert_eq!(
            hostnames(&allocation),
            ["web-app-prod-vm1", "web-app-prod-vm2", "web-app-prod-vm3"]
        );
        let counter_writes = v
            .calls
            .iter()
            .filter(|(m, u)| *m == Method::Post && u.ends_with("/counter"))
            .count();
        assert_eq!(counter_writes, 1);
        assert_eq!(
            v.store["applications/web/app/prod/counter"].1,
            json!({"counter": 4})
        );
    }

    #[test]
    fn a_repeated_key_with_the_same_payload_replays_the_same_names() {
        let mut v = StubVault::default();
        let first = order(&mut v, WEB, 2, Some("k1")).unwrap();
        let again = order(&mut v, WEB, 2, Some("k1")).unwrap();
        assert!(!first.replayed && again.replayed);
        assert_eq!(first.names, again.names);
        assert_eq!(
            v.store["applications/web/app/prod/counter"].1,
            json!({"counter": 3})
        );
        assert_eq!(v.store["names/web-app-prod-vm1"].1["idempotency_key"], "k1");
    }

    #[test]
    fn the_same_key_with_another_payload_is_refused() {
        let mut v = StubVault::default();
        order(&mut v, WEB, 1, Some("k1")).unwrap();
        assert_eq!(
            order(&mut v, ("web", "app", "dev"), 1, Some("k1")),
            Err(NamingError::IdempotencyMismatch)
        );
        assert_eq!(
            order(&mut v, WEB, 2, Some("k1")),
            Err(NamingError::IdempotencyMismatch)
        );
    }

    fn pending(v: &mut StubVault, key: &str, lease_until: u64, names: Value) {
        let k = IdempotencyKey::parse(key).unwrap();
        let record = json!({
            "key": key,
            "fingerprint": idempotency::fingerprint(&Tuple::parse("web", "app", "prod").unwrap(), 1, &Metadata::default()),
            "state": "pending", "lease_until": lease_until, "names": names,
            "created_at": "2026-11-27T19:30:45Z",
        });
        v.put(&k.path(), record);
    }

    #[test]
    fn a_key_whose_holder_is_still_within_its_lease_is_in_flight() {
        let mut v = StubVault::default();
        pending(&mut v, "k1", u64::MAX, json!([]));
        assert_eq!(
            order(&mut v, WEB, 1, Some("k1")),
            Err(NamingError::InFlight)
        );
        assert_eq!(v.writes(), 1, "only the refused create");
    }

    #[test]
    fn a_key_write_applied_by_a_node_that_went_silent_is_recognised_as_our_own() {
        // Each of the key's three writes (create, reserve, complete) lands on a node that
        // then goes silent, and is sent again to the next, which finds the version moved.
        let mut v = StubVault {
            silent_key_writes: 3,
            ..StubVault::default()
        };
        let first = order(&mut v, WEB, 1, Some("k1")).unwrap();
        assert_eq!(v.silent_key_writes, 0, "every key write went unheard once");
        assert_eq!(hostnames(&first), ["web-app-prod-vm1"]);
        assert!(!first.replayed);
        // The key is complete: its retry replays the name instead of taking another.
        let again = order(&mut v, WEB, 1, Some("k1")).unwrap();
        assert_eq!(hostnames(&again), ["web-app-prod-vm1"]);
        assert!(again.replayed);
    }

    #[test]
    fn a_taken_over_key_written_by_a_node_that_went_silent_is_ours_too() {
        let mut v = StubVault {
            silent_key_writes: 1,
            ..StubVault::default()
        };
        pending(&mut v, "k1", 0, json!([]));
        let allocation = order(&mut v, WEB, 1, Some("k1")).unwrap();
        assert_eq!(v.silent_key_writes, 0, "the takeover went unheard once");
        assert_eq!(hostnames(&allocation), ["web-app-prod-vm1"]);
    }

    #[test]
    fn a_lagging_read_after_an_unheard_key_write_is_asked_again_not_taken_for_a_rival() {
        // Each key write lands on a node that goes silent; the resend is refused, and the
        // read that follows is first served by a standby that has not seen the write yet.
        let mut v = StubVault {
            silent_key_writes: 3,
            stale_reads: vec![("idempotency/", 3)],
            ..StubVault::default()
        };
        let allocation = order(&mut v, WEB, 1, Some("k1")).unwrap();
        assert_eq!(
            v.stale_reads,
            [("idempotency/", 0)],
            "every stale read was met"
        );
        assert_eq!(v.stale_reported, 3, "each was skipped as stale");
        assert_eq!(hostnames(&allocation), ["web-app-prod-vm1"]);
        // Three writes, each sent twice, one counter advance, one claim: no write was
        // repeated on the strength of a stale read.
        assert_eq!(v.writes(), 3 * 2 + 2);
        let again = order(&mut v, WEB, 1, Some("k1")).unwrap();
        assert_eq!(
            (hostnames(&again), again.replayed),
            (vec!["web-app-prod-vm1"], true)
        );
    }

    #[test]
    fn a_lagging_read_of_a_name_the_key_already_claimed_does_not_replace_it() {
        let mut v = died_holding_vm7(json!({
            "application": "web", "role": "app", "environment": "prod", "idempotency_key": "k1"
        }));
        // The name's record exists, but the first read comes from a node without it.
        v.stale_reads = vec![("names/", 1)];
        let allocation = order(&mut v, WEB, 1, Some("k1")).unwrap();
        assert_eq!(v.stale_reported, 1);
        assert_eq!(
            hostnames(&allocation),
            ["web-app-prod-vm7"],
            "not a fresh number"
        );
    }

    #[test]
    fn a_rival_holding_the_key_is_still_in_flight_whatever_our_owner_id() {
        // Another request's record: same key and payload, another owner.
        let mut v = StubVault::default();
        pending(&mut v, "k1", u64::MAX, json!([]));
        let k = IdempotencyKey::parse("k1").unwrap();
        let (version, mut data) = v.store[&k.path()].clone();
        data["owner"] = json!("a rival");
        v.store.insert(k.path(), (version, data));
        assert_eq!(
            order(&mut v, WEB, 1, Some("k1")),
            Err(NamingError::InFlight)
        );
    }

    /// The state a holder of key `k1` leaves when it dies after advancing the counter to
    /// 8, recording number 7 as its reservation, and finding `names/web-app-prod-vm7`
    /// written with `owner` (its own claim, or a colliding tuple's).
    fn died_holding_vm7(owner: Value) -> StubVault {
        let mut v = StubVault::default();
        v.put("applications/web/app/prod/counter", json!({"counter": 8}));
        pending(
            &mut v,
            "k1",
            0,
            json!([{"number": 7, "hostname": "web-app-prod-vm7"}]),
        );
        let mut record = json!({
            "hostname": "web-app-prod-vm7", "number": 7, "status": "issued", "created_at": "x",
        });
        record
            .as_object_mut()
            .unwrap()
            .extend(owner.as_object().unwrap().clone());
        v.put("names/web-app-prod-vm7", record);
        v
    }

    #[test]
    fn a_dead_holders_reservation_is_finished_with_the_same_names() {
        let mut v = died_holding_vm7(json!({
            "application": "web", "role": "app", "environment": "prod", "idempotency_key": "k1"
        }));
        let allocation = order(&mut v, WEB, 1, Some("k1")).unwrap();
        assert_eq!(hostnames(&allocation), ["web-app-prod-vm7"]);
        assert_eq!(
            v.store["applications/web/app/prod/counter"].1,
            json!({"counter": 8})
        );
        assert_eq!(
            order(&mut v, WEB, 1, Some("k1")).unwrap().names,
            allocation.names
        );
    }

    #[test]
    fn a_reserved_name_taken_by_someone_else_is_replaced_for_the_key() {
        let mut v = died_holding_vm7(json!({
            "application": "web-app", "role": "prod", "environment": "vm7", "idempotency_key": null
        }));
        let allocation = order(&mut v, WEB, 1, Some("k1")).unwrap();
        assert_eq!(hostnames(&allocation), ["web-app-prod-vm8"]);
    }

    #[test]
    fn the_first_allocation_of_a_tuple_is_number_one_and_the_counter_then_holds_two() {
        let mut v = StubVault::default();
        let a = run(&mut v, "web", "app", "prod").unwrap();
        assert_eq!(
            a,
            IssuedName {
                hostname: "web-app-prod-vm1".into(),
                number: 1
            }
        );
        assert_eq!(
            v.store["applications/web/app/prod/counter"].1,
            json!({"counter": 2})
        );
        let record = &v.store["names/web-app-prod-vm1"].1;
        assert_eq!(record["status"], "issued");
        assert_eq!(record["created_at"], "2026-11-27T19:30:45Z");
    }

    #[test]
    fn a_counter_written_by_the_old_service_continues_without_gap() {
        let mut v = StubVault::default();
        v.put("applications/web/app/prod/counter", json!({"counter": "4"}));
        assert_eq!(run(&mut v, "web", "app", "prod").unwrap().number, 4);
        assert_eq!(run(&mut v, "web", "app", "prod").unwrap().number, 5);
    }

    #[test]
    fn a_lost_race_backs_off_and_takes_the_next_number() {
        let mut v = StubVault {
            lose_races: 3,
            ..Default::default()
        };
        let a = run(&mut v, "web", "app", "prod").unwrap();
        // The rival took 1, 2 and 3 (in the stub, without registry records).
        assert_eq!(a.number, 4);
        assert_eq!(v.slept.len(), 3);
        assert_eq!(
            v.fresh_wanted, 3,
            "each read after a lost race must be fresh"
        );
    }

    #[test]
    fn an_order_reports_how_many_races_it_lost_and_a_clean_one_none() {
        let mut v = StubVault::default();
        assert_eq!(order(&mut v, WEB, 1, None).unwrap().conflicts, 0);
        v.lose_races = 2;
        let allocation = order(&mut v, WEB, 1, None).unwrap();
        assert_eq!(allocation.conflicts, 2);
        assert_eq!(allocation.names[0].number, 4, "the rival took 2 and 3");
    }

    #[test]
    fn a_keyed_order_reports_its_lost_races_too() {
        let mut v = StubVault {
            lose_races: 1,
            ..Default::default()
        };
        let allocation = order(&mut v, WEB, 2, Some("k-conflicts")).unwrap();
        assert_eq!(allocation.conflicts, 1);
        assert_eq!(allocation.names.len(), 2);
    }

    #[test]
    fn a_stale_counter_read_costs_a_retry_never_a_reissued_number() {
        let mut v = StubVault::default();
        let first: Vec<u64> = (0..3)
            .map(|_| run(&mut v, "web", "app", "prod").unwrap().number)
            .collect();
        // Every read now lags one version behind, as from a standby that has not caught up.
        v.stale_reads = vec![("/counter", 4)];
        let writes_before = v.writes();
        let next = run(&mut v, "web", "app", "prod").unwrap();
        assert_eq!(first, [1, 2, 3]);
        assert_eq!(
            next.number, 4,
            "3 was issued; a stale read must not hand it out again"
        );
        assert_eq!(v.slept.len(), 4, "each stale read waits its turn");
        // The first stale read costs a lost check-and-set; the next three are recognised
        // (the same version again) and reported, without a write bound to lose. Then one
        // counter write and one claim.
        assert_eq!(v.stale_reported, 3);
        assert_eq!(v.writes() - writes_before, 1 + 2);
        assert_eq!(
            v.store["applications/web/app/prod/counter"].1["counter"],
            json!(5)
        );
    }

    #[test]
    fn a_name_already_recorded_by_another_tuple_is_skipped() {
        let mut v = StubVault::default();
        assert_eq!(
            run(&mut v, "a-b", "c", "prod").unwrap().hostname,
            "a-b-c-prod-vm1"
        );
        let other = run(&mut v, "a", "b-c", "prod").unwrap();
        assert_eq!(other.hostname, "a-b-c-prod-vm2");
        assert!(v.slept.is_empty(), "a taken name is not contention");
    }

    #[test]
    fn endless_contention_ends_in_contention_exhausted_at_the_deadline() {
        let mut v = StubVault {
            lose_races: u32::MAX,
            ..Default::default()
        };
        match run(&mut v, "web", "app", "prod") {
            Err(NamingError::ContentionExhausted { attempts }) => assert!(attempts > 10),
            other => panic!("{other:?}"),
        }
        assert!(v.clock <= RetryPolicy::default().deadline + Duration::from_millis(5));
    }

    #[test]
    fn an_unreachable_vault_is_unavailable_and_says_where() {
        let mut v = StubVault {
            down: true,
            ..Default::default()
        };
        match run(&mut v, "web", "app", "prod") {
            Err(NamingError::VaultUnavailable(m)) => assert!(m.contains("http://vault:8200")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_number_that_would_overflow_the_label_writes_nothing() {
        let mut v = StubVault::default();
        let (a, r, e) = ("a".repeat(20), "b".repeat(20), "c".repeat(17));
        v.put(
            &format!("applications/{a}/{r}/{e}/counter"),
            json!({"counter": 10}),
        );
        let before = v.writes();
        assert_eq!(
            run(&mut v, &a, &r, &e),
            Err(NamingError::NameTooLong { length: 64 })
        );
        assert_eq!(v.writes(), before);
    }

    #[test]
    fn an_unreadable_counter_is_reported_not_overwritten() {
        let mut v = StubVault::default();
        v.put(
            "applications/web/app/prod/counter",
            json!({"counter": "many"}),
        );
        assert!(
            matches!(run(&mut v, "web", "app", "prod"), Err(NamingError::VaultUnavailable(m)) if m.contains("unusable"))
        );
        assert_eq!(v.writes(), 0);
    }
}
