//! Management API rules (UMBRACO.md §2–§7), one test per rule, named as sentences.

use super::super::testkit::*;
use super::super::*;
use crate::request::{CheckKind, NodeRef, SectionPolicy, Target};
use model::verbs::*;

pub(super) fn run(u: &UserAccess, t: &Target) -> Decision {
    run_with(u, t, &resolved(), &DecisionPolicy::default())
}

pub(super) fn run_with(u: &UserAccess, t: &Target, r: &Resolved, pol: &DecisionPolicy) -> Decision {
    let principal = user_principal();
    authorize(t, &Who::new(&principal).with_access(u), r, pol)
}

pub(super) fn denied(d: &Decision) -> Option<DenyReason> {
    match d {
        Decision::Deny(r) => Some(*r),
        Decision::Allow(_) => None,
    }
}

pub(super) fn edit(id: i64) -> Target {
    mgmt(
        &["content"],
        vec![check(CheckKind::Document, vec![doc(id)], &[UPDATE])],
    )
}

pub(super) fn publish(id: i64) -> Target {
    mgmt(
        &["content"],
        vec![check(CheckKind::Document, vec![doc(id)], &[PUBLISH])],
    )
}

#[test]
fn group_root_with_user_start_1051_can_edit_below_1051_but_not_beside_it() {
    let u = user(vec![builtin("editor")], &["-1,1051"]);
    assert_eq!(denied(&run(&u, &edit(1062))), None);
    assert_eq!(
        denied(&run(&u, &edit(10))),
        Some(DenyReason::OutsideStartNodes)
    );
}

#[test]
fn group_start_1062_with_user_start_1051_widens_to_1051() {
    let mut g = builtin("editor");
    g.content_start = Some(p("-1,1051,1062"));
    let u = user(vec![g], &["-1,1051"]);
    assert_eq!(denied(&run(&u, &edit(1063))), None);
}

#[test]
fn start_node_10_does_not_reach_1051_whose_id_merely_begins_with_10() {
    let mut g = builtin("editor");
    g.content_start = Some(p("-1,10"));
    let u = user(vec![g], &[]);
    assert_eq!(denied(&run(&u, &edit(10))), None);
    assert_eq!(
        denied(&run(&u, &edit(1051))),
        Some(DenyReason::OutsideStartNodes)
    );
}

#[test]
fn an_ancestor_of_the_start_node_fails_path_access() {
    let mut g = builtin("editor");
    g.content_start = Some(p("-1,1051,1062"));
    let u = user(vec![g], &[]);
    assert_eq!(
        denied(&run(&u, &edit(1051))),
        Some(DenyReason::OutsideStartNodes)
    );
}

#[test]
fn a_user_without_any_start_node_has_no_access() {
    let mut g = builtin("editor");
    g.content_start = None;
    let u = user(vec![g], &[]);
    assert_eq!(
        denied(&run(&u, &edit(1051))),
        Some(DenyReason::OutsideStartNodes)
    );
}

#[test]
fn an_empty_explicit_entry_takes_every_verb_away() {
    let g = custom_group("g", &[READ, UPDATE], &[(1062, &[])]);
    let u = user(vec![g], &[]);
    assert_eq!(denied(&run(&u, &edit(1070))), Some(DenyReason::MissingVerb));
    assert_eq!(denied(&run(&u, &edit(1063))), None);
}

#[test]
fn the_nearest_ancestor_entry_of_a_group_wins() {
    let g = custom_group("g", &[READ], &[(1051, &[UPDATE]), (1062, &[READ])]);
    let u = user(vec![g], &[]);
    assert_eq!(
        denied(&run(&u, &edit(1080))),
        None,
        "1051's entry applies under 1063"
    );
    assert_eq!(denied(&run(&u, &edit(1070))), Some(DenyReason::MissingVerb));
    assert_eq!(denied(&run(&u, &edit(10))), Some(DenyReason::MissingVerb));
}

#[test]
fn an_entry_on_the_node_itself_is_nearer_than_its_ancestors() {
    let g = custom_group("g", &[], &[(1051, &[]), (1070, &[UPDATE])]);
    let u = user(vec![g], &[]);
    assert_eq!(denied(&run(&u, &edit(1070))), None);
    assert_eq!(denied(&run(&u, &edit(1062))), Some(DenyReason::MissingVerb));
}

#[test]
fn an_entry_of_one_group_does_not_override_another_groups_defaults() {
    let a = custom_group("a", &[UPDATE], &[]);
    let b = custom_group("b", &[UPDATE], &[(1051, &[])]);
    let u = user(vec![b, a], &[]);
    let d = run(&u, &edit(1062));
    let Decision::Allow(permit) = d else {
        panic!("expected allow, got {d:?}")
    };
    assert!(permit.via.contains(&Grant::Verb {
        node: 1062,
        verb: UPDATE.into(),
        group: "a".into(),
        entry_on: None
    }));
}

#[test]
fn two_groups_are_unioned() {
    let a = custom_group("a", &[UPDATE], &[]);
    let b = custom_group("b", &[PUBLISH], &[]);
    let u = user(vec![a, b], &[]);
    let t = mgmt(
        &["content"],
        vec![check(
            CheckKind::Document,
            vec![doc(1062)],
            &[UPDATE, PUBLISH],
        )],
    );
    assert_eq!(denied(&run(&u, &t)), None);
}

#[test]
fn writer_cannot_publish_under_own_start_node() {
    let u = user(vec![builtin("writer")], &["-1,1051"]);
    assert_eq!(denied(&run(&u, &edit(1062))), None);
    assert_eq!(
        denied(&run(&u, &publish(1062))),
        Some(DenyReason::MissingVerb)
    );
}

#[test]
fn translator_has_no_content_section() {
    let u = user(vec![builtin("translator")], &[]);
    assert_eq!(denied(&run(&u, &edit(1062))), Some(DenyReason::NoSection));
}

#[test]
fn editor_cannot_change_permissions_or_hostnames() {
    let u = user(vec![builtin("editor")], &[]);
    for verb in [PERMISSIONS, CULTURE_AND_HOSTNAMES] {
        let t = mgmt(
            &["content"],
            vec![check(CheckKind::Document, vec![doc(1051)], &[verb])],
        );
        assert_eq!(
            denied(&run(&u, &t)),
            Some(DenyReason::MissingVerb),
            "{verb}"
        );
    }
}

#[test]
fn admin_passes_every_document_verb_through_root_access() {
    let u = user(vec![builtin("admin")], &[]);
    let t = mgmt(
        &["content"],
        vec![check(
            CheckKind::Document,
            vec![doc(1070), NodeRef::Root, NodeRef::RecycleBin],
            verbs::ALL_DOCUMENT,
        )],
    );
    let Decision::Allow(permit) = run(&u, &t) else {
        panic!("admin must pass")
    };
    assert!(permit.via.contains(&Grant::StartNode {
        node: 1070,
        start_node: -1
    }));
}

#[test]
fn move_needs_move_on_the_source_and_create_on_the_target() {
    let g = custom_group("g", &[MOVE, CREATE], &[(1063, &[MOVE])]);
    let u = user(vec![g], &[]);
    let mv = |src: i64, dst: i64| {
        let mut to = check(CheckKind::Document, vec![doc(dst)], &[CREATE]);
        to.source = "body:target.id".into();
        mgmt(
            &["content"],
            vec![check(CheckKind::Document, vec![doc(src)], &[MOVE]), to],
        )
    };
    assert_eq!(denied(&run(&u, &mv(1070, 1062))), None);
    assert_eq!(
        denied(&run(&u, &mv(1070, 1080))),
        Some(DenyReason::MissingVerb)
    );
    let no_move = custom_group("g", &[CREATE], &[]);
    let u = user(vec![no_move], &[]);
    assert_eq!(
        denied(&run(&u, &mv(1070, 1062))),
        Some(DenyReason::MissingVerb)
    );
}

#[test]
fn sort_needs_sort_on_the_parent_and_every_item() {
    let g = custom_group("g", &[SORT], &[(1063, &[READ])]);
    let u = user(vec![g], &[]);
    let sort = |items: Vec<NodeRef>| {
        mgmt(
            &["content"],
            vec![
                check(CheckKind::Document, vec![doc(1051)], &[SORT]),
                check(CheckKind::Document, items, &[SORT]),
            ],
        )
    };
    assert_eq!(denied(&run(&u, &sort(vec![doc(1062)]))), None);
    assert_eq!(
        denied(&run(&u, &sort(vec![doc(1062), doc(1063)]))),
        Some(DenyReason::MissingVerb)
    );
}

#[test]
fn creating_at_the_root_needs_root_access() {
    let t = mgmt(
        &["content"],
        vec![check(CheckKind::Document, vec![NodeRef::Root], &[CREATE])],
    );
    let below = user(vec![builtin("editor")], &["-1,1051"]);
    assert_eq!(
        denied(&run(&below, &t)),
        Some(DenyReason::OutsideStartNodes)
    );
    let root = user(vec![builtin("editor")], &[]);
    assert_eq!(denied(&run(&root, &t)), None);
}

#[test]
fn the_recycle_bin_needs_root_access() {
    let t = mgmt(
        &["content"],
        vec![check(
            CheckKind::Document,
            vec![NodeRef::RecycleBin],
            &[DELETE],
        )],
    );
    let below = user(vec![builtin("editor")], &["-1,1051"]);
    assert_eq!(
        denied(&run(&below, &t)),
        Some(DenyReason::OutsideStartNodes)
    );
    assert_eq!(denied(&run(&user(vec![builtin("editor")], &[]), &t)), None);
}

#[test]
fn a_trashed_node_is_in_the_recycle_bin_and_only_root_users_reach_it() {
    let trashed = resolved().nodes_by_id[&1090].clone().expect("known");
    assert!(trashed.path.in_recycle_bin());
    let mut g = builtin("editor");
    g.content_start = Some(p("-1,1090"));
    let u = user(vec![g], &[]);
    assert_eq!(
        denied(&run(&u, &edit(1090))),
        Some(DenyReason::OutsideStartNodes)
    );
    assert_eq!(
        denied(&run(&user(vec![builtin("editor")], &[]), &edit(1090))),
        None
    );
}

#[test]
fn a_node_flagged_trashed_is_refused_even_if_its_path_lags() {
    let mut r = resolved();
    let mut n = (*r.nodes[&key(1062)].clone().expect("known")).clone();
    n.trashed = true;
    r.nodes.insert(n.key, Some(std::sync::Arc::new(n)));
    let u = user(vec![builtin("editor")], &["-1,1051"]);
    let d = run_with(&u, &edit(1062), &r, &DecisionPolicy::default());
    assert_eq!(denied(&d), Some(DenyReason::OutsideStartNodes));
}

#[test]
fn disabled_locked_and_invited_users_are_denied_on_every_request() {
    for state in [UserState::Disabled, UserState::Locked, UserState::Invited] {
        let mut u = user(vec![builtin("admin")], &[]);
        u.state = state;
        let mut t = edit(1051);
        assert_eq!(denied(&run(&u, &t)), Some(DenyReason::UserDisabled));
        t.sections = SectionPolicy::Backoffice;
        t.checks.clear();
        assert_eq!(denied(&run(&u, &t)), Some(DenyReason::UserDisabled));
    }
}

#[test]
fn admin_only_routes_need_the_admin_alias() {
    let mut t = edit(1051);
    t.sections = SectionPolicy::Admin;
    t.checks.clear();
    assert_eq!(
        denied(&run(&user(vec![builtin("editor")], &[]), &t)),
        Some(DenyReason::AdminRequired)
    );
    assert_eq!(denied(&run(&user(vec![builtin("admin")], &[]), &t)), None);
}

#[test]
fn backoffice_routes_pass_any_approved_user_and_anonymous_routes_pass_anyone() {
    let mut t = mgmt(&[], vec![]);
    t.sections = SectionPolicy::Backoffice;
    assert_eq!(
        denied(&run(&user(vec![builtin("sensitiveData")], &[]), &t)),
        None
    );
    t.sections = SectionPolicy::Anonymous;
    let anon = anonymous();
    let d = authorize(
        &t,
        &Who::new(&anon),
        &Resolved::default(),
        &DecisionPolicy::default(),
    );
    assert_eq!(denied(&d), None);
    t.sections = SectionPolicy::Backoffice;
    let d = authorize(
        &t,
        &Who::new(&anon),
        &Resolved::default(),
        &DecisionPolicy::default(),
    );
    assert_eq!(denied(&d), Some(DenyReason::Unauthenticated));
}

#[test]
fn a_user_unknown_to_the_store_is_denied() {
    let principal = user_principal();
    let d = authorize(
        &edit(1051),
        &Who::new(&principal),
        &resolved(),
        &DecisionPolicy::default(),
    );
    assert_eq!(denied(&d), Some(DenyReason::UnknownPrincipal));
}

#[test]
fn a_section_is_matched_case_insensitively() {
    let u = user(vec![builtin("editor")], &[]);
    let t = mgmt(&["Content"], vec![]);
    assert_eq!(denied(&run(&u, &t)), None);
}

#[test]
fn a_culture_outside_the_users_languages_is_refused() {
    let mut g = builtin("editor");
    g.languages = LanguageAccess::Only(["en-us".to_string()].into());
    let u = user(vec![g], &[]);
    let mut t = publish(1051);
    t.cultures = vec!["EN-us".into()];
    assert_eq!(denied(&run(&u, &t)), None, "case-insensitive");
    t.cultures.push("da-dk".into());
    assert_eq!(denied(&run(&u, &t)), Some(DenyReason::CultureNotAllowed));
}

#[test]
fn languages_are_unioned_and_all_languages_wins() {
    let mut a = builtin("editor");
    a.languages = LanguageAccess::Only(["en-us".to_string()].into());
    let mut b = custom_group("b", &[], &[]);
    b.languages = LanguageAccess::Only(["da-dk".to_string()].into());
    let mut t = publish(1051);
    t.cultures = vec!["en-us".into(), "da-dk".into()];
    assert_eq!(denied(&run(&user(vec![a.clone(), b], &[]), &t)), None);
    t.cultures.push("de-de".into());
    let mut all = custom_group("c", &[], &[]);
    all.languages = LanguageAccess::All;
    assert_eq!(denied(&run(&user(vec![a, all], &[]), &t)), None);
}

#[test]
fn media_has_no_verbs_only_path_access() {
    let mut g = builtin("writer");
    g.media_start = Some(p("-1,2000"));
    let u = user(vec![g], &[]);
    let t = mgmt(
        &["media"],
        vec![check(CheckKind::Media, vec![doc(2001)], &[DELETE])],
    );
    let t = Target {
        sections: SectionPolicy::Backoffice,
        ..t
    };
    assert_eq!(denied(&run(&u, &t)), None);
    let mut other = builtin("writer");
    other.media_start = Some(p("-1,1051"));
    let u = user(vec![other], &[]);
    assert_eq!(denied(&run(&u, &t)), Some(DenyReason::OutsideStartNodes));
}

#[test]
fn media_checks_use_media_start_nodes_not_content_start_nodes() {
    let mut g = builtin("editor");
    g.media_start = None;
    let u = user(vec![g], &[]);
    let t = mgmt(
        &["media"],
        vec![check(CheckKind::Media, vec![doc(2001)], &[])],
    );
    assert_eq!(denied(&run(&u, &t)), Some(DenyReason::OutsideStartNodes));
}
