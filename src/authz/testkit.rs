//! Test fixtures: a small content tree, users built from the built-in groups, principals and
//! targets. Test-only.

use super::builtin::builtin_groups;
use super::lookup::Resolved;
use super::model::*;
use super::start_nodes::calculate_start_nodes;
use crate::authn::{ApiKeyScope, Principal, PrincipalKind, Subject};
use crate::request::{
    Api, CheckKind, CheckScope, DeliveryQuery, NodeCheck, NodeRef, SectionPolicy, Target,
};
use std::sync::Arc;
use uuid::Uuid;

pub fn key(id: NodeId) -> Uuid {
    Uuid::from_u128(id.unsigned_abs() as u128 + 0x1000)
}

pub fn p(s: &str) -> NodePath {
    NodePath::parse(s).expect("valid path")
}

pub fn node(path: &str, kind: NodeKind) -> Arc<NodeInfo> {
    let path = p(path);
    Arc::new(NodeInfo {
        key: key(path.node()),
        id: path.node(),
        kind,
        trashed: path.in_recycle_bin(),
        route_path: None,
        public_access: None,
        path,
    })
}

/// ```text
/// -1 ─ 1051 ─ 1062 ─ 1070
///    │      └ 1063 ─ 1080
///    ├ 10
///    └ -20 ─ 1090 (trashed)
/// -1 ─ 2000 ─ 2001 (media)
/// ```
pub fn tree() -> Vec<Arc<NodeInfo>> {
    use NodeKind::*;
    vec![
        node("-1,1051", Document),
        node("-1,1051,1062", Document),
        node("-1,1051,1062,1070", Document),
        node("-1,1051,1063", Document),
        node("-1,1051,1063,1080", Document),
        node("-1,10", Document),
        node("-1,-20,1090", Document),
        node("-1,2000", Media),
        node("-1,2000,2001", Media),
    ]
}

/// Every tree node known by key and id; none is protected.
pub fn resolved() -> Resolved {
    let mut r = Resolved {
        protected: Some(Default::default()),
        ..Resolved::default()
    };
    for n in tree() {
        r.nodes.insert(n.key, Some(n.clone()));
        r.nodes_by_id.insert(n.id, Some(n));
    }
    r
}

pub fn builtin(alias: &str) -> GroupPolicy {
    builtin_groups()
        .into_iter()
        .find(|g| &*g.alias == alias)
        .expect("built-in group")
}

/// A user of `groups` with own content start nodes `user_starts`.
pub fn user(groups: Vec<GroupPolicy>, user_starts: &[&str]) -> UserAccess {
    let cs: Vec<NodePath> = groups
        .iter()
        .filter_map(|g| g.content_start.clone())
        .collect();
    let ms: Vec<NodePath> = groups
        .iter()
        .filter_map(|g| g.media_start.clone())
        .collect();
    let us: Vec<NodePath> = user_starts.iter().map(|s| p(s)).collect();
    UserAccess {
        user_key: Uuid::from_u128(7),
        external_id: "alice".into(),
        name: "Alice".into(),
        state: UserState::Active,
        content_start_nodes: calculate_start_nodes(&cs, &us),
        media_start_nodes: calculate_start_nodes(&ms, &[]),
        groups: groups.into_iter().map(Arc::new).collect(),
    }
}

pub fn user_principal() -> Principal {
    Principal {
        id: "jwt:https://idp#alice".into(),
        kind: PrincipalKind::Jwt {
            issuer: Arc::from("https://idp"),
        },
        subject: Subject::User {
            external_id: "alice".into(),
            mapped_groups: vec![],
            idp_groups: vec![],
        },
    }
}

pub fn anonymous() -> Principal {
    Principal {
        id: "anonymous".into(),
        kind: PrincipalKind::Anonymous,
        subject: Subject::Anonymous,
    }
}

pub fn member(username: &str, groups: &[&str]) -> Principal {
    Principal {
        id: format!("member:{username}").into(),
        kind: PrincipalKind::Jwt {
            issuer: Arc::from("https://members"),
        },
        subject: Subject::Member {
            username: username.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        },
    }
}

pub fn scope(roots: &[NodeId]) -> ApiKeyScope {
    ApiKeyScope {
        key_id: "k1".into(),
        name: "site".into(),
        apis: vec![Api::Delivery],
        subtree_roots: roots.iter().map(|id| key(*id)).collect(),
        cultures: vec![],
        preview: false,
        acts_as: None,
        rate_limit_rps: None,
    }
}

pub fn key_principal(scope: ApiKeyScope) -> Principal {
    Principal::clone(&crate::authn::key_principal(&Arc::new(scope)))
}

pub fn check(kind: CheckKind, nodes: Vec<NodeRef>, verbs: &[&str]) -> NodeCheck {
    NodeCheck {
        kind,
        scope: CheckScope::Node,
        source: "path:id".into(),
        nodes,
        verbs: verbs.iter().map(|v| Arc::from(*v)).collect(),
    }
}

pub fn doc(id: NodeId) -> NodeRef {
    NodeRef::Key(key(id))
}

pub fn mgmt(sections: &[&str], checks: Vec<NodeCheck>) -> Target {
    Target {
        api: Api::Management,
        route: Arc::from("test.route"),
        sections: SectionPolicy::AnyOf(sections.iter().map(|s| s.to_string()).collect()),
        checks,
        cultures: vec![],
        delivery: None,
    }
}

pub fn delivery(checks: Vec<NodeCheck>, q: DeliveryQuery) -> Target {
    Target {
        api: Api::Delivery,
        route: Arc::from("delivery.content"),
        sections: SectionPolicy::Anonymous,
        checks,
        cultures: vec![],
        delivery: Some(q),
    }
}

/// A group with `verbs` as defaults, root start nodes and the given granular entries.
pub fn custom_group(alias: &str, verbs: &[&str], entries: &[(NodeId, &[&str])]) -> GroupPolicy {
    let mut g = builtin("writer");
    g.key = Uuid::new_v4();
    g.alias = alias.into();
    g.default_verbs = verbs.iter().collect();
    for (id, set) in entries {
        g.granular.insert(*id, set.iter().collect());
    }
    g
}
