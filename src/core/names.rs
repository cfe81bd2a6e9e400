//! Reading and releasing registry records, listing a tuple's names, and health.
//!
//! Listing needs no index of its own: a tuple's counter bounds the numbers it has issued,
//! so its candidates are `{tuple}-vm1 .. vm{counter-1}`, read in number order; numbers
//! burned by a crash, or names another tuple owns, are skipped.

use crate::core::allocate::{read, send, write, Env, COUNTER_FIELD};
use crate::core::error::NamingError;
use crate::core::registry::{self, NameRecord, Status};
use crate::core::template::Template;
use crate::core::validate::{Fragment, Tuple};
use crate::core::vault::{self, Record, Secret, VaultConfig, Written};

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

/// Where a listing's `next_cursor` continues, if `value` is such a cursor: its
/// `{number}.{hostname}` names the last record of the page before.
pub fn parse_cursor(value: &str) -> Option<(u64, String)> {
    let (number, hostname) = value.split_once('.')?;
    Some((
        number.parse().ok()?,
        registry::parse_hostname(hostname).ok()?.to_string(),
    ))
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
    let mut candidates: Vec<(u64, String, Tuple)> = Vec::new();
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
            let Ok(tuple) = Tuple::parse(app, &stand_in(&role), &stand_in(&environment)) else {
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
    let wanted = |r: &NameRecord, number: u64, tuple: &Tuple| {
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
        let db = ListQuery {
            role: fragment("role", "db"),
            ..query("web")
        };
        assert_eq!(listed(&mut v, &t, &db).0, ["web-prod-02"]);
    }

    /// A listing of `application`'s names, as long as they come, from the first.
    fn query(application: &str) -> ListQuery {
        ListQuery {
            application: Fragment::parse("application", application).unwrap(),
            role: None,
            environment: None,
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }

    fn fragment(field: &str, value: &str) -> Option<Fragment> {
        Some(Fragment::parse(field, value).unwrap())
    }

    /// The hostnames `query` lists, and the cursor to go on.
    fn listed(v: &mut StubVault, t: &Template, query: &ListQuery) -> (Vec<String>, Option<String>) {
        let page = block_on(list(v, &cfg(), t, query)).unwrap();
        let hostnames = page.names.into_iter().map(|r| r.hostname).collect();
        (hostnames, page.next_cursor)
    }

    #[test]
    fn a_listing_is_ordered_by_number_and_paginated_with_a_cursor() {
        let mut v = StubVault::default();
        issue(&mut v, "web", "app", "prod", 3);
        issue(&mut v, "web", "db", "prod", 2);
        issue(&mut v, "other", "app", "prod", 1);
        let t = Template::default();
        let first = ListQuery {
            limit: 3,
            ..query("web")
        };
        let (got, cursor) = listed(&mut v, &t, &first);
        assert_eq!(
            got,
            ["web-app-prod-vm1", "web-db-prod-vm1", "web-app-prod-vm2"]
        );
        let next = ListQuery {
            after: parse_cursor(&cursor.unwrap()),
            ..first
        };
        assert_eq!(
            listed(&mut v, &t, &next),
            (
                vec!["web-db-prod-vm2".into(), "web-app-prod-vm3".into()],
                None
            )
        );
    }

    #[test]
    fn filters_narrow_the_listing_and_foreign_owners_are_skipped() {
        let mut v = StubVault::default();
        issue(&mut v, "a-b", "c", "prod", 1); // owns a-b-c-prod-vm1
        issue(&mut v, "a", "b-c", "prod", 1); // so this tuple gets vm2
        let narrow = ListQuery {
            role: fragment("role", "b-c"),
            environment: fragment("environment", "prod"),
            ..query("a")
        };
        let (got, _) = listed(&mut v, &Template::default(), &narrow);
        assert_eq!(got, ["a-b-c-prod-vm2"]);
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
