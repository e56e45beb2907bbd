//! Publish with descendants (`scope = "branch"`), decided exactly without loading the subtree.
//!
//! Umbraco (`ContentPermissionService.AuthorizeDescendantsAccessAsync`) pages through every
//! descendant and requires the verb in each one's effective set — the union over the user's
//! groups, each group resolved at its nearest entry (`UserService.GetPermissionsForPath`).
//! A descendant's effective set equals the set at the deepest node on its path that carries an
//! entry of *any* of the user's groups: between that node and the descendant no group's
//! resolution changes. So the sets found anywhere in the branch are the set at the branch root
//! and the sets at the entry nodes inside the branch; checking those is exact.
//!
//! Portcullis also requires the verb on the branch root itself (Umbraco checks only its
//! descendants). Entry nodes the mirror does not know might lie in the branch: under the
//! `deny` unknown-node mode an unknown entry node whose own entry lacks the verb refuses the
//! branch; under `defer` it is ignored.

use super::decide::{Ctx, Located};
use super::model::{GroupPolicy, NodeId};
use super::policy::UnknownNodeMode;
use super::resolve::{resolve_at, GroupAt};
use super::DenyReason;
use std::collections::HashSet;
use std::sync::Arc;

/// Where inside a branch a verb was found, or the first node inside it that lacks it.
pub(crate) enum BranchVerb<'g> {
    /// The verb holds on every entry node inside the branch (the grant at each).
    Holds(Vec<(NodeId, GroupAt<'g>)>),
    /// The node (strictly below the branch root) whose effective set lacks the verb.
    MissingAt(NodeId),
}

impl Ctx<'_, '_, '_> {
    /// Checks `verb` at every node strictly inside the branch rooted at `root` whose effective
    /// set can differ from the root's (see the module docs). The root itself is checked by the
    /// caller. `Err(StoreUnavailable)` when an entry node was never looked up.
    pub(crate) fn branch_verb<'g>(
        &self,
        groups: &'g [Arc<GroupPolicy>],
        root: &Located,
        verb: &str,
        mode: UnknownNodeMode,
    ) -> Result<BranchVerb<'g>, DenyReason> {
        let mut seen: HashSet<NodeId> = HashSet::new();
        let mut grants = Vec::new();
        for g in groups {
            for (id, set) in &g.granular {
                if *id == root.id || seen.contains(id) {
                    continue;
                }
                let node = match self.resolved.nodes_by_id.get(id) {
                    None => return Err(DenyReason::StoreUnavailable),
                    Some(node) => node,
                };
                let Some(node) = node else {
                    if mode == UnknownNodeMode::Deny && !set.contains_str(verb) {
                        return Ok(BranchVerb::MissingAt(*id));
                    }
                    continue;
                };
                // Descendants by path, as Umbraco pages them (`GetPagedDescendants`).
                if !node.path.contains(root.id) {
                    continue;
                }
                seen.insert(*id);
                let grant = if set.contains_str(verb) {
                    // This group's nearest entry on the node is the node's own.
                    Some(GroupAt {
                        group: g,
                        verbs: set,
                        entry_on: Some(*id),
                    })
                } else {
                    resolve_at(groups, &node.path).grant_for(verb).copied()
                };
                match grant {
                    Some(at) => grants.push((*id, at)),
                    None => return Ok(BranchVerb::MissingAt(*id)),
                }
            }
        }
        grants.sort_by_key(|(id, _)| *id);
        Ok(BranchVerb::Holds(grants))
    }
}
