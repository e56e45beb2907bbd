//! Delivery API rules (UMBRACO.md §8), continued: member protection (public access), unknown
//! nodes, media, the permit's grant, and keys acting as users.

use super::super::testkit::*;
use super::super::*;
use super::tests::{item, public, run, run_with};
use crate::request::{CheckKind, DeliveryQuery};
use std::sync::Arc;

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
