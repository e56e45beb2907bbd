//! The serde schema of route profile files (`docs/ROUTES.md`) and of the `[routes]` config
//! section. Plain data: `route/mod.rs` validates and compiles it.
//!
//! Enumerated fields (`kind`, `policy`, `scope`, …) are read as strings on purpose, so that one
//! bad value does not stop the load: validation reports every problem of every file at once.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One profile file: an API, its protected prefix and its routes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// The Umbraco version the profile was generated from (`17.4.2`), shown by `check-config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umbraco: Option<String>,
    pub api: String,
    pub prefix: String,
    #[serde(default)]
    pub route: Vec<RouteDef>,
}

/// One `[[route]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDef {
    pub id: String,
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cultures: Option<String>,
    /// Path parameters Umbraco URL-decodes itself (`DecodePath`): only their segments may carry
    /// an encoded `/` (`%2F`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decode_path: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check: Vec<CheckDef>,
}

/// One `[[route.check]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    pub kind: String,
    pub node: String,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null: Option<String>,
    /// A condition the config must meet for the check to apply (`item_scope=start_nodes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

/// `[authz] item_scope`: how far `GET item/document?id=…` and `GET item/media?id=…` reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemScope {
    /// As Umbraco: item summaries for any id (the default).
    #[default]
    Umbraco,
    /// Only ids inside the caller's start nodes; the checks marked
    /// `when = "item_scope=start_nodes"` in the route profiles apply.
    StartNodes,
}

/// What happens to a request under a protected prefix that matches no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// 404 `no_route` (the default).
    #[default]
    Deny,
    /// Allowed for any approved back-office user (route id `unmatched`).
    Backoffice,
}

/// `[routes.unmatched]`: the unmatched-route policy per API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct UnmatchedConfig {
    pub management: Unmatched,
    pub delivery: Unmatched,
}

/// The `[routes]` config section.
///
/// ```toml
/// [routes]
/// profiles = ["builtin:umbraco-management", "builtin:umbraco-delivery"] # or file paths;
///                                   # builtin:umbraco-management-v17 | -v18 name a version
/// extra = ["my-routes.toml"]        # same id replaces a shipped route
/// body_limit = 1048576              # bytes read from bodies that carry node ids
/// passthrough_outside_prefixes = false # true: forward the rest of the site unchecked
/// [routes.unmatched]
/// management = "deny"               # or "backoffice"
/// delivery = "deny"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutesConfig {
    /// Shipped profile files, relative to the config file's directory.
    pub profiles: Vec<PathBuf>,
    /// Operator files loaded after the profiles; a route with an existing id replaces it.
    pub extra: Vec<PathBuf>,
    /// Maximum body size inspected for node ids and cultures, in bytes (over it: 413).
    pub body_limit: usize,
    pub unmatched: UnmatchedConfig,
    /// Requests outside every protected prefix are forwarded (canonicalised) without checks;
    /// when false (the default: deny by default) they are denied with `no_route`. Set it for
    /// a sidecar in front of the whole site (public pages, back-office static files).
    pub passthrough_outside_prefixes: bool,
}

/// Largest accepted `body_limit` (64 MiB): bodies are buffered in memory before forwarding.
pub const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

impl Default for RoutesConfig {
    fn default() -> Self {
        RoutesConfig {
            profiles: vec![
                PathBuf::from("builtin:umbraco-management"),
                PathBuf::from("builtin:umbraco-delivery"),
            ],
            extra: Vec::new(),
            body_limit: 1024 * 1024,
            unmatched: UnmatchedConfig::default(),
            passthrough_outside_prefixes: false,
        }
    }
}

impl RoutesConfig {
    /// Records every problem of the section itself (the route files are checked when loaded by
    /// `Classifier::from_config`).
    pub fn validate(&self, p: &mut crate::config::Problems) {
        if self.profiles.is_empty() {
            p.push("routes.profiles", "at least one route profile is required");
        }
        if self.body_limit == 0 {
            p.push("routes.body_limit", "must be greater than 0");
        }
        if self.body_limit > MAX_BODY_LIMIT {
            p.push(
                "routes.body_limit",
                format!(
                    "`{}` is over the maximum of {MAX_BODY_LIMIT} bytes",
                    self.body_limit
                ),
            );
        }
        for (key, files) in [
            ("routes.profiles", &self.profiles),
            ("routes.extra", &self.extra),
        ] {
            for f in files {
                if f.as_os_str().is_empty() {
                    p.push(key, "empty file name");
                }
            }
        }
    }
}
