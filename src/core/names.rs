//! Reading and releasing registry records, listing a tuple's names, and health.
//!
//! Listing needs no index of its own: a tuple's counter bounds the numbers it has issued,
//! so its candidates are `{tuple}-vm1 .. vm{counter-1}`, read in number order; numbers
//! burned by a crash, or names another tuple owns, are skipped.

use crate::core::allocate::{read, send, write, Env, COUNTER_FIELD};
use crate::core::error::NamingError;
use crate::core::registry::{self, NameRecord, Status};
use crate::core::template::Template;
use crate::core::validate::{FieldError, Fragment, NameRequest};
use crate::core::vault::{self, Secret, VaultConfig, Written};

/// Default and largest page size of a listing.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

fn record_of(secret: &Secret, hostname: &str) -> Result<Option<NameRecord>, NamingError> {
    match &secret.data {
        None => Ok(None),
        Some(data) => NameRecord::from_data(data)
            .map(Some)
            .map_err(|e| NamingError::VaultUnavailable(format!("{hostname}: {e}"))),
    }
}

/// The record of `hostname`.
pub async fn get<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    hostname: &str,
) -> Result<NameRecord, NamingError> {
    let secret = read(env, cfg, &registry::path(hostname), "read a name record").await?;
    record_of(&secret, hostname)?.ok_or_else(|| NamingError::NotFound(hostname.into()))
}

/// Marks `hostname` released. Releasing a released name changes nothing.
pub async fn release<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    hostname: &str,
) -> Result<NameRecord, NamingError> {
    let path = registry::path(hostname);
    loop {
        let secret = read(env, cfg, &path, "read a name record").await?;
        let mut record =
            record_of(&secret, hostname)?.ok_or_else(|| NamingError::NotFound(hostname.into()))?;
        if record.status == Status::Released {
            return Ok(record);
        }
        record.status = Status::Released;
        record.released_at = Some(crate::core::time::rfc3339(env.unix_millis() / 1000));
        let data = record.to_value();
        match write(env, cfg, &path, secret.version, data, "release a name").await? {
            Written::Version(_) => return Ok(record),
            Written::CasMismatch => continue, // released concurrently; re-read and answer
        }
    }
}

/// A listing's filters, as given in the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub application: Fragment,
    pub role: Option<Fragment>,
    pub environment: Option<Fragment>,
    pub limit: usize,
    /// Continue after this (number, hostname).
    pub after: Option<(u64, String)>,
}

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

impl ListQuery {
    /// Parses `application=..&role=..&environment=..&limit=..&cursor=..`.
    pub fn parse(query: &str) -> Result<Self, FieldError> {
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
                    let parsed = v.split_once('.').and_then(|(n, h)| {
                        Some((
                            n.parse().ok()?,
                            registry::parse_hostname(h).ok()?.to_string(),
                        ))
                    });
                    after = Some(parsed.ok_or_else(|| {
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
        let application =
            application.ok_or_else(|| FieldError::new("application", "is required"))?;
        Ok(Self {
            application,
            role,
            environment,
            limit,
            after,
        })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub names: Vec<NameRecord>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

async fn list_dir<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    dir: &str,
) -> Result<Vec<String>, NamingError> {
    let reply = send(env, cfg, vault::list(cfg, dir)).await?;
    Ok(vault::parse_list(cfg, "list counters", &reply)?)
}

/// Sub-directory names under `dir`, or just `only` when the filter names one.
async fn children<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    dir: &str,
    only: &Option<Fragment>,
) -> Result<Vec<String>, NamingError> {
    if let Some(f) = only {
        return Ok(vec![f.as_str().to_string()]);
    }
    Ok(list_dir(env, cfg, dir)
        .await?
        .into_iter()
        .filter_map(|k| k.strip_suffix('/').map(String::from))
        .collect())
}

/// The directory names under `dir` for a field the template uses, or `_` (the counter
/// path's stand-in) for one it does not.
async fn field_dirs<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    dir: &str,
    used: bool,
    only: &Option<Fragment>,
) -> Result<Vec<String>, NamingError> {
    if used {
        children(env, cfg, dir, only).await
    } else {
        Ok(vec!["_".to_string()])
    }
}

/// Lists the matching names, ordered by number (then hostname). Candidates come from the
/// counters the template uses; each is kept only if its record matches the query.
pub async fn list<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    template: &Template,
    query: &ListQuery,
) -> Result<Page, NamingError> {
    let app = query.application.as_str();
    let unused = template.unused();
    let uses = |f: &str| !unused.contains(&f);
    let app_dir = if uses("application") { app } else { "_" };
    let mut candidates: Vec<(u64, String, NameRequest)> = Vec::new();
    let roles_dir = format!("applications/{app_dir}/");
    for role in field_dirs(env, cfg, &roles_dir, uses("role"), &query.role).await? {
        let envs_dir = format!("applications/{app_dir}/{role}/");
        for environment in
            field_dirs(env, cfg, &envs_dir, uses("environment"), &query.environment).await?
        {
            // A field the template leaves out does not shape the name; any valid value
            // stands in for it when rendering.
            let stand_in = |v: &str| {
                if v == "_" {
                    "x".to_string()
                } else {
                    v.to_string()
                }
            };
            let Ok(tuple) = NameRequest::parse(app, &stand_in(&role), &stand_in(&environment))
            else {
                continue; // not a tuple this service writes
            };
            let path = template.counter_path(&tuple);
            let counter = read(env, cfg, &path, "read the counter").await?;
            let next = match &counter.data {
                Some(data) => vault::counter_value(data, COUNTER_FIELD).unwrap_or(1),
                None => 1,
            };
            for number in 1..next {
                if let Ok(hostname) = tuple.hostname(template, number) {
                    candidates.push((number, hostname, tuple.clone()));
                }
            }
        }
    }
    candidates.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let start = match &query.after {
        Some((n, h)) => candidates.partition_point(|c| (c.0, &c.1) <= (*n, h)),
        None => 0,
    };
    let wanted = |r: &NameRecord, number: u64, tuple: &NameRequest| {
        r.number == number
            && r.application == app
            && query.role.as_ref().is_none_or(|f| r.role == f.as_str())
            && query
                .environment
                .as_ref()
                .is_none_or(|f| r.environment == f.as_str())
            && (!uses("role") || r.role == tuple.role.as_str())
            && (!uses("environment") || r.environment == tuple.environment.as_str())
    };
    let mut names = Vec::new();
    let mut rest = candidates[start..].iter();
    for (number, hostname, tuple) in rest.by_ref() {
        let secret = read(env, cfg, &registry::path(hostname), "read a name record").await?;
        if let Some(record) = record_of(&secret, hostname)? {
            if wanted(&record, *number, tuple) {
                names.push(record);
                if names.len() == query.limit {
                    break;
                }
            }
        }
    }
    let next_cursor = match (rest.as_slice().is_empty(), names.last()) {
        (false, Some(last)) => Some(format!("{}.{}", last.number, last.hostname)),
        _ => None,
    };
    Ok(Page { names, next_cursor })
}

/// `Ok` when Vault is reachable, unsealed, and the mount exists as KV v2.
pub async fn health<E: Env>(env: &mut E, cfg: &VaultConfig) -> Result<(), NamingError> {
    let reply = send(env, cfg, vault::health()).await?;
    vault::check_health(cfg, &reply)?;
    let reply = send(env, cfg, vault::mount_config(cfg)).await?;
    match reply.status {
        200 => Ok(()),
        403 => Err(NamingError::VaultDenied(format!(
            "Vault refused the service's token when it read {}/config",
            cfg.mount
        ))),
        _ => Err(NamingError::VaultUnavailable(format!(
            "there is no KV v2 mount at '{}' (Vault answered {}); run `hostnaming bootstrap`",
            cfg.mount, reply.status
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::allocate::Settings;
    use crate::core::testing::{self, block_on, vault_config as cfg, StubVault};
    use serde_json::json;

    fn issue(v: &mut StubVault, a: &str, r: &str, e: &str, count: u32) {
        issue_with(v, &Template::default(), (a, r, e), count);
    }

    fn issue_with(v: &mut StubVault, template: &Template, tuple: (&str, &str, &str), count: u32) {
        let settings = Settings {
            template: template.clone(),
            ..Settings::default()
        };
        testing::allocate(v, &settings, tuple, count, None).unwrap();
    }

    #[test]
    fn a_template_without_role_counts_per_application_and_environment_and_lists() {
        let mut v = StubVault::default();
        let t = Template::parse("{application}-{environment}-{counter:02}").unwrap();
        issue_with(&mut v, &t, ("web", "app", "prod"), 1);
        issue_with(&mut v, &t, ("web", "db", "prod"), 1);
        assert!(
            v.store.contains_key("names/web-prod-01") && v.store.contains_key("names/web-prod-02")
        );
        assert_eq!(
            v.store["applications/web/_/prod/counter"].1,
            json!({"counter": 3})
        );
        let page = block_on(list(&mut v, &cfg(), &t, &query("application=web&role=db"))).unwrap();
        let got: Vec<_> = page.names.iter().map(|r| r.hostname.as_str()).collect();
        assert_eq!(got, ["web-prod-02"]);
    }

    fn query(q: &str) -> ListQuery {
        ListQuery::parse(q).unwrap()
    }

    #[test]
    fn a_listing_is_ordered_by_number_and_paginated_with_a_cursor() {
        let mut v = StubVault::default();
        issue(&mut v, "web", "app", "prod", 3);
        issue(&mut v, "web", "db", "prod", 2);
        issue(&mut v, "other", "app", "prod", 1);
        let page = block_on(list(
            &mut v,
            &cfg(),
            &Template::default(),
            &query("application=web&limit=3"),
        ))
        .unwrap();
        let got: Vec<_> = page.names.iter().map(|r| r.hostname.as_str()).collect();
        assert_eq!(
            got,
            ["web-app-prod-vm1", "web-db-prod-vm1", "web-app-prod-vm2"]
        );
        let cursor = page.next_cursor.unwrap();
        let page = block_on(list(
            &mut v,
            &cfg(),
            &Template::default(),
            &query(&format!("application=web&limit=3&cursor={cursor}")),
        ))
        .unwrap();
        let got: Vec<_> = page.names.iter().map(|r| r.hostname.as_str()).collect();
        assert_eq!(got, ["web-db-prod-vm2", "web-app-prod-vm3"]);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn filters_narrow_the_listing_and_foreign_owners_are_skipped() {
        let mut v = StubVault::default();
        issue(&mut v, "a-b", "c", "prod", 1); // owns a-b-c-prod-vm1
        issue(&mut v, "a", "b-c", "prod", 1); // so this tuple gets vm2
        let page = block_on(list(
            &mut v,
            &cfg(),
            &Template::default(),
            &query("application=a&role=b-c&environment=prod"),
        ))
        .unwrap();
        let got: Vec<_> = page.names.iter().map(|r| r.hostname.as_str()).collect();
        assert_eq!(got, ["a-b-c-prod-vm2"]);
    }

    #[test]
    fn query_errors_name_the_parameter() {
        assert_eq!(ListQuery::parse("role=x").unwrap_err().field, "application");
        assert_eq!(
            ListQuery::parse("application=web&limit=0")
                .unwrap_err()
                .field,
            "limit"
        );
        assert_eq!(
            ListQuery::parse("application=web&limit=101")
                .unwrap_err()
                .field,
            "limit"
        );
        assert_eq!(
            ListQuery::parse("application=web&cursor=zz")
                .unwrap_err()
                .field,
            "cursor"
        );
        assert_eq!(
            ListQuery::parse("application=Web").unwrap_err().field,
            "application"
        );
        assert_eq!(
            ListQuery::parse("application=web&x=1").unwrap_err().field,
            "x"
        );
        assert_eq!(query("application=w%65b").application.as_str(), "web");
    }

    #[test]
    fn a_release_is_kept_and_repeatable_and_the_number_is_not_reissued() {
        let mut v = StubVault::default();
        issue(&mut v, "web", "app", "prod", 1);
        let r = block_on(release(&mut v, &cfg(), "web-app-prod-vm1")).unwrap();
        assert_eq!(r.status, Status::Released);
        let again = block_on(release(&mut v, &cfg(), "web-app-prod-vm1")).unwrap();
        assert_eq!(again, r);
        issue(&mut v, "web", "app", "prod", 1);
        assert_eq!(v.store["names/web-app-prod-vm1"].1["status"], "released");
        assert_eq!(v.store["names/web-app-prod-vm2"].1["status"], "issued");
        assert_eq!(
            block_on(get(&mut v, &cfg(), "web-app-prod-vm9")),
            Err(NamingError::NotFound("web-app-prod-vm9".into()))
        );
        assert!(matches!(
            block_on(release(&mut v, &cfg(), "nope-vm1")),
            Err(NamingError::NotFound(_))
        ));
    }
}
