//! Which authenticators apply to which API (`[authn] management = […]`, `delivery = […]`) and
//! the `[authn.umbraco]` section of the `umbraco` authenticator (Umbraco's own tokens, checked
//! with `GET user/current`, see `umbraco::session`).
//!
//! A bearer token goes to `jwt` when it is a well-formed JWT naming a configured issuer, else to
//! `umbraco` when that applies (an opaque token, or Umbraco's `Bearer [redacted]` + cookie form);
//! a credential whose authenticator does not apply to the API is `invalid_token`
//! (`not_accepted`).

use serde::Deserialize;
use std::time::Duration;

use crate::config::Problems;
use crate::request::Api;

/// One way of authenticating a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Bearer JWTs of the configured issuers.
    Jwt,
    /// Portcullis API keys.
    ApiKey,
    /// Umbraco's own access tokens (Management API only).
    Umbraco,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Umbraco => "umbraco",
        }
    }
}

/// `[authn.umbraco]`: checking Umbraco's own tokens against the upstream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UmbracoAuthnConfig {
    /// Umbraco's `BackOfficeTokenCookieSettings.SiteName`: the suffix of `umbAccessToken`.
    pub site_name: String,
    /// How long a `user/current` answer is used.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// How long a 401/403 answer is remembered.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Upper bound of the session cache, in (estimated) bytes.
    pub cache_bytes: u64,
    /// Timeout of one `user/current` or tree call.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long a node resolved through the tree API is used.
    #[serde(with = "humantime_serde")]
    pub node_ttl: Duration,
}

impl Default for UmbracoAuthnConfig {
    fn default() -> Self {
        UmbracoAuthnConfig {
            site_name: String::new(),
            session_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            cache_bytes: 32 * 1024 * 1024,
            timeout: Duration::from_secs(5),
            node_ttl: Duration::from_secs(60),
        }
    }
}

impl UmbracoAuthnConfig {
    pub fn validate(&self, p: &mut Problems) {
        let site_ok = self
            .site_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !site_ok {
            p.push(
                "authn.umbraco.site_name",
                "must be [A-Za-z0-9._-] (a cookie name suffix)",
            );
        }
        for (name, d) in [
            ("session_ttl", self.session_ttl),
            ("negative_ttl", self.negative_ttl),
            ("timeout", self.timeout),
            ("node_ttl", self.node_ttl),
        ] {
            if d.is_zero() {
                p.push(
                    &format!("authn.umbraco.{name}"),
                    "must be greater than zero",
                );
            }
        }
        if self.cache_bytes < 64 * 1024 {
            p.push("authn.umbraco.cache_bytes", "must be at least 65536");
        }
    }
}

/// The authenticators each API accepts, in the order they are considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMethods {
    management: Vec<AuthMethod>,
    delivery: Vec<AuthMethod>,
}

impl AuthMethods {
    /// From the configured lists; an unset list is every configured authenticator that can
    /// serve the API (`umbraco` only when `[authn.umbraco]` is present, Management only).
    pub fn new(
        management: Option<&[AuthMethod]>,
        delivery: Option<&[AuthMethod]>,
        umbraco: bool,
    ) -> Self {
        let mut all = vec![AuthMethod::Jwt, AuthMethod::ApiKey];
        if umbraco {
            all.push(AuthMethod::Umbraco);
        }
        AuthMethods {
            management: management.map_or_else(|| all.clone(), <[_]>::to_vec),
            delivery: delivery
                .map_or_else(|| vec![AuthMethod::Jwt, AuthMethod::ApiKey], <[_]>::to_vec),
        }
    }

    /// Whether `method` applies to `api`.
    pub fn allows(&self, api: Api, method: AuthMethod) -> bool {
        match api {
            Api::Management => self.management.contains(&method),
            Api::Delivery => self.delivery.contains(&method),
        }
    }
}

/// Records the problems of the per-API lists (called from `AuthnConfig::validate`).
pub fn validate_lists(
    management: Option<&[AuthMethod]>,
    delivery: Option<&[AuthMethod]>,
    umbraco: bool,
    p: &mut Problems,
) {
    if delivery.is_some_and(|d| d.contains(&AuthMethod::Umbraco)) {
        p.push(
            "authn.delivery",
            "`umbraco` checks back-office users and applies to the Management API only",
        );
    }
    if !umbraco && management.is_some_and(|m| m.contains(&AuthMethod::Umbraco)) {
        p.push(
            "authn.management",
            "`umbraco` needs an [authn.umbraco] section",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_lists_take_every_configured_authenticator() {
        let m = AuthMethods::new(None, None, true);
        assert!(m.allows(Api::Management, AuthMethod::Umbraco));
        assert!(m.allows(Api::Management, AuthMethod::Jwt));
        assert!(!m.allows(Api::Delivery, AuthMethod::Umbraco));
        let m = AuthMethods::new(None, None, false);
        assert!(!m.allows(Api::Management, AuthMethod::Umbraco));
    }

    #[test]
    fn a_list_limits_its_api() {
        let m = AuthMethods::new(
            Some(&[AuthMethod::Umbraco]),
            Some(&[AuthMethod::ApiKey]),
            true,
        );
        assert!(!m.allows(Api::Management, AuthMethod::Jwt));
        assert!(!m.allows(Api::Delivery, AuthMethod::Jwt));
        assert!(m.allows(Api::Delivery, AuthMethod::ApiKey));
    }

    #[test]
    fn umbraco_on_delivery_or_without_its_section_is_refused() {
        let mut p = Problems::default();
        validate_lists(
            Some(&[AuthMethod::Umbraco]),
            Some(&[AuthMethod::Umbraco]),
            false,
            &mut p,
        );
        assert_eq!(p.0.len(), 2, "{:?}", p.0);
    }

    #[test]
    fn the_umbraco_section_is_checked() {
        let cfg: UmbracoAuthnConfig =
            toml::from_str("site_name = \"a b\"\nsession_ttl = \"0s\"\ncache_bytes = 1")
                .unwrap_or_default();
        let mut p = Problems::default();
        cfg.validate(&mut p);
        assert_eq!(p.0.len(), 3, "{:?}", p.0);
        assert!(toml::from_str::<UmbracoAuthnConfig>("secret = 1").is_err());
    }
}
