//! "Why was I denied?": the decision with its evidence. [`explain`] runs the very same code as
//! [`authorize`](super::authorize) with evidence collection switched on, so the explanation
//! cannot drift from the decision. Used by `portcullis explain` and `POST /v1/explain`.

use super::decide::decide;
use super::lookup::{Resolved, Who};
use super::model::{NodeId, UserState};
use super::policy::DecisionPolicy;
use super::resolve::Resolution;
use super::Decision;
use crate::request::{Api, CheckKind, CheckScope, NodeCheck, NodeRef, SectionPolicy, Target};
use serde::Serialize;

/// Evidence gathered while deciding; filled only when explaining.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trace {
    /// One entry per node looked at, in check order.
    pub nodes: Vec<NodeEvidence>,
    /// What failed, in words, when the decision is a deny.
    pub failed: Option<String>,
}

/// What the decision saw on one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeEvidence {
    /// The route-table source of the check (`path:id`, `body:target.id`, `start-item`, …).
    pub check: String,
    pub kind: CheckKind,
    pub node: NodeRef,
    /// The mirror's integer id and path; `None` when the node is unknown.
    pub id: Option<NodeId>,
    pub path: Option<String>,
    pub trashed: bool,
    /// The start node that gave path access (`-1` = root), `None` when refused or not checked.
    pub start_node: Option<NodeId>,
    /// Each group's set on this node and the entry it came from.
    pub groups: Vec<GroupEvidence>,
    /// Verbs the check required; `missing` those the union did not contain.
    pub required: Vec<String>,
    pub missing: Vec<String>,
    /// Anything else worth saying (unknown node deferred, key scope root, member protection).
    pub note: Option<String>,
}

/// One group's verbs on a node: from the explicit entry on `entry_on`, or its defaults.
#[derive(Debug, Clone, Serialize)]
pub struct GroupEvidence {
    pub group: String,
    pub entry_on: Option<NodeId>,
    pub verbs: Vec<String>,
}

impl GroupEvidence {
    /// The evidence of every group in a resolution.
    pub fn from_resolution(r: &Resolution<'_>) -> Vec<GroupEvidence> {
        r.per_group
            .iter()
            .map(|g| GroupEvidence {
                group: g.group.alias.to_string(),
                entry_on: g.entry_on,
                verbs: g.verbs.iter().map(|v| v.as_str().to_string()).collect(),
            })
            .collect()
    }
}

/// Who asked, for the explanation.
#[derive(Debug, Clone, Serialize)]
pub struct PrincipalEvidence {
    pub id: String,
    pub kind: &'static str,
    pub user: Option<String>,
    pub state: Option<UserState>,
}

/// The decision with everything that led to it.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub route: String,
    pub api: Api,
    pub sections: SectionPolicy,
    pub principal: PrincipalEvidence,
    /// Group aliases of the user (empty for keys and anonymous callers).
    pub groups: Vec<String>,
    /// Calculated start nodes as paths.
    pub content_start_nodes: Vec<String>,
    pub media_start_nodes: Vec<String>,
    pub cultures: Vec<String>,
    pub nodes: Vec<NodeEvidence>,
    pub decision: Decision,
    /// The stable deny reason id, `None` for an allow.
    pub deny_reason: Option<&'static str>,
    pub failed: Option<String>,
}

/// Decides like [`authorize`](super::authorize) and returns the decision with its evidence.
pub fn explain(
    target: &Target,
    who: &Who<'_>,
    resolved: &Resolved,
    policy: &DecisionPolicy,
) -> Evidence {
    let mut trace = Trace::default();
    let decision = decide(target, who, resolved, policy, Some(&mut trace));
    let access = who.access;
    let paths = |s: &super::model::StartNodes| s.0.iter().map(|p| p.to_string()).collect();
    Evidence {
        route: target.route.to_string(),
        api: target.api,
        sections: target.sections.clone(),
        principal: PrincipalEvidence {
            id: who.principal.id.to_string(),
            kind: who.principal.kind.as_str(),
            user: access.map(|a| a.name.clone()),
            state: access.map(|a| a.state),
        },
        groups: access
            .map(|a| a.groups.iter().map(|g| g.alias.to_string()).collect())
            .unwrap_or_default(),
        content_start_nodes: access
            .map(|a| paths(&a.content_start_nodes))
            .unwrap_or_default(),
        media_start_nodes: access
            .map(|a| paths(&a.media_start_nodes))
            .unwrap_or_default(),
        cultures: target.cultures.clone(),
        nodes: trace.nodes,
        deny_reason: match &decision {
            Decision::Deny(r) => Some(r.as_str()),
            Decision::Allow(_) => None,
        },
        decision,
        failed: trace.failed,
    }
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;

/// Evidence for a node before anything is known of it.
pub(crate) fn evidence(check: &str, kind: CheckKind, r: &NodeRef) -> NodeEvidence {
    NodeEvidence {
        check: check.to_string(),
        kind,
        node: r.clone(),
        id: None,
        path: None,
        trashed: false,
        start_node: None,
        groups: Vec::new(),
        required: Vec::new(),
        missing: Vec::new(),
        note: None,
    }
}

pub(super) fn located_evidence(
    check: &NodeCheck,
    r: &NodeRef,
    loc: &super::decide::Located,
    start_node: Option<NodeId>,
    res: Option<&Resolution<'_>>,
    missing: &[String],
) -> NodeEvidence {
    NodeEvidence {
        id: Some(loc.id),
        path: Some(loc.path.to_string()),
        trashed: loc.trashed,
        start_node,
        groups: res.map(GroupEvidence::from_resolution).unwrap_or_default(),
        required: check.verbs.iter().map(|v| v.to_string()).collect(),
        missing: missing.to_vec(),
        note: (check.scope == CheckScope::Branch)
            .then(|| "branch: the verb must also hold below the node".to_string()),
        ..evidence(&check.source, check.kind, r)
    }
}
