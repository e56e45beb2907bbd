//! Delivery API rules (UMBRACO.md §8), named as sentences.

use super::super::testkit::*;
use super::super::*;
use crate::authn::Principal;
use crate::request::{CheckKind, DeliveryQuery, FetchAxis, NodeRef, Target};
use std::sync::Arc;

pub(super) fn item(id: i64) -> Target {
    delivery(
        vec![check(CheckKind::Document, vec![doc(id)], &[])],
        DeliveryQuery::default(),
    )
}

fn query(q: DeliveryQuery) -> Target {
    delivery(vec![], q)
}

pub(super) fn run(p: &Principal, t: &Target) -> Option<DenyReason> {
    run_with(p, t, &resolved(), &DecisionPolicy::default())
}

pub(super) fn run_with(
    p: &Principal,
    t: &Target,
    r: &Resolved,
    pol: &DecisionPolicy,
) -> Option<DenyReason> {
    match authorize(t, &Who::new(p), r, pol) {
        Decision::Deny(r) => Some(r),
        Decision::Allow(_) => None,
    }
}

pub(super) fn public() -> DecisionPolicy {
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
