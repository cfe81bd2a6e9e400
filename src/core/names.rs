//! Reading, annotating and releasing registry records, searching the registry, knowing
//! who a caller is, and health.
//!
//! A search needs no index of its own. With an `application`, that application's counters
//! bound the numbers it has issued, so its candidates are `{tuple}-vm1 .. vm{counter-1}`,
//! read in number order; numbers burned by a crash, or names another tuple owns, are
//! skipped. Without one, the registry's keys are listed in hostname order (OpenBao pages
//! the LIST; Vault answers it whole) and the records read concurrently.

use serde_json::Value;

use crate::core::allocate::{read, send, write, Env, COUNTER_FIELD};
use crate::core::error::NamingError;
use crate::core::metadata::Metadata;
use crate::core::registry::{self, Action, Event, NameRecord, Status};
use crate::core::template::Template;
use crate::core::time::{parse_rfc3339, rfc3339};
use crate::core::validate::{Fragment, Tuple};
use crate::core::vault::{self, Call, Record, Reply, Secret, VaultConfig, Written};

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

/// A record as stored, with the KV v2 version it is at (its entity tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub record: NameRecord,
    pub version: u64,
}

async fn read_record<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    hostname: &str,
) -> Result<Stored, NamingError> {
    let secret = read(env, cfg, &registry::path(hostname), "read a name record").await?;
    let record =
        record_of(&secret, hostname)?.ok_or_else(|| NamingError::NotFound(hostname.into()))?;
    Ok(Stored {
        record,
        version: secret.version,
    })
}

/// The record of `hostname`.
pub async fn get<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    hostname: &str,
) -> Result<Stored, NamingError> {
    read_record(env, cfg, hostname).await
}

/// Changes a record with check-and-set: `change` edits the record read and says whether it
/// changed anything (nothing is written when not); a write that loses to another reads
/// again and repeats the change, so no concurrent change is lost. With `if_match`, the
/// record must still be at that version, or nothing changes
/// ([`NamingError::PreconditionFailed`]).
async fn change<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    hostname: &str,
    if_match: Option<u64>,
    what: &str,
    mut change: impl FnMut(&mut NameRecord, String) -> Result<bool, NamingError>,
) -> Result<Stored, NamingError> {
    let path = registry::path(hostname);
    loop {
        let Stored {
            mut record,
            version,
        } = read_record(env, cfg, hostname).await?;
        if if_match.is_some_and(|expected| expected != version) {
            return Err(NamingError::PreconditionFailed { current: version });
        }
        if !change(&mut record, rfc3339(env.unix_millis() / 1000))? {
            return Ok(Stored { record, version });
        }
        let data = record.to_value();
        match write(env, cfg, &path, version, data, what).await? {
            Written::Version(version) => return Ok(Stored { record, version }),
            // Changed meanwhile: the caller's condition no longer holds, or re-read and
            // apply the change to what is there now.
            Written::CasMismatch if if_match.is_some() => {
                let now = read_record(env, cfg, hostname).await?;
                return Err(NamingError::PreconditionFailed {
                    current: now.version,
                });
            }
            Written::CasMismatch => continue,
        }
    }
}

/// Marks `hostname` released by `actor`. Releasing a released name changes nothing.
pub async fn release<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    hostname: &str,
    actor: &str,
) -> Result<Stored, NamingError> {
    change(env, cfg, hostname, None, "release a name", |record, now| {
        if record.status == Status::Released {
            return Ok(false);
        }
        record.status = Status::Released;
        record.released_at = Some(now.clone());
        record.released_by = Some(actor.to_string());
        record.record_event(Event {
            action: Action::Released,
            at: now,
            actor: actor.to_string(),
            changed: Vec::new(),
        });
        Ok(true)
    })
    .await
}

/// Applies a JSON merge patch (RFC 7396) to the owner, description and tags of
/// `hostname`, as `actor`. The patch is checked whole before Vault is asked anything; a
/// patch that changes nothing writes nothing and adds no event.
pub async fn annotate<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    hostname: &str,
    patch: &Value,
    if_match: Option<u64>,
    actor: &str,
) -> Result<Stored, NamingError> {
    Metadata::default().merge(patch)?;
    change(
        env,
        cfg,
        hostname,
        if_match,
        "annotate a name",
        |record, now| {
            let changed = record.metadata.merge(patch)?;
            if changed.is_empty() {
                return Ok(false);
            }
            record.record_event(Event {
                action: Action::Annotated,
                at: now,
                actor: actor.to_string(),
                changed,
            });
            Ok(true)
        },
    )
    .await
}

/// Who the token the calls go with is, as Vault knows it: for records written in
/// pass-through mode.
pub async fn identity<E: Env>(env: &mut E, cfg: &VaultConfig) -> Result<String, NamingError> {
    let reply = send(env, cfg, vault::lookup_self()).await?;
    Ok(vault::parse_identity(cfg, &reply)?)
}

/// What a search keeps, besides the application and the page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub role: Option<Fragment>,
    pub environment: Option<Fragment>,
    pub status: Option<Status>,
    pub owner: Option<String>,
    pub created_by: Option<String>,
    /// Every one of these tags, with these values.
    pub tags: Vec<(String, String)>,
    /// Created at or after (Unix seconds).
    pub created_after: Option<i64>,
    /// Created strictly before (Unix seconds).
    pub created_before: Option<i64>,
    /// Of the hostname.
    pub prefix: Option<String>,
}

impl Filters {
    /// Whether `record` passes every filter given.
    pub fn keep(&self, record: &NameRecord) -> bool {
        let created = || parse_rfc3339(&record.created_at);
        self.role.as_ref().is_none_or(|f| record.role == f.as_str())
            && self
                .environment
                .as_ref()
                .is_none_or(|f| record.environment == f.as_str())
            && self.status.is_none_or(|s| record.status == s)
            && self
                .owner
                .as_ref()
                .is_none_or(|o| record.metadata.owner.as_ref() == Some(o))
            && self
                .created_by
                .as_ref()
                .is_none_or(|c| record.created_by.as_ref() == Some(c))
            && self
                .tags
                .iter()
                .all(|(k, v)| record.metadata.tags.get(k) == Some(v))
            && self
                .created_after
                .is_none_or(|t| created().is_some_and(|c| c >= t))
            && self
                .created_before
                .is_none_or(|t| created().is_some_and(|c| c < t))
            && self
                .prefix
                .as_ref()
                .is_none_or(|p| record.hostname.starts_with(p.as_str()))
    }
}

/// Where a page continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// An application's listing, in number order: after this (number, hostname).
    Numbered(u64, String),
    /// The whole registry, in hostname order: after this hostname.
    Hostname(String),
}

impl Cursor {
    /// Reads a `next_cursor` this service gave: `{number}.{hostname}` for an application's
    /// listing, a bare hostname for a search of the whole registry.
    pub fn parse(value: &str) -> Option<Self> {
        match value.split_once('.') {
            Some((number, hostname)) => Some(Self::Numbered(
                number.parse().ok()?,
                registry::parse_hostname(hostname).ok()?.to_string(),
            )),
            None => Some(Self::Hostname(
                registry::parse_hostname(value).ok()?.to_string(),
            )),
        }
    }
}

/// A search, as given in the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// One application's names, in number order; without it, the whole registry in
    /// hostname order.
    pub application: Option<Fragment>,
    pub filters: Filters,
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// Where a listing's `next_cursor` continues, if `value` is such a cursor.
pub fn parse_cursor(value: &str) -> Option<Cursor> {
    Cursor::parse(value)
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

/// Records of `hostnames`, read concurrently (those that no longer exist left out).
async fn read_records<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    hostnames: &[&str],
) -> Result<Vec<Option<NameRecord>>, NamingError> {
    let calls: Vec<Call> = hostnames
        .iter()
        .map(|h| vault::read(cfg, &registry::path(h)))
        .collect();
    let replies = env.send_all(calls).await;
    let mut records = Vec::with_capacity(hostnames.len());
    for (hostname, reply) in hostnames.iter().zip(replies) {
        let reply: Reply = reply.map_err(|e| {
            NamingError::VaultUnavailable(format!(
                "Vault at {} is unreachable: {e}",
                cfg.describe()
            ))
        })?;
        let secret = vault::parse_read(cfg, "read a name record", &reply)?;
        records.push(record_of(&secret, hostname)?);
    }
    Ok(records)
}

/// How many records are read at once.
const BATCH: usize = 16;

/// The names a search finds, one page. With an application, in number order from its
/// counters; without, the whole registry in hostname order.
pub async fn list<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    template: &Template,
    query: &ListQuery,
) -> Result<Page, NamingError> {
    match &query.application {
        Some(application) => list_application(env, cfg, template, application, query).await,
        None => scan(env, cfg, query).await,
    }
}

/// Most records one page of a registry search reads: a filter that matches rarely answers
/// a short page (with a cursor to go on) instead of reading the whole registry at once.
pub const MAX_SCAN: usize = 1000;

/// How many keys one LIST asks OpenBao for. OpenBao finds the keys after `after` by going
/// through the folder from its start, so fewer, larger LISTs make a long walk cheaper.
const LIST_PAGE: usize = 1000;

/// A search of the whole registry in hostname order.
async fn scan<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    query: &ListQuery,
) -> Result<Page, NamingError> {
    let prefix = query.filters.prefix.as_deref().unwrap_or("");
    let mut after = match &query.after {
        Some(Cursor::Hostname(h)) => h.clone(),
        Some(Cursor::Numbered(..)) | None => String::new(),
    };
    // Keys starting with the prefix sort from `prefix` on; start just before it.
    if !prefix.is_empty() && after.as_str() < prefix {
        after = just_before(prefix);
    }
    let (mut names, mut scanned) = (Vec::new(), 0);
    loop {
        let reply = send(env, cfg, vault::list_page(cfg, "names/", &after, LIST_PAGE)).await?;
        let mut keys = vault::parse_list(cfg, "list the registry", &reply)?;
        let whole = vault::list_page_is_whole(&keys, LIST_PAGE);
        let more_pages = !whole && keys.len() == LIST_PAGE;
        let page_last = keys.iter().max().cloned();
        keys.retain(|k| !k.ends_with('/') && k.as_str() > after.as_str());
        keys.sort();
        let past_prefix = keys
            .iter()
            .position(|k| !k.starts_with(prefix) && k.as_str() > prefix);
        let ended = past_prefix.is_some() || !more_pages;
        keys.truncate(past_prefix.unwrap_or(keys.len()));
        let mut i = 0;
        while i < keys.len() {
            let end = (i + (query.limit - names.len()).clamp(1, BATCH)).min(keys.len());
            let batch: Vec<&str> = keys[i..end].iter().map(String::as_str).collect();
            for record in read_records(env, cfg, &batch).await? {
                i += 1;
                scanned += 1;
                if let Some(record) = record.filter(|r| query.filters.keep(r)) {
                    names.push(record);
                }
                if names.len() == query.limit || scanned >= MAX_SCAN {
                    let more = i < keys.len() || !ended;
                    let next_cursor = more.then(|| keys[i - 1].clone());
                    return Ok(Page { names, next_cursor });
                }
            }
        }
        if ended || whole {
            return Ok(Page {
                names,
                next_cursor: None,
            });
        }
        match page_last {
            Some(last) if last > after => after = last,
            _ => {
                return Ok(Page {
                    names,
                    next_cursor: None,
                })
            }
        }
    }
}

/// A string that sorts just before `prefix` and after every key that sorts before it:
/// `prefix` with its last character lowered by one and `~` (above every hostname
/// character) appended.
fn just_before(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop().expect("a prefix is not empty");
    let lower = char::from_u32(u32::from(last) - 1).unwrap_or(last);
    chars.push(lower);
    chars.push('~');
    chars.into_iter().collect()
}

/// One application's names, ordered by number (then hostname). Candidates come from the
/// counters the template uses; each is kept only if its record matches the query.
async fn list_application<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    template: &Template,
    application: &Fragment,
    query: &ListQuery,
) -> Result<Page, NamingError> {
    let app = application.as_str();
    let filters = &query.filters;
    let unused = template.unused();
    let uses = |f: &str| !unused.contains(&f);
    let app_dir = if uses("application") { app } else { "_" };
    let mut candidates: Vec<(u64, String, Tuple)> = Vec::new();
    let roles_dir = format!("applications/{app_dir}/");
    for role in field_dirs(env, cfg, &roles_dir, uses("role"), &filters.role).await? {
        let envs_dir = format!("applications/{app_dir}/{role}/");
        for environment in field_dirs(
            env,
            cfg,
            &envs_dir,
            uses("environment"),
            &filters.environment,
        )
        .await?
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
        Some(Cursor::Numbered(n, h)) => candidates.partition_point(|c| (c.0, &c.1) <= (*n, h)),
        Some(Cursor::Hostname(_)) | None => 0,
    };
    let wanted = |r: &NameRecord, number: u64, tuple: &Tuple| {
        r.number == number
            && r.application == app
            && filters.keep(r)
            && (!uses("role") || r.role == tuple.role.as_str())
            && (!uses("environment") || r.environment == tuple.environment.as_str())
    };
    let mut names = Vec::new();
    let mut i = start;
    'pages: while i < candidates.len() {
        let end = (i + (query.limit - names.len()).clamp(1, BATCH)).min(candidates.len());
        let hostnames: Vec<&str> = candidates[i..end].iter().map(|c| c.1.as_str()).collect();
        for record in read_records(env, cfg, &hostnames).await? {
            let (number, _, tuple) = &candidates[i];
            i += 1;
            if let Some(record) = record.filter(|r| wanted(r, *number, tuple)) {
                names.push(record);
                if names.len() == query.limit {
                    break 'pages;
                }
            }
        }
    }
    let next_cursor = match (i < candidates.len(), names.last()) {
        (true, Some(last)) => Some(format!("{}.{}", last.number, last.hostname)),
        _ => None,
    };
    Ok(Page { names, next_cursor })
}

/// The values already used at one level of the counters' tree, in order: the
/// applications; with `application`, its roles; with a `role` too, their environments.
/// What the web page suggests while a name is being asked for. `_` (the counter path's
/// stand-in for a field the template leaves out) is no value anyone typed.
pub async fn used_values<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    application: Option<&Fragment>,
    role: Option<&Fragment>,
) -> Result<Vec<String>, NamingError> {
    let dir = match (application, role) {
        (None, _) => "applications/".to_string(),
        (Some(a), None) => format!("applications/{}/", a.as_str()),
        (Some(a), Some(r)) => format!("applications/{}/{}/", a.as_str(), r.as_str()),
    };
    let mut values: Vec<String> = list_dir(env, cfg, &dir)
        .await?
        .into_iter()
        .filter_map(|k| k.strip_suffix('/').map(String::from))
        .filter(|k| k != "_")
        .collect();
    values.sort();
    Ok(values)
}

/// What the calls' token may do on each of `paths` (mount-relative, such as
/// `data/names/x`), as Vault's `sys/capabilities-self` tells: for a page that greys out what
/// a passed-through Vault token may not do. Vault's default policy lets every token ask.
pub async fn capabilities<E: Env>(
    env: &mut E,
    cfg: &VaultConfig,
    paths: &[String],
) -> Result<Vec<Vec<String>>, NamingError> {
    let reply = send(env, cfg, vault::capabilities_self(cfg, paths)).await?;
    Ok(vault::parse_capabilities(cfg, paths, &reply)?)
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
        let mut db = query("web");
        db.filters.role = fragment("role", "db");
        assert_eq!(listed(&mut v, &t, &db).0, ["web-prod-02"]);
    }

    /// A listing of `application`'s names, as long as they come, from the first.
    fn query(application: &str) -> ListQuery {
        ListQuery {
            application: Some(Fragment::parse("application", application).unwrap()),
            filters: Filters::default(),
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
        let mut narrow = query("a");
        narrow.filters.role = fragment("role", "b-c");
        narrow.filters.environment = fragment("environment", "prod");
        let (got, _) = listed(&mut v, &Template::default(), &narrow);
        assert_eq!(got, ["a-b-c-prod-vm2"]);
    }

    #[test]
    fn a_release_is_kept_and_repeatable_and_the_number_is_not_reissued() {
        let mut v = StubVault::default();
        issue(&mut v, "web", "app", "prod", 1);
        let r = block_on(release(&mut v, &cfg(), "web-app-prod-vm1", "ops")).unwrap();
        assert_eq!(r.record.status, Status::Released);
        assert_eq!(r.record.released_by.as_deref(), Some("ops"));
        let writes = v.writes();
        let again = block_on(release(&mut v, &cfg(), "web-app-prod-vm1", "other")).unwrap();
        assert_eq!((again, v.writes()), (r, writes));
        issue(&mut v, "web", "app", "prod", 1);
        assert_eq!(v.store["names/web-app-prod-vm1"].1["status"], "released");
        assert_eq!(v.store["names/web-app-prod-vm2"].1["status"], "issued");
        assert_eq!(
            block_on(get(&mut v, &cfg(), "web-app-prod-vm9")),
            Err(NamingError::NotFound("web-app-prod-vm9".into()))
        );
        assert!(matches!(
            block_on(release(&mut v, &cfg(), "nope-vm1", "ops")),
            Err(NamingError::NotFound(_))
        ));
    }

    #[test]
    fn an_annotation_merges_records_who_and_what_and_an_empty_change_writes_nothing() {
        let mut v = StubVault::default();
        issue(&mut v, "web", "app", "prod", 1);
        let patch = json!({"owner": "team-web", "tags": {"cost-center": "42"}});
        let s = block_on(annotate(
            &mut v,
            &cfg(),
            "web-app-prod-vm1",
            &patch,
            None,
            "ops",
        ))
        .unwrap();
        assert_eq!(s.record.metadata.owner.as_deref(), Some("team-web"));
        let event = s.record.events.last().unwrap();
        assert_eq!(
            (event.action, event.actor.as_str(), event.changed.clone()),
            (
                Action::Annotated,
                "ops",
                vec!["owner".to_string(), "tags.cost-center".to_string()]
            )
        );
        let writes = v.writes();
        let same = block_on(annotate(
            &mut v,
            &cfg(),
            "web-app-prod-vm1",
            &patch,
            None,
            "ops",
        ));
        assert_eq!((same.unwrap().version, v.writes()), (s.version, writes));
    }

    #[test]
    fn a_stale_if_match_is_refused_and_a_bad_patch_asks_vault_nothing() {
        let mut v = StubVault::default();
        issue(&mut v, "web", "app", "prod", 1);
        let current = block_on(get(&mut v, &cfg(), "web-app-prod-vm1"))
            .unwrap()
            .version;
        let patch = json!({"owner": "x"});
        let stale = block_on(annotate(
            &mut v,
            &cfg(),
            "web-app-prod-vm1",
            &patch,
            Some(current + 7),
            "a",
        ));
        assert_eq!(stale, Err(NamingError::PreconditionFailed { current }));
        let calls = v.calls.len();
        let bad = json!({"tags": {"Bad Key": "x"}});
        let refused = block_on(annotate(
            &mut v,
            &cfg(),
            "web-app-prod-vm1",
            &bad,
            None,
            "a",
        ));
        assert!(matches!(refused, Err(NamingError::InvalidInput(f)) if f.field == "tags"));
        assert_eq!(v.calls.len(), calls);
        let fresh = block_on(annotate(
            &mut v,
            &cfg(),
            "web-app-prod-vm1",
            &patch,
            Some(current),
            "a",
        ));
        assert!(fresh.unwrap().version > current);
    }

    /// A search of the whole registry with `filters`, `limit` names a page.
    fn search(
        v: &mut StubVault,
        filters: Filters,
        limit: usize,
        after: Option<&str>,
    ) -> (Vec<String>, Option<String>) {
        let q = ListQuery {
            application: None,
            filters,
            limit,
            after: after.map(|a| Cursor::parse(a).unwrap()),
        };
        let page = block_on(list(v, &cfg(), &Template::default(), &q)).unwrap();
        (
            page.names.into_iter().map(|r| r.hostname).collect(),
            page.next_cursor,
        )
    }

    #[test]
    fn a_search_without_application_walks_the_registry_in_hostname_order_with_a_cursor() {
        let mut v = StubVault::default();
        issue(&mut v, "web", "app", "prod", 2);
        issue(&mut v, "db", "pg", "prod", 1);
        issue(&mut v, "api", "app", "dev", 1);
        let (first, cursor) = search(&mut v, Filters::default(), 2, None);
        assert_eq!(first, ["api-app-dev-vm1", "db-pg-prod-vm1"]);
        let (rest, end) = search(&mut v, Filters::default(), 2, cursor.as_deref());
        assert_eq!(
            (rest, end),
            (
                vec!["web-app-prod-vm1".into(), "web-app-prod-vm2".into()],
                None
            )
        );
        let prod = Filters {
            environment: fragment("environment", "prod"),
            prefix: Some("d".into()),
            ..Filters::default()
        };
        assert_eq!(
            search(&mut v, prod, 10, None),
            (vec!["db-pg-prod-vm1".into()], None)
        );
    }

    #[test]
    fn a_vault_that_answers_a_list_whole_is_searched_the_same() {
        let mut paged = StubVault::default();
        let mut whole = StubVault {
            whole_lists: true,
            ..StubVault::default()
        };
        for v in [&mut paged, &mut whole] {
            issue(v, "web", "app", "prod", 3);
            issue(v, "db", "pg", "prod", 2);
        }
        let walk = |v: &mut StubVault| {
            let (mut all, mut cursor) = (Vec::new(), None::<String>);
            loop {
                let (names, next) = search(v, Filters::default(), 2, cursor.as_deref());
                all.extend(names);
                match next {
                    Some(next) => cursor = Some(next),
                    None => return all,
                }
            }
        };
        let expected = [
            "db-pg-prod-vm1",
            "db-pg-prod-vm2",
            "web-app-prod-vm1",
            "web-app-prod-vm2",
            "web-app-prod-vm3",
        ];
        assert_eq!(walk(&mut paged), expected);
        assert_eq!(walk(&mut whole), expected);
        let lists = |v: &StubVault| {
            v.calls
                .iter()
                .filter(|(_, p)| p.contains("list=true"))
                .count()
        };
        assert!(lists(&whole) >= 3, "one LIST per page");
    }

    #[test]
    fn a_search_keeps_only_names_with_every_tag_the_owner_and_the_time_asked_for() {
        let mut v = StubVault::default();
        issue(&mut v, "web", "app", "prod", 3);
        for (host, patch) in [
            (
                "web-app-prod-vm1",
                json!({"owner": "a", "tags": {"t": "1", "u": "2"}}),
            ),
            (
                "web-app-prod-vm2",
                json!({"owner": "a", "tags": {"t": "1"}}),
            ),
            (
                "web-app-prod-vm3",
                json!({"owner": "b", "tags": {"t": "1", "u": "2"}}),
            ),
        ] {
            block_on(annotate(&mut v, &cfg(), host, &patch, None, "ops")).unwrap();
        }
        let both = Filters {
            owner: Some("a".into()),
            tags: vec![("t".into(), "1".into()), ("u".into(), "2".into())],
            ..Filters::default()
        };
        assert_eq!(search(&mut v, both, 10, None).0, ["web-app-prod-vm1"]);
        let future = Filters {
            created_after: Some(i64::MAX / 2),
            ..Filters::default()
        };
        assert!(search(&mut v, future, 10, None).0.is_empty());
    }
}
