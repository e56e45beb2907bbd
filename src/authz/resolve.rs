//! Umbraco's effective-permission algorithm (UMBRACO.md §5) and start-node path access (§6),
//! optimised for the warm path: no allocation, one walk of the node path per group.
//!
//! Called by `decide` for every node check; `explain` reads the same [`GroupAt`] values as
//! evidence, so what is explained is what was decided.

use super::model::{GroupPolicy, NodeId, NodePath, StartNodes, VerbSet, ROOT_ID};
use smallvec::SmallVec;
use std::sync::Arc;

/// One group's verb set on one node, and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct GroupAt<'a> {
    pub group: &'a GroupPolicy,
    /// The set that applies: the nearest explicit entry's, or the group's defaults.
    pub verbs: &'a VerbSet,
    /// The node carrying the explicit entry that applied; `None` when the defaults applied.
    pub entry_on: Option<NodeId>,
}

/// The per-group sets of a user on one node; the effective verbs are their union.
#[derive(Debug, Clone)]
pub struct Resolution<'a> {
    pub per_group: SmallVec<[GroupAt<'a>; 8]>,
}

impl<'a> Resolution<'a> {
    /// The first group (in the user's group order) whose set holds `verb`, or `None` when the
    /// union does not contain it.
    pub fn grant_for(&self, verb: &str) -> Option<&GroupAt<'a>> {
        self.per_group.iter().find(|g| g.verbs.contains_str(verb))
    }

    /// The effective verbs (the union over groups). Allocates: for explain and tests.
    pub fn effective(&self) -> VerbSet {
        VerbSet(
            self.per_group
                .iter()
                .flat_map(|g| g.verbs.iter().cloned())
                .collect(),
        )
    }
}

/// The verb set `group` has on the node at `path`: walking the path deepest → shallowest, the
/// first explicit entry for the group wins (an empty entry is a real "nothing"); without one,
/// the group's default verbs.
pub fn group_verbs_at<'a>(group: &'a GroupPolicy, path: &NodePath) -> GroupAt<'a> {
    if !group.granular.is_empty() {
        for id in path.ids().iter().rev() {
            if let Some(set) = group.granular.get(id) {
                return GroupAt {
                    group,
                    verbs: set,
                    entry_on: Some(*id),
                };
            }
        }
    }
    GroupAt {
        group,
        verbs: &group.default_verbs,
        entry_on: None,
    }
}

/// Resolves every group of a user on the node at `path` (UMBRACO.md §5). Entries of different
/// groups never override each other: each group is resolved on its own.
pub fn resolve_at<'a>(groups: &'a [Arc<GroupPolicy>], path: &NodePath) -> Resolution<'a> {
    Resolution {
        per_group: groups.iter().map(|g| group_verbs_at(g, path)).collect(),
    }
}

/// Umbraco `ContentPermissions.HasPathAccess`: root start nodes see everything (also the
/// recycle bin); otherwise a node in a recycle bin (or flagged trashed) is refused, and any
/// other node passes when one start node's id is a whole segment of its path. An empty start
/// node list refuses everything.
pub fn has_path_access(start: &StartNodes, path: &NodePath, trashed: bool) -> bool {
    if start.has_root() {
        return true;
    }
    if trashed || path.in_recycle_bin() {
        return false;
    }
    start.0.iter().any(|s| {
        let id = s.node();
        // Root as a *path* segment never grants: only a start node equal to root does (above).
        id != ROOT_ID && path.contains(id)
    })
}

/// The start node that grants path access to `path` (`-1` for root users), for evidence.
pub fn granting_start_node(start: &StartNodes, path: &NodePath, trashed: bool) -> Option<NodeId> {
    if start.has_root() {
        return Some(ROOT_ID);
    }
    if trashed || path.in_recycle_bin() {
        return None;
    }
    start
        .0
        .iter()
        .map(NodePath::node)
        .find(|id| *id != ROOT_ID && path.contains(*id))
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
