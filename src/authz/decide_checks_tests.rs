//! Management API rules (UMBRACO.md §2–§7), continued: unknown, trashed-type and versioned
//! nodes, branch publishing, user and group checks, API keys acting as users, and the grants a
//! permit names.

use super::super::testkit::*;
use super::super::*;
use super::tests::{denied, edit, publish, run, run_with};
use crate::request::{CheckKind, CheckScope, NodeRef, Target};
use model::verbs::*;

#[test]
fn an_unknown_node_is_denied_by_default_and_forwarded_when_deferred() {
    let u = user(vec![builtin("editor")], &[]);
    let mut r = resolved();
    r.nodes.insert(key(4242), None);
    let t = edit(4242);
    assert_eq!(
        denied(&run_with(&u, &t, &r, &DecisionPolicy::default())),
        Some(DenyReason::UnknownNode)
    );
    let defer = DecisionPolicy {
        management_unknown_node: UnknownNodeMode::Defer,
        ..DecisionPolicy::default()
    };
    let Decision::Allow(permit) = run_with(&u, &t, &r, &defer) else {
        panic!("deferred")
    };
    assert_eq!(
        permit.via.last(),
        Some(&Grant::DeferredToUpstream {
            node: key(4242).to_string()
        })
    );
}

#[test]
fn a_node_never_looked_up_fails_closed_as_store_unavailable() {
    let u = user(vec![builtin("editor")], &[]);
    let d = run_with(
        &u,
        &edit(1051),
        &Resolved::default(),
        &DecisionPolicy::default(),
    );
    assert_eq!(denied(&d), Some(DenyReason::StoreUnavailable));
}

#[test]
fn a_media_key_used_as_a_document_is_treated_as_unknown() {
    let u = user(vec![builtin("editor")], &[]);
    assert_eq!(denied(&run(&u, &edit(2001))), Some(DenyReason::UnknownNode));
}

#[test]
fn a_document_version_is_checked_on_its_owning_document() {
    let u = user(vec![builtin("writer")], &["-1,1051"]);
    let version = uuid::Uuid::from_u128(99);
    let mut r = resolved();
    r.version_owners.insert(version, Some(key(1062)));
    let t = mgmt(
        &["content"],
        vec![check(
            CheckKind::DocumentVersion,
            vec![NodeRef::Key(version)],
            &[ROLLBACK],
        )],
    );
    assert_eq!(
        denied(&run_with(&u, &t, &r, &DecisionPolicy::default())),
        Some(DenyReason::MissingVerb)
    );
    r.version_owners.insert(version, None);
    assert_eq!(
        denied(&run_with(&u, &t, &r, &DecisionPolicy::default())),
        Some(DenyReason::UnknownNode)
    );
}

fn branch(id: i64) -> Target {
    let mut c = check(CheckKind::Document, vec![doc(id)], &[PUBLISH]);
    c.scope = CheckScope::Branch;
    mgmt(&["content"], vec![c])
}

#[test]
fn branch_publish_checks_the_node_itself() {
    let g = custom_group("g", &[READ], &[(1062, &[PUBLISH])]);
    let u = user(vec![g], &[]);
    assert_eq!(
        denied(&run(&u, &branch(1051))),
        Some(DenyReason::MissingVerb)
    );
}

#[test]
fn branch_publish_is_refused_when_no_group_keeps_the_verb_on_an_entry_below() {
    let g = custom_group("g", &[PUBLISH], &[(1070, &[READ]), (10, &[])]);
    // Another group publishing elsewhere (1063) does not cover 1070.
    let b = custom_group("b", &[READ], &[(1063, &[PUBLISH])]);
    for u in [user(vec![g.clone()], &[]), user(vec![g, b], &[])] {
        assert_eq!(
            denied(&run(&u, &branch(1062))),
            Some(DenyReason::MissingVerb)
        );
        assert_eq!(
            denied(&run(&u, &branch(1063))),
            None,
            "the entries on 1070 and 10 are elsewhere"
        );
    }
}

#[test]
fn branch_publish_passes_when_another_group_covers_the_whole_subtree() {
    let a = custom_group("a", &[PUBLISH], &[(1070, &[])]);
    let b = custom_group("b", &[PUBLISH], &[]);
    let u = user(vec![a, b], &[]);
    assert_eq!(denied(&run(&u, &branch(1062))), None);
}

#[test]
fn branch_publish_passes_when_a_mix_of_groups_covers_every_descendant() {
    // Group a publishes the blog but its entry on 1070 takes Publish away; group b publishes
    // exactly 1070. Umbraco unions the groups on every descendant: allowed.
    let a = custom_group("a", &[PUBLISH], &[(1070, &[READ])]);
    let b = custom_group("b", &[READ], &[(1070, &[PUBLISH])]);
    let u = user(vec![a, b], &[]);
    let d = run(&u, &branch(1062));
    assert_eq!(denied(&d), None);
    let Decision::Allow(permit) = d else {
        unreachable!()
    };
    let on_1070 = permit.via.iter().find_map(|g| match g {
        Grant::Verb {
            node: 1070,
            group,
            entry_on,
            ..
        } => Some((group.to_string(), *entry_on)),
        _ => None,
    });
    assert_eq!(on_1070, Some(("b".to_string(), Some(1070))));
}

#[test]
fn branch_publish_with_an_unknown_entry_node_is_refused_only_under_deny() {
    let a = custom_group("a", &[PUBLISH], &[(4242, &[READ])]);
    let u = user(vec![a], &[]);
    let mut r = resolved();
    r.nodes_by_id.insert(4242, None);
    let deny = DecisionPolicy::default();
    assert_eq!(
        denied(&run_with(&u, &branch(1062), &r, &deny)),
        Some(DenyReason::MissingVerb)
    );
    let defer = DecisionPolicy {
        management_unknown_node: UnknownNodeMode::Defer,
        ..DecisionPolicy::default()
    };
    assert_eq!(denied(&run_with(&u, &branch(1062), &r, &defer)), None);
}

#[test]
fn a_non_admin_may_not_act_on_an_admin_user() {
    let target_user = uuid::Uuid::from_u128(500);
    let mut r = resolved();
    r.users
        .insert(target_user, Some(UserFacts { is_admin: true }));
    let t = mgmt(
        &["users"],
        vec![check(CheckKind::User, vec![NodeRef::Key(target_user)], &[])],
    );
    let mut g = builtin("editor");
    g.sections.push(Section::new("users"));
    let editor = user(vec![g], &[]);
    assert_eq!(
        denied(&run_with(&editor, &t, &r, &DecisionPolicy::default())),
        Some(DenyReason::AdminRequired)
    );
    r.users
        .insert(target_user, Some(UserFacts { is_admin: false }));
    assert_eq!(
        denied(&run_with(&editor, &t, &r, &DecisionPolicy::default())),
        None
    );
    r.users
        .insert(target_user, Some(UserFacts { is_admin: true }));
    let admin = user(vec![builtin("admin")], &[]);
    assert_eq!(
        denied(&run_with(&admin, &t, &r, &DecisionPolicy::default())),
        None
    );
}

#[test]
fn a_non_admin_may_act_only_on_groups_they_belong_to() {
    let mut g = builtin("editor");
    g.sections.push(Section::new("users"));
    let own = g.key;
    let u = user(vec![g], &[]);
    let t = |k| {
        mgmt(
            &["users"],
            vec![check(CheckKind::UserGroup, vec![NodeRef::Key(k)], &[])],
        )
    };
    assert_eq!(denied(&run(&u, &t(own))), None);
    assert_eq!(
        denied(&run(&u, &t(builtin::ADMIN_GROUP_KEY))),
        Some(DenyReason::UserGroupNotMember)
    );
    let admin = user(vec![builtin("admin")], &[]);
    assert_eq!(denied(&run(&admin, &t(builtin::WRITER_GROUP_KEY))), None);
}

#[test]
fn an_api_key_acting_as_a_user_decides_with_that_users_access() {
    let mut s = scope(&[]);
    s.apis = vec![crate::request::Api::Management];
    s.acts_as = Some("alice".into());
    let principal = key_principal(s.clone());
    let u = user(vec![builtin("writer")], &[]);
    let who = Who::new(&principal).with_access(&u);
    let pol = DecisionPolicy::default();
    assert_eq!(
        denied(&authorize(&edit(1051), &who, &resolved(), &pol)),
        None
    );
    assert_eq!(
        denied(&authorize(&publish(1051), &who, &resolved(), &pol)),
        Some(DenyReason::MissingVerb)
    );
    s.apis = vec![crate::request::Api::Delivery];
    let delivery_only = key_principal(s);
    let who = Who::new(&delivery_only).with_access(&u);
    assert_eq!(
        denied(&authorize(&edit(1051), &who, &resolved(), &pol)),
        Some(DenyReason::ApiNotAllowed)
    );
}

#[test]
fn the_permit_names_the_group_and_the_entry_that_granted_each_verb() {
    let g = custom_group("g", &[], &[(1051, &[UPDATE])]);
    let u = user(vec![g], &[]);
    let Decision::Allow(permit) = run(&u, &edit(1070)) else {
        panic!("allowed")
    };
    assert_eq!(&*permit.route, "test.route");
    assert_eq!(permit.principal.as_deref(), Some("jwt:https://idp#alice"));
    assert!(permit.via.contains(&Grant::Verb {
        node: 1070,
        verb: UPDATE.into(),
        group: "g".into(),
        entry_on: Some(1051)
    }));
}
