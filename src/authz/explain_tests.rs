//! `explain` and the lookup loop the lead runs before `authorize`.

use super::super::testkit::*;
use super::super::*;
use crate::request::{CheckKind, CheckScope, DeliveryQuery, FetchAxis, NodeRef};
use model::verbs::*;
use std::sync::Arc;

#[test]
fn explain_reports_the_entry_and_ancestor_that_gave_each_groups_verbs() {
    let g = custom_group("g", &[READ], &[(1051, &[READ, UPDATE])]);
    let u = user(vec![g, builtin("translator")], &["-1,1051"]);
    let t = mgmt(
        &["content"],
        vec![check(CheckKind::Document, vec![doc(1070)], &[PUBLISH])],
    );
    let principal = user_principal();
    let who = Who::new(&principal).with_access(&u);
    let e = explain(&t, &who, &resolved(), &DecisionPolicy::default());
    assert_eq!(e.deny_reason, Some("missing_verb"));
    assert_eq!(
        e.decision,
        authorize(&t, &who, &resolved(), &DecisionPolicy::default())
    );
    assert_eq!(e.groups, vec!["g", "translator"]);
    assert_eq!(e.content_start_nodes, vec!["-1,1051"]);
    let n = &e.nodes[0];
    assert_eq!(n.path.as_deref(), Some("-1,1051,1062,1070"));
    assert_eq!(n.start_node, Some(1051));
    assert_eq!(n.groups[0].entry_on, Some(1051));
    assert_eq!(n.groups[1].entry_on, None);
    assert_eq!(n.missing, vec![PUBLISH.to_string()]);
    assert!(e.failed.as_deref().is_some_and(|f| f.contains(PUBLISH)));
    let json = serde_json::to_value(&e).expect("serialises");
    assert_eq!(json["decision"]["decision"], "deny");
}

#[test]
fn explain_and_authorize_agree_on_an_allow() {
    let u = user(vec![builtin("admin")], &[]);
    let t = mgmt(
        &["content"],
        vec![check(CheckKind::Document, vec![doc(1062)], &[PUBLISH])],
    );
    let principal = user_principal();
    let who = Who::new(&principal).with_access(&u);
    let e = explain(&t, &who, &resolved(), &DecisionPolicy::default());
    assert!(matches!(e.decision, Decision::Allow(_)));
    assert_eq!(
        e.decision,
        authorize(&t, &who, &resolved(), &DecisionPolicy::default())
    );
    assert_eq!(e.deny_reason, None);
    assert_eq!(e.nodes[0].groups[0].group, "admin");
}

/// A fake store over the test tree, answering each lookup like the lead's loop would.
fn fill(r: &mut Resolved, lookups: Vec<Lookup>) {
    let tree = tree();
    for l in lookups {
        match &l {
            Lookup::Node(k) => {
                let n = tree.iter().find(|n| n.key == *k).cloned();
                r.put_node(&l, n);
            }
            Lookup::NodeById(id) => {
                let n = tree.iter().find(|n| n.id == *id).cloned();
                r.put_node(&l, n);
            }
            Lookup::RoutePath(_) => r.put_node(&l, None),
            Lookup::VersionOwner(v) => {
                r.version_owners.insert(*v, Some(key(1062)));
            }
            Lookup::User(u) => {
                r.users.insert(*u, Some(UserFacts { is_admin: false }));
            }
            Lookup::DefaultCulture => r.default_culture = Some(None),
            // 1051 is listed (its node carries no entry: a list older than the node).
            Lookup::ProtectedNodes => r.protected = Some(Arc::new(ProtectedNodes::new(vec![1051]))),
        }
    }
}

fn settle(t: &crate::request::Target, who: &Who<'_>) -> (Resolved, usize) {
    let mut r = Resolved::default();
    let mut todo = required_refs(t, who.principal);
    let mut rounds = 0;
    while !todo.is_empty() {
        rounds += 1;
        assert!(rounds <= 3, "the lookup loop must settle");
        fill(&mut r, todo);
        todo = next_refs(t, who, &r);
    }
    (r, rounds)
}

#[test]
fn the_lookup_loop_resolves_versions_in_two_rounds() {
    let version = uuid::Uuid::from_u128(77);
    let t = mgmt(
        &["content"],
        vec![check(
            CheckKind::DocumentVersion,
            vec![NodeRef::Key(version)],
            &[READ],
        )],
    );
    let u = user(vec![builtin("writer")], &[]);
    let principal = user_principal();
    let who = Who::new(&principal).with_access(&u);
    assert_eq!(
        required_refs(&t, &principal),
        vec![Lookup::VersionOwner(version)]
    );
    let (r, rounds) = settle(&t, &who);
    assert_eq!(rounds, 2);
    assert!(matches!(
        authorize(&t, &who, &r, &DecisionPolicy::default()),
        Decision::Allow(_)
    ));
}

#[test]
fn the_lookup_loop_fetches_ancestors_and_key_scope_roots_for_delivery() {
    let k = key_principal(scope(&[1062]));
    let t = delivery(
        vec![check(CheckKind::Document, vec![doc(1070)], &[])],
        DeliveryQuery {
            fetch: Some((FetchAxis::Children, doc(1062))),
            ..Default::default()
        },
    );
    let first = required_refs(&t, &k);
    assert_eq!(
        first,
        vec![
            Lookup::Node(key(1070)),
            Lookup::ProtectedNodes,
            Lookup::Node(key(1062))
        ]
    );
    let who = Who::new(&k);
    let (r, rounds) = settle(&t, &who);
    assert_eq!(rounds, 2);
    assert!(
        r.nodes_by_id.contains_key(&1051),
        "protected ancestor fetched for member protection"
    );
    assert!(matches!(
        authorize(&t, &who, &r, &DecisionPolicy::default()),
        Decision::Allow(_)
    ));
}

/// A Delivery item request for the node `id`, of `kind`.
fn delivery_item(kind: CheckKind, id: i64) -> crate::request::Target {
    delivery(
        vec![check(kind, vec![doc(id)], &[])],
        DeliveryQuery::default(),
    )
}

#[test]
fn the_lookup_loop_reads_only_the_protected_ancestors_of_a_delivery_item() {
    let k = key_principal(scope(&[]));
    let t = delivery_item(CheckKind::Document, 1070);
    let who = Who::new(&k);
    let (r, rounds) = settle(&t, &who);
    assert_eq!(
        rounds, 2,
        "the item and the list, then the one protected ancestor"
    );
    assert!(r.nodes_by_id.contains_key(&1051), "listed: read");
    assert!(!r.nodes_by_id.contains_key(&1062), "not listed: not read");
    assert_eq!(
        authorize(&t, &who, &r, &DecisionPolicy::default()),
        authorize(&t, &who, &resolved(), &DecisionPolicy::default()),
        "the same decision as with every node known"
    );
}

#[test]
fn a_delivery_media_item_asks_for_no_protected_node_list() {
    let k = key_principal(scope(&[]));
    let t = delivery_item(CheckKind::Media, 2001);
    assert_eq!(required_refs(&t, &k), vec![Lookup::Node(key(2001))]);
    let (r, rounds) = settle(&t, &Who::new(&k));
    assert_eq!((rounds, r.protected.is_none()), (1, true));
}

#[test]
fn the_lookup_loop_fetches_entry_nodes_for_branch_checks() {
    let g = custom_group("g", &[PUBLISH], &[(1070, &[])]);
    let u = user(vec![g], &[]);
    let mut c = check(CheckKind::Document, vec![doc(1062)], &[PUBLISH]);
    c.scope = CheckScope::Branch;
    let t = mgmt(&["content"], vec![c]);
    let principal = user_principal();
    let who = Who::new(&principal).with_access(&u);
    let (r, _) = settle(&t, &who);
    assert!(r.nodes_by_id.contains_key(&1070));
    assert_eq!(
        authorize(&t, &who, &r, &DecisionPolicy::default()),
        Decision::Deny(DenyReason::MissingVerb)
    );
}

#[test]
fn user_checks_ask_for_the_target_users() {
    let target_user = uuid::Uuid::from_u128(5);
    let t = mgmt(
        &["users"],
        vec![check(CheckKind::User, vec![NodeRef::Key(target_user)], &[])],
    );
    assert_eq!(
        required_refs(&t, &user_principal()),
        vec![Lookup::User(target_user)]
    );
    let groups = mgmt(
        &["users"],
        vec![check(
            CheckKind::UserGroup,
            vec![NodeRef::Key(target_user)],
            &[],
        )],
    );
    assert!(
        required_refs(&groups, &user_principal()).is_empty(),
        "group checks use the user's own groups"
    );
}

#[test]
fn put_node_indexes_a_node_found_by_path_under_its_key_and_id() {
    let mut r = Resolved::default();
    let n: Arc<NodeInfo> = tree()[0].clone();
    r.put_node(&Lookup::RoutePath("/home/".into()), Some(n.clone()));
    assert!(r.has(&Lookup::Node(n.key)));
    assert!(r.has(&Lookup::NodeById(n.id)));
}

#[test]
fn fact_maps_hash_a_key_the_same_way_every_time_and_in_every_resolved() {
    use std::hash::BuildHasher;
    let n: Arc<NodeInfo> = tree()[0].clone();
    let h = lookup::FactHasher;
    assert_eq!(h.hash_one(n.key), lookup::FactHasher.hash_one(n.key));
    let mut a = Resolved::default();
    a.put_node(&Lookup::NodeById(n.id), Some(n.clone()));
    let mut b = Resolved::default();
    b.put_node(&Lookup::Node(n.key), Some(n.clone()));
    for r in [&a, &b] {
        assert_eq!(r.nodes[&n.key].as_ref().map(|x| x.id), Some(n.id));
        assert_eq!(r.nodes_by_id[&n.id].as_ref().map(|x| x.key), Some(n.key));
    }
    assert!(!a.has(&Lookup::NodeById(n.id + 1)));
}

#[test]
fn builtin_groups_match_umbraco_md_section_4() {
    let groups = builtin_groups();
    let aliases: Vec<&str> = groups.iter().map(|g| &*g.alias).collect();
    assert_eq!(
        aliases,
        ["admin", "editor", "writer", "translator", "sensitiveData"]
    );
    assert_eq!(groups[0].default_verbs.len(), verbs::ALL_DOCUMENT.len());
    assert_eq!(groups[1].default_verbs.len(), verbs::ALL_DOCUMENT.len() - 2);
    assert!(!groups[1].default_verbs.contains_str(PERMISSIONS));
    assert_eq!(groups[2].default_verbs.len(), 6);
    assert!(!groups[2].default_verbs.contains_str(PUBLISH));
    assert_eq!(groups[3].default_verbs.len(), 4);
    assert!(groups[4].default_verbs.is_empty() && groups[4].content_start.is_none());
    assert_eq!(
        groups[4].key.to_string(),
        "8c6ad70f-d307-4e4a-af58-72c2e4e9439d"
    );
    assert!(groups[..4].iter().all(|g| g.content_start == Some(p("-1"))));
}
