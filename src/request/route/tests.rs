//! Route table tests: schema validation (every problem reported), precedence, overrides and the
//! delivery profile. The Management profiles are checked in `profile_tests.rs`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;
use crate::request::normalize::canonicalize;

pub(super) const G: &str = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";

fn file(text: &str) -> (PathBuf, ProfileFile) {
    (PathBuf::from("test.toml"), toml::from_str(text).unwrap())
}

fn build(files: &[&str], extra: &[&str]) -> Result<RouteTable, RouteError> {
    let f: Vec<_> = files.iter().map(|t| file(t)).collect();
    let e: Vec<_> = extra.iter().map(|t| file(t)).collect();
    RouteTable::build(&f, &e)
}

fn problems(files: &[&str], extra: &[&str]) -> Vec<String> {
    match build(files, extra) {
        Err(RouteError::Invalid(p)) => p,
        other => panic!("expected invalid, got {other:?}"),
    }
}

const HEAD: &str = "api = \"management\"\nprefix = \"/umbraco/management/api\"\n";

fn route(id: &str, method: &str, path: &str) -> String {
    format!("[[route]]\nid = \"{id}\"\nmethod = \"{method}\"\npath = \"/umbraco/management/api/v1/{path}\"\npolicy = \"backoffice\"\n")
}

pub(super) fn find<'t>(t: &'t RouteTable, method: Method, path: &str) -> Option<&'t str> {
    let c = canonicalize(path, &t.prefix_segs).unwrap();
    let segs: Vec<&str> = c.segments().collect();
    t.find(method, &segs).map(|r| &*r.id)
}

#[test]
fn unknown_fields_are_rejected_by_the_schema() {
    let text = format!("{HEAD}[[route]]\nid = \"a\"\nmethod = \"GET\"\npath = \"/umbraco/management/api/a\"\npolicy = \"backoffice\"\ncolour = 1\n");
    assert!(toml::from_str::<ProfileFile>(&text).is_err());
}

#[test]
fn every_problem_in_a_file_is_reported_at_once() {
    let text = format!(
        "{HEAD}{}{}{}{}{}{}",
        route("dup", "GET", "a"),
        route("dup", "GET", "b"),
        "[[route]]\nid = \"both\"\nmethod = \"GET\"\npath = \"/umbraco/management/api/v1/c\"\npolicy = \"admin\"\nsections = [\"content\"]\n",
        "[[route]]\nid = \"neither\"\nmethod = \"GET\"\npath = \"/umbraco/management/api/v1/d\"\n",
        "[[route]]\nid = \"badcheck\"\nmethod = \"BREW\"\npath = \"/umbraco/management/api/v1/{*x}/e\"\npolicy = \"root\"\n[[route.check]]\nkind = \"page\"\nnode = \"path:nope\"\nnull = \"root\"\n",
        "[[route]]\nid = \"outside\"\nmethod = \"GET\"\npath = \"/elsewhere/{id:int}\"\npolicy = \"backoffice\"\n[[route.check]]\nkind = \"document\"\nnode = \"cookie:x\"\n",
    );
    let p = problems(&[&text], &[]);
    let joined = p.join("\n");
    for needle in [
        "route `dup`: duplicate route id",
        "route `both`: exactly one of `sections` and `policy`",
        "route `neither`: exactly one of `sections` and `policy`",
        "unsupported method `BREW`",
        "catch-all `{*x}` must be the last segment",
        "unknown policy `root`",
        "unknown check kind `page`",
        "node source `path:nope` names no parameter",
        "`null` applies to body sources only",
        "is not under prefix",
        "unknown constraint `int`",
        "node source `cookie:x` is not",
    ] {
        assert!(joined.contains(needle), "missing `{needle}` in:\n{joined}");
    }
}

#[test]
fn same_method_and_template_precedence_is_ambiguous() {
    let text = format!(
        "{HEAD}{}{}{}",
        route("a", "GET", "document/{id}"),
        route("b", "GET", "document/{key}"),
        route("c", "PUT", "document/{key}"),
    );
    let p = problems(&[&text], &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("routes `a` and `b` are ambiguous"));
}

#[test]
fn catch_all_node_sources_are_for_delivery_routes_only() {
    let text = format!("{HEAD}[[route]]\nid = \"x\"\nmethod = \"GET\"\npath = \"/umbraco/management/api/v1/x/{{*p}}\"\npolicy = \"backoffice\"\n[[route.check]]\nkind = \"document\"\nnode = \"path:p\"\n");
    assert!(problems(&[&text], &[])[0].contains("catch-all"));
}

#[test]
fn literal_beats_guid_beats_param_beats_catch_all() {
    let text = format!(
        "{HEAD}{}{}{}{}",
        route("lit", "GET", "doc/root"),
        route("guid", "GET", "doc/{id:guid}"),
        route("param", "GET", "doc/{name}"),
        route("rest", "GET", "doc/{*rest}"),
    );
    let t = build(&[&text], &[]).unwrap();
    let base = "/umbraco/management/api/v1/doc";
    assert_eq!(find(&t, Method::Get, &format!("{base}/ROOT")), Some("lit"));
    assert_eq!(find(&t, Method::Get, &format!("{base}/{G}")), Some("guid"));
    assert_eq!(
        find(&t, Method::Get, &format!("{base}/%7B{G}%7D")),
        Some("guid")
    );
    assert_eq!(
        find(&t, Method::Get, &format!("{base}/other")),
        Some("param")
    );
    assert_eq!(find(&t, Method::Get, &format!("{base}/a/b")), Some("rest"));
    assert_eq!(find(&t, Method::Get, base), Some("rest"));
    assert_eq!(find(&t, Method::Put, &format!("{base}/x")), None);
}

#[test]
fn matching_backtracks_to_a_lower_precedence_route_with_the_method() {
    let text = format!(
        "{HEAD}{}{}",
        route("lit-get", "GET", "doc/root/children"),
        route("param-put", "PUT", "doc/{id}/children"),
    );
    let t = build(&[&text], &[]).unwrap();
    let p = "/umbraco/management/api/v1/doc/root/children";
    assert_eq!(find(&t, Method::Put, p), Some("param-put"));
    assert_eq!(find(&t, Method::Get, p), Some("lit-get"));
}

#[test]
fn operator_routes_replace_shipped_ones_by_id() {
    let shipped = format!("{HEAD}{}", route("doc", "GET", "doc/{id}"));
    let extra = format!(
        "{HEAD}[[route]]\nid = \"doc\"\nmethod = \"GET\"\npath = \"/umbraco/management/api/v1/doc/{{id}}\"\npolicy = \"admin\"\n{}",
        route("mine", "GET", "mine")
    );
    let t = build(&[&shipped], &[&extra]).unwrap();
    assert_eq!(t.routes.len(), 2);
    assert_eq!(t.routes[0].sections, SectionPolicy::Admin);
    // A new id on an existing template is a conflict, not an override.
    let clash = format!("{HEAD}{}", route("other", "GET", "doc/{key}"));
    assert!(problems(&[&shipped], &[&clash])[0].contains("ambiguous"));
}

#[test]
fn routes_config_defaults_and_validation() {
    let c: RoutesConfig = toml::from_str("").unwrap();
    assert_eq!(c.body_limit, 1024 * 1024);
    assert_eq!(c.profiles.len(), 2);
    assert!(!c.passthrough_outside_prefixes, "deny by default");
    assert_eq!(c.unmatched.management, Unmatched::Deny);
    let c: RoutesConfig =
        toml::from_str("body_limit = 0\nprofiles = []\n[unmatched]\ndelivery = \"backoffice\"\n")
            .unwrap();
    assert_eq!(c.unmatched.delivery, Unmatched::Backoffice);
    let mut p = crate::config::Problems::default();
    c.validate(&mut p);
    assert_eq!(p.0.len(), 2, "{:?}", p.0);
    assert!(toml::from_str::<RoutesConfig>("bogus = 1").is_err());
}

/// The default `[routes]` table: the recommended Management profile and the Delivery profile.
pub(super) fn shipped() -> RouteTable {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    RouteTable::load(&RoutesConfig::default(), &dir).unwrap()
}

#[test]
fn shipped_delivery_profile_covers_content_and_media_reads() {
    let t = shipped();
    let d = "/umbraco/delivery/api/v2";
    for seg in ["content", "media"] {
        for (path, source) in [
            (format!("{d}/{seg}"), None),
            (format!("{d}/{seg}/item/{G}"), Some("path:id")),
            (format!("{d}/{seg}/item/en/blog"), Some("path:path")),
            (format!("{d}/{seg}/items?id={G}"), Some("query:id")),
        ] {
            let id = find(&t, Method::Get, &path).unwrap_or_else(|| panic!("{path}"));
            let r = t.routes.iter().find(|r| &*r.id == id).unwrap();
            assert_eq!(r.api, Api::Delivery);
            assert_eq!(r.checks.first().map(|c| &*c.source_text), source, "{path}");
        }
    }
}

#[test]
fn the_recommended_management_profile_is_umbraco_17_and_two_versions_are_refused() {
    let t = shipped();
    assert_eq!(
        t.profiles[0].alias_of,
        Some("builtin:umbraco-management-v17")
    );
    assert_eq!(t.profiles[0].umbraco.as_deref(), Some("17.4.2"));
    assert_eq!(
        t.describe_profiles(),
        "builtin:umbraco-management (= builtin:umbraco-management-v17, Umbraco 17.4.2, 471 routes), builtin:umbraco-delivery (13 routes)"
    );
    for pair in [
        [
            "builtin:umbraco-management-v17",
            "builtin:umbraco-management-v18",
        ],
        [
            "builtin:umbraco-management",
            "builtin:umbraco-management-v17",
        ],
    ] {
        let cfg = RoutesConfig {
            profiles: pair.iter().map(PathBuf::from).collect(),
            ..RoutesConfig::default()
        };
        let Err(RouteError::Invalid(p)) = RouteTable::load(&cfg, Path::new(".")) else {
            panic!("{pair:?} accepted");
        };
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("load one version"), "{p:?}");
    }
}

#[test]
fn a_check_condition_must_be_known() {
    let p = problems(
        &[&format!(
            "{HEAD}{}[[route.check]]\nkind = \"document\"\nnode = \"query:id\"\nwhen = \"item_scope=everything\"\n",
            route("item.document", "GET", "item/document")
        )],
        &[],
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("unknown condition"), "{p:?}");
}

#[test]
fn methods_parse_ignoring_ascii_case_with_head_as_get() {
    for (name, want) in [
        ("GET", Some(Method::Get)),
        ("get", Some(Method::Get)),
        ("Head", Some(Method::Get)),
        ("pOsT", Some(Method::Post)),
        ("PUT", Some(Method::Put)),
        ("patch", Some(Method::Patch)),
        ("DELETE", Some(Method::Delete)),
        ("OPTIONS", None),
        ("GE", None),
        ("GETS", None),
        ("", None),
    ] {
        assert_eq!(Method::parse(name), want, "{name}");
    }
}
