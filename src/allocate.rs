//! The allocation algorithm, generic over how Vault is reached.
//!
//! 1. Read the tuple's counter (`counter` = the next number; absent means 1).
//! 2. Check the name fits a label, then write `counter + 1` with cas = the version read.
//!    A lost race waits (jittered backoff) and starts over.
//! 3. Claim the name in the registry (`names/{hostname}`, cas = 0: create only). If the
//!    name is already there, some other tuple produced the same string; the number is
//!    burned and the loop takes the next one.
//!
//! A crash between 2 and 3 burns a number, never reuses one; nothing is ever issued
//! without its registry record.

use std::time::Duration;

use serde_json::json;

use crate::error::NamingError;
use crate::retry::RetryPolicy;
use crate::validate::{NameRequest, TooLong};
use crate::vault::{self, Call, Fault, Reply, VaultConfig, Written};

/// The counter field the proof of concept wrote; kept for compatibility.
pub const COUNTER_FIELD: &str = "counter";

/// Everything the algorithm needs from the world, so it runs natively under a stub and in
/// the component over wasi:http.
#[allow(async_fn_in_trait)] // used only with concrete types, never as `dyn` or across threads
pub trait Env {
    /// Sends one call to Vault with the service's token. `Err` means no answer at all
    /// (refused, reset, timed out), described without secrets.
    async fn send(&mut self, call: Call) -> Result<Reply, String>;
    async fn sleep(&mut self, duration: Duration);
    /// Time since the allocation started (monotonic).
    fn elapsed(&self) -> Duration;
    /// A uniformly random u64, for jitter.
    fn random(&mut self) -> u64;
    /// Wall-clock seconds since the Unix epoch, for records.
    fn unix_time(&self) -> u64;
}

/// A name that was issued and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub hostname: String,
    pub number: u64,
}

fn registry_path(hostname: &str) -> String {
    format!("names/{hostname}")
}

async fn send<E: Env>(env: &mut E, cfg: &VaultConfig, call: Call) -> Result<Reply, NamingError> {
    env.send(call).await.map_err(|e| {
        NamingError::VaultUnavailable(format!("Vault at {} is unreachable: {e}", cfg.addr))
    })
}

/// Issues the next name for `request`.
pub async fn allocate<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    policy: &RetryPolicy,
    request: &NameRequest,
) -> Result<Allocation, NamingError> {
    let counter_path = request.counter_path();
    let mut attempts: u32 = 0;
    loop {
        attempts += 1;
        let reply = send(env, cfg, vault::read(cfg, &counter_path)).await?;
        let secret = vault::parse_read(cfg, "read the counter", &reply)?;
        let next = match &secret.data {
            Some(data) => vault::counter_value(data, COUNTER_FIELD).map_err(|e| {
                NamingError::VaultUnavailable(format!(
                    "the counter at {}/{counter_path} is unusable: {e}",
                    cfg.mount
                ))
            })?,
            None => 1,
        };
        let hostname = request
            .hostname(next)
            .map_err(|TooLong { length }| NamingError::NameTooLong { length })?;
        let following = next.checked_add(1).ok_or_else(|| {
            NamingError::VaultUnavailable(format!("the counter at {counter_path} is exhausted"))
        })?;

        let advance = vault::write(
            cfg,
            &counter_path,
            secret.version,
            json!({ COUNTER_FIELD: following }),
        );
        let reply = send(env, cfg, advance).await?;
        match vault::parse_write(cfg, "advance the counter", &reply)? {
            Written::Version(_) => {}
            Written::CasMismatch => {
                match policy.delay(attempts, env.elapsed(), env.random()) {
                    Some(wait) => env.sleep(wait).await,
                    None => return Err(NamingError::ContentionExhausted { attempts }),
                }
                continue;
            }
        }

        let record = json!({
            "hostname": hostname,
            "application": request.application.as_str(),
            "role": request.role.as_str(),
            "environment": request.environment.as_str(),
            "number": next,
            "status": "issued",
            "created_at": crate::time::rfc3339(env.unix_time()),
        });
        let claim = vault::write(cfg, &registry_path(&hostname), 0, record);
        let reply = send(env, cfg, claim).await?;
        match vault::parse_write(cfg, "record the name", &reply) {
            Ok(Written::Version(_)) => {
                return Ok(Allocation {
                    hostname,
                    number: next,
                })
            }
            // Another tuple already holds this exact string: the number stays burned and
            // the loop takes the next one. No wait: nobody is racing us for it.
            Ok(Written::CasMismatch) => {
                if env.elapsed() >= policy.deadline {
                    return Err(NamingError::ContentionExhausted { attempts });
                }
            }
            Err(Fault::MountMissing(m)) | Err(Fault::Unexpected(m)) => {
                return Err(NamingError::VaultUnavailable(m))
            }
            Err(f) => return Err(f.into()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vault::Method;
    use serde_json::Value;
    use std::collections::HashMap;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// Runs a future that never waits on I/O (the stub answers at once).
    pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the stub never waits"),
        }
    }

    /// An in-memory KV v2 with real check-and-set semantics, and a scripted rival that
    /// writes between our read and our write.
    #[derive(Default)]
    pub(crate) struct StubVault {
        pub store: HashMap<String, (u64, Value)>,
        pub calls: Vec<(Method, String)>,
        /// How many of our counter writes a rival beats by writing first.
        pub lose_races: u32,
        pub down: bool,
        pub clock: Duration,
        pub slept: Vec<Duration>,
        pub seed: u64,
    }

    impl StubVault {
        fn key(url: &str) -> String {
            url.split("/data/").nth(1).unwrap().to_string()
        }

        pub fn put(&mut self, key: &str, data: Value) {
            let version = self.store.get(key).map_or(0, |(v, _)| *v) + 1;
            self.store.insert(key.to_string(), (version, data));
        }

        pub fn writes(&self) -> usize {
            self.calls
                .iter()
                .filter(|(m, _)| *m == Method::Post)
                .count()
        }
    }

    impl Env for StubVault {
        async fn send(&mut self, call: Call) -> Result<Reply, String> {
            self.calls.push((call.method, call.url.clone()));
            self.clock += Duration::from_millis(1);
            if self.down {
                return Err("connection refused".into());
            }
            let key = Self::key(&call.url);
            let current = self.store.get(&key).cloned();
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
        fn unix_time(&self) -> u64 {
            1_795_807_845
        }
    }

    fn cfg() -> VaultConfig {
        VaultConfig::parse("http://vault:8200", "hostnaming").unwrap()
    }

    fn run(vault: &mut StubVault, a: &str, r: &str, e: &str) -> Result<Allocation, NamingError> {
        let req = NameRequest::parse(a, r, e).unwrap();
        block_on(allocate(vault, &cfg(), &RetryPolicy::default(), &req))
    }

    #[test]
    fn the_first_allocation_of_a_tuple_is_number_one_and_the_counter_then_holds_two() {
        let mut v = StubVault::default();
        let a = run(&mut v, "web", "app", "prod").unwrap();
        assert_eq!(
            a,
            Allocation {
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
