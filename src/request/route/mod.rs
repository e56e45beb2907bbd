//! The route table: profile files (`docs/ROUTES.md`) loaded, validated (every problem reported
//! at once) and compiled into a segment-trie matcher. Operator `extra` files load after the
//! shipped profiles; a route with an existing id replaces it.

mod matcher;
pub mod schema;

pub use schema::{ProfileFile, RoutesConfig, Unmatched, UnmatchedConfig};

use super::body::BodyPath;
use super::normalize::Prefixes;
use super::{Api, CheckKind, CheckScope, SectionPolicy};
use matcher::Trie;
use schema::{CheckDef, RouteDef};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        Some(match s.to_ascii_uppercase().as_str() {
            "GET" | "HEAD" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
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

/// One compiled check.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub kind: CheckKind,
    pub scope: CheckScope,
    /// The source as written (`path:id`), reported in `Target` and `routes match`.
    pub source_text: String,
    pub source: Source,
    pub verbs: Vec<String>,
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
    trie: Trie,
}

/// The shipped profiles compiled into the binary, named `builtin:<name>` in `[routes] profiles`,
/// so the default config works wherever the binary runs.
pub const BUILTIN_PROFILES: [(&str, &str); 2] = [
    (
        "builtin:umbraco-management",
        include_str!("../../../config/routes/umbraco-management.toml"),
    ),
    (
        "builtin:umbraco-delivery",
        include_str!("../../../config/routes/umbraco-delivery.toml"),
    ),
];

impl RouteTable {
    /// Loads profile and extra files (paths relative to `base_dir`, or `builtin:` names),
    /// validates and compiles.
    pub fn load(cfg: &RoutesConfig, base_dir: &Path) -> Result<RouteTable, RouteError> {
        let read = |p: &PathBuf| -> Result<(PathBuf, ProfileFile), RouteError> {
            let builtin = BUILTIN_PROFILES
                .iter()
                .find(|(name, _)| Path::new(name) == p.as_path());
            let path = match builtin {
                Some(_) => p.clone(),
                None => base_dir.join(p),
            };
            let text = match builtin {
                Some((_, text)) => (*text).to_owned(),
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
        let shipped = cfg
            .profiles
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        let extra = cfg.extra.iter().map(read).collect::<Result<Vec<_>, _>>()?;
        Self::build(&shipped, &extra)
    }

    /// Validates and compiles already-parsed files. `extra` routes replace shipped ones by id.
    pub fn build(
        shipped: &[(PathBuf, ProfileFile)],
        extra: &[(PathBuf, ProfileFile)],
    ) -> Result<RouteTable, RouteError> {
        let mut problems = Vec::new();
        let mut prefixes: Vec<(Api, String)> = Vec::new();
        let mut routes: Vec<Route> = Vec::new();
        let mut by_id: HashMap<String, (usize, bool)> = HashMap::new();
        let all = shipped
            .iter()
            .map(|f| (f, false))
            .chain(extra.iter().map(|f| (f, true)));
        for ((path, file), is_extra) in all {
            let at = path.display().to_string();
            let api = match file.api.as_str() {
                "management" => Api::Management,
                "delivery" => Api::Delivery,
                other => {
                    problems.push(format!("{at}: unknown api `{other}`"));
                    continue;
                }
            };
            let prefix_ok = file.prefix.starts_with('/')
                && file.prefix.len() > 1
                && !file.prefix.ends_with('/')
                && file.prefix.split('/').skip(1).all(is_literal);
            if !prefix_ok {
                problems.push(format!("{at}: invalid prefix `{}`", file.prefix));
                continue;
            }
            let lower = file.prefix.to_ascii_lowercase();
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

/// A literal segment as it may appear in a template or prefix.
fn is_literal(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= matcher::MAX_LITERAL
        && !s.ends_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn compile_route(
    def: &RouteDef,
    api: Api,
    prefix: &str,
    here: &str,
    problems: &mut Vec<String>,
) -> Option<Route> {
    let before = problems.len();
    if def.id.is_empty() || def.id == "unmatched" || def.id == "passthrough" {
        problems.push(format!("{here}: invalid or reserved id"));
    }
    let method = Method::parse(&def.method).filter(|_| !def.method.eq_ignore_ascii_case("HEAD"));
    if method.is_none() {
        problems.push(format!("{here}: unsupported method `{}`", def.method));
    }
    let segs = parse_template(&def.path, here, problems);
    let lower = def.path.to_ascii_lowercase();
    if !(lower == prefix || lower.starts_with(&format!("{prefix}/"))) {
        problems.push(format!(
            "{here}: path `{}` is not under prefix `{prefix}`",
            def.path
        ));
    }
    let sections = match (&def.sections, &def.policy) {
        (Some(_), Some(_)) | (None, None) => {
            problems.push(format!(
                "{here}: exactly one of `sections` and `policy` is required"
            ));
            None
        }
        (Some(s), None) if s.is_empty() || s.iter().any(|x| x.trim().is_empty()) => {
            problems.push(format!("{here}: `sections` must list section aliases"));
            None
        }
        (Some(s), None) => Some(SectionPolicy::AnyOf(
            s.iter().map(|x| x.to_ascii_lowercase()).collect(),
        )),
        (None, Some(p)) => match p.as_str() {
            "admin" => Some(SectionPolicy::Admin),
            "backoffice" => Some(SectionPolicy::Backoffice),
            "anonymous" => Some(SectionPolicy::Anonymous),
            other => {
                problems.push(format!("{here}: unknown policy `{other}`"));
                None
            }
        },
    };
    let cultures = def.cultures.as_ref().and_then(|c| {
        let parsed = c.strip_prefix("body:").and_then(BodyPath::parse);
        if parsed.is_none() {
            problems.push(format!(
                "{here}: cultures `{c}` is not a `body:` field path"
            ));
        }
        parsed
    });
    let checks: Vec<CheckSpec> = def
        .check
        .iter()
        .filter_map(|c| compile_check(c, api, &segs, here, problems))
        .collect();
    if problems.len() > before {
        return None;
    }
    Some(Route {
        id: Arc::from(def.id.as_str()),
        api,
        method: method?,
        template: def.path.clone(),
        segs,
        sections: sections?,
        cultures,
        checks,
        def: def.clone(),
    })
}

fn parse_template(path: &str, here: &str, problems: &mut Vec<String>) -> Vec<Seg> {
    let mut segs = Vec::new();
    if !path.starts_with('/') || path.ends_with('/') || path.contains("//") {
        problems.push(format!(
            "{here}: path `{path}` must start with `/` and have no empty segment"
        ));
        return segs;
    }
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        let seg = if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if let Some(name) = inner.strip_prefix('*') {
                if i + 1 != parts.len() {
                    problems.push(format!(
                        "{here}: catch-all `{{*{name}}}` must be the last segment"
                    ));
                }
                Seg::CatchAll(name.to_owned())
            } else if let Some((name, constraint)) = inner.split_once(':') {
                if constraint != "guid" {
                    problems.push(format!("{here}: unknown constraint `{constraint}`"));
                }
                Seg::Guid(name.to_owned())
            } else {
                Seg::Param(inner.to_owned())
            }
        } else if is_literal(part) {
            Seg::Literal(part.to_ascii_lowercase())
        } else {
            problems.push(format!("{here}: invalid literal segment `{part}`"));
            continue;
        };
        let name = match &seg {
            Seg::Guid(n) | Seg::Param(n) | Seg::CatchAll(n) => Some(n),
            Seg::Literal(_) => None,
        };
        if let Some(n) = name {
            let valid = !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                problems.push(format!("{here}: invalid parameter name `{n}`"));
            } else if segs.iter().any(|s| param_name(s) == Some(n.as_str())) {
                problems.push(format!("{here}: parameter `{n}` appears twice"));
            }
        }
        segs.push(seg);
    }
    segs
}

fn param_name(s: &Seg) -> Option<&str> {
    match s {
        Seg::Guid(n) | Seg::Param(n) | Seg::CatchAll(n) => Some(n),
        Seg::Literal(_) => None,
    }
}

fn compile_check(
    c: &CheckDef,
    api: Api,
    segs: &[Seg],
    here: &str,
    problems: &mut Vec<String>,
) -> Option<CheckSpec> {
    let before = problems.len();
    let kind = match c.kind.as_str() {
        "document" => Some(CheckKind::Document),
        "media" => Some(CheckKind::Media),
        "element" => Some(CheckKind::Element),
        "element-folder" => Some(CheckKind::ElementFolder),
        "document-version" => Some(CheckKind::DocumentVersion),
        "element-version" => Some(CheckKind::ElementVersion),
        "user" => Some(CheckKind::User),
        "user-group" => Some(CheckKind::UserGroup),
        other => {
            problems.push(format!("{here}: unknown check kind `{other}`"));
            None
        }
    };
    let scope = match c.scope.as_deref() {
        None | Some("node") => Some(CheckScope::Node),
        Some("branch") => Some(CheckScope::Branch),
        Some(other) => {
            problems.push(format!("{here}: unknown check scope `{other}`"));
            None
        }
    };
    let null_root = match c.null.as_deref() {
        None | Some("reject") => false,
        Some("root") => true,
        Some(other) => {
            problems.push(format!("{here}: unknown null policy `{other}`"));
            false
        }
    };
    let source = parse_source(&c.node, api, segs, null_root, here, problems);
    if c.null.is_some() && !matches!(source, Some(Source::Body { .. })) {
        problems.push(format!("{here}: `null` applies to body sources only"));
    }
    if c.verbs.iter().any(|v| v.trim().is_empty()) {
        problems.push(format!("{here}: empty verb"));
    }
    if problems.len() > before {
        return None;
    }
    Some(CheckSpec {
        kind: kind?,
        scope: scope?,
        source_text: c.node.clone(),
        source: source?,
        verbs: c.verbs.clone(),
    })
}

fn parse_source(
    node: &str,
    api: Api,
    segs: &[Seg],
    null_root: bool,
    here: &str,
    problems: &mut Vec<String>,
) -> Option<Source> {
    let bad = |problems: &mut Vec<String>, why: &str| {
        problems.push(format!("{here}: node source `{node}` {why}"));
        None
    };
    match node.split_once(':') {
        None if node == "root" => Some(Source::Root),
        None if node == "recycle-bin" => Some(Source::RecycleBin),
        Some(("path", name)) => {
            let Some(index) = segs.iter().position(|s| param_name(s) == Some(name)) else {
                return bad(problems, "names no parameter of the path");
            };
            let catch_all = matches!(segs[index], Seg::CatchAll(_));
            if catch_all && api != Api::Delivery {
                return bad(
                    problems,
                    "is a catch-all: only delivery routes read content paths",
                );
            }
            Some(Source::Path { index, catch_all })
        }
        Some(("query", name)) if !name.is_empty() => Some(Source::Query(name.to_ascii_lowercase())),
        Some(("body", field)) => match BodyPath::parse(field) {
            Some(path) => Some(Source::Body { path, null_root }),
            None => bad(problems, "is not a valid body field path"),
        },
        _ => bad(
            problems,
            "is not path:NAME, query:NAME, body:FIELD, root or recycle-bin",
        ),
    }
}

#[cfg(test)]
mod tests;
