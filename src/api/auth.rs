//! Who may ask: API tokens with scopes, configured as SHA-256 hashes so no token is ever
//! stored in clear, checked in constant time; or Vault-token pass-through, where the
//! caller's own Vault token does the work and Vault's policies decide.

use sha2::{Digest, Sha256};

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
    fn hashes_compare_equal_only_when_equal() {
        let (a, b) = (hash("a"), hash("b"));
        assert!(constant_time_eq(&a, &a));
        assert!(!constant_time_eq(&a, &b));
    }
}
