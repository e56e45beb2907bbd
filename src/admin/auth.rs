//! Admin authentication: the configured bearer tokens, read once per config load (start and
//! every reload, so a token file can be rotated with SIGHUP), kept only as SHA-256 digests and
//! compared in constant time against every configured token.

use super::config::{AdminConfig, TokenSource};
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

/// Shortest accepted admin token (bytes).
pub const MIN_TOKEN_LEN: usize = 32;

/// Who made an admin request: the name of the token they presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub token: String,
}

impl Actor {
    /// The actor id recorded in change audit rows: `admin:{token name}`.
    pub fn id(&self) -> String {
        format!("admin:{}", self.token)
    }
}

/// The accepted tokens and the open probe paths of one config.
#[derive(Default)]
pub struct AdminAuth {
    tokens: Vec<(String, [u8; 32])>,
    open: Vec<String>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("AdminAuth")
            .field("tokens", &names)
            .field("open", &self.open)
            .finish()
    }
}

/// Why a configured token is not usable (logged; the token is then not accepted).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("environment variable `{name}` is not set")]
    MissingEnv {
        name: String,
        #[source]
        source: std::env::VarError,
    },
    #[error("cannot read token file `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("token is shorter than {MIN_TOKEN_LEN} bytes")]
    Short,
}

fn read(source: &TokenSource, base: &Path) -> Result<String, TokenError> {
    let value = match (&source.env, &source.file) {
        (Some(name), _) => std::env::var(name).map_err(|e| TokenError::MissingEnv {
            name: name.clone(),
            source: e,
        })?,
        (None, Some(file)) => {
            let path = base.join(file);
            std::fs::read_to_string(&path).map_err(|e| TokenError::Read {
                path: path.display().to_string(),
                source: e,
            })?
        }
        (None, None) => String::new(),
    };
    let value = value.trim().to_owned();
    if value.len() < MIN_TOKEN_LEN {
        return Err(TokenError::Short);
    }
    Ok(value)
}

impl AdminAuth {
    /// Reads every configured token (relative files against `base`). A token that cannot be
    /// read or is too short is logged and not accepted: the admin API fails closed.
    pub fn load(cfg: &AdminConfig, base: &Path) -> AdminAuth {
        let mut tokens = Vec::new();
        for t in &cfg.tokens {
            match read(t, base) {
                Ok(v) => tokens.push((t.name.clone(), Sha256::digest(v.as_bytes()).into())),
                Err(e) => tracing::error!(
                    admin.token = %t.name, error = %crate::config::error_chain(&e),
                    "admin token not usable; it will not be accepted"
                ),
            }
        }
        AdminAuth {
            tokens,
            open: cfg.open.clone(),
        }
    }

    /// Whether `path` is served without a token.
    pub fn is_open(&self, path: &str) -> bool {
        self.open.iter().any(|p| p == path)
    }

    /// The actor whose token `Authorization: Bearer …` carries, or `None`. Every configured
    /// token is compared (no early exit), each in constant time.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Option<Actor> {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return None;
        };
        let presented = value.to_str().ok()?;
        let (scheme, token) = presented.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let mut found = None;
        for (name, expected) in &self.tokens {
            if bool::from(digest.ct_eq(expected)) {
                found = Some(name);
            }
        }
        found.map(|name| Actor {
            token: name.clone(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "admin-token-a-0123456789abcdef0123456789";
    const B: &str = "admin-token-b-0123456789abcdef0123456789";

    fn auth(dir: &Path) -> AdminAuth {
        std::fs::write(dir.join("b.token"), format!("{B}\n")).unwrap();
        std::fs::write(dir.join("short.token"), "too-short").unwrap();
        std::env::set_var("PORTCULLIS_TEST_ADMIN_TOKEN_A", A);
        let cfg: AdminConfig = toml::from_str(
            "open = [\"/healthz\"]\n\
             [[tokens]]\nname = \"ops\"\nenv = \"PORTCULLIS_TEST_ADMIN_TOKEN_A\"\n\
             [[tokens]]\nname = \"ci\"\nfile = \"b.token\"\n\
             [[tokens]]\nname = \"short\"\nfile = \"short.token\"\n\
             [[tokens]]\nname = \"unset\"\nenv = \"PORTCULLIS_TEST_ADMIN_TOKEN_UNSET\"\n",
        )
        .unwrap();
        AdminAuth::load(&cfg, dir)
    }

    fn bearer(v: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn each_configured_token_authenticates_as_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = auth(dir.path());
        assert_eq!(
            a.authenticate(&bearer(&format!("Bearer {A}")))
                .unwrap()
                .id(),
            "admin:ops"
        );
        let ci = a.authenticate(&bearer(&format!("bearer {B}"))).unwrap();
        assert_eq!(ci.token, "ci");
    }

    #[test]
    fn wrong_missing_short_or_doubled_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = auth(dir.path());
        assert!(a.authenticate(&http::HeaderMap::new()).is_none());
        assert!(a.authenticate(&bearer("Bearer too-short")).is_none());
        assert!(a.authenticate(&bearer(&format!("Basic {A}"))).is_none());
        assert!(a.authenticate(&bearer(&format!("Bearer {A}x"))).is_none());
        let mut two = bearer(&format!("Bearer {A}"));
        two.append(
            http::header::AUTHORIZATION,
            format!("Bearer {B}").parse().unwrap(),
        );
        assert!(a.authenticate(&two).is_none());
    }

    #[test]
    fn only_listed_probes_are_open() {
        let dir = tempfile::tempdir().unwrap();
        let a = auth(dir.path());
        assert!(a.is_open("/healthz"));
        assert!(!a.is_open("/metrics"));
        assert!(!a.is_open("/v1/keys"));
    }

    #[test]
    fn debug_output_shows_names_not_digests() {
        let dir = tempfile::tempdir().unwrap();
        let shown = format!("{:?}", auth(dir.path()));
        assert!(
            shown.contains("\"ops\"") && shown.contains("\"ci\""),
            "{shown}"
        );
        assert!(!shown.contains("short\""), "{shown}");
    }
}
