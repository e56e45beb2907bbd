//! The resolver against UMBRACO.md §5–§6, and a property test comparing it with a direct,
//! obviously-correct transcription of the algorithm on random trees, groups and entries.

use super::super::decide::authorize;
use super::super::lookup::{Resolved, Who};
use super::super::model::*;
use super::super::policy::DecisionPolicy;
use super::super::start_nodes::calculate_start_nodes;
use super::super::testkit::{builtin, custom_group, p, user, user_principal};
use super::super::Decision;
use super::*;
use crate::request::{Api, CheckKind, CheckScope, NodeCheck, NodeRef, SectionPolicy, Target};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

#[test]
fn a_group_without_entries_on_the_path_has_its_defaults() {
    let g = builtin("writer");
    let at = group_verbs_at(&g, &p("-1,1051,1062"));
    assert_eq!(at.entry_on, None);
    assert_eq!(at.verbs, &g.default_verbs);
}

#[test]
fn the_deepest_entry_on_the_path_is_the_one_reported() {
    let g = custom_group("g", &[], &[(1051, &["a"]), (1062, &["b"]), (1070, &["c"])]);
    let at = group_verbs_at(&g, &p("-1,1051,1062,1063"));
    assert_eq!(at.entry_on, Some(1062));
    assert!(at.verbs.contains_str("b") && !at.verbs.contains_str("a"));
}

#[test]
fn the_effective_set_is_the_union_of_the_groups_sets() {
    let groups = vec![
        Arc::new(custom_group("a", &["x"], &[(1051, &["y"])])),
        Arc::new(custom_group("b", &["z"], &[])),
    ];
    let r = resolve_at(&groups, &p("-1,1051,1062"));
    assert_eq!(r.effective(), ["y", "z"].iter().collect::<VerbSet>());
    assert_eq!(r.grant_for("z").map(|g| &*g.group.alias), Some("b"));
    assert!(r.grant_for("x").is_none());
}

#[test]
fn root_start_nodes_see_the_recycle_bin_and_others_do_not() {
    let bin = p("-1,-20,1090");
    assert!(has_path_access(&StartNodes::root(), &bin, true));
    assert!(!has_path_access(
        &StartNodes(vec![p("-1,-20,1090")]),
        &bin,
        true
    ));
    assert!(!has_path_access(&StartNodes(vec![]), &p("-1,1051"), false));
}

#[test]
fn a_start_node_below_the_root_never_reaches_the_root_path() {
    assert!(!has_path_access(
        &StartNodes(vec![p("-1,1051")]),
        &p("-1"),
        false
    ));
}

/// Direct transcription of UMBRACO.md §5: for each group, among its entries on nodes of the
/// path take the deepest one, else its defaults; union the sets.
fn reference_effective(groups: &[GroupPolicy], path: &[i64]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for g in groups {
        let deepest = g
            .granular
            .iter()
            .filter_map(|(id, set)| path.iter().position(|x| x == id).map(|depth| (depth, set)))
            .max_by_key(|(depth, _)| *depth);
        let set = deepest.map(|(_, s)| s).unwrap_or(&g.default_verbs);
        out.extend(set.iter().map(|v| v.as_str().to_string()));
    }
    out
}

/// Direct transcription of `HasPathAccess` with Umbraco's string form `,{path},`.
fn reference_path_access(starts: &[i64], path: &[i64]) -> bool {
    if starts.contains(&-1) {
        return true;
    }
    let text: Vec<String> = path.iter().map(|i| i.to_string()).collect();
    let text = format!(",{},", text.join(","));
    if text.starts_with(",-1,-20,") || text.starts_with(",-1,-21,") {
        return false;
    }
    starts.iter().any(|s| text.contains(&format!(",{s},")))
}

const POOL: [&str; 5] = [
    verbs::READ,
    verbs::UPDATE,
    verbs::PUBLISH,
    verbs::DELETE,
    "Custom.Unknown",
];

fn verb_set(mask: u8) -> VerbSet {
    POOL.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, v)| *v)
        .collect()
}

/// A random forest of `n` nodes with ids 100.., each a child of an earlier node or the root;
/// node 100 may be the recycle bin's child.
fn paths(parents: &[usize], trash_first: bool) -> Vec<Vec<i64>> {
    let mut out: Vec<Vec<i64>> = Vec::new();
    for (i, parent) in parents.iter().enumerate() {
        let id = 100 + i as i64;
        let mut path = if i == 0 || *parent % (i + 1) == i {
            if i == 0 && trash_first {
                vec![-1, -20]
            } else {
                vec![-1]
            }
        } else {
            out[*parent % i].clone()
        };
        path.push(id);
        out.push(path);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_optimised_resolver_equals_the_direct_transcription(
        parents in prop::collection::vec(0usize..64, 1..24),
        trash_first in any::<bool>(),
        groups in prop::collection::vec(
            (0u8..32, prop::collection::vec((0usize..24, 0u8..32), 0..6), prop::option::of(0usize..25)),
            1..4,
        ),
        user_start in prop::option::of(0usize..24),
    ) {
        let tree = paths(&parents, trash_first);
        let n = tree.len();
        let path_of = |i: usize| NodePath(Arc::from(tree[i % n].as_slice()));
        let policies: Vec<GroupPolicy> = groups
            .iter()
            .enumerate()
            .map(|(gi, (defaults, entries, start))| {
                let mut g = custom_group(&format!("g{gi}"), &[], &[]);
                g.default_verbs = verb_set(*defaults);
                g.granular = entries
                    .iter()
                    .map(|(node, mask)| (tree[node % n].last().copied().unwrap_or(-1), verb_set(*mask)))
                    .collect::<HashMap<_, _>>();
                // `start == n` (or beyond) stands for the root.
                g.content_start = start.map(|s| if s >= n { p("-1") } else { path_of(s) });
                g
            })
            .collect();
        let group_starts: Vec<NodePath> = policies.iter().filter_map(|g| g.content_start.clone()).collect();
        let user_starts: Vec<NodePath> = user_start.map(path_of).into_iter().collect();
        let mut access = user(policies.clone(), &[]);
        access.content_start_nodes = calculate_start_nodes(&group_starts, &user_starts);
        let start_ids: Vec<i64> = access.content_start_nodes.0.iter().map(NodePath::node).collect();

        let mut resolved = Resolved::default();
        for path in &tree {
            let id = *path.last().unwrap_or(&-1);
            let info = Arc::new(NodeInfo {
                key: uuid::Uuid::from_u128(id as u128),
                id,
                kind: NodeKind::Document,
                path: NodePath(Arc::from(path.as_slice())),
                trashed: false,
                route_path: None,
                public_access: None,
            });
            resolved.nodes_by_id.insert(id, Some(info.clone()));
            resolved.nodes.insert(info.key, Some(info));
        }
        let principal = user_principal();
        let who = Who::new(&principal).with_access(&access);

        for path in &tree {
            let np = NodePath(Arc::from(path.as_slice()));
            let fast: BTreeSet<String> = resolve_at(&access.groups, &np)
                .effective()
                .iter()
                .map(|v| v.as_str().to_string())
                .collect();
            let slow = reference_effective(&policies, path);
            prop_assert_eq!(&fast, &slow, "effective verbs on {:?}", path);
            let access_ok = reference_path_access(&start_ids, path);
            prop_assert_eq!(has_path_access(&access.content_start_nodes, &np, false), access_ok);

            for verb in POOL {
                let target = Target {
                    api: Api::Management,
                    route: Arc::from("prop"),
                    sections: SectionPolicy::Backoffice,
                    checks: vec![NodeCheck {
                        kind: CheckKind::Document,
                        scope: CheckScope::Node,
                        source: "path:id".into(),
                        nodes: vec![NodeRef::Key(uuid::Uuid::from_u128(*path.last().unwrap_or(&-1) as u128))],
                        verbs: vec![Arc::<str>::from(verb.to_string())].into(),
                    }],
                    cultures: vec![],
                    delivery: None,
                };
                let allowed = matches!(authorize(&target, &who, &resolved, &DecisionPolicy::default()), Decision::Allow(_));
                prop_assert_eq!(allowed, access_ok && slow.contains(verb), "{} on {:?}", verb, path);

                // Publish with descendants: Umbraco's `AuthorizeDescendantsAccessAsync` checks
                // every descendant's union; Portcullis also checks the node itself.
                let id = *path.last().unwrap_or(&-1);
                let every_descendant = tree
                    .iter()
                    .filter(|d| d.len() > path.len() && d.contains(&id))
                    .all(|d| reference_effective(&policies, d).contains(verb));
                let mut branch = target.clone();
                branch.checks[0].scope = CheckScope::Branch;
                let allowed = matches!(authorize(&branch, &who, &resolved, &DecisionPolicy::default()), Decision::Allow(_));
                prop_assert_eq!(
                    allowed,
                    access_ok && slow.contains(verb) && every_descendant,
                    "branch {} on {:?}", verb, path
                );
            }
        }
    }
}
