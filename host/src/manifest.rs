//! The parts of a Spin manifest (spin.toml, version 2) the host honours: HTTP routes, the
//! component's source, its variables and `allowed_outbound_hosts`, with `{{ variable }}`
//! templates resolved the way Spin resolves them.
//!
//! Variable values come, first match wins, from explicit overrides (tests), the
//! environment (`SPIN_VARIABLE_<NAME>`, then `VAULT_ADDR` / `VAULT_TOKEN` for the two Vault
//! variables), and the manifest's default. A required variable left unset is an error at
//! load time, never at the first request.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    trigger: RawTriggers,
    component: BTreeMap<String, RawComponent>,
}

#[derive(Debug, Deserialize)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Debug, Deserialize)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Debug, Deserialize)]
struct RawHttpTrigger {
    route: String,
    component: String,
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    source: String,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

/// A route as Spin matches it: exact, or a prefix when it ends in `/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Exact(String),
    Prefix(String),
}

impl Route {
    fn parse(route: &str) -> Self {
        match route.strip_suffix("/...") {
            Some(prefix) => Self::Prefix(prefix.to_string()),
            None => Self::Exact(route.to_string()),
        }
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(r) => path == r,
            Self::Prefix(p) => {
                path == p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('/') || p.is_empty())
            }
        }
    }

    /// The route as written in the manifest, for Spin's `spin-matched-route` header.
    pub fn as_manifest(&self) -> String {
        match self {
            Self::Exact(r) => r.clone(),
            Self::Prefix(p) => format!("{p}/..."),
        }
    }
}

/// One `allowed_outbound_hosts` entry in Spin's syntax: `scheme://host:port`, where the
/// scheme, host or port may be `*`, the host may be `*.domain` or an IP network
/// (`10.0.0.0/24`), and the port a range (`8200..8203`, end excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: String,
    host: HostPattern,
    /// `None`: any port.
    ports: Option<std::ops::Range<u16>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    Subdomain(String),
    Network(std::net::IpAddr, u8),
    Literal(String),
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Whether `ip` lies in `net`/`prefix` (both of one family).
fn in_network(ip: std::net::IpAddr, net: std::net::IpAddr, prefix: u8) -> bool {
    use std::net::IpAddr::{V4, V6};
    let (ip, net, bits) = match (ip, net) {
        (V4(a), V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (V6(a), V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let prefix = u32::from(prefix).min(bits);
    let shift = bits - prefix;
    shift >= 128 || ip >> shift == net >> shift
}

impl HostPattern {
    fn parse(host: &str, entry: &str) -> Result<Self> {
        let host = host.to_ascii_lowercase();
        if host == "*" {
            return Ok(Self::Any);
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                bail!("allowed_outbound_hosts entry {entry:?}: wildcards only as `*.domain`");
            }
            return Ok(Self::Subdomain(format!(".{domain}")));
        }
        if host.contains('*') {
            bail!("allowed_outbound_hosts entry {entry:?}: wildcards only as `*.domain`");
        }
        if let Some((ip, prefix)) = host.split_once('/') {
            let ip = ip.trim_matches(['[', ']']);
            let net = ip
                .parse()
                .with_context(|| format!("bad network address in {entry:?}"))?;
            let prefix = prefix
                .parse()
                .with_context(|| format!("bad network prefix in {entry:?}"))?;
            return Ok(Self::Network(net, prefix));
        }
        Ok(Self::Literal(host))
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']);
        match self {
            Self::Any => true,
            Self::Subdomain(suffix) => host.to_ascii_lowercase().ends_with(suffix.as_str()),
            Self::Network(net, prefix) => {
                host.parse().is_ok_and(|ip| in_network(ip, *net, *prefix))
            }
            Self::Literal(l) => l.trim_matches(['[', ']']).eq_ignore_ascii_case(host),
        }
    }
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self> {
        let entry = entry.trim();
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| anyhow!("allowed_outbound_hosts entry {entry:?} has no scheme://"))?;
        let authority = rest.trim_end_matches('/');
        // A network's `/prefix` is the only slash an entry may hold.
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (authority, None),
        };
        if host.is_empty() {
            bail!("allowed_outbound_hosts entry {entry:?} has no host");
        }
        if host.matches('/').count() > 1
            || (host.contains('/')
                && !host
                    .split('/')
                    .nth(1)
                    .unwrap()
                    .chars()
                    .all(|c| c.is_ascii_digit()))
        {
            bail!("allowed_outbound_hosts entry {entry:?} must not have a path");
        }
        let ports = match port {
            Some("*") => None,
            Some(p) => Some(match p.split_once("..") {
                Some((a, b)) => {
                    a.parse()
                        .with_context(|| format!("bad port range in {entry:?}"))?
                        ..b.parse()
                            .with_context(|| format!("bad port range in {entry:?}"))?
                }
                None => {
                    let p: u16 = p
                        .parse()
                        .with_context(|| format!("bad port in {entry:?}"))?;
                    p..p.saturating_add(1)
                }
            }),
            None => {
                let p = default_port(scheme).ok_or_else(|| {
                    anyhow!("allowed_outbound_hosts entry {entry:?} needs a port")
                })?;
                Some(p..p + 1)
            }
        };
        Ok(Self {
            scheme: scheme.to_string(),
            host: HostPattern::parse(host, entry)?,
            ports,
        })
    }

    /// Whether a request to this URI may go out.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let Some(host) = uri.host() else {
            return false;
        };
        let port = uri.port_u16().or_else(|| default_port(scheme));
        (self.scheme == "*" || self.scheme == scheme)
            && self.host.allows(host)
            && match (&self.ports, port) {
                (None, _) => true,
                (Some(range), Some(p)) => range.contains(&p),
                (Some(_), None) => false,
            }
    }
}

/// A manifest with every template resolved: what the host needs to run the component.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub routes: Vec<Route>,
    pub source: PathBuf,
    pub allowed_outbound_hosts: Vec<AllowedHost>,
    /// The component's variables, as `spin_sdk::variables::get` sees them.
    pub variables: HashMap<String, String>,
    /// Names of application variables marked `secret`, whose values must never be shown.
    pub secrets: Vec<String>,
}

/// Replaces each `{{ name }}` in `template` with the application variable's value.
fn render(template: &str, vars: &HashMap<String, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow!("unclosed {{{{ in {template:?}"))?;
        let name = after[..end].trim();
        let value = vars
            .get(name)
            .ok_or_else(|| anyhow!("{template:?} refers to an undefined variable `{name}`"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where a variable's value may come from besides the manifest default.
pub fn env_names(variable: &str) -> Vec<String> {
    let mut names = vec![format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())];
    match variable {
        "vault_addr" => names.push("VAULT_ADDR".into()),
        "vault_token" => names.push("VAULT_TOKEN".into()),
        _ => {}
    }
    names
}

impl Manifest {
    /// Loads `path`, resolving variables from `overrides`, then `env`, then defaults.
    pub fn load(
        path: &Path,
        overrides: &HashMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the manifest {}", path.display()))?;
        let raw: RawManifest =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if raw.spin_manifest_version != 2 {
            bail!(
                "{}: spin_manifest_version must be 2, found {}",
                path.display(),
                raw.spin_manifest_version
            );
        }
        let mut app_vars = HashMap::new();
        for (name, var) in &raw.variables {
            let from_env = env_names(name).into_iter().find_map(|n| env(&n));
            let value = overrides
                .get(name)
                .cloned()
                .or(from_env)
                .or_else(|| var.default.clone());
            match value {
                Some(v) => {
                    app_vars.insert(name.clone(), v);
                }
                None if var.required => bail!(
                    "the required variable `{name}` is not set: set {}",
                    env_names(name).join(" or ")
                ),
                None => {}
            }
        }
        let (id, component) = match raw.component.len() {
            1 => raw.component.iter().next().expect("one component"),
            n => bail!("the host runs exactly one component; the manifest has {n}"),
        };
        let routes: Vec<Route> = raw
            .trigger
            .http
            .iter()
            .filter(|t| &t.component == id)
            .map(|t| Route::parse(&t.route))
            .collect();
        if routes.is_empty() {
            bail!("no [[trigger.http]] routes to the component `{id}`");
        }
        let variables = component
            .variables
            .iter()
            .map(|(k, t)| Ok((k.clone(), render(t, &app_vars)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        let allowed_outbound_hosts = component
            .allowed_outbound_hosts
            .iter()
            .map(|t| AllowedHost::parse(&render(t, &app_vars)?))
            .collect::<Result<Vec<_>>>()?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(Self {
            routes,
            source: base.join(&component.source),
            allowed_outbound_hosts,
            variables,
            secrets: raw
                .variables
                .iter()
                .filter(|(_, v)| v.secret)
                .map(|(k, _)| k.clone())
                .collect(),
        })
    }

    pub fn route_for(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }

    pub fn allows(&self, uri: &http::Uri) -> bool {
        self.allowed_outbound_hosts.iter().any(|h| h.allows(uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
vault_addr = { required = true }
vault_token = { required = true, secret = true }
vault_mount = { default = "hostnaming" }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
allowed_outbound_hosts = ["{{ vault_addr }}"]
[component.c.variables]
vault_addr = "{{ vault_addr }}"
vault_token = "{{vault_token}}"
vault_mount = "{{ vault_mount }}"
"#;

    fn load(
        overrides: &[(&str, &str)],
        env: &'static [(&'static str, &'static str)],
    ) -> Result<Manifest> {
        let dir = std::env::temp_dir().join(format!("hostnaming-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("spin-{}.toml", rand_suffix()));
        std::fs::write(&path, MANIFEST).unwrap();
        let overrides = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let m = Manifest::load(&path, &overrides, |n| {
            env.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        });
        std::fs::remove_file(&path).unwrap();
        m
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn a_missing_required_variable_fails_naming_the_variable_and_how_to_set_it() {
        let e = load(&[("vault_addr", "http://v:1")], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`vault_token`"), "{e}");
        assert!(
            e.contains("SPIN_VARIABLE_VAULT_TOKEN or VAULT_TOKEN"),
            "{e}"
        );
    }

    #[test]
    fn spin_variable_env_beats_the_vault_convenience_env_and_defaults_apply() {
        let m = load(
            &[],
            &[
                ("SPIN_VARIABLE_VAULT_ADDR", "http://a:1"),
                ("VAULT_ADDR", "http://b:2"),
                ("VAULT_TOKEN", "t"),
            ],
        )
        .unwrap();
        assert_eq!(m.variables["vault_addr"], "http://a:1");
        assert_eq!(m.variables["vault_token"], "t");
        assert_eq!(m.variables["vault_mount"], "hostnaming");
        assert_eq!(m.secrets, vec!["vault_token".to_string()]);
    }

    #[test]
    fn allowed_outbound_hosts_are_rendered_and_enforced() {
        let m = load(
            &[
                ("vault_addr", "http://127.0.0.1:8200"),
                ("vault_token", "t"),
            ],
            &[],
        )
        .unwrap();
        assert!(m.allows(&"http://127.0.0.1:8200/v1/x".parse().unwrap()));
        assert!(!m.allows(&"http://127.0.0.1:8201/v1/x".parse().unwrap()));
        assert!(!m.allows(&"https://127.0.0.1:8200/v1/x".parse().unwrap()));
        assert!(!m.allows(&"http://example.com:8200/".parse().unwrap()));
    }

    #[test]
    fn wildcard_routes_match_their_subtree_only() {
        let r = Route::parse("/api/...");
        assert!(r.matches("/api") && r.matches("/api/x"));
        assert!(!r.matches("/apix"));
        assert!(Route::parse("/...").matches("/anything/at/all"));
        assert!(Route::parse("/generate-name").matches("/generate-name"));
        assert!(!Route::parse("/generate-name").matches("/generate-name/x"));
    }

    #[test]
    fn a_cluster_can_be_allowed_by_network_subdomain_or_port_range() {
        let allows = |entry: &str, url: &str| {
            AllowedHost::parse(entry)
                .unwrap()
                .allows(&url.parse().unwrap())
        };
        assert!(allows("http://10.0.0.0/24:8200", "http://10.0.0.7:8200/v1"));
        assert!(!allows(
            "http://10.0.0.0/24:8200",
            "http://10.0.1.7:8200/v1"
        ));
        assert!(!allows(
            "http://10.0.0.0/24:8200",
            "http://10.0.0.7:8201/v1"
        ));
        assert!(allows(
            "https://*.vault.internal:8200",
            "https://b.vault.internal:8200/"
        ));
        assert!(!allows(
            "https://*.vault.internal:8200",
            "https://vault.internal.evil:8200/"
        ));
        assert!(allows(
            "http://127.0.0.1:8200..8203",
            "http://127.0.0.1:8202/"
        ));
        assert!(!allows(
            "http://127.0.0.1:8200..8203",
            "http://127.0.0.1:8203/"
        ));
        assert!(allows("http://127.0.0.1:*", "http://127.0.0.1:41234/"));
        assert!(allows("http://[::1]:8200", "http://[::1]:8200/"));
        assert!(AllowedHost::parse("http://10.0.0.0/24/x:8200").is_err());
        assert!(AllowedHost::parse("http://a*b.example:1").is_err());
    }

    #[test]
    fn a_default_port_is_implied_by_the_scheme() {
        let h = AllowedHost::parse("https://vault.example.com").unwrap();
        assert!(h.allows(&"https://vault.example.com/v1".parse().unwrap()));
        assert!(!h.allows(&"https://vault.example.com:8200/v1".parse().unwrap()));
    }
}
