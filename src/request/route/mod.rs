//! The route table: profile files (`docs/ROUTES.md`) loaded, validated (every problem reported
//! at once) and compiled into a segment-trie matcher. Operator `extra` files load after the
//! shipped profiles; a route with an existing id replaces it.

mod compile;
mod matcher;
pub mod schema;

pub use schema::{ItemScope, ProfileFile, RoutesConfig, Unmatched, UnmatchedConfig};

use super::body::BodyPath;
use super::normalize::Prefixes;
use super::{Api, CheckKind, CheckScope, SectionPolicy};
use compile::{compile_route, is_literal};
pub use matcher::segment_guid;
use matcher::Trie;
use schema::RouteDef;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

/// Route names that no table route has, shared instead of allocated per request: the
/// backoffice fallback's and the development placeholder's (`compile` refuses both as ids), and
/// the empty name of a request not classified yet.
pub static UNMATCHED: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unmatched"));
pub static PASSTHROUGH: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("passthrough"));
pub static NOT_YET: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(""));

/// Why the route table could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("cannot read route file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse route file `{path}`")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("invalid route table: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// HTTP methods a route may name. HEAD is matched as GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ];

    /// Parses a method name (case-insensitive; `HEAD` is `GET`); `None` for any other method.
    pub fn parse(s: &str) -> Option<Method> {
        const NAMES: [(&str, Method); 6] = [
            ("GET", Method::Get),
            ("HEAD", Method::Get),
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("PATCH", Method::Patch),
            ("DELETE", Method::Delete),
        ];
        // Compared in place: no upper-cased copy of the method per request.
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, m)| m)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One segment of a compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// Lower-case literal, compared ASCII case-insensitively.
    Literal(String),
    /// `{name:guid}`.
    Guid(String),
    /// `{name}`.
    Param(String),
    /// `{*name}`: the rest of the path, zero or more segments.
    CatchAll(String),
}

/// Where a check's nodes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The path parameter at this segment index (a catch-all: from there to the end).
    Path {
        index: usize,
        catch_all: bool,
    },
    /// Every value of this query parameter (name lower-case).
    Query(String),
    /// A body field.
    Body {
        path: BodyPath,
        null_root: bool,
    },
    Root,
    RecycleBin,
}

/// A config setting a check can depend on (`when = "…"` in a profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `item_scope=start_nodes`: applies only with `[authz] item_scope = "start_nodes"`.
    ItemScopeStartNodes,
}

/// One compiled check.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub kind: CheckKind,
    pub scope: CheckScope,
    /// The source as written (`path:id`), reported in `Target` and `routes match`.
    pub source_text: Arc<str>,
    pub source: Source,
    /// Each name shared with every grant and audit event that names it.
    pub verbs: Arc<[Arc<str>]>,
    /// The config the check depends on; `None`: always applies.
    pub when: Option<Condition>,
}

impl CheckSpec {
    /// Whether the check applies under `[authz] item_scope = item_scope`.
    pub fn applies(&self, item_scope: ItemScope) -> bool {
        match self.when {
            None => true,
            Some(Condition::ItemScopeStartNodes) => item_scope == ItemScope::StartNodes,
        }
    }
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: Arc<str>,
    pub api: Api,
    pub method: Method,
    pub template: String,
    pub segs: Vec<Seg>,
    pub sections: SectionPolicy,
    pub cultures: Option<BodyPath>,
    /// Segment indices of the `decode_path` parameters, the only segments that may hold `%2F`
    /// (a catch-all's index covers every segment from it to the end).
    pub decode: Vec<usize>,
    pub checks: Vec<CheckSpec>,
    /// The definition as loaded (for `routes list`).
    pub def: RouteDef,
}

impl Route {
    /// Whether the body must be read before deciding.
    pub fn needs_body(&self) -> bool {
        self.cultures.is_some()
            || self
                .checks
                .iter()
                .any(|c| matches!(c.source, Source::Body { .. }))
    }
}

/// The compiled table: routes, protected prefixes and the matcher.
#[derive(Debug)]
pub struct RouteTable {
    pub routes: Vec<Route>,
    /// `(api, prefix as written)`, in load order.
    pub prefixes: Vec<(Api, String)>,
    pub prefix_segs: Prefixes,
    /// The files the table was built from, in load order.
    pub profiles: Vec<LoadedProfile>,
    trie: Trie,
}

/// One loaded profile file, as `check-config` and the startup log name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedProfile {
    /// As configured: `builtin:umbraco-management` or a file path.
    pub name: String,
    /// The built-in profile an alias stands for.
    pub alias_of: Option<&'static str>,
    /// The Umbraco version the file was generated from (its `umbraco` key).
    pub umbraco: Option<String>,
    pub routes: usize,
}

impl std::fmt::Display for LoadedProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)?;
        let mut about: Vec<String> = Vec::new();
        if let Some(a) = self.alias_of {
            about.push(format!("= {a}"));
        }
        if let Some(v) = &self.umbraco {
            about.push(format!("Umbraco {v}"));
        }
        about.push(format!("{} routes", self.routes));
        write!(f, " ({})", about.join(", "))
    }
}

/// The shipped profiles compiled into the binary, named `builtin:<name>` in `[routes] profiles`,
/// so the default config works wherever the binary runs. One Management profile per supported
/// Umbraco version (generated by `scripts/gen-routes.py`).
pub const BUILTIN_PROFILES: [(&str, &str); 3] = [
    (
        "builtin:umbraco-management-v17",
        include_str!("../../../config/routes/umbraco-management-v17.toml"),
    ),
    (
        "builtin:umbraco-management-v18",
        include_str!("../../../config/routes/umbraco-management-v18.toml"),
    ),
    (
        "builtin:umbraco-delivery",
        include_str!("../../../config/routes/umbraco-delivery.toml"),
    ),
];

/// Built-in names that stand for another: `builtin:umbraco-management` is the version the README
/// recommends, Umbraco 17 LTS (on an 18 upstream its 18-only endpoints are denied, never
/// loosened; see README "Route profiles").
pub const BUILTIN_ALIASES: [(&str, &str); 1] = [(
    "builtin:umbraco-management",
    "builtin:umbraco-management-v17",
)];

/// The built-in profile `name` stands for (itself when it is no alias), if it is built in.
fn builtin(name: &Path) -> Option<(&'static str, &'static str)> {
    let name = name.to_str()?;
    let target = BUILTIN_ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, target)| *target);
    BUILTIN_PROFILES.iter().find(|(n, _)| *n == target).copied()
}

impl RouteTable {
    /// Loads profile and extra files (paths relative to `base_dir`, or `builtin:` names),
    /// validates and compiles.
    pub fn load(cfg: &RoutesConfig, base_dir: &Path) -> Result<RouteTable, RouteError> {
        let read = |p: &PathBuf| -> Result<(PathBuf, ProfileFile), RouteError> {
            let path = match builtin(p) {
                Some(_) => p.clone(),
                None => base_dir.join(p),
            };
            let text = match builtin(p) {
                Some((_, text)) => text.to_owned(),
                None => std::fs::read_to_string(&path).map_err(|source| RouteError::Read {
                    path: path.clone(),
                    source,
                })?,
            };
            let file = toml::from_str(&text).map_err(|e| RouteError::Parse {
                path: path.clone(),
                source: Box::new(e),
            })?;
            Ok((path, file))
        };
        // Two versions of the built-in Management profile (or one twice) would clash on every
        // route id: say so once.
        let managements: Vec<&PathBuf> = cfg
            .profiles
            .iter()
            .chain(&cfg.extra)
            .filter(|p| {
                builtin(p).is_some_and(|(n, _)| n.starts_with("builtin:umbraco-management"))
            })
            .collect();
        if let [a, b, ..] = managements.as_slice() {
            return Err(RouteError::Invalid(vec![format!(
                "`{}` and `{}` are both the built-in Umbraco Management profile: load one version",
                a.display(),
                b.display()
            )]));
        }
        let shipped = cfg
            .profiles
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        let extra = cfg.extra.iter().map(read).collect::<Result<Vec<_>, _>>()?;
        let mut table = Self::build(&shipped, &extra)?;
        for p in &mut table.profiles {
            p.alias_of = BUILTIN_ALIASES
                .iter()
                .find(|(alias, _)| *alias == p.name)
                .map(|(_, target)| *target);
        }
        Ok(table)
    }

    /// The loaded profiles, `, `-joined (for `check-config` and the startup log).
    pub fn describe_profiles(&self) -> String {
        self.profiles
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Validates and compiles already-parsed files. `extra` routes replace shipped ones by id.
    pub fn build(
        shipped: &[(PathBuf, ProfileFile)],
        extra: &[(PathBuf, ProfileFile)],
    ) -> Result<RouteTable, RouteError> {
        let mut problems = Vec::new();
        let profiles = shipped
            .iter()
            .chain(extra)
            .map(|(path, file)| LoadedProfile {
                name: path.display().to_string(),
                alias_of: None,
                umbraco: file.umbraco.clone(),
                routes: file.route.len(),
            })
            .collect();
        let mut prefixes: Vec<(Api, String)> = Vec::new();
        let mut routes: Vec<Route> = Vec::new();
        let mut by_id: HashMap<String, (usize, bool)> = HashMap::new();
        let all = shipped
            .iter()
            .map(|f| (f, false))
            .chain(extra.iter().map(|f| (f, true)));
        for ((path, file), is_extra) in all {
            let at = path.display().to_string();
            let Some((api, lower)) = api_and_prefix(&at, file, &mut problems) else {
                continue;
            };
            match prefixes.iter().find(|(_, p)| *p == lower) {
                Some((a, _)) if *a != api => problems.push(format!(
                    "{at}: prefix `{lower}` already belongs to api `{}`",
                    a.as_str()
                )),
                Some(_) => {}
                None => prefixes.push((api, lower.clone())),
            }
            for def in &file.route {
                let here = format!("{at}: route `{}`", def.id);
                let Some(route) = compile_route(def, api, &lower, &here, &mut problems) else {
                    continue;
                };
                match by_id.get(&def.id).copied() {
                    Some((i, false)) if is_extra => {
                        routes[i] = route;
                        by_id.insert(def.id.clone(), (i, true));
                    }
                    Some(_) => problems.push(format!("{here}: duplicate route id")),
                    None => {
                        by_id.insert(def.id.clone(), (routes.len(), is_extra));
                        routes.push(route);
                    }
                }
            }
        }
        // Overlapping prefixes would make the API of a path depend on load order.
        for (i, (_, a)) in prefixes.iter().enumerate() {
            for (_, b) in &prefixes[i + 1..] {
                if a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/")) {
                    problems.push(format!("prefixes `{a}` and `{b}` overlap"));
                }
            }
        }
        let trie = Trie::build(&routes, &mut problems);
        if !problems.is_empty() {
            return Err(RouteError::Invalid(problems));
        }
        let prefix_segs = Prefixes::new(prefixes.iter().map(|(_, p)| p.as_str()));
        Ok(RouteTable {
            routes,
            prefixes,
            prefix_segs,
            profiles,
            trie,
        })
    }

    /// The highest-precedence route for `method` and the canonical path segments, if any.
    pub fn find(&self, method: Method, segs: &[&str]) -> Option<&Route> {
        self.find_index(method, segs).map(|i| &self.routes[i])
    }

    /// Like [`RouteTable::find`], returning the route's index in `routes`.
    pub fn find_index(&self, method: Method, segs: &[&str]) -> Option<usize> {
        self.trie.find(method, segs)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod profile_tests;

/// A profile file's API and its prefix in lower case, or why not.
fn api_and_prefix(
    at: &str,
    file: &ProfileFile,
    problems: &mut Vec<String>,
) -> Option<(Api, String)> {
    let api = match file.api.as_str() {
        "management" => Api::Management,
        "delivery" => Api::Delivery,
        other => {
            problems.push(format!("{at}: unknown api `{other}`"));
            return None;
        }
    };
    let prefix_ok = file.prefix.starts_with('/')
        && file.prefix.len() > 1
        && !file.prefix.ends_with('/')
        && file.prefix.split('/').skip(1).all(is_literal);
    if !prefix_ok {
        problems.push(format!("{at}: invalid prefix `{}`", file.prefix));
        return None;
    }
    Some((api, file.prefix.to_ascii_lowercase()))
}

#[cfg(test)]
mod decision_tests;
