//! The `[authn]` config section: trusted JWT issuers (JWKS or OIDC discovery, audiences,
//! algorithm allow-list, leeway, claims, group mapping) and the API key settings. Secrets are
//! never in the file: only the names of the environment variables that hold them.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Problems;

/// `[authn]`: how callers prove who they are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthnConfig {
    /// Environment variable holding the API key pepper (at least 32 bytes).
    pub pepper_env: String,
    /// The `<env>` segment of generated keys (`pcl_<env>_…`); presented keys must carry it.
    pub key_env: String,
    /// Maximum number of verified tokens kept in the cache.
    pub token_cache_capacity: u64,
    /// Trusted token issuers, tried by exact `iss` match.
    pub issuers: Vec<IssuerConfig>,
    /// `[authn.umbraco]`: accept Umbraco's own tokens (checked with `GET user/current`).
    pub umbraco: Option<super::methods::UmbracoAuthnConfig>,
    /// Authenticators of the Management API (unset: every configured one).
    pub management: Option<Vec<super::methods::AuthMethod>>,
    /// Authenticators of the Delivery API (unset: `jwt`, `api_key`).
    pub delivery: Option<Vec<super::methods::AuthMethod>>,
}

impl Default for AuthnConfig {
    fn default() -> Self {
        AuthnConfig {
            pepper_env: "PORTCULLIS_KEY_PEPPER".to_owned(),
            key_env: "live".to_owned(),
            token_cache_capacity: 10_000,
            issuers: Vec::new(),
            umbraco: None,
            management: None,
            delivery: None,
        }
    }
}

/// What a token from an issuer identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A back-office user (Management API): `Subject::User`.
    #[default]
    User,
    /// A Delivery API member: `Subject::Member`.
    Member,
}

/// `[[authn.issuers]]`: one trusted token issuer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerConfig {
    /// Short stable name used in principal ids, logs and metric labels (`[a-z0-9_-]`).
    pub name: String,
    /// The exact `iss` value tokens must carry.
    pub issuer: String,
    /// JWKS URL; exactly one of `jwks_url`, `discovery_url`, `hs_secret_env` for the key source.
    pub jwks_url: Option<String>,
    /// OIDC discovery document URL (`…/.well-known/openid-configuration`).
    pub discovery_url: Option<String>,
    /// Environment variable holding the HMAC secret; only with HS* algorithms.
    pub hs_secret_env: Option<String>,
    /// Accepted audiences: a token's `aud` must contain one of them.
    pub audiences: Vec<String>,
    /// Algorithm allow-list (`RS256`, `PS256`, `ES256`, `EdDSA`, …).
    pub algorithms: Vec<String>,
    /// Accepted JOSE `typ` values (`"at+jwt"` for RFC 9068 access tokens, `"jwt"`), compared
    /// case-insensitively with an optional `application/` prefix. Empty accepts any token type
    /// (a `typ`, when present, must still be `jwt` or `at+jwt`).
    pub token_types: Vec<String>,
    /// Clock-skew allowance for `exp`, `nbf` and `iat`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Claims that must be present (besides `exp`, `iss`, `aud` and the subject claim).
    pub required_claims: Vec<String>,
    /// The claim holding the user's external id (or member username).
    pub subject_claim: String,
    /// User (Management API) or member (Delivery API) tokens.
    pub subject: SubjectKind,
    /// Optional claim holding IdP group ids (a string or an array of strings).
    pub groups_claim: Option<String>,
    /// IdP group → Umbraco group alias, for users not registered in the store.
    pub group_map: BTreeMap<String, String>,
    /// How long a fetched key set is used before a scheduled refresh.
    #[serde(with = "humantime_serde")]
    pub jwks_ttl: Duration,
    /// Minimum interval between fetches triggered by an unknown `kid`.
    #[serde(with = "humantime_serde")]
    pub jwks_min_refetch_interval: Duration,
    /// Timeout of one JWKS or discovery request.
    #[serde(with = "humantime_serde")]
    pub jwks_fetch_timeout: Duration,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        IssuerConfig {
            name: String::new(),
            issuer: String::new(),
            jwks_url: None,
            discovery_url: None,
            hs_secret_env: None,
            audiences: Vec::new(),
            algorithms: vec!["RS256".to_owned()],
            token_types: Vec::new(),
            leeway: Duration::from_secs(30),
            required_claims: Vec::new(),
            subject_claim: "sub".to_owned(),
            subject: SubjectKind::User,
            groups_claim: None,
            group_map: BTreeMap::new(),
            jwks_ttl: Duration::from_secs(300),
            jwks_min_refetch_interval: Duration::from_secs(30),
            jwks_fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// The algorithms Portcullis accepts at all (RFC 8725: no `none`, nothing unlisted).
pub const SUPPORTED_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

/// Whether a fetch URL is acceptable: https, or plain http to a loopback host only.
pub(crate) fn url_is_acceptable(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(_)) => true,
        (Some("http"), Some(host)) => matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1"),
        _ => false,
    }
}

impl AuthnConfig {
    /// Records every problem of the section (called by `config.rs` when loading).
    pub fn validate(&self, p: &mut Problems) {
        if self.pepper_env.trim().is_empty() {
            p.push("authn.pepper_env", "must name an environment variable");
        }
        let env_ok = !self.key_env.is_empty()
            && self.key_env.len() <= 16
            && self
                .key_env
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !env_ok {
            p.push(
                "authn.key_env",
                format!("`{}` must be 1-16 characters [a-z0-9]", self.key_env),
            );
        }
        if self.token_cache_capacity == 0 {
            p.push("authn.token_cache_capacity", "must be at least 1");
        }
        let mut names = std::collections::BTreeSet::new();
        let mut issuers = std::collections::BTreeSet::new();
        for (i, iss) in self.issuers.iter().enumerate() {
            let at = format!("authn.issuers[{i}]");
            if !names.insert(iss.name.as_str()) {
                p.push(&at, format!("duplicate issuer name `{}`", iss.name));
            }
            if !iss.issuer.is_empty() && !issuers.insert(iss.issuer.as_str()) {
                p.push(&at, format!("duplicate issuer `{}`", iss.issuer));
            }
            iss.validate(&at, p);
        }
        if let Some(u) = &self.umbraco {
            u.validate(p);
        }
        super::methods::validate_lists(
            self.management.as_deref(),
            self.delivery.as_deref(),
            self.umbraco.is_some(),
            p,
        );
    }

    /// The authenticators each API accepts.
    pub fn methods(&self) -> super::methods::AuthMethods {
        super::methods::AuthMethods::new(
            self.management.as_deref(),
            self.delivery.as_deref(),
            self.umbraco.is_some(),
        )
    }
}

impl IssuerConfig {
    fn validate(&self, at: &str, p: &mut Problems) {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            p.push(
                &format!("{at}.name"),
                format!("`{}` must be 1-32 characters [a-z0-9_-]", self.name),
            );
        }
        if self.issuer.is_empty() {
            p.push(
                &format!("{at}.issuer"),
                "must be set (the exact `iss` value)",
            );
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            p.push(
                &format!("{at}.audiences"),
                "must list at least one non-empty audience",
            );
        }
        if self.subject_claim.is_empty() {
            p.push(&format!("{at}.subject_claim"), "must not be empty");
        }
        if self.jwks_ttl < Duration::from_secs(10) {
            p.push(&format!("{at}.jwks_ttl"), "must be at least 10s");
        }
        if self.jwks_fetch_timeout.is_zero() {
            p.push(
                &format!("{at}.jwks_fetch_timeout"),
                "must be greater than 0s",
            );
        }
        if self.leeway > Duration::from_secs(300) {
            p.push(&format!("{at}.leeway"), "must be at most 5m");
        }
        if !self.group_map.is_empty() && self.groups_claim.is_none() {
            p.push(&format!("{at}.group_map"), "needs `groups_claim`");
        }
        for t in &self.token_types {
            if !matches!(super::jwt::media_type(t).as_str(), "jwt" | "at+jwt") {
                p.push(
                    &format!("{at}.token_types"),
                    format!("`{t}` is not a token type Portcullis accepts (`at+jwt`, `jwt`)"),
                );
            }
        }
        self.validate_algorithms(at, p);
    }

    fn validate_algorithms(&self, at: &str, p: &mut Problems) {
        if self.algorithms.is_empty() {
            p.push(
                &format!("{at}.algorithms"),
                "must list at least one algorithm",
            );
        }
        for alg in &self.algorithms {
            if !SUPPORTED_ALGS.contains(&alg.as_str()) {
                p.push(
                    &format!("{at}.algorithms"),
                    format!("`{alg}` is not supported (RS*, PS*, ES256, ES384, EdDSA, HS*)"),
                );
            }
        }
        let hmac = self
            .algorithms
            .iter()
            .filter(|a| a.starts_with("HS"))
            .count();
        let asymmetric = self.algorithms.len() - hmac;
        if hmac > 0 && asymmetric > 0 {
            p.push(
                &format!("{at}.algorithms"),
                "HS* algorithms must not be mixed with asymmetric algorithms for one issuer",
            );
        }
        let sources = [
            self.jwks_url.is_some(),
            self.discovery_url.is_some(),
            self.hs_secret_env.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if sources != 1 {
            p.push(
                at,
                "exactly one of `jwks_url`, `discovery_url`, `hs_secret_env` must be set",
            );
        }
        if hmac > 0 && self.hs_secret_env.is_none() {
            p.push(
                &format!("{at}.algorithms"),
                "HS* algorithms need `hs_secret_env`",
            );
        }
        if self.hs_secret_env.is_some() && asymmetric > 0 {
            p.push(
                &format!("{at}.hs_secret_env"),
                "a shared secret is only allowed with HS* algorithms",
            );
        }
        for (key, url) in [
            ("jwks_url", &self.jwks_url),
            ("discovery_url", &self.discovery_url),
        ] {
            if let Some(url) = url {
                if !url_is_acceptable(url) {
                    p.push(
                        &format!("{at}.{key}"),
                        format!("`{url}` must be https (plain http only to loopback)"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> AuthnConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn problems(cfg: &AuthnConfig) -> Vec<String> {
        let mut p = Problems::default();
        cfg.validate(&mut p);
        p.0
    }

    const GOOD: &str = r#"
        pepper_env = "PORTCULLIS_KEY_PEPPER"
        key_env = "live"
        [[issuers]]
        name = "entra"
        issuer = "https://login.example.com/t/v2.0"
        jwks_url = "https://login.example.com/t/keys"
        audiences = ["api://portcullis"]
        algorithms = ["RS256", "ES256"]
        leeway = "30s"
        groups_claim = "groups"
        [issuers.group_map]
        "0c1d-editors" = "editor"
    "#;

    #[test]
    fn documented_example_parses_and_validates() {
        let cfg = parse(GOOD);
        assert_eq!(problems(&cfg), Vec::<String>::new());
        assert_eq!(cfg.issuers[0].leeway, Duration::from_secs(30));
        assert_eq!(cfg.issuers[0].subject_claim, "sub");
    }

    #[test]
    fn default_leeway_is_thirty_seconds() {
        assert_eq!(IssuerConfig::default().leeway, Duration::from_secs(30));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(toml::from_str::<AuthnConfig>("pepper = \"x\"").is_err());
    }

    #[test]
    fn hmac_mixed_with_asymmetric_is_a_config_error() {
        let mut cfg = parse(GOOD);
        cfg.issuers[0].algorithms = vec!["HS256".into(), "RS256".into()];
        let p = problems(&cfg);
        assert!(p.iter().any(|m| m.contains("must not be mixed")), "{p:?}");
        assert!(
            p.iter().any(|m| m.contains("need `hs_secret_env`")),
            "{p:?}"
        );
    }

    #[test]
    fn hmac_without_secret_env_is_a_config_error() {
        let mut cfg = parse(GOOD);
        cfg.issuers[0].algorithms = vec!["HS256".into()];
        let p = problems(&cfg);
        assert!(
            p.iter().any(|m| m.contains("need `hs_secret_env`")),
            "{p:?}"
        );
    }

    #[test]
    fn hmac_with_secret_env_and_no_jwks_is_valid() {
        let mut cfg = parse(GOOD);
        cfg.issuers[0].algorithms = vec!["HS256".into()];
        cfg.issuers[0].jwks_url = None;
        cfg.issuers[0].hs_secret_env = Some("IDP_SECRET".into());
        assert_eq!(problems(&cfg), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut cfg = parse(GOOD);
        cfg.key_env = "Live!".into();
        cfg.issuers[0].name = "Bad Name".into();
        cfg.issuers[0].audiences.clear();
        cfg.issuers[0].algorithms = vec!["none".into()];
        cfg.issuers[0].jwks_url = Some("http://idp.example.com/keys".into());
        cfg.issuers.push(cfg.issuers[0].clone());
        let p = problems(&cfg);
        assert!(p.len() >= 9, "{p:#?}");
        assert!(p.iter().any(|m| m.contains("`none` is not supported")));
        assert!(p.iter().any(|m| m.contains("must be https")));
        assert!(p.iter().any(|m| m.contains("duplicate issuer name")));
        assert!(p.iter().any(|m| m.contains("duplicate issuer `")));
    }

    #[test]
    fn token_types_must_be_jwt_or_at_jwt() {
        let mut cfg = parse(GOOD);
        cfg.issuers[0].token_types = vec!["application/AT+JWT".into(), "jwt".into()];
        assert_eq!(problems(&cfg), Vec::<String>::new());
        cfg.issuers[0].token_types = vec!["logout+jwt".into()];
        let p = problems(&cfg);
        assert!(p.iter().any(|m| m.contains("token_types")), "{p:?}");
    }

    #[test]
    fn plain_http_is_only_accepted_for_loopback() {
        assert!(url_is_acceptable("http://127.0.0.1:8080/jwks"));
        assert!(url_is_acceptable("https://idp.example.com/jwks"));
        assert!(!url_is_acceptable("http://idp.example.com/jwks"));
        assert!(!url_is_acceptable("file:///etc/passwd"));
    }

    #[test]
    fn key_source_must_be_exactly_one() {
        let mut cfg = parse(GOOD);
        cfg.issuers[0].discovery_url = Some("https://x/.well-known/openid-configuration".into());
        assert!(problems(&cfg).iter().any(|m| m.contains("exactly one of")));
    }
}
