//! The `[store]` config section: which store backs the policy (file or Postgres), where its
//! data lives, and how the cache behaves. Serde schema plus `validate`.
//!
//! The database URL is never written in the config file (it carries a password): the file names
//! the environment variable that holds it (`database_url_env`, default
//! `PORTCULLIS_DATABASE_URL`), so there is deliberately no `database_url` key.

use crate::config::Problems;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Which [`super::PolicyStore`] serves the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The embedded default: a TOML policy file, watched and reloaded.
    #[default]
    File,
    /// PostgreSQL with push invalidation.
    Postgres,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// Policy file for `kind = "file"`.
    pub policy_file: Option<PathBuf>,
    /// How often the policy file's modification time is checked.
    #[serde(with = "humantime_serde")]
    pub policy_file_poll: Duration,
    /// Environment variable holding the Postgres URL for `kind = "postgres"`.
    pub database_url_env: String,
    pub pool_max_connections: u32,
    /// How long a request may wait for a pooled connection before the load fails (fail closed).
    #[serde(with = "humantime_serde")]
    pub pool_acquire_timeout: Duration,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    pub cache: CacheConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::File,
            policy_file: None,
            policy_file_poll: Duration::from_secs(1),
            database_url_env: "PORTCULLIS_DATABASE_URL".to_owned(),
            pool_max_connections: 8,
            pool_acquire_timeout: Duration::from_secs(2),
            migrate_on_start: false,
            cache: CacheConfig::default(),
        }
    }
}

/// `[store.cache]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub users_capacity: u64,
    pub groups_capacity: u64,
    pub nodes_capacity: u64,
    pub api_keys_capacity: u64,
    /// Longest an entry is trusted while the listener is up (a safety net; push invalidation
    /// normally evicts long before).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Entry lifetime while push invalidation is down (listener lost or not yet connected).
    #[serde(with = "humantime_serde")]
    pub listener_fallback_ttl: Duration,
    /// During a store outage, serve an expired entry up to this age; `0s` disables.
    #[serde(with = "humantime_serde")]
    pub serve_stale_max: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            users_capacity: 100_000,
            groups_capacity: 10_000,
            nodes_capacity: 1_000_000,
            api_keys_capacity: 100_000,
            ttl: Duration::from_secs(600),
            listener_fallback_ttl: Duration::from_secs(5),
            serve_stale_max: Duration::from_secs(300),
        }
    }
}

impl StoreConfig {
    /// Records every problem of the section under `store.*`.
    pub fn validate(&self, p: &mut Problems) {
        match self.kind {
            StoreKind::File if self.policy_file.is_none() => {
                p.push("store.policy_file", "required when `kind = \"file\"`");
            }
            _ => {}
        }
        if self.policy_file_poll.is_zero() {
            p.push("store.policy_file_poll", "must be greater than zero");
        }
        let env = &self.database_url_env;
        if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            p.push(
                "store.database_url_env",
                format!("`{env}` is not an environment variable name"),
            );
        }
        if self.pool_max_connections == 0 {
            p.push("store.pool_max_connections", "must be at least 1");
        }
        if self.pool_acquire_timeout.is_zero() {
            p.push("store.pool_acquire_timeout", "must be greater than zero");
        }
        let c = &self.cache;
        for (name, cap) in [
            ("users_capacity", c.users_capacity),
            ("groups_capacity", c.groups_capacity),
            ("nodes_capacity", c.nodes_capacity),
            ("api_keys_capacity", c.api_keys_capacity),
        ] {
            if cap == 0 {
                p.push(&format!("store.cache.{name}"), "must be at least 1");
            }
        }
        if c.ttl.is_zero() {
            p.push("store.cache.ttl", "must be greater than zero");
        }
        if c.listener_fallback_ttl.is_zero() {
            p.push(
                "store.cache.listener_fallback_ttl",
                "must be greater than zero",
            );
        }
        if c.listener_fallback_ttl > c.ttl {
            p.push(
                "store.cache.listener_fallback_ttl",
                "must not be longer than `store.cache.ttl`",
            );
        }
    }

    /// Reads the database URL from the named environment variable.
    pub fn database_url(&self) -> Result<String, super::StoreError> {
        std::env::var(&self.database_url_env).map_err(|source| {
            super::StoreError::MissingDatabaseUrl {
                name: self.database_url_env.clone(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(toml_text: &str) -> Vec<String> {
        let c: StoreConfig = toml::from_str(toml_text).expect("parses");
        let mut p = Problems::default();
        c.validate(&mut p);
        p.0
    }

    #[test]
    fn a_postgres_section_with_defaults_is_valid() {
        assert!(problems("kind = \"postgres\"").is_empty());
    }

    #[test]
    fn durations_are_humantime_strings() {
        let c: StoreConfig = toml::from_str(
            "kind = \"postgres\"\n[cache]\nserve_stale_max = \"2m\"\nlistener_fallback_ttl = \"3s\"",
        )
        .expect("parses");
        assert_eq!(c.cache.serve_stale_max, Duration::from_secs(120));
        assert_eq!(c.cache.listener_fallback_ttl, Duration::from_secs(3));
        assert!(!c.migrate_on_start);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = problems(
            "kind = \"file\"\ndatabase_url_env = \"no spaces\"\npool_max_connections = 0\n\
             [cache]\nusers_capacity = 0\nlistener_fallback_ttl = \"1h\"",
        );
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p[0].starts_with("store.policy_file:"));
    }

    #[test]
    fn a_database_url_in_the_file_is_rejected() {
        let r: Result<StoreConfig, _> = toml::from_str("database_url = \"postgres://u:pw@h/db\"");
        assert!(r.is_err());
    }
}
