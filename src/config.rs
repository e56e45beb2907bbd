//! Configuration: the TOML file schema (serde, `deny_unknown_fields`) and its validation into
//! the runtime [`Config`]. Every problem is collected and reported at once.
//!
//! Each module owns the schema of its own section and a `validate(&self, &mut Problems)`; this
//! file composes them. Any value can be overridden from the environment:
//! `PORTCULLIS_<SECTION>__<KEY>[__<KEY>…]` (double underscore between levels, names
//! case-insensitive), e.g. `PORTCULLIS_UPSTREAM__MANAGEMENT=10.0.0.5:8080` or
//! `PORTCULLIS_MODE=enforce`. The value is read as a TOML value when it parses as one (numbers,
//! booleans, arrays), else as a string. Secrets are never values in the file: the sections name
//! the environment variable (or file) to read them from.

mod env;
mod validate;

use env::apply_env_overrides;
pub use env::env_overrides;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use validate::validate;

/// Every problem found while validating, reported together (`check-config` exits 64).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl Problems {
    /// Records one problem; `at` is the dotted key (`upstream.management`), `msg` lowercase.
    pub fn push(&mut self, at: &str, msg: impl std::fmt::Display) {
        self.0.push(format!("{at}: {msg}"));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not valid TOML for portcullis: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("`{path}` has {} problem(s):\n{problems}", problems.0.len())]
    Invalid { path: PathBuf, problems: Problems },
}

/// What the gateway does with a request that the route table classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Authenticate and authorize every request under a protected prefix.
    #[default]
    Enforce,
    /// PLACEHOLDER allow-all: forwards everything. Only accepted with `development = true`.
    Passthrough,
}

/// The file as written (each section's schema is `deny_unknown_fields`).
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    /// Marks a config as development-only; required for `mode = "passthrough"`.
    pub development: bool,
    pub mode: Mode,
    pub listen: ListenConfig,
    pub admin: crate::admin::AdminConfig,
    pub upstream: UpstreamConfig,
    pub headers: HeadersConfig,
    pub lifecycle: LifecycleConfig,
    pub routes: crate::request::route::RoutesConfig,
    pub authn: crate::authn::AuthnConfig,
    pub authz: crate::authz::DecisionPolicy,
    pub store: crate::store::StoreConfig,
    pub audit: crate::audit::AuditConfig,
    pub sync: crate::mirror::SyncConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Proxy listener (HTTP/1.1 and h2c).
    pub address: String,
    /// Worker threads for the proxy service.
    pub threads: usize,
    /// The whole inspected body (routes with node ids in the body) must arrive within this.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// A request's head must be complete this long after the connection's accept (a kept-alive
    /// connection: after the next request's first byte), else the connection closes (408 when
    /// anything was read).
    #[serde(with = "humantime_serde")]
    pub request_head_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// Connections the proxy listener holds open at once; more are closed at accept. Default:
    /// derived from the open-file limit (`proxy::edge::default_max_connections`).
    pub max_connections: Option<usize>,
    /// `Host` values served (`name` or `name:port`, case-insensitive); empty = any. Others: 421.
    pub allowed_hosts: Vec<String>,
    /// `[listen.limits]`: head, header-count, query and streamed-body sizes.
    pub limits: crate::proxy::head_check::Limits,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            address: "127.0.0.1:8080".into(),
            threads: 2,
            body_timeout: Duration::from_secs(10),
            request_head_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            max_connections: None,
            allowed_hosts: Vec::new(),
            limits: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// `host:port` of the Umbraco instance serving the Management API (and everything else).
    pub management: String,
    /// `host:port` for the Delivery API; defaults to `management`.
    pub delivery: Option<String>,
    /// `Host` header sent upstream; defaults to the client's.
    pub host: Option<String>,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Connect including any handshake.
    #[serde(with = "humantime_serde")]
    pub total_connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long an idle keep-alive connection to the upstream is kept.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    pub keepalive_pool: usize,
    /// Environment variable holding Umbraco's one real Delivery API key, injected upstream only
    /// for allowed Delivery requests made with a Portcullis key.
    pub delivery_api_key_env: Option<String>,
    /// `[upstream.credential]`: what Umbraco receives for callers without an Umbraco token.
    pub credential: crate::umbraco::CredentialConfig,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            management: String::new(),
            delivery: None,
            host: None,
            connect_timeout: Duration::from_secs(2),
            total_connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            keepalive_pool: 128,
            delivery_api_key_env: None,
            credential: crate::umbraco::CredentialConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HeadersConfig {
    /// Extra identity header names the upstream trusts; client-sent copies are always removed.
    pub identity: Vec<String>,
    /// Proxies whose `X-Forwarded-*` headers are believed (CIDRs).
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// After SIGTERM, how long the listener keeps accepting (with `/readyz` already 503) so
    /// that load balancers stop sending before it closes.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Once the listener is closed, how long in-flight requests may take to finish.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
    /// Reload when the config file changes (SIGHUP always reloads).
    pub watch: bool,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            drain_delay: Duration::from_secs(5),
            grace_period: Duration::from_secs(15),
            watch: true,
        }
    }
}

impl FileConfig {
    /// Deserializes section by section so that a mistake in one section (an unknown key, a
    /// wrong type) is reported together with the mistakes in all the others.
    fn from_table(table: toml::Table, p: &mut Problems) -> FileConfig {
        let mut f = FileConfig::default();
        for (key, value) in table {
            match key.as_str() {
                "development" => section(&key, value, p, &mut f.development),
                "mode" => section(&key, value, p, &mut f.mode),
                "listen" => section(&key, value, p, &mut f.listen),
                "admin" => section(&key, value, p, &mut f.admin),
                "upstream" => section(&key, value, p, &mut f.upstream),
                "headers" => section(&key, value, p, &mut f.headers),
                "lifecycle" => section(&key, value, p, &mut f.lifecycle),
                "routes" => section(&key, value, p, &mut f.routes),
                "authn" => section(&key, value, p, &mut f.authn),
                "authz" => section(&key, value, p, &mut f.authz),
                "store" => section(&key, value, p, &mut f.store),
                "audit" => section(&key, value, p, &mut f.audit),
                "sync" => section(&key, value, p, &mut f.sync),
                _ => p.push(&key, "unknown key"),
            }
        }
        f
    }
}

fn section<T: serde::de::DeserializeOwned>(
    key: &str,
    value: toml::Value,
    p: &mut Problems,
    slot: &mut T,
) {
    match T::deserialize(value) {
        Ok(v) => *slot = v,
        Err(e) => p.push(key, e.message().trim()),
    }
}

/// The validated configuration the gateway runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub file: FileConfig,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub management_upstream: SocketAddr,
    pub delivery_upstream: SocketAddr,
    pub trusted_proxies: Vec<IpNet>,
    pub identity_headers: Vec<http::HeaderName>,
    /// `listen.max_connections`, or the default derived from the open-file limit.
    pub max_connections: usize,
    /// The head checks (`listen.allowed_hosts`, `[listen.limits]`).
    pub head_policy: crate::proxy::head_check::HeadPolicy,
    /// The compiled route table (built here so `check-config` validates the route files).
    pub classifier: std::sync::Arc<crate::request::Classifier>,
}

impl Config {
    /// Reads, overrides from `env`, parses and validates `path`.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_str(path, &text, env)
    }

    /// Parses `text` (the content of `path`) with environment overrides and validates it.
    pub fn from_str(
        path: &Path,
        text: &str,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: path.to_owned(),
            message,
        };
        let mut value: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        apply_env_overrides(&mut value, env).map_err(parse_err)?;
        let mut problems = Problems::default();
        let file = FileConfig::from_table(value, &mut problems);
        let config = validate(path, file, &mut problems);
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            }),
        }
    }

    /// Directory relative paths in the config are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// An error and its causes, `: `-joined (config problems are shown to operators, not clients).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
