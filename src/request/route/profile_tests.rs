//! The shipped Management profiles held to facts about each Umbraco version, without Umbraco's
//! source: `tests/data/umbraco-openapi-facts.json` (every endpoint of each version's
//! `OpenApi.json`, and whether it is anonymous, authenticated only, or may answer 403 — derived
//! by `scripts/gen-routes.py`) and `tests/data/umbraco-node-checks.json` (every endpoint with a
//! node, culture, user or group check).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::tests::{find, G};
use super::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// (builtin name, version key in the facts file, routes, of which not in `OpenApi.json`).
const PROFILES: [(&str, &str, usize); 2] = [
    ("builtin:umbraco-management-v17", "17.4.2", 471),
    ("builtin:umbraco-management-v18", "18.1.0-rc", 524),
];

/// Served but hidden from `OpenApi.json` (`[ApiExplorerSettings(IgnoreApi = true)]` on
/// `BackOfficeController` and `BackOfficeGraphicsController`), plus OpenIddict's revocation
/// endpoint, which has no controller. All under `security/back-office/`.
const HIDDEN: [&str; 15] = [
    "GET /umbraco/management/api/v1/security/back-office/authorize",
    "GET /umbraco/management/api/v1/security/back-office/ExternalLinkLoginCallback",
    "GET /umbraco/management/api/v1/security/back-office/graphics/login-background",
    "GET /umbraco/management/api/v1/security/back-office/graphics/login-logo",
    "GET /umbraco/management/api/v1/security/back-office/graphics/login-logo-alternative",
    "GET /umbraco/management/api/v1/security/back-office/graphics/logo",
    "GET /umbraco/management/api/v1/security/back-office/graphics/logo-alternative",
    "GET /umbraco/management/api/v1/security/back-office/link-login-key",
    "GET /umbraco/management/api/v1/security/back-office/signout",
    "POST /umbraco/management/api/v1/security/back-office/link-login",
    "POST /umbraco/management/api/v1/security/back-office/login",
    "POST /umbraco/management/api/v1/security/back-office/revoke",
    "POST /umbraco/management/api/v1/security/back-office/token",
    "POST /umbraco/management/api/v1/security/back-office/unlink-login",
    "POST /umbraco/management/api/v1/security/back-office/verify-2fa",
];

/// Authenticated in `OpenApi.json` but `anonymous` here: `DenyLocalLoginIfConfigured` succeeds
/// the back-office requirement while local login is allowed (Umbraco
/// `Security/Authorization/DenyLocalLogin/DenyLocalLoginHandler.cs`).
const DENY_LOCAL_LOGIN: [&str; 3] = [
    "GET /umbraco/management/api/v1/security/configuration",
    "POST /umbraco/management/api/v1/security/forgot-password",
    "POST /umbraco/management/api/v1/security/forgot-password/reset",
];

fn load(name: &str) -> RouteTable {
    let cfg = RoutesConfig {
        profiles: vec![PathBuf::from(name)],
        ..RoutesConfig::default()
    };
    RouteTable::load(&cfg, Path::new(".")).unwrap()
}

fn data(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `GET /umbraco/…/{id}`: a route as `OpenApi.json` spells it (no constraint, no `*`).
fn openapi_key(r: &Route) -> String {
    let path: Vec<String> = r
        .template
        .split('/')
        .map(|s| match s.strip_prefix('{') {
            Some(p) => format!(
                "{{{}}}",
                p.trim_start_matches('*')
                    .trim_end_matches('}')
                    .split(':')
                    .next()
                    .unwrap()
            ),
            None => s.to_owned(),
        })
        .collect();
    format!("{} {}", r.method.as_str(), path.join("/"))
}

fn facts(version: &str) -> BTreeMap<String, String> {
    let f = data("umbraco-openapi-facts.json");
    f[version]["endpoints"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn each_management_profile_serves_exactly_its_umbraco_versions_endpoints() {
    for (name, version, count) in PROFILES {
        let t = load(name);
        let facts = facts(version);
        let ours: BTreeSet<String> = t.routes.iter().map(openapi_key).collect();
        assert_eq!(t.routes.len(), count, "{name}");
        assert_eq!(ours.len(), count, "{name}: two routes for one endpoint");
        let want: BTreeSet<String> = facts
            .keys()
            .cloned()
            .chain(HIDDEN.iter().map(|s| (*s).to_owned()))
            .collect();
        let missing: Vec<_> = want.difference(&ours).collect();
        let extra: Vec<_> = ours.difference(&want).collect();
        assert!(missing.is_empty(), "{name}: missing {missing:?}");
        assert!(
            extra.is_empty(),
            "{name}: not served by {version}: {extra:?}"
        );
        assert_eq!(t.profiles[0].umbraco.as_deref(), Some(version), "{name}");
    }
}

#[test]
fn anonymous_and_section_routes_agree_with_what_openapi_says_of_each_endpoint() {
    for (name, version, _) in PROFILES {
        let t = load(name);
        let facts = facts(version);
        for r in &t.routes {
            let key = openapi_key(r);
            let Some(fact) = facts.get(&key) else {
                continue; // hidden from OpenApi.json (checked above)
            };
            match (&r.sections, fact.as_str()) {
                (SectionPolicy::Anonymous, "anonymous") => {}
                (SectionPolicy::Anonymous, _) => assert!(
                    DENY_LOCAL_LOGIN.contains(&key.as_str()),
                    "{name}: {key} is anonymous here, {fact} in OpenApi.json"
                ),
                (_, "anonymous") => panic!("{name}: {key} is anonymous in OpenApi.json"),
                // More than the two base policies always yields a 403 response.
                (SectionPolicy::AnyOf(_) | SectionPolicy::Admin, f) => {
                    assert_eq!(f, "authorized", "{name}: {key}")
                }
                (SectionPolicy::Backoffice, _) => {}
            }
            if fact == "authenticated" {
                assert_eq!(r.sections, SectionPolicy::Backoffice, "{name}: {key}");
            }
        }
    }
}

#[test]
fn the_v17_profile_knows_no_library_section_and_no_element_checks() {
    let t = load("builtin:umbraco-management-v17");
    for r in &t.routes {
        if let SectionPolicy::AnyOf(s) = &r.sections {
            assert!(!s.iter().any(|x| x == "library"), "{}", r.id);
        }
        for c in &r.checks {
            assert!(
                !matches!(
                    c.kind,
                    CheckKind::Element | CheckKind::ElementFolder | CheckKind::ElementVersion
                ),
                "{}",
                r.id
            );
            assert!(
                !c.verbs.iter().any(|v| v.starts_with("Umb.Element")),
                "{}",
                r.id
            );
        }
    }
    let v18 = load("builtin:umbraco-management-v18");
    let library = v18
        .routes
        .iter()
        .filter(
            |r| matches!(&r.sections, SectionPolicy::AnyOf(s) if s.iter().any(|x| x == "library")),
        )
        .count();
    assert!(library > 50, "v18 lists library on {library} routes");
}

/// A request path that exercises `template` (a GUID for every parameter).
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { G } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_is_reached_by_a_request_for_its_own_template() {
    for (name, _, _) in PROFILES {
        let t = load(name);
        for r in &t.routes {
            let got = find(&t, r.method, &concrete(&r.template));
            assert_eq!(
                got,
                Some(&*r.id),
                "{name}: {} {}",
                r.method.as_str(),
                r.template
            );
        }
    }
}

/// `(kind, node source, verbs, scope, null)` in the ROUTES.md vocabulary.
type Check = (String, String, Vec<String>, &'static str, &'static str);

/// The checks a `umbraco-node-checks.json` entry implies (docs/ROUTES.md, "Checks").
fn expected_checks(entry: &Value) -> (Vec<Check>, Option<String>) {
    let mut out = Vec::new();
    let mut cultures = None;
    let version_kind = entry["node_kind"]
        .as_str()
        .filter(|k| k.ends_with("-version"));
    for c in entry["checks"].as_array().unwrap() {
        if let Some(cf) = c["cultures_from"].as_str() {
            cultures = Some(cf.to_owned());
        }
        let (resource, scope) = (
            c["resource"].as_str().unwrap(),
            c["scope"].as_str().unwrap(),
        );
        if scope == "cultures" || (resource == "user" && c["node_param"].is_null()) {
            continue; // dictionary cultures; the calling user itself (no node source)
        }
        let kind = version_kind.unwrap_or(resource).to_owned();
        let verbs: Vec<String> = c["verb"]
            .as_str()
            .map(|v| vec![v.to_owned()])
            .unwrap_or_default();
        let scope = if scope == "branch" { "branch" } else { "node" };
        let (names, places): (Vec<&str>, Vec<&str>) = match (&c["node_param"], &c["node_param_in"])
        {
            (Value::Null, _) => {
                let node = if c["scope"] == "recycle-bin" {
                    "recycle-bin"
                } else {
                    "root"
                };
                out.push((kind, node.to_owned(), verbs, "node", "reject"));
                continue;
            }
            (Value::String(n), Value::String(p)) => (vec![n], vec![p]),
            (Value::Array(n), Value::String(p)) => (
                n.iter().map(|v| v.as_str().unwrap()).collect(),
                vec![p.as_str(); n.len()],
            ),
            (Value::Array(n), Value::Array(p)) => (
                n.iter().map(|v| v.as_str().unwrap()).collect(),
                p.iter().map(|v| v.as_str().unwrap()).collect(),
            ),
            other => panic!("node_param {other:?}"),
        };
        for (name, place) in names.iter().zip(places) {
            let parent = name.starts_with("parent.") || name.starts_with("target.");
            let null = if place == "body" && parent {
                "root"
            } else {
                "reject"
            };
            out.push((
                kind.clone(),
                format!("{place}:{name}"),
                verbs.clone(),
                scope,
                null,
            ));
        }
    }
    out.sort();
    (out, cultures)
}

fn checks_of(r: &Route) -> Vec<Check> {
    let mut got: Vec<Check> = r
        .checks
        .iter()
        .map(|c| {
            let null = match c.source {
                Source::Body {
                    null_root: true, ..
                } => "root",
                _ => "reject",
            };
            let scope = match c.scope {
                CheckScope::Node => "node",
                CheckScope::Branch => "branch",
            };
            let kind = serde_json::to_value(c.kind).unwrap();
            (
                kind.as_str().unwrap().to_owned(),
                c.source_text.to_string(),
                c.verbs.iter().map(|v| v.to_string()).collect(),
                scope,
                null,
            )
        })
        .collect();
    got.sort();
    got
}

#[test]
fn every_node_check_endpoint_of_a_version_has_its_sections_node_source_and_verbs() {
    let entries = data("umbraco-node-checks.json");
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 104);
    for (name, version, _) in PROFILES {
        let t = load(name);
        let facts = facts(version);
        let mut seen = 0;
        for e in entries {
            let (method, path) = (e["method"].as_str().unwrap(), e["path"].as_str().unwrap());
            let at = format!("{name}: {method} {path}");
            let route = t
                .routes
                .iter()
                .find(|r| openapi_key(r) == format!("{method} {path}"));
            let Some(route) = route else {
                assert!(
                    !facts.contains_key(&format!("{method} {path}")),
                    "{at}: no route"
                );
                continue;
            };
            seen += 1;
            let want = if e["admin_only"].as_bool().unwrap() {
                SectionPolicy::Admin
            } else {
                // The reference lists 18's sections; 17 has no `library`.
                let mut s: Vec<String> = e["sections_any_of"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .filter(|s| version.starts_with("18") || s != "library")
                    .collect();
                s.sort();
                if s.is_empty() {
                    SectionPolicy::Backoffice
                } else {
                    SectionPolicy::AnyOf(s.into())
                }
            };
            let got = match &route.sections {
                SectionPolicy::AnyOf(s) => {
                    let mut s = s.to_vec();
                    s.sort();
                    SectionPolicy::AnyOf(s.into())
                }
                other => other.clone(),
            };
            assert_eq!(got, want, "{at}: sections");
            let (want, cultures) = expected_checks(e);
            assert_eq!(checks_of(route), want, "{at}: checks");
            let got_cultures = route
                .cultures
                .as_ref()
                .map(|c| format!("body:{}", c.as_str()));
            assert_eq!(got_cultures, cultures, "{at}: cultures");
        }
        assert!(seen >= 70, "{name}: only {seen} reference endpoints");
    }
}
