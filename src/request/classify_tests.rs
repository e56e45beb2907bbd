#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
use super::*;
use crate::request::{CheckKind, FetchAxis};
use http::Request;
use uuid::Uuid;

pub(super) const G: &str = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
const G2: &str = "00000000-0000-0000-0000-0000000000aa";
pub(super) const M: &str = "/umbraco/management/api/v1";
const D: &str = "/umbraco/delivery/api/v2";

fn classifier_with(cfg: RoutesConfig) -> Classifier {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    Classifier::from_config(&cfg, &dir).unwrap()
}

fn classifier() -> Classifier {
    classifier_with(RoutesConfig::default())
}

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

pub(super) fn classify(method: &str, uri: &str) -> Classified {
    classifier().classify(&parts(method, uri, &[]))
}

pub(super) fn key(s: &str) -> NodeRef {
    NodeRef::Key(Uuid::parse_str(s).unwrap())
}

pub(super) fn ready(c: Classified) -> (Target, String) {
    match c {
        Classified::Ready { target, uri } => (target, uri),
        other => panic!("expected ready, got {other:?}"),
    }
}

fn pending(c: Classified) -> PendingBody {
    match c {
        Classified::NeedsBody(p) => p,
        other => panic!("expected needs-body, got {other:?}"),
    }
}

#[test]
fn method_override_headers_are_rejected_everywhere() {
    let c = classifier();
    for h in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let p = parts("GET", &format!("{M}/document/{G}"), &[(h, "DELETE")]);
        assert_eq!(
            c.classify(&p),
            Classified::Reject(DenyReason::Malformed),
            "{h}"
        );
        let p = parts("GET", "/about-us", &[(h, "DELETE")]);
        assert_eq!(
            c.classify(&p),
            Classified::Reject(DenyReason::Malformed),
            "{h}"
        );
    }
}

#[test]
fn head_is_matched_as_get() {
    let (t, _) = ready(classify("HEAD", &format!("{M}/document/{G}")));
    assert_eq!(
        t.checks[0].verbs[..],
        [std::sync::Arc::from("Umb.Document.Read")]
    );
}

#[test]
fn path_node_ids_are_read_and_case_does_not_change_the_route() {
    let (t, uri) = ready(classify(
        "DELETE",
        &format!("/UMBRACO/Management/Api/V1/Document/{}", G.to_uppercase()),
    ));
    assert_eq!(t.api, Api::Management);
    assert_eq!(t.checks[0].nodes, vec![key(G)]);
    assert_eq!(
        t.checks[0].verbs[..],
        [std::sync::Arc::from("Umb.Document.Delete")]
    );
    assert_eq!(
        uri,
        format!("/UMBRACO/Management/Api/V1/Document/{}", G.to_uppercase())
    );
}

#[test]
fn absolute_form_host_does_not_change_routing() {
    let (t, uri) = ready(classify(
        "GET",
        &format!("http://other.example{M}/document/{G}"),
    ));
    assert_eq!(t.checks[0].nodes, vec![key(G)]);
    assert_eq!(uri, format!("{M}/document/{G}"));
}

#[test]
fn outside_the_prefixes_requests_are_denied_by_default_or_pass_through_canonicalised() {
    assert_eq!(
        classify("GET", "/about"),
        Classified::Reject(DenyReason::NoRoute)
    );
    let c = classifier_with(RoutesConfig {
        passthrough_outside_prefixes: true,
        ..RoutesConfig::default()
    });
    assert_eq!(
        c.classify(&parts("GET", "/about//us/./team/?a=%7e", &[])),
        Classified::Passthrough {
            uri: "/about/us/team?a=~".into()
        }
    );
    assert_eq!(
        c.classify(&parts("GET", "/a%2Fb", &[])),
        Classified::Reject(DenyReason::Malformed)
    );
}

#[test]
fn dot_segments_cannot_smuggle_a_protected_path_through_passthrough() {
    let (t, uri) = ready(classify("GET", &format!("/website/%2e%2e{M}/document/{G}")));
    assert_eq!(t.checks[0].nodes, vec![key(G)]);
    assert_eq!(uri, format!("{M}/document/{G}"));
}

#[test]
fn unmatched_protected_paths_are_denied_or_backoffice_by_config() {
    assert_eq!(
        classify("GET", &format!("{M}/no-such-thing")),
        Classified::Reject(DenyReason::NoRoute)
    );
    assert_eq!(
        classify("OPTIONS", &format!("{M}/document/{G}")),
        Classified::Reject(DenyReason::NoRoute)
    );
    let mut cfg = RoutesConfig::default();
    cfg.unmatched.management = Unmatched::Backoffice;
    let c = classifier_with(cfg);
    let (t, _) = ready(c.classify(&parts("GET", &format!("{M}/no-such-thing"), &[])));
    assert_eq!(&*t.route, "unmatched");
    assert_eq!(t.sections, SectionPolicy::Backoffice);
    // Delivery keeps its own setting.
    assert_eq!(
        c.classify(&parts("GET", &format!("{D}/nothing"), &[])),
        Classified::Reject(DenyReason::NoRoute)
    );
}

#[test]
fn encoded_slashes_are_only_accepted_in_delivery_content_paths() {
    let (t, uri) = ready(classify(
        "GET",
        &format!("{D}/content/item/en%2fblog%2Fmy+post"),
    ));
    assert_eq!(
        t.checks[0].nodes,
        vec![NodeRef::Path("/en/blog/my post".into())]
    );
    assert_eq!(uri, format!("{D}/content/item/en%2Fblog%2Fmy+post"));
    assert_eq!(
        classify("DELETE", &format!("{M}/user/{G}/2fa/a%2Fb")),
        Classified::Reject(DenyReason::Malformed)
    );
    assert_eq!(
        classify("GET", &format!("{D}/content%2Fitem/x")),
        Classified::Reject(DenyReason::Malformed)
    );
    assert_eq!(
        classify("GET", &format!("{D}/content/item/a%2F..%2Fb")),
        Classified::Reject(DenyReason::Malformed)
    );
}

#[test]
fn delivery_requests_carry_their_query_details_and_ids() {
    let c = classifier();
    let p = parts(
        "GET",
        &format!("{D}/content?fetch=descendants:{G}&expand=properties%5B%24all%5D"),
        &[("Preview", "true"), ("Start-Item", "blog")],
    );
    let (t, _) = ready(c.classify(&p));
    let d = t.delivery.unwrap();
    assert!(d.preview && d.expand);
    assert_eq!(d.fetch, Some((FetchAxis::Descendants, key(G))));
    assert_eq!(d.start_item, Some(NodeRef::Path("blog".into())));
    let (t, _) = ready(classify(
        "GET",
        &format!("{D}/media/items?id={G}&ID={}", G2.replace('-', "")),
    ));
    assert_eq!(t.checks[0].kind, CheckKind::Media);
    assert_eq!(t.checks[0].nodes, vec![key(G), key(G2)]);
    assert_eq!(
        classify("GET", &format!("{D}/content/items?id=nope")),
        Classified::Reject(DenyReason::Malformed)
    );
    assert_eq!(
        classify(
            "GET",
            &format!("{D}/content?fetch=children:a&fetch=children:b")
        ),
        Classified::Reject(DenyReason::Malformed)
    );
}

#[test]
fn body_routes_wait_for_the_body_then_read_node_ids() {
    let c = classifier();
    let p = pending(c.classify(&parts("PUT", &format!("{M}/document/{G}/move"), &[])));
    assert_eq!(p.target.checks[0].nodes, vec![key(G)]);
    assert!(p.target.checks[1].nodes.is_empty());
    let (t, uri) = c
        .complete(
            &p,
            format!(r#"{{"Target":{{"id":"{{{G2}}}"}}}}"#).as_bytes(),
        )
        .unwrap();
    assert_eq!(t.checks[1].nodes, vec![key(G2)]);
    assert_eq!(
        t.checks[1].verbs[..],
        [std::sync::Arc::from("Umb.Document.Create")]
    );
    assert_eq!(uri, format!("{M}/document/{G}/move"));
    let (t, _) = c.complete(&p, br#"{"target":null}"#).unwrap();
    assert_eq!(t.checks[1].nodes, vec![NodeRef::Root]);
}

#[test]
fn bad_or_oversized_bodies_are_denied() {
    let c = classifier_with(RoutesConfig {
        body_limit: 64,
        ..RoutesConfig::default()
    });
    let p = pending(c.classify(&parts("POST", &format!("{M}/document"), &[])));
    assert_eq!(
        c.complete(&p, br#"{"parent":{"id":"nope"}}"#),
        Err(DenyReason::Malformed)
    );
    assert_eq!(c.complete(&p, b"not json"), Err(DenyReason::Malformed));
    assert_eq!(c.complete(&p, &[b' '; 65]), Err(DenyReason::BodyTooLarge));
    assert_eq!(c.body_limit(), 64);
}

#[test]
fn sort_checks_every_item_and_the_parent() {
    let c = classifier();
    let p = pending(c.classify(&parts("PUT", &format!("{M}/document/sort"), &[])));
    let body = format!(
        r#"{{"parent":null,"sorting":[{{"id":"{G}","sortOrder":0}},{{"id":"{G2}","sortOrder":1}}]}}"#
    );
    let (t, _) = c.complete(&p, body.as_bytes()).unwrap();
    let by_source = |s: &str| {
        t.checks
            .iter()
            .find(|c| &*c.source == s)
            .unwrap()
            .nodes
            .clone()
    };
    assert_eq!(by_source("body:sorting[].id"), vec![key(G), key(G2)]);
    assert_eq!(by_source("body:parent.id"), vec![NodeRef::Root]);
}

#[test]
fn publish_reads_cultures_from_the_body() {
    let c = classifier();
    let p = pending(c.classify(&parts("PUT", &format!("{M}/document/{G}/publish"), &[])));
    let (t, _) = c
        .complete(
            &p,
            br#"{"publishSchedules":[{"culture":"en-US"},{"culture":"da-DK"}]}"#,
        )
        .unwrap();
    assert_eq!(t.cultures, ["da-dk", "en-us"]);
    assert_eq!(t.checks[0].nodes, vec![key(G)]);
}

#[test]
fn explain_match_prints_the_documented_shape() {
    let c = classifier();
    let v = c.explain_match(
        "put",
        &format!("{M}//document/{G}/./move"),
        Some(br#"{"target":null}"#),
    );
    assert_eq!(v["canonical_path"], format!("{M}/document/{G}/move"));
    assert_eq!(v["api"], "management");
    assert_eq!(v["sections"], serde_json::json!(["content"]));
    assert_eq!(v["admin_only"], false);
    assert_eq!(v["anonymous"], false);
    assert_eq!(v["checks"][0]["node_source"], "path:id");
    assert_eq!(v["checks"][0]["nodes"], serde_json::json!([G]));
    assert_eq!(v["checks"][1]["nodes"], serde_json::json!(["root"]));
    assert_eq!(v["checks"][1]["kind"], "document");
    assert_eq!(
        v["checks"][1]["verbs"],
        serde_json::json!(["Umb.Document.Create"])
    );
    assert_eq!(v["cultures"], serde_json::json!([]));
    let v = c.explain_match("PUT", &format!("{M}/document/{G}/move"), None);
    assert_eq!(v["needs_body"], true);
    assert!(v["checks"][1]["nodes"].is_null());
    assert_eq!(
        c.explain_match("GET", "/a%00", None),
        serde_json::json!({"rejected": "malformed_request"})
    );
    let v = c.explain_match("GET", &format!("{M}/server/status"), None);
    assert_eq!(v["anonymous"], true);
    assert_eq!(
        c.explain_match("GET", "/x/", None),
        serde_json::json!({"rejected": "no_route", "canonical_path": "/x"})
    );
}

#[test]
fn list_prints_prefixes_and_routes() {
    let v = classifier().list();
    assert_eq!(v["prefixes"][0]["prefix"], "/umbraco/management/api");
    assert_eq!(v["prefixes"][1]["api"], "delivery");
    let routes = v["routes"].as_array().unwrap();
    assert!(routes.len() > 100);
    assert!(routes
        .iter()
        .all(|r| r["id"].is_string() && r["method"].is_string()));
}

#[test]
fn raw_targets_with_fragments_or_bad_utf8_are_rejected() {
    let c = classifier();
    let h = HeaderMap::new();
    assert_eq!(
        c.classify_raw("GET", b"/about#x", &h),
        Classified::Reject(DenyReason::Malformed)
    );
    assert_eq!(
        c.classify_raw("GET", b"/a\xff", &h),
        Classified::Reject(DenyReason::Malformed)
    );
    assert_eq!(
        c.classify_raw("GET", &[b'/', 0xff], &h),
        Classified::Reject(DenyReason::Malformed)
    );
    let (t, _) = ready(c.classify_raw("GET", format!("{M}/document/{G}").as_bytes(), &h));
    assert_eq!(t.checks[0].nodes, vec![key(G)]);
}

#[test]
fn indexed_forms_of_a_query_node_source_are_rejected() {
    for q in [
        format!("id%5B0%5D={G}"),
        format!("id[]={G}"),
        format!("%5B0%5D={G}"),
        format!("ID.x={G}"),
    ] {
        assert_eq!(
            classify("GET", &format!("{D}/content/items?{q}")),
            Classified::Reject(DenyReason::Malformed),
            "{q}"
        );
    }
    let (t, _) = ready(classify(
        "GET",
        &format!("{D}/content/items?id={G}&identity=x"),
    ));
    assert_eq!(t.checks[0].nodes, vec![key(G)]);
}
