//! Warm decision: a user in 5 groups, a node at depth 12, 200 explicit entries. Everything is
//! already resolved (as when the caches are warm); this measures `authorize` alone.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::authn::{Principal, PrincipalKind, Subject};
use portcullis::authz::{
    authorize, builtin_groups, calculate_start_nodes, verbs, DecisionPolicy, NodeInfo, NodeKind,
    NodePath, Resolved, UserAccess, UserState, VerbSet, Who,
};
use portcullis::request::{Api, CheckKind, CheckScope, NodeCheck, NodeRef, SectionPolicy, Target};
use std::sync::Arc;
use uuid::Uuid;

fn setup() -> (Target, Principal, UserAccess, Resolved) {
    // Path -1,1000,1001,…,1011: the node 1011 is at depth 12.
    let ids: Vec<i64> = std::iter::once(-1).chain(1000..1012).collect();
    let path = NodePath(Arc::from(ids.as_slice()));
    let mut groups = builtin_groups();
    groups.truncate(4);
    let mut extra = groups[1].clone();
    extra.key = Uuid::from_u128(9);
    extra.alias = "reviewers".into();
    groups.push(extra);
    // 200 explicit entries: 40 per group, most off the path, a few on ancestors.
    for (gi, g) in groups.iter_mut().enumerate() {
        for e in 0..40i64 {
            let node = if e % 13 == 0 {
                1000 + (e + gi as i64) % 8
            } else {
                50_000 + e * 7 + gi as i64 * 1000
            };
            let set: VerbSet = if e % 2 == 0 {
                [verbs::READ, verbs::UPDATE].iter().collect()
            } else {
                verbs::ALL_DOCUMENT.iter().collect()
            };
            g.granular.insert(node, set);
        }
    }
    let starts: Vec<NodePath> = groups
        .iter()
        .filter_map(|g| g.content_start.clone())
        .collect();
    let access = UserAccess {
        user_key: Uuid::from_u128(1),
        external_id: "bench".into(),
        name: "Bench".into(),
        state: UserState::Active,
        content_start_nodes: calculate_start_nodes(
            &starts,
            &[NodePath::parse("-1,1000,1001").expect("path")],
        ),
        media_start_nodes: calculate_start_nodes(&starts, &[]),
        groups: groups.into_iter().map(Arc::new).collect(),
    };
    let key = Uuid::from_u128(1011);
    let mut resolved = Resolved::default();
    resolved.nodes.insert(
        key,
        Some(Arc::new(NodeInfo {
            key,
            id: 1011,
            kind: NodeKind::Document,
            path,
            trashed: false,
            route_path: None,
            public_access: None,
        })),
    );
    let target = Target {
        api: Api::Management,
        route: Arc::from("document.update"),
        sections: SectionPolicy::AnyOf(vec!["content".into()].into()),
        checks: vec![NodeCheck {
            kind: CheckKind::Document,
            scope: CheckScope::Node,
            source: "path:id".into(),
            nodes: vec![NodeRef::Key(key)],
            verbs: vec![verbs::UPDATE.into(), verbs::PUBLISH.into()].into(),
        }],
        cultures: vec![],
        delivery: None,
    };
    let principal = Principal {
        id: "jwt:https://idp#bench".into(),
        kind: PrincipalKind::Jwt {
            issuer: Arc::from("https://idp"),
        },
        subject: Subject::User {
            external_id: "bench".into(),
            mapped_groups: vec![],
            idp_groups: vec![],
        },
    };
    (target, principal, access, resolved)
}

fn warm_decision(c: &mut Criterion) {
    let (target, principal, access, resolved) = setup();
    let policy = DecisionPolicy::default();
    let who = Who::new(&principal).with_access(&access);
    assert!(matches!(
        authorize(&target, &who, &resolved, &policy),
        portcullis::authz::Decision::Allow(_)
    ));
    c.bench_function("authz/warm_decision_5_groups_depth_12_200_entries", |b| {
        b.iter(|| {
            authorize(
                black_box(&target),
                black_box(&who),
                black_box(&resolved),
                &policy,
            )
        })
    });
}

criterion_group!(benches, warm_decision);
criterion_main!(benches);
