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
    /// Longest one store query may take, waiting for a connection included; also the server's
    /// `statement_timeout`. A query past it fails (and the decision fails closed).
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Longest a decision waits for the store (all its lookups together); past it the request
    /// is refused with 503 `store_unavailable`.
    #[serde(with = "humantime_serde")]
    pub decision_deadline: Duration,
    /// Longest cached grants are honoured once the cache cannot confirm it is current (push
    /// invalidation lost and the store unreachable): past it, entries must be reloaded.
    #[serde(with = "humantime_serde")]
    pub max_staleness: Duration,
    /// How often the invalidation listener sends itself a heartbeat through the database.
    #[serde(with = "humantime_serde")]
    pub listener_heartbeat: Duration,
    /// A listener whose heartbeat has not come back for this long is declared dead.
    #[serde(with = "humantime_serde")]
    pub listener_timeout: Duration,
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
            pool_acquire_timeout: Duration::from_secs(1),
            query_timeout: Duration::from_secs(1),
            decision_deadline: Duration::from_secs(2),
            max_staleness: Duration::from_secs(30),
            listener_heartbeat: Duration::from_secs(1),
            listener_timeout: Duration::from_secs(3),
            migrate_on_start: false,
            cache: CacheConfig::default(),
        }
    }
}

/// `[store.cache]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Memory budget of all policy caches together, in bytes (entries are weighed by their
    /// approximate size), split between the caches by [`MEMORY_SHARES`].
    #[serde(with = "byte_size")]
    pub max_memory: u64,
    /// Longest an entry is trusted while the listener is up (a safety net; push invalidation
    /// normally evicts long before).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Entry lifetime while push invalidation is down (listener lost or not yet connected);
    /// after it an entry is refreshed in the background while still being served.
    #[serde(with = "humantime_serde")]
    pub listener_fallback_ttl: Duration,
    /// How long "does not exist" answers are remembered (their own, smaller budget).
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Store lookups per second for API key ids found in no cache (unknown or cold keys);
    /// beyond it such requests get 429 `rate_limited`, so random keys cannot load the database.
    pub api_key_miss_rate: u32,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_memory: 256 << 20,
            ttl: Duration::from_secs(600),
            listener_fallback_ttl: Duration::from_secs(5),
            negative_ttl: Duration::from_secs(10),
            api_key_miss_rate: 50,
        }
    }
}

/// How `max_memory` is split, in thousandths, per cache (`negative`: every "does not exist"
/// answer). Documented in docs/STORE.md.
pub const MEMORY_SHARES: [(&str, u64); 11] = [
    ("users", 190),
    ("user_keys", 10),
    ("groups", 60),
    ("group_aliases", 5),
    ("group_mappings", 5),
    ("nodes", 340),
    ("protected_nodes", 10),
    ("node_ids", 60),
    ("routes", 120),
    ("api_keys", 100),
    ("negative", 100),
];

impl CacheConfig {
    /// The bytes `cache` may hold (its share of `max_memory`).
    pub fn budget(&self, cache: &str) -> u64 {
        let share = MEMORY_SHARES
            .iter()
            .find(|(name, _)| *name == cache)
            .map_or(0, |(_, s)| *s);
        (self.max_memory / 1000).saturating_mul(share).max(1)
    }
}

/// `max_memory` as a number of bytes or a string with a unit (`"256MiB"`, `"1GiB"`, `"512KiB"`).
mod byte_size {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(b) => Ok(b),
            Raw::Text(t) => parse(&t).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a size (bytes, or a number with KiB, MiB or GiB)"
                ))
            }),
        }
    }

    pub(super) fn parse(t: &str) -> Option<u64> {
        let t = t.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, unit) = t.split_at(split);
        let n: u64 = n.parse().ok()?;
        let mult = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => return None,
        };
        n.checked_mul(mult)
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
        for (key, d) in [
            ("store.query_timeout", self.query_timeout),
            ("store.decision_deadline", self.decision_deadline),
            ("store.max_staleness", self.max_staleness),
            ("store.listener_heartbeat", self.listener_heartbeat),
            ("store.listener_timeout", self.listener_timeout),
        ] {
            if d.is_zero() {
                p.push(key, "must be greater than zero");
            }
        }
        if self.listener_timeout <= self.listener_heartbeat {
            p.push(
                "store.listener_timeout",
                "must be longer than `store.listener_heartbeat`",
            );
        }
        let c = &self.cache;
        if c.max_memory < 1 << 20 {
            p.push("store.cache.max_memory", "must be at least 1MiB");
        }
        if c.api_key_miss_rate == 0 {
            p.push("store.cache.api_key_miss_rate", "must be at least 1");
        }
        for (key, d) in [
            ("store.cache.ttl", c.ttl),
            ("store.cache.listener_fallback_ttl", c.listener_fallback_ttl),
            ("store.cache.negative_ttl", c.negative_ttl),
        ] {
            if d.is_zero() {
                p.push(key, "must be greater than zero");
            }
        }
        if c.listener_fallback_ttl > c.ttl {
            p.push(
                "store.cache.listener_fallback_ttl",
                "must not be longer than `store.cache.ttl`",
            );
        }
        if c.listener_fallback_ttl > self.max_staleness {
            p.push(
                "store.cache.listener_fallback_ttl",
                "must not be longer than `store.max_staleness`",
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
    fn durations_are_humantime_strings_and_sizes_take_units() {
        let c: StoreConfig = toml::from_str(
            "kind = \"postgres\"\nmax_staleness = \"2m\"\n[cache]\nlistener_fallback_ttl = \"3s\"\n\
             max_memory = \"64MiB\"",
        )
        .expect("parses");
        assert_eq!(c.max_staleness, Duration::from_secs(120));
        assert_eq!(c.cache.listener_fallback_ttl, Duration::from_secs(3));
        assert_eq!(c.cache.max_memory, 64 << 20);
        assert!(!c.migrate_on_start);
        assert_eq!(byte_size::parse("2GiB"), Some(2 << 30));
        assert_eq!(byte_size::parse("12345"), Some(12345));
        assert_eq!(byte_size::parse("1 MiB"), Some(1 << 20));
        assert_eq!(byte_size::parse("1MB"), None);
    }

    #[test]
    fn the_memory_shares_add_up_to_the_whole_budget() {
        let total: u64 = MEMORY_SHARES.iter().map(|(_, s)| s).sum();
        assert_eq!(total, 1000);
        let c = CacheConfig::default();
        assert_eq!(c.budget("nodes"), (256 << 20) / 1000 * 340);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = problems(
            "kind = \"file\"\ndatabase_url_env = \"no spaces\"\npool_max_connections = 0\n\
             decision_deadline = \"0s\"\n\
             [cache]\nmax_memory = 1000\nlistener_fallback_ttl = \"1h\"",
        );
        assert_eq!(p.len(), 7, "{p:?}");
        assert!(p[0].starts_with("store.policy_file:"));
    }

    #[test]
    fn a_database_url_in_the_file_is_rejected() {
        let r: Result<StoreConfig, _> = toml::from_str("database_url = \"postgres://u:pw@h/db\"");
        assert!(r.is_err());
    }
}
