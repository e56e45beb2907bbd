//! `[upstream.credential]`: which credential the gateway sends to Umbraco for principals that
//! do not hold an Umbraco token of their own (external IdP JWTs, Portcullis API keys).
//!
//! `passthrough` forwards the caller's `Authorization` unchanged (Umbraco rejects a foreign
//! JWT, so only useful when Umbraco trusts that IdP itself); `umbraco_api_user` replaces it with
//! an access token of a configured Umbraco API user, obtained with the client-credentials grant.
//! The client secret is never in the file: `client_secret_env` names the environment variable.

use serde::Deserialize;
use std::time::Duration;

use crate::config::Problems;

/// Umbraco stores every API user client id with this prefix
/// (`ClientCredentialsManagerBase.SafeClientId` with `Constants.OAuthClientIds.BackOffice`).
pub const CLIENT_ID_PREFIX: &str = "umbraco-back-office-";

/// Longest client id Umbraco accepts (`UserService.ValidClientId`: `^[\w\d\-\._~]{1,100}$`).
const MAX_CLIENT_ID: usize = 100;

/// What goes upstream for callers without an Umbraco token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// Forward the caller's `Authorization` header as received.
    #[default]
    Passthrough,
    /// Replace it with the configured API user's token (client-credentials grant).
    UmbracoApiUser,
}

/// `[upstream.credential]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialConfig {
    pub kind: CredentialKind,
    /// The API user's client id, `umbraco-back-office-…` (Users → API user → Client credentials).
    pub client_id: String,
    /// Environment variable holding the client secret.
    pub client_secret_env: String,
    /// Fetch a new token this long before the current one expires (at most half its lifetime).
    #[serde(with = "humantime_serde")]
    pub refresh_before: Duration,
    /// Timeout of one call to Umbraco's token endpoint.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for CredentialConfig {
    fn default() -> Self {
        CredentialConfig {
            kind: CredentialKind::Passthrough,
            client_id: String::new(),
            client_secret_env: "PORTCULLIS_UMBRACO_CLIENT_SECRET".to_owned(),
            refresh_before: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Whether `id` is a client id Umbraco can have issued to an API user.
pub fn client_id_is_valid(id: &str) -> bool {
    id.len() > CLIENT_ID_PREFIX.len()
        && id.len() <= MAX_CLIENT_ID
        && id.starts_with(CLIENT_ID_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

impl CredentialConfig {
    /// Records every problem of the section (called by `config.rs`).
    pub fn validate(&self, p: &mut Problems) {
        if self.kind == CredentialKind::Passthrough {
            return;
        }
        if !client_id_is_valid(&self.client_id) {
            p.push(
                "upstream.credential.client_id",
                format!(
                    "`{}` must be `{CLIENT_ID_PREFIX}` followed by [A-Za-z0-9._~-], at most {MAX_CLIENT_ID} characters",
                    self.client_id
                ),
            );
        }
        if self.client_secret_env.trim().is_empty() {
            p.push(
                "upstream.credential.client_secret_env",
                "must name an environment variable",
            );
        }
        if self.timeout.is_zero() {
            p.push("upstream.credential.timeout", "must be greater than zero");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let cfg: CredentialConfig = toml::from_str(text).unwrap();
        let mut p = Problems::default();
        cfg.validate(&mut p);
        p.0
    }

    #[test]
    fn passthrough_is_the_default_and_needs_nothing() {
        assert_eq!(
            CredentialConfig::default().kind,
            CredentialKind::Passthrough
        );
        assert!(problems("").is_empty());
    }

    #[test]
    fn an_api_user_with_an_umbraco_client_id_is_valid() {
        let p = problems(
            "kind = \"umbraco_api_user\"\nclient_id = \"umbraco-back-office-portcullis\"\nrefresh_before = \"30s\"",
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn a_client_id_without_umbracos_prefix_is_refused() {
        // Umbraco prefixes every stored API-user client id, so any other id can never work.
        let p = problems("kind = \"umbraco_api_user\"\nclient_id = \"portcullis\"");
        assert!(p.iter().any(|m| m.contains("client_id")), "{p:?}");
        let p = problems("kind = \"umbraco_api_user\"\nclient_id = \"umbraco-back-office-\"");
        assert!(p.iter().any(|m| m.contains("client_id")), "{p:?}");
        let p = problems("kind = \"umbraco_api_user\"\nclient_id = \"umbraco-back-office-a b\"");
        assert!(p.iter().any(|m| m.contains("client_id")), "{p:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = problems(
            "kind = \"umbraco_api_user\"\nclient_id = \"\"\nclient_secret_env = \" \"\ntimeout = \"0s\"",
        );
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<CredentialConfig>("client_secret = \"x\"").is_err());
    }
}
