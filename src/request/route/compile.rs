//! Compiling one profile route: its template (segments), section policy, `decode_path`
//! parameters and checks (node sources, scopes, conditions), with every problem recorded.

use super::schema::{CheckDef, RouteDef};
use super::{CheckSpec, Condition, Method, Route, Seg, Source};
use crate::request::body::BodyPath;
use crate::request::{Api, CheckKind, CheckScope, SectionPolicy};
use std::sync::Arc;

/// A literal segment as it may appear in a template or prefix.
pub(super) fn is_literal(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= super::matcher::MAX_LITERAL
        && !s.ends_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub(super) fn compile_route(
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
    let decode = decode_segments(&def.decode_path, &segs, here, problems);
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
        decode,
        checks,
        def: def.clone(),
    })
}

/// Segment indices of the `decode_path` parameters: `{x}` or `{*x}`, never `{x:guid}` (a GUID
/// never holds a `/`) and never a literal.
fn decode_segments(
    names: &[String],
    segs: &[Seg],
    here: &str,
    problems: &mut Vec<String>,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match segs.iter().position(|s| param_name(s) == Some(name)) {
            Some(i) if matches!(segs[i], Seg::Param(_) | Seg::CatchAll(_)) => out.push(i),
            Some(_) => problems.push(format!(
                "{here}: decode_path `{name}` is a guid parameter (a guid never holds `/`)"
            )),
            None => problems.push(format!(
                "{here}: decode_path `{name}` names no parameter of the path"
            )),
        }
    }
    out
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
    let when = match c.when.as_deref() {
        None => None,
        Some("item_scope=start_nodes") => Some(Condition::ItemScopeStartNodes),
        Some(other) => {
            problems.push(format!(
                "{here}: unknown condition `{other}` (known: `item_scope=start_nodes`)"
            ));
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(CheckSpec {
        kind: kind?,
        scope: scope?,
        source_text: Arc::from(c.node.as_str()),
        source: source?,
        verbs: c.verbs.iter().map(|v| Arc::from(v.as_str())).collect(),
        when,
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
