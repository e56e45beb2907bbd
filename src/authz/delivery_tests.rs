//! Delivery API rules (UMBRACO.md §8), named as sentences.

use super::super::testkit::*;
use super::super::*;
use crate::authn::Principal;
use crate::request::{CheckKind, DeliveryQuery, FetchAxis, NodeRef, Target};
use std::sync::Arc;

fn item(id: i64) -> Target {
    delivery(
        vec![check(CheckKind::Document, vec![doc(id)], &[])],
        DeliveryQuery::default(),
    )
}

fn query(q: DeliveryQuery) -> Target {
    delivery(vec![], q)
}

fn run(p: &Principal, t: &Target) -> Option<DenyReason> {
    run_with(p, t, &resolved(), &DecisionPolicy::default())
}

fn run_with(p: &Principal, t: &Target, r: &Resolved, pol: &DecisionPolicy) -> Option<DenyReason> {
    match authorize(t, &Who::new(p), r, pol) {
        Decision::Deny(r) => Some(r),
        Decision::Allow(_) => None,
    }
}

fn public() -> DecisionPolicy {
    DecisionPolicy {
        delivery_public: true,
        ..DecisionPolicy::default()
    }
}

#[test]
fn a_key_must_allow_the_delivery_api() {
    let mut s = scope(&[]);
    s.apis = vec![crate::request::Api::Management];
    assert_eq!(
        run(&key_principal(s), &item(1062)),
        Some(DenyReason::ApiNotAllowed)
    );
    assert_eq!(run(&key_principal(scope(&[])), &item(1062)), None);
}

#[test]
fn a_subtree_key_reads_inside_its_subtree_only() {
    let k = key_principal(scope(&[1062]));
    assert_eq!(run(&k, &item(1062)), None);
    assert_eq!(run(&k, &item(1070)), None);
    assert_eq!(run(&k, &item(1063)), Some(DenyReason::OutsideKeyScope));
    assert_eq!(
        run(&k, &item(1051)),
        Some(DenyReason::OutsideKeyScope),
        "an ancestor"
    );
}

#[test]
fn key_scope_compares_whole_path_segments() {
    let k = key_principal(scope(&[10]));
    assert_eq!(run(&k, &item(10)), None);
    assert_eq!(run(&k, &item(1051)), Some(DenyReason::OutsideKeyScope));
}

#[test]
fn every_id_of_an_items_list_must_be_inside_the_subtree() {
    let k = key_principal(scope(&[1062]));
    let t = |ids: Vec<NodeRef>| {
        delivery(
            vec![check(CheckKind::Document, ids, &[])],
            DeliveryQuery::default(),
        )
    };
    assert_eq!(run(&k, &t(vec![doc(1062), doc(1070)])), None);
    assert_eq!(
        run(&k, &t(vec![doc(1070), doc(1080)])),
        Some(DenyReason::OutsideKeyScope)
    );
}

#[test]
fn an_item_by_path_is_checked_on_the_node_the_path_resolves_to() {
    let k = key_principal(scope(&[1062]));
    let mut r = resolved();
    let known = |r: &Resolved, id: i64| r.nodes[&key(id)].clone().into_iter().collect();
    r.paths.insert("/about/team/".into(), known(&r, 1070));
    r.paths.insert("/blog/".into(), known(&r, 1063));
    let t = |path: &str| {
        delivery(
            vec![check(
                CheckKind::Document,
                vec![NodeRef::Path(path.into())],
                &[],
            )],
            DeliveryQuery::default(),
        )
    };
    let pol = DecisionPolicy::default();
    assert_eq!(run_with(&k, &t("/about/team/"), &r, &pol), None);
    assert_eq!(
        run_with(&k, &t("/blog/"), &r, &pol),
        Some(DenyReason::OutsideKeyScope)
    );
}

#[test]
fn fetch_children_and_descendants_must_target_the_subtree() {
    let k = key_principal(scope(&[1062]));
    for axis in [FetchAxis::Children, FetchAxis::Descendants] {
        let inside = query(DeliveryQuery {
            fetch: Some((axis, doc(1062))),
            ..Default::default()
        });
        let outside = query(DeliveryQuery {
            fetch: Some((axis, doc(1051))),
            ..Default::default()
        });
        assert_eq!(run(&k, &inside), None);
        assert_eq!(run(&k, &outside), Some(DenyReason::OutsideKeyScope));
    }
}

#[test]
fn fetch_ancestors_is_refused_to_a_subtree_key() {
    let k = key_principal(scope(&[1062]));
    let t = query(DeliveryQuery {
        fetch: Some((FetchAxis::Ancestors, doc(1070))),
        ..Default::default()
    });
    assert_eq!(run(&k, &t), Some(DenyReason::OutsideKeyScope));
    assert_eq!(run(&key_principal(scope(&[])), &t), None);
}

#[test]
fn start_item_must_be_inside_the_subtree_and_only_a_root_start_item_limits_a_query() {
    let k = key_principal(scope(&[1062]));
    let inside = query(DeliveryQuery {
        start_item: Some(doc(1070)),
        ..Default::default()
    });
    let outside = query(DeliveryQuery {
        start_item: Some(doc(1063)),
        ..Default::default()
    });
    // Umbraco's RequestStartItemProvider ignores a start item that is not a root node, so a
    // query "under" 1070 would search the whole tree.
    assert_eq!(run(&k, &inside), Some(DenyReason::OutsideKeyScope));
    assert_eq!(run(&k, &outside), Some(DenyReason::OutsideKeyScope));
    let fetched = query(DeliveryQuery {
        start_item: Some(doc(1070)),
        fetch: Some((FetchAxis::Children, doc(1070))),
        ..Default::default()
    });
    assert_eq!(run(&k, &fetched), None);
    // A key scoped to a root (1051) may limit a query with that root as start item.
    let root_query = query(DeliveryQuery {
        start_item: Some(doc(1051)),
        ..Default::default()
    });
    assert_eq!(run(&key_principal(scope(&[1051])), &root_query), None);
    let item_outside_start = delivery(
        vec![check(CheckKind::Document, vec![doc(1080)], &[])],
        DeliveryQuery {
            start_item: Some(doc(1070)),
            ..Default::default()
        },
    );
    assert_eq!(
        run(&k, &item_outside_start),
        Some(DenyReason::OutsideKeyScope)
    );
}

#[test]
fn a_query_naming_no_node_is_refused_to_a_subtree_key() {
    let t = query(DeliveryQuery::default());
    assert_eq!(
        run(&key_principal(scope(&[1062])), &t),
        Some(DenyReason::OutsideKeyScope)
    );
    assert_eq!(
        run(&key_principal(scope(&[])), &t),
        None,
        "an unscoped key may query"
    );
}

#[test]
fn expand_is_refused_to_a_subtree_key() {
    let t = delivery(
        vec![check(CheckKind::Document, vec![doc(1062)], &[])],
        DeliveryQuery {
            expand: true,
            ..Default::default()
        },
    );
    assert_eq!(
        run(&key_principal(scope(&[1062])), &t),
        Some(DenyReason::ExpandNotAllowed)
    );
    assert_eq!(run(&key_principal(scope(&[])), &t), None);
}

#[test]
fn preview_needs_a_preview_key_that_is_not_subtree_scoped() {
    let t = delivery(
        vec![check(CheckKind::Document, vec![doc(1062)], &[])],
        DeliveryQuery {
            preview: true,
            ..Default::default()
        },
    );
    assert_eq!(
        run(&key_principal(scope(&[])), &t),
        Some(DenyReason::PreviewNotAllowed)
    );
    let mut s = scope(&[]);
    s.preview = true;
    assert_eq!(run(&key_principal(s.clone()), &t), None);
    s.subtree_roots = vec![key(1062)];
    assert_eq!(
        run(&key_principal(s), &t),
        Some(DenyReason::PreviewNotAllowed)
    );
}

#[test]
fn anonymous_reads_need_a_public_api_and_never_preview() {
    let anon = anonymous();
    assert_eq!(run(&anon, &item(1062)), Some(DenyReason::Unauthenticated));
    assert_eq!(run_with(&anon, &item(1062), &resolved(), &public()), None);
    let preview = delivery(
        vec![],
        DeliveryQuery {
            preview: true,
            ..Default::default()
        },
    );
    assert_eq!(
        run_with(&anon, &preview, &resolved(), &public()),
        Some(DenyReason::Unauthenticated)
    );
}

#[test]
fn a_culture_outside_the_keys_cultures_is_refused() {
    let mut s = scope(&[]);
    s.cultures = vec!["en-us".into(), "da-dk".into()];
    let k = key_principal(s);
    let with = |c: Option<&str>| {
        delivery(
            vec![check(CheckKind::Document, vec![doc(1062)], &[])],
            DeliveryQuery {
                culture: c.map(String::from),
                ..Default::default()
            },
        )
    };
    // One tag is the culture Umbraco serves (`RequestCultureService.GetRequestedCulture`).
    assert_eq!(run(&k, &with(Some("EN-US"))), None);
    assert_eq!(
        run(&k, &with(Some("de-de"))),
        Some(DenyReason::CultureNotAllowed)
    );
    // A list, q-values or `*` fail Umbraco's `^[\w-]*$`: it serves its default culture then,
    // as without the header — judged as the default culture, even when every tag is allowed.
    let mirrored = |c: Option<&str>| {
        let mut r = resolved();
        r.default_culture = Some(c.map(Arc::from));
        r
    };
    let none = DecisionPolicy::default();
    for header in [
        None,
        Some("da-DK;q=0.8, en-US"),
        Some("en-us, *"),
        Some("*"),
        Some(" "),
    ] {
        let t = with(header);
        assert_eq!(
            run_with(&k, &t, &mirrored(Some("de-DE")), &none),
            Some(DenyReason::CultureNotAllowed),
            "{header:?}: the default culture is not the key's"
        );
        assert_eq!(
            run_with(&k, &t, &mirrored(None), &none),
            Some(DenyReason::CultureNotAllowed),
            "{header:?}: the default culture is unknown"
        );
        assert_eq!(
            run_with(&k, &t, &mirrored(Some("en-US")), &none),
            None,
            "{header:?}: the mirrored default is one of the key's"
        );
        assert_eq!(
            run(&k, &t),
            Some(DenyReason::StoreUnavailable),
            "{header:?}: the default culture was never looked up"
        );
    }
    // The configured default wins over the mirrored one.
    let pol = DecisionPolicy {
        delivery_default_culture: Some("en-US".into()),
        ..DecisionPolicy::default()
    };
    assert_eq!(
        run_with(&k, &with(None), &mirrored(Some("de-DE")), &pol),
        None
    );
    let pol = DecisionPolicy {
        delivery_default_culture: Some("de-DE".into()),
        ..DecisionPolicy::default()
    };
    assert_eq!(
        run_with(&k, &with(None), &mirrored(Some("en-US")), &pol),
        Some(DenyReason::CultureNotAllowed)
    );
    assert_eq!(
        run(&key_principal(scope(&[])), &with(Some("de-de"))),
        None,
        "all cultures"
    );
}

fn protected(r: &mut Resolved, id: i64, users: &[&str], groups: &[&str]) {
    let mut n = (*r.nodes_by_id[&id].clone().expect("known")).clone();
    n.public_access = Some(Arc::new(PublicAccess {
        member_usernames: users.iter().map(|s| s.to_string()).collect(),
        member_groups: groups.iter().map(|s| s.to_string()).collect(),
    }));
    let n = Arc::new(n);
    r.nodes.insert(n.key, Some(n.clone()));
    r.nodes_by_id.insert(n.id, Some(n));
    let mut ids = r
        .protected
        .as_deref()
        .map_or_else(Vec::new, |p| p.ids().to_vec());
    ids.push(id);
    r.protected = Some(Arc::new(ProtectedNodes::new(ids)));
}

#[test]
fn member_protection_on_an_ancestor_needs_an_allowed_member() {
    let mut r = resolved();
    protected(&mut r, 1062, &["bob"], &["Staff"]);
    let pol = public();
    assert_eq!(
        run_with(&anonymous(), &item(1070), &r, &pol),
        Some(DenyReason::MemberRequired)
    );
    assert_eq!(run_with(&member("Bob", &[]), &item(1070), &r, &pol), None);
    assert_eq!(
        run_with(&member("eve", &["staff"]), &item(1070), &r, &pol),
        None
    );
    assert_eq!(
        run_with(&member("eve", &["guests"]), &item(1070), &r, &pol),
        Some(DenyReason::MemberNotAllowed)
    );
    assert_eq!(
        run_with(&anonymous(), &item(1063), &r, &pol),
        None,
        "not under 1062"
    );
}

#[test]
fn the_nearest_protected_node_decides() {
    let mut r = resolved();
    protected(&mut r, 1051, &["bob"], &[]);
    protected(&mut r, 1062, &["eve"], &[]);
    let pol = public();
    assert_eq!(run_with(&member("eve", &[]), &item(1070), &r, &pol), None);
    assert_eq!(
        run_with(&member("bob", &[]), &item(1070), &r, &pol),
        Some(DenyReason::MemberNotAllowed)
    );
}

#[test]
fn a_member_with_an_api_key_is_checked_against_protection() {
    let mut r = resolved();
    protected(&mut r, 1062, &["bob"], &[]);
    let k = key_principal(scope(&[]));
    let groups: Vec<String> = vec![];
    let who = Who {
        member: Some(MemberRef {
            username: "bob",
            groups: &groups,
        }),
        ..Who::new(&k)
    };
    let d = authorize(&item(1070), &who, &r, &DecisionPolicy::default());
    assert!(matches!(d, Decision::Allow(_)), "{d:?}");
    assert_eq!(
        run_with(&k, &item(1070), &r, &DecisionPolicy::default()),
        Some(DenyReason::MemberRequired)
    );
}

#[test]
fn unknown_delivery_nodes_defer_only_for_unscoped_callers() {
    let mut r = resolved();
    r.nodes.insert(key(4242), None);
    let defer = DecisionPolicy {
        delivery_unknown_node: UnknownNodeMode::Defer,
        ..DecisionPolicy::default()
    };
    assert_eq!(
        run_with(
            &key_principal(scope(&[])),
            &item(4242),
            &r,
            &DecisionPolicy::default()
        ),
        Some(DenyReason::UnknownNode)
    );
    assert_eq!(
        run_with(&key_principal(scope(&[])), &item(4242), &r, &defer),
        None
    );
    assert_eq!(
        run_with(&key_principal(scope(&[1062])), &item(4242), &r, &defer),
        Some(DenyReason::UnknownNode)
    );
}

#[test]
fn an_unknown_subtree_root_grants_nothing() {
    let mut r = resolved();
    r.nodes.insert(key(4242), None);
    let k = key_principal(scope(&[4242]));
    assert_eq!(
        run_with(&k, &item(1062), &r, &DecisionPolicy::default()),
        Some(DenyReason::OutsideKeyScope)
    );
}

#[test]
fn media_items_are_outside_a_content_subtree_key() {
    let t = delivery(
        vec![check(CheckKind::Media, vec![doc(2001)], &[])],
        DeliveryQuery::default(),
    );
    assert_eq!(
        run(&key_principal(scope(&[1062])), &t),
        Some(DenyReason::OutsideKeyScope)
    );
    assert_eq!(run(&key_principal(scope(&[])), &t), None);
}

#[test]
fn the_permit_names_the_key() {
    let k = key_principal(scope(&[1062]));
    let d = authorize(
        &item(1070),
        &Who::new(&k),
        &resolved(),
        &DecisionPolicy::default(),
    );
    let Decision::Allow(permit) = d else {
        panic!("allowed")
    };
    assert_eq!(
        permit.via,
        vec![Grant::KeyScope {
            key_id: "k1".into()
        }]
    );
    assert_eq!(permit.principal.as_deref(), Some("key:k1"));
}

#[test]
fn a_key_acting_as_a_disabled_locked_or_invited_user_is_refused_on_the_delivery_api() {
    let mut s = scope(&[]);
    s.acts_as = Some("alice".into());
    let k = key_principal(s);
    let decide = |state: Option<UserState>| {
        let mut u = user(vec![builtin("editor")], &[]);
        let access = state.map(|st| {
            u.state = st;
            u
        });
        let mut who = Who::new(&k);
        if let Some(a) = access.as_ref() {
            who = who.with_access(a);
        }
        match authorize(&item(1062), &who, &resolved(), &DecisionPolicy::default()) {
            Decision::Deny(r) => Some(r),
            Decision::Allow(_) => None,
        }
    };
    assert_eq!(decide(Some(UserState::Active)), None);
    for st in [UserState::Disabled, UserState::Locked, UserState::Invited] {
        assert_eq!(decide(Some(st)), Some(DenyReason::UserDisabled), "{st:?}");
    }
    assert_eq!(decide(None), Some(DenyReason::UnknownPrincipal));
}
