//! Who may ask: API tokens with scopes, configured as SHA-256 hashes so no token is ever
//! stored in clear, checked in constant time; or Vault-token pass-through, where the
//! caller's own Vault token does the work and Vault's policies decide.

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
    /// Releasing names.
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Self::Generate => "generate",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "generate" => Some(Self::Generate),
            "read" => Some(Self::Read),
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

impl Mode {
    /// Checks a request's credentials for `scope` and says whose token goes to Vault.
    /// `header` gives a request header's value by its lowercase name; only the headers
    /// the mode uses are asked for.
    pub fn admit(
        &self,
        scope: Scope,
        header: impl Fn(&str) -> Option<String>,
    ) -> Result<VaultToken, ApiError> {
        match self {
            Self::Tokens(tokens) => {
                let challenge = r#"Bearer realm="hostnaming""#;
                match tokens.authorize(header("authorization").as_deref(), scope) {
                    Ok(()) => Ok(VaultToken::Service),
                    Err(Denied::Missing) => Err(ApiError::Unauthenticated {
                        detail: "send an API token as `Authorization: Bearer <token>`".into(),
                        challenge: challenge.into(),
                    }),
                    Err(Denied::Unknown) => Err(ApiError::Unauthenticated {
                        detail: "the bearer token is not one this service knows".into(),
                        challenge: format!(r#"{challenge}, error="invalid_token""#),
                    }),
                    Err(Denied::Lacks(scope)) => Err(ApiError::Forbidden(format!(
                        "this token lacks the `{}` scope",
                        scope.name()
                    ))),
                }
            }
            Self::VaultPassThrough => match header("x-vault-token") {
                Some(token) if header_safe(&token) => Ok(VaultToken::Caller(token)),
                _ => Err(ApiError::Unauthenticated {
                    detail: "send your Vault token as `X-Vault-Token`".into(),
                    challenge: r#"X-Vault-Token realm="hostnaming""#.into(),
                }),
            },
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

/// The configured tokens: each a SHA-256 hash and its scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiTokens {
    entries: Vec<([u8; 32], Vec<Scope>)>,
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
    /// Parses entries `HASH:scope[,scope...]`, separated by `;`, commas between entries not
    /// allowed, whitespace and newlines ignored. HASH is the lowercase hex SHA-256 of the
    /// token (`hostnaming token` prints both).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (i, entry) in spec.split([';', '\n']).map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let which = i + 1;
            let (hex, scopes) = entry.split_once(':').ok_or_else(|| {
                format!("api_tokens entry {which} must be SHA256HEX:scope[,scope]")
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
                             read, admin)"
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            entries.push((digest, scopes));
        }
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks an `Authorization` header value for `needed`.
    pub fn authorize(&self, authorization: Option<&str>, needed: Scope) -> Result<(), Denied> {
        if self.is_empty() {
            return Ok(());
        }
        let token = authorization
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Missing)?;
        let presented = hash(token);
        // Every entry is compared, so the time taken does not depend on which one matched.
        let mut scopes: Option<&[Scope]> = None;
        for (digest, entry_scopes) in &self.entries {
            if constant_time_eq(digest, &presented) {
                scopes = Some(entry_scopes);
            }
        }
        match scopes {
            None => Err(Denied::Unknown),
            Some(s) if s.contains(&needed) => Ok(()),
            Some(_) => Err(Denied::Lacks(needed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Ok(())
        );
        assert_eq!(
            tokens().authorize(Some("bearer  hn_beta "), Scope::Admin),
            Ok(())
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
            Ok(())
        );
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
            Ok(VaultToken::Caller("hvs.abc".into()))
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
            Ok(VaultToken::Service)
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
