//! The `[audit]` config section: queue, batching, sampling, spool and the list of sinks.

use crate::config::Problems;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// `[audit]`: how events are queued, batched, spooled and where they go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub enabled: bool,
    /// Stamped on every event; empty means the `HOSTNAME` env var, else a random id.
    pub instance_id: String,
    /// In-memory queue length per sink; when full, events spill to the spool.
    pub queue_capacity: usize,
    /// Most events per sink write.
    pub batch_size: usize,
    /// A partial batch is written after this long.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// A sink write taking longer counts as a failure (the batch goes to the spool).
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// First wait before retrying a failed sink; doubles up to `max_retry_backoff`.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_retry_backoff: Duration,
    /// Fraction of allows recorded (0.0–1.0), chosen deterministically per event id. Denies are
    /// always recorded.
    pub sample_allow: f64,
    pub spool: SpoolConfig,
    pub sinks: Vec<SinkConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            instance_id: String::new(),
            queue_capacity: 8192,
            batch_size: 500,
            flush_interval: Duration::from_secs(1),
            write_timeout: Duration::from_secs(5),
            retry_backoff: Duration::from_millis(250),
            max_retry_backoff: Duration::from_secs(30),
            sample_allow: 1.0,
            spool: SpoolConfig::default(),
            sinks: vec![SinkConfig::Stdout { name: None }],
        }
    }
}

/// `[audit.spool]`: the on-disk overflow per sink (`{dir}/{sink}/`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Most bytes spooled per sink; past it events are dropped (counted, `spool_full`).
    pub max_bytes: u64,
    /// Segment file size before a new segment starts.
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
    /// With `fsync = "interval"`: most time between syncs.
    #[serde(with = "humantime_serde")]
    pub fsync_interval: Duration,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::from("/var/lib/portcullis/audit-spool"),
            max_bytes: 1 << 30,
            segment_bytes: 8 << 20,
            fsync: FsyncPolicy::Interval,
            fsync_interval: Duration::from_secs(1),
        }
    }
}

/// When spool appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// After every append (safest, slowest).
    Always,
    /// At most `fsync_interval` after an append.
    Interval,
    /// Left to the OS.
    Never,
}

/// One `[[audit.sinks]]` entry. `name` defaults to the kind and must be unique.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON lines on standard output.
    Stdout { name: Option<String> },
    /// JSON lines in a file rotated by size (`path.1` … `path.{keep}`).
    File {
        name: Option<String>,
        path: PathBuf,
        #[serde(default = "default_file_max_bytes")]
        max_bytes: u64,
        #[serde(default = "default_keep")]
        keep: u32,
    },
    /// Batched inserts into `audit_events`; the URL (it may hold a password) comes from an env var.
    Postgres {
        name: Option<String>,
        #[serde(default = "default_database_url_env")]
        database_url_env: String,
    },
    /// Batched `POST` of a JSON array; optional bearer token from an env var.
    Webhook {
        name: Option<String>,
        url: String,
        token_env: Option<String>,
    },
}

fn default_file_max_bytes() -> u64 {
    100 << 20
}
fn default_keep() -> u32 {
    5
}
fn default_database_url_env() -> String {
    "PORTCULLIS_AUDIT_DATABASE_URL".to_owned()
}

impl SinkConfig {
    /// The sink's name: the configured one or its kind.
    pub fn name(&self) -> &str {
        let (name, kind) = match self {
            SinkConfig::Stdout { name } => (name, "stdout"),
            SinkConfig::File { name, .. } => (name, "file"),
            SinkConfig::Postgres { name, .. } => (name, "postgres"),
            SinkConfig::Webhook { name, .. } => (name, "webhook"),
        };
        name.as_deref().unwrap_or(kind)
    }

    /// Records the problems of this sink's own settings (`at`: its dotted key).
    fn validate(&self, at: &str, p: &mut Problems) {
        match self {
            SinkConfig::Stdout { .. } => {}
            SinkConfig::File {
                path,
                max_bytes,
                keep,
                ..
            } => {
                if path.as_os_str().is_empty() {
                    p.push(&format!("{at}.path"), "must not be empty");
                }
                if *max_bytes < 4096 {
                    p.push(&format!("{at}.max_bytes"), "must be at least 4096");
                }
                if *keep == 0 {
                    p.push(&format!("{at}.keep"), "must be at least 1");
                }
            }
            SinkConfig::Postgres {
                database_url_env, ..
            } => {
                if database_url_env.is_empty() {
                    p.push(&format!("{at}.database_url_env"), "must name an env var");
                }
            }
            SinkConfig::Webhook { url, token_env, .. } => {
                match reqwest::Url::parse(url) {
                    Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {
                        if !u.username().is_empty() || u.password().is_some() {
                            p.push(
                                &format!("{at}.url"),
                                "must not carry credentials; use `token_env`",
                            );
                        }
                    }
                    Ok(u) => p.push(
                        &format!("{at}.url"),
                        format!("scheme `{}` is not http or https", u.scheme()),
                    ),
                    Err(e) => p.push(&format!("{at}.url"), format!("`{url}` is not a url: {e}")),
                }
                if token_env.as_deref() == Some("") {
                    p.push(&format!("{at}.token_env"), "must name an env var");
                }
            }
        }
    }
}

impl AuditConfig {
    /// Records every problem in the section (dotted keys under `audit.`).
    pub fn validate(&self, p: &mut Problems) {
        if self.queue_capacity == 0 {
            p.push("audit.queue_capacity", "must be at least 1");
        }
        if self.batch_size == 0 {
            p.push("audit.batch_size", "must be at least 1");
        }
        for (key, d) in [
            ("audit.flush_interval", self.flush_interval),
            ("audit.write_timeout", self.write_timeout),
            ("audit.retry_backoff", self.retry_backoff),
            ("audit.spool.fsync_interval", self.spool.fsync_interval),
        ] {
            if d.is_zero() {
                p.push(key, "must be greater than zero");
            }
        }
        if self.max_retry_backoff < self.retry_backoff {
            p.push(
                "audit.max_retry_backoff",
                "must not be below `retry_backoff`",
            );
        }
        if !(0.0..=1.0).contains(&self.sample_allow) {
            p.push(
                "audit.sample_allow",
                format!("`{}` is not between 0.0 and 1.0", self.sample_allow),
            );
        }
        if self.spool.dir.as_os_str().is_empty() {
            p.push("audit.spool.dir", "must not be empty");
        }
        if self.spool.segment_bytes < 4096 {
            p.push("audit.spool.segment_bytes", "must be at least 4096");
        }
        if self.spool.max_bytes < self.spool.segment_bytes {
            p.push("audit.spool.max_bytes", "must not be below `segment_bytes`");
        }
        if self.enabled && self.sinks.is_empty() {
            p.push(
                "audit.sinks",
                "at least one sink is needed when audit is enabled",
            );
        }
        let mut seen = HashSet::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            let at = format!("audit.sinks[{i}]");
            let name = sink.name();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                p.push(&at, format!("name `{name}` must be [A-Za-z0-9_-]+"));
            }
            if !seen.insert(name.to_owned()) {
                p.push(&at, format!("duplicate sink name `{name}`"));
            }
            sink.validate(&at, p);
        }
    }

    /// The instance id to stamp: configured, else `HOSTNAME`, else a random one.
    pub fn resolved_instance_id(&self) -> String {
        if !self.instance_id.is_empty() {
            return self.instance_id.clone();
        }
        match std::env::var("HOSTNAME") {
            Ok(h) if !h.is_empty() => h,
            _ => format!(
                "portcullis-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
