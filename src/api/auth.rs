//! Who may ask: API tokens with scopes, configured as SHA-256 hashes so no token is ever
//! stored in clear, checked in constant time; or Vault-token pass-through, where the
//! caller's own Vault token does the work and Vault's policies decide.
//!
//! Every admitted caller also has an actor, the name its writes are recorded under: the
//! name of its `api_tokens` entry (never the token or its hash), `anonymous` when the
//! service is open, and in pass-through mode the caller's Vault identity, which Vault
//! itself tells ([`Actor::VaultIdentity`]).

use sha2::{Digest, Sha256};

use crate::api::problem::ApiError;
use crate::core::error::NamingError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `POST /generate-name`
    Generate,
    /// The `GET` routes.
    Read,
    /// Changing a name's owner, description and tags.
    Annotate,
    /// Releasing names.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Self::Generate, Self::Read, Self::Annotate, Self::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Self::Generate => "generate",
            Self::Read => "read",
            Self::Annotate => "annotate",
            Self::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "generate" => Some(Self::Generate),
            "read" => Some(Self::Read),
            "annotate" => Some(Self::Annotate),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// Who authenticates callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `Authorization: Bearer` checked against `api_tokens`; open when there are none.
    Tokens(ApiTokens),
    /// The caller's `X-Vault-Token` is used for every Vault call.
    VaultPassThrough,
}

impl Mode {
    /// From the `auth_mode` and `api_tokens` variables.
    pub fn parse(auth_mode: &str, api_tokens: &str) -> Result<Self, String> {
        match auth_mode.trim() {
            "" | "tokens" => Ok(Self::Tokens(ApiTokens::parse(api_tokens)?)),
            "vault" => Ok(Self::VaultPassThrough),
            other => Err(format!(
                "auth_mode must be `tokens` or `vault`, not {other:?}"
            )),
        }
    }
}

/// Whose token talks to Vault for an admitted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultToken {
    /// The service's own (`vault_token`).
    Service,
    /// The caller's own `X-Vault-Token`, passed through: Vault's refusals are then the
    /// caller's, not the service's.
    Caller(String),
}

/// Who a request's writes are recorded as (`created_by`, `released_by`, history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Known from the credentials: an API token's name, or `anonymous`.
    Named(String),
    /// A passed-through Vault token: who it is, Vault says (its display name or entity),
    /// asked only by requests that write.
    VaultIdentity,
}

/// The actor of every request to a service without API tokens.
pub const ANONYMOUS: &str = "anonymous";

/// A caller let in: whose token goes to Vault, and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub vault: VaultToken,
    pub actor: Actor,
}

impl Mode {
    /// Checks a request's credentials for `scope`, says whose token goes to Vault and who
    /// the caller is. `header` gives a request header's value by its lowercase name; only
    /// the headers the mode uses are asked for.
    pub fn admit(
        &self,
        scope: Scope,
        header: impl Fn(&str) -> Option<String>,
    ) -> Result<Admitted, ApiError> {
        match self {
            Self::Tokens(tokens) => {
                let name = tokens
                    .authorize(header("authorization").as_deref(), scope)
                    .map_err(refused)?;
                Ok(Admitted {
                    vault: VaultToken::Service,
                    actor: Actor::Named(name),
                })
            }
            Self::VaultPassThrough => Ok(Admitted {
                vault: vault_token(&header)?,
                actor: Actor::VaultIdentity,
            }),
        }
    }

    /// Who the caller is and what it may do, for `GET /session` (the web page greys out
    /// what the caller may not do). Credentials are checked as [`Mode::admit`] does; a
    /// passed-through Vault token is only handed back, for Vault to say what it may do.
    pub fn introduce(&self, header: impl Fn(&str) -> Option<String>) -> Result<Caller, ApiError> {
        match self {
            Self::Tokens(tokens) if tokens.is_empty() => Ok(Caller::Known {
                auth: "open",
                actor: ANONYMOUS.into(),
                scopes: Scope::ALL.to_vec(),
            }),
            Self::Tokens(tokens) => {
                let entry = tokens
                    .entry(header("authorization").as_deref())
                    .map_err(refused)?;
                Ok(Caller::Known {
                    auth: "tokens",
                    actor: entry.name.clone(),
                    scopes: entry.scopes.clone(),
                })
            }
            Self::VaultPassThrough => Ok(Caller::Vault(vault_token(&header)?)),
        }
    }
}

/// A caller as [`Mode::introduce`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Known from the service's own configuration: how callers authenticate (`open` or
    /// `tokens`), its name and its scopes.
    Known {
        auth: &'static str,
        actor: String,
        scopes: Vec<Scope>,
    },
    /// A Vault token in pass-through mode: what it may do is Vault's to say.
    Vault(VaultToken),
}

/// The paths (mount-relative) whose capabilities tell what a passed-through Vault token
/// may do: a counter and a name record, `hostname`'s when the page is about one. A policy
/// narrower than the mount (one application's counters) shows as lacking on the stand-ins;
/// the page then asks again about the name it shows.
pub fn vault_probe_paths(hostname: Option<&str>) -> Vec<String> {
    vec![
        "data/applications/probe/probe/probe/counter".into(),
        format!("data/names/{}", hostname.unwrap_or("probe-probe-probe-vm1")),
    ]
}

/// The scopes the capabilities of [`vault_probe_paths`] amount to: generating takes
/// advancing a counter and creating a record; reading, reading one; annotating and
/// releasing, updating one.
pub fn vault_scopes(capabilities: &[Vec<String>]) -> Vec<Scope> {
    let has = |i: usize, cap: &str| {
        capabilities
            .get(i)
            .is_some_and(|caps| caps.iter().any(|c| c == cap || c == "root"))
    };
    let mut scopes = Vec::new();
    if has(0, "update") && has(1, "create") {
        scopes.push(Scope::Generate);
    }
    if has(1, "read") {
        scopes.push(Scope::Read);
    }
    if has(1, "update") {
        scopes.extend([Scope::Annotate, Scope::Admin]);
    }
    scopes
}

/// The pass-through caller's `X-Vault-Token`, or a 401 asking for it.
fn vault_token(header: &impl Fn(&str) -> Option<String>) -> Result<VaultToken, ApiError> {
    match header("x-vault-token") {
        Some(token) if header_safe(&token) => Ok(VaultToken::Caller(token)),
        _ => Err(ApiError::Unauthenticated {
            detail: "send your Vault token as `X-Vault-Token`".into(),
            challenge: r#"X-Vault-Token realm="hostnaming""#.into(),
        }),
    }
}

/// An API token refused: 401 with a challenge, or 403 naming the missing scope.
fn refused(denied: Denied) -> ApiError {
    let challenge = r#"Bearer realm="hostnaming""#;
    match denied {
        Denied::Missing => ApiError::Unauthenticated {
            detail: "send an API token as `Authorization: Bearer <token>`".into(),
            challenge: challenge.into(),
        },
        Denied::Unknown => ApiError::Unauthenticated {
            detail: "the bearer token is not one this service knows".into(),
            challenge: format!(r#"{challenge}, error="invalid_token""#),
        },
        Denied::Lacks(scope) => {
            ApiError::Forbidden(format!("this token lacks the `{}` scope", scope.name()))
        }
    }
}

impl VaultToken {
    /// How a failure reads to the caller: Vault refusing a caller's own token is a 403
    /// about `what` they asked for; refusing the service's token stays a 503 (an
    /// operator's problem).
    pub fn refusal(&self, what: &str) -> impl Fn(NamingError) -> ApiError + '_ {
        let what = what.to_string();
        move |e| match e {
            NamingError::VaultDenied(_) if matches!(self, Self::Caller(_)) => {
                ApiError::Forbidden(format!("Vault refused your token for {what}"))
            }
            other => other.into(),
        }
    }
}

/// A token as an HTTP header value: visible ASCII only, so it cannot smuggle headers.
pub fn header_safe(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// One configured token: its name (the actor its writes are recorded as), SHA-256 hash
/// and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    digest: [u8; 32],
    scopes: Vec<Scope>,
}

/// The configured tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiTokens {
    entries: Vec<Entry>,
}

/// The longest token name.
pub const MAX_TOKEN_NAME: usize = 64;

/// Checks a token's name: 1 to 64 letters, digits, `_`, `.`, `@` and `-`, so that it reads
/// the same in a record, a log line and a CSV cell.
pub fn check_token_name(name: &str) -> Result<(), String> {
    let ok = (1..=MAX_TOKEN_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the token name {name:?} must be 1 to {MAX_TOKEN_NAME} letters, digits, '_', '.', \
             '@' or '-'"
        ))
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credentials (401).
    Missing,
    /// Credentials that match no token (401).
    Unknown,
    /// A known token without the scope (403).
    Lacks(Scope),
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Lowercase hex SHA-256 of a token: the form `api_tokens` stores.
pub fn token_hash(token: &str) -> String {
    hash(token).iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal without an early exit, so timing does not reveal how much of a hash matched.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ApiTokens {
    /// Parses entries `[NAME=]HASH:scope[,scope...]`, separated by `;` or newlines,
    /// whitespace ignored. HASH is the lowercase hex SHA-256 of the token (`hostnaming
    /// token` prints the entry). NAME is who the token's writes are recorded as; an entry
    /// without one is `api-token-{n}`, `n` counting entries from 1.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut entries: Vec<Entry> = Vec::new();
        for entry in spec.split([';', '\n']).map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let which = entries.len() + 1;
            let (name, entry) = match entry.split_once('=') {
                Some((name, rest)) => {
                    let name = name.trim();
                    check_token_name(name).map_err(|e| format!("api_tokens entry {which}: {e}"))?;
                    if entries.iter().any(|e| e.name == name) {
                        return Err(format!(
                            "api_tokens entry {which} repeats the name {name:?}; each token's \
                             name says whose writes are whose, so names are unique"
                        ));
                    }
                    (name.to_string(), rest.trim())
                }
                None => (format!("api-token-{which}"), entry),
            };
            let (hex, scopes) = entry.split_once(':').ok_or_else(|| {
                format!("api_tokens entry {which} must be [NAME=]SHA256HEX:scope[,scope]")
            })?;
            let hex = hex.trim();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "api_tokens entry {which} does not start with a 64-character SHA-256 hex \
                     hash (store hashes, never tokens)"
                ));
            }
            let mut digest = [0u8; 32];
            for (j, byte) in digest.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&hex[2 * j..2 * j + 2], 16).expect("hex checked");
            }
            let scopes = scopes
                .split(',')
                .map(str::trim)
                .map(|s| {
                    Scope::parse(s).ok_or_else(|| {
                        format!(
                            "api_tokens entry {which} has the unknown scope {s:?} (generate, \
                             read, annotate, admin)"
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            entries.push(Entry {
                name,
                digest,
                scopes,
            });
        }
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks an `Authorization` header value for `needed`; answers the token's name
    /// ([`ANONYMOUS`] when no tokens are configured).
    pub fn authorize(&self, authorization: Option<&str>, needed: Scope) -> Result<String, Denied> {
        if self.is_empty() {
            return Ok(ANONYMOUS.to_string());
        }
        let entry = self.entry(authorization)?;
        if entry.scopes.contains(&needed) {
            Ok(entry.name.clone())
        } else {
            Err(Denied::Lacks(needed))
        }
    }

    /// The entry an `Authorization` header value's bearer token matches.
    fn entry(&self, authorization: Option<&str>) -> Result<&Entry, Denied> {
        let token = authorization
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Missing)?;
        let presented = hash(token);
        // Every entry is compared, so the time taken does not depend on which one matched.
        let mut matched: Option<&Entry> = None;
        for entry in &self.entries {
            if constant_time_eq(&entry.digest, &presented) {
                matched = Some(entry);
            }
        }
        matched.ok_or(Denied::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_session_names_the_token_and_its_scopes_and_refuses_unknown_ones() {
        let mode = Mode::Tokens(tokens());
        let known = mode.introduce(headers(&[("authorization", "Bearer hn_alpha")]));
        assert_eq!(
            known,
            Ok(Caller::Known {
                auth: "tokens",
                actor: "api-token-1".into(),
                scopes: vec![Scope::Generate, Scope::Read],
            })
        );
        for pairs in [&[][..], &[("authorization", "Bearer nope")][..]] {
            let refused = mode.introduce(headers(pairs)).unwrap_err();
            assert_eq!(refused.problem().status, 401);
        }
    }

    #[test]
    fn an_open_service_gives_everyone_every_scope_and_pass_through_hands_vault_the_token() {
        let open = Mode::Tokens(ApiTokens::default()).introduce(headers(&[]));
        assert!(
            matches!(open, Ok(Caller::Known { auth: "open", scopes, .. }) if scopes == Scope::ALL)
        );
        let vault = Mode::VaultPassThrough.introduce(headers(&[("x-vault-token", "s.abc")]));
        assert_eq!(vault, Ok(Caller::Vault(VaultToken::Caller("s.abc".into()))));
        let missing = Mode::VaultPassThrough.introduce(headers(&[])).unwrap_err();
        assert_eq!(missing.problem().status, 401);
    }

    #[test]
    fn a_vault_tokens_scopes_follow_its_capabilities_on_a_counter_and_a_record() {
        let caps = |counter: &[&str], name: &[&str]| {
            let owned = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            vault_scopes(&[owned(counter), owned(name)])
        };
        assert_eq!(caps(&[], &["read"]), vec![Scope::Read]);
        assert_eq!(
            caps(&["create", "read", "update"], &["create", "read", "update"]),
            Scope::ALL.to_vec()
        );
        assert_eq!(caps(&["update"], &["read"]), vec![Scope::Read]);
        assert_eq!(caps(&["root"], &["root"]), Scope::ALL.to_vec());
        assert_eq!(caps(&[], &[]), vec![]);
    }

    fn tokens() -> ApiTokens {
        let spec = format!(
            "{}:generate,read;\n {}:admin",
            token_hash("hn_alpha"),
            token_hash("hn_beta")
        );
        ApiTokens::parse(&spec).unwrap()
    }

    #[test]
    fn a_known_token_with_the_scope_is_let_in() {
        assert_eq!(
            tokens().authorize(Some("Bearer hn_alpha"), Scope::Generate),
            Ok("api-token-1".into())
        );
        assert_eq!(
            tokens().authorize(Some("bearer  hn_beta "), Scope::Admin),
            Ok("api-token-2".into())
        );
    }

    #[test]
    fn no_token_or_an_unknown_one_is_unauthenticated() {
        assert_eq!(tokens().authorize(None, Scope::Read), Err(Denied::Missing));
        assert_eq!(
            tokens().authorize(Some("Basic abc"), Scope::Read),
            Err(Denied::Missing)
        );
        assert_eq!(
            tokens().authorize(Some("Bearer "), Scope::Read),
            Err(Denied::Missing)
        );
        assert_eq!(
            tokens().authorize(Some("Bearer hn_gamma"), Scope::Read),
            Err(Denied::Unknown)
        );
    }

    #[test]
    fn a_token_without_the_scope_is_forbidden() {
        assert_eq!(
            tokens().authorize(Some("Bearer hn_alpha"), Scope::Admin),
            Err(Denied::Lacks(Scope::Admin))
        );
        assert_eq!(
            tokens().authorize(Some("Bearer hn_beta"), Scope::Generate),
            Err(Denied::Lacks(Scope::Generate))
        );
    }

    #[test]
    fn with_no_tokens_configured_everything_is_open() {
        assert_eq!(
            ApiTokens::parse("  ")
                .unwrap()
                .authorize(None, Scope::Admin),
            Ok(ANONYMOUS.into())
        );
    }

    #[test]
    fn a_named_entry_admits_its_token_as_that_name_and_names_are_checked_and_unique() {
        let spec = format!(
            "ci-prod={}:generate; {}:read\nops@team={}:annotate,admin",
            token_hash("a"),
            token_hash("b"),
            token_hash("c")
        );
        let tokens = ApiTokens::parse(&spec).unwrap();
        assert_eq!(
            tokens.authorize(Some("Bearer a"), Scope::Generate),
            Ok("ci-prod".into())
        );
        assert_eq!(
            tokens.authorize(Some("Bearer b"), Scope::Read),
            Ok("api-token-2".into())
        );
        assert_eq!(
            tokens.authorize(Some("Bearer c"), Scope::Annotate),
            Ok("ops@team".into())
        );
        let twice = format!("x={}:read;x={}:read", token_hash("a"), token_hash("b"));
        assert!(ApiTokens::parse(&twice)
            .unwrap_err()
            .contains("repeats the name"));
        for bad in ["", "a b", "a/b", &"n".repeat(65)] {
            let e = ApiTokens::parse(&format!("{bad}={}:read", token_hash("a"))).unwrap_err();
            assert!(e.contains("token name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_clear_token_or_an_unknown_scope_is_refused_in_configuration() {
        assert!(ApiTokens::parse("hn_alpha:read")
            .unwrap_err()
            .contains("SHA-256"));
        let e = ApiTokens::parse(&format!("{}:write", token_hash("x"))).unwrap_err();
        assert!(e.contains("\"write\""), "{e}");
        assert!(Mode::parse("ldap", "").unwrap_err().contains("auth_mode"));
        assert_eq!(Mode::parse("vault", "").unwrap(), Mode::VaultPassThrough);
    }

    #[test]
    fn a_passed_through_vault_token_must_be_a_safe_header_value_and_owns_vaults_refusals() {
        let mode = Mode::VaultPassThrough;
        let with = |token: &'static str| {
            move |name: &str| (name == "x-vault-token").then(|| token.to_string())
        };
        assert_eq!(
            mode.admit(Scope::Read, with("hvs.abc")),
            Ok(Admitted {
                vault: VaultToken::Caller("hvs.abc".into()),
                actor: Actor::VaultIdentity,
            })
        );
        for bad in ["", "hvs abc", "hvs\nx-evil: 1"] {
            let refused = mode.admit(Scope::Read, with(bad)).unwrap_err();
            assert_eq!(refused.problem().status, 401, "{bad:?}");
        }
        let denied = || NamingError::VaultDenied("no".into());
        let caller = VaultToken::Caller("hvs.abc".into());
        assert_eq!(caller.refusal("name 'x'")(denied()).problem().status, 403);
        assert_eq!(
            VaultToken::Service.refusal("name 'x'")(denied())
                .problem()
                .status,
            503
        );
    }

    #[test]
    fn a_bearer_token_is_answered_with_the_challenge_for_what_went_wrong() {
        let bearer = |value: &'static str| {
            move |name: &str| (name == "authorization").then(|| value.to_string())
        };
        let mode = Mode::Tokens(tokens());
        assert_eq!(
            mode.admit(Scope::Read, bearer("Bearer hn_alpha")),
            Ok(Admitted {
                vault: VaultToken::Service,
                actor: Actor::Named("api-token-1".into()),
            })
        );
        let challenge = |e: ApiError| e.problem().headers[0].1.clone();
        let unknown = mode
            .admit(Scope::Read, bearer("Bearer hn_gamma"))
            .unwrap_err();
        assert!(challenge(unknown).ends_with(r#"error="invalid_token""#));
        let lacking = mode
            .admit(Scope::Admin, bearer("Bearer hn_alpha"))
            .unwrap_err();
        assert_eq!(lacking.problem().status, 403);
    }

    #[test]
    fn hashes_compare_equal_only_when_equal() {
        let (a, b) = (hash("a"), hash("b"));
        assert!(constant_time_eq(&a, &a));
        assert!(!constant_time_eq(&a, &b));
    }
}
