//! Item paths resolved as Umbraco resolves them, named as sentences. Modelled on Umbraco-CMS
//! (idseefeld/Umbraco-CMS @ 9f668c8b7d): `src/Umbraco.Core/DeliveryApi/ApiContentPathResolver.cs`,
//! `src/Umbraco.Cms.Api.Delivery/Services/RequestRoutingService.cs` (`GetContentRoute`:
//! `{startItem.Id}{path}`), `src/Umbraco.Cms.Api.Delivery/Services/RequestStartItemProvider.cs`
//! (root documents only), `src/Umbraco.Core/Services/DocumentUrlService.cs`
//! (`GetDocumentKeyByRoute`: segments split with empty entries removed) and
//! `src/Umbraco.Core/DeliveryApi/ApiContentRouteBuilder.cs` (route paths relative to the root,
//! trailing slash).

use super::super::testkit::*;
use super::super::*;
use crate::request::{DeliveryQuery, NodeRef};
use std::sync::Arc;

/// `node` with a route path.
fn routed(path: &str, route: &str) -> Arc<NodeInfo> {
    let mut n = (*node(path, NodeKind::Document)).clone();
    n.route_path = Some(route.into());
    Arc::new(n)
}

/// Two sites (roots 1051 and 10), each with a `/members/` page; `/blog/` only under 1051.
fn sites() -> Resolved {
    let mut r = resolved();
    let members = vec![
        routed("-1,1051,1062", "/members/"),
        routed("-1,10,11", "/Members"),
    ];
    r.put_routes("/members/", members);
    r.put_routes("/blog/", vec![routed("-1,1051,1063", "/blog/")]);
    r.put_routes("/", vec![routed("-1,1051", "/"), routed("-1,10", "/")]);
    r
}

fn start(id: i64) -> DeliveryQuery {
    DeliveryQuery {
        start_item: Some(NodeRef::Key(key(id))),
        ..Default::default()
    }
}

fn found(a: RouteAnswer) -> Option<NodeId> {
    match a {
        RouteAnswer::Node(n) => Some(n.id),
        _ => None,
    }
}

#[test]
fn route_keys_ignore_ascii_case_empty_segments_and_the_trailing_slash() {
    assert_eq!(route_key("/Blog"), "/blog/");
    assert_eq!(route_key("/blog/"), "/blog/");
    assert_eq!(route_key("blog//Post-1/"), "/blog/post-1/");
    assert_eq!(route_key(""), "/");
    assert_eq!(route_key("/"), "/");
    // Only ASCII letters fold (Umbraco compares segments ordinally): no guess beyond that.
    assert_eq!(route_key("/CAFÉ/"), "/cafÉ/");
}

#[test]
fn a_path_found_once_resolves_to_that_document_in_any_spelling_umbraco_accepts() {
    let r = sites();
    for p in ["/blog/", "/blog", "/BLOG/", "blog"] {
        assert_eq!(found(resolve_route(&r, None, p)), Some(1063), "{p}");
    }
}

#[test]
fn a_path_two_sites_share_is_ambiguous_without_a_start_item() {
    let r = sites();
    assert_eq!(
        resolve_route(&r, None, "/members/"),
        RouteAnswer::Ambiguous(2)
    );
    assert_eq!(resolve_route(&r, None, "/"), RouteAnswer::Ambiguous(2));
}

#[test]
fn a_start_item_root_picks_the_document_under_that_root() {
    let r = sites();
    assert_eq!(
        found(resolve_route(&r, Some(&start(10)), "/members/")),
        Some(11)
    );
    assert_eq!(
        found(resolve_route(&r, Some(&start(1051)), "/members/")),
        Some(1062)
    );
    assert_eq!(found(resolve_route(&r, Some(&start(10)), "/")), Some(10));
    assert!(matches!(
        resolve_route(&r, Some(&start(10)), "/blog/"),
        RouteAnswer::Unknown(_)
    ));
}

#[test]
fn a_start_item_that_is_not_a_live_root_document_resolves_nothing() {
    let r = sites();
    for id in [1062, 1090, 2000] {
        assert!(
            matches!(
                resolve_route(&r, Some(&start(id)), "/members/"),
                RouteAnswer::Unknown(_)
            ),
            "{id}"
        );
    }
}

#[test]
fn a_start_item_given_as_a_url_segment_resolves_nothing() {
    let q = DeliveryQuery {
        start_item: Some(NodeRef::Path("home".into())),
        ..Default::default()
    };
    assert!(matches!(
        resolve_route(&sites(), Some(&q), "/blog/"),
        RouteAnswer::Unknown(_)
    ));
}

#[test]
fn trashed_and_non_document_candidates_never_answer() {
    let mut r = resolved();
    let mut media = (*routed("-1,2000", "/logo/")).clone();
    media.kind = NodeKind::Media;
    r.put_routes("/old/", vec![routed("-1,-20,1090", "/old/")]);
    r.put_routes("/logo/", vec![Arc::new(media)]);
    assert!(matches!(
        resolve_route(&r, None, "/old/"),
        RouteAnswer::Unknown(_)
    ));
    assert!(matches!(
        resolve_route(&r, None, "/logo/"),
        RouteAnswer::Unknown(_)
    ));
}

#[test]
fn a_lookup_never_answered_fails_closed() {
    let r = sites();
    assert_eq!(resolve_route(&r, None, "/about/"), RouteAnswer::NotLookedUp);
    let mut r = sites();
    r.nodes.remove(&key(10));
    assert_eq!(
        resolve_route(&r, Some(&start(10)), "/members/"),
        RouteAnswer::NotLookedUp
    );
}

#[test]
fn lookups_ask_for_the_route_key_and_the_start_item_root() {
    let t = delivery(
        vec![check(
            crate::request::CheckKind::Document,
            vec![NodeRef::Path("/Members".into())],
            &[],
        )],
        start(10),
    );
    let refs = required_refs(&t, &anonymous());
    assert!(
        refs.contains(&Lookup::RoutePath("/members/".into())),
        "{refs:?}"
    );
    assert!(refs.contains(&Lookup::Node(key(10))), "{refs:?}");
}

/// An item-by-path request for `path` with Delivery details `q`.
fn by_path(path: &str, q: DeliveryQuery) -> crate::request::Target {
    let nodes = vec![NodeRef::Path(path.into())];
    delivery(
        vec![check(crate::request::CheckKind::Document, nodes, &[])],
        q,
    )
}

/// `sites()` with the first site's `/members/` page protected for member `ann`.
fn protected_sites() -> Resolved {
    let mut r = sites();
    let mut n = (*routed("-1,1051,1062", "/members/")).clone();
    n.public_access = Some(Arc::new(PublicAccess {
        member_usernames: vec!["ann".into()],
        member_groups: vec![],
    }));
    r.paths.insert(
        "/members/".into(),
        vec![Arc::new(n), routed("-1,10,11", "/members/")],
    );
    r
}

fn decide(t: &crate::request::Target, r: &Resolved, pol: &DecisionPolicy) -> Option<DenyReason> {
    match authorize(t, &Who::new(&anonymous()), r, pol) {
        Decision::Deny(d) => Some(d),
        Decision::Allow(_) => None,
    }
}

fn public(mode: UnknownNodeMode) -> DecisionPolicy {
    DecisionPolicy {
        delivery_public: true,
        delivery_unknown_node: mode,
        ..DecisionPolicy::default()
    }
}

#[test]
fn member_protection_is_judged_on_the_document_under_the_start_item_root() {
    let r = protected_sites();
    let pol = public(UnknownNodeMode::Deny);
    assert_eq!(
        decide(&by_path("/members/", start(1051)), &r, &pol),
        Some(DenyReason::MemberRequired)
    );
    assert_eq!(decide(&by_path("/members/", start(10)), &r, &pol), None);
}

#[test]
fn an_ambiguous_item_path_follows_the_unknown_node_mode() {
    let r = protected_sites();
    let t = by_path("/members", DeliveryQuery::default());
    assert_eq!(
        decide(&t, &r, &public(UnknownNodeMode::Deny)),
        Some(DenyReason::UnknownNode)
    );
    // Deferred: Umbraco picks the node and runs its own member check.
    assert_eq!(decide(&t, &r, &public(UnknownNodeMode::Defer)), None);
    // A subtree key never defers, even inside one of the candidates' subtrees.
    let k = key_principal(scope(&[1062]));
    let d = authorize(&t, &Who::new(&k), &r, &public(UnknownNodeMode::Defer));
    assert_eq!(d, Decision::Deny(DenyReason::UnknownNode));
}

#[test]
fn the_deny_names_the_ambiguity() {
    let r = protected_sites();
    let t = by_path("/members/", DeliveryQuery::default());
    let e = explain(
        &t,
        &Who::new(&anonymous()),
        &r,
        &public(UnknownNodeMode::Deny),
    );
    let text = serde_json::to_string(&e).expect("serialises");
    assert!(
        text.contains("ambiguous: 2 documents answer to it"),
        "{text}"
    );
}

#[test]
fn under_a_start_item_the_root_answers_only_to_the_bare_path() {
    // `GetDocumentKeyByRoute` with a start node: no segments is the start node itself, any
    // segment is looked up among its descendants (never the root's own URL segment).
    let mut r = sites();
    r.put_routes("/site-b/", vec![routed("-1,10", "/site-b/")]);
    assert_eq!(found(resolve_route(&r, Some(&start(10)), "")), Some(10));
    assert!(matches!(
        resolve_route(&r, Some(&start(10)), "/site-b/"),
        RouteAnswer::Unknown(_)
    ));
    assert_eq!(found(resolve_route(&r, None, "/site-b/")), Some(10));
}

#[test]
fn mirrored_routes_are_used_for_published_reads_in_the_default_culture_only() {
    // `RequestCultureService`: Accept-Language counts when it matches `^[\w-]*$`; the mirror
    // holds each document's published URL in the default culture (`document/urls`).
    let r = sites();
    let q = |culture: Option<&str>, preview: bool| DeliveryQuery {
        culture: culture.map(str::to_owned),
        preview,
        ..Default::default()
    };
    let blog = |q: &DeliveryQuery, default: Option<&str>| {
        resolve_route_for(&r, Some(q), "/blog/", default)
    };
    for (culture, default) in [
        (None, None),
        (Some("en-US"), Some("en-us")),
        (Some("da-DK,da;q=0.9"), None),
        (Some(" "), None),
    ] {
        assert_eq!(
            found(blog(&q(culture, false), default)),
            Some(1063),
            "{culture:?}"
        );
    }
    for (culture, default) in [(Some("da-DK"), Some("en-us")), (Some("en-US"), None)] {
        assert!(
            matches!(blog(&q(culture, false), default), RouteAnswer::Unknown(_)),
            "{culture:?} with default {default:?}"
        );
    }
    assert!(matches!(
        blog(&q(None, true), Some("en-us")),
        RouteAnswer::Unknown(_)
    ));
    // Without the setting, the mirrored default language decides.
    let mut r = sites();
    r.default_culture = Some(Some("en-US".into()));
    let en = q(Some("en-us"), false);
    assert_eq!(
        found(resolve_route_for(&r, Some(&en), "/blog/", None)),
        Some(1063)
    );
    let da = q(Some("da-DK"), false);
    assert!(matches!(
        resolve_route_for(&r, Some(&da), "/blog/", None),
        RouteAnswer::Unknown(_)
    ));
}

#[test]
fn an_item_path_in_a_named_culture_asks_for_the_default_culture() {
    let mut q = DeliveryQuery {
        culture: Some("da-DK".into()),
        ..Default::default()
    };
    let refs = required_refs(&by_path("/blog/", q.clone()), &anonymous());
    assert!(refs.contains(&Lookup::DefaultCulture), "{refs:?}");
    q.culture = None;
    let refs = required_refs(&by_path("/blog/", q), &anonymous());
    assert!(!refs.contains(&Lookup::DefaultCulture), "{refs:?}");
}
