//! Approximate heap bytes of cache entries, for the moka weighers under `cache.max_memory`.

use crate::authn::ApiKeyRecord;
use crate::authz::{GroupPolicy, NodeInfo, NodePath, StartNodes, UserAccess};
use std::sync::Arc;
use uuid::Uuid;

/// Approximate heap bytes of a node path.
fn path_bytes(p: &NodePath) -> usize {
    p.ids().len() * 8
}

#[allow(clippy::ptr_arg)] // the weigher's signature is `fn(&K, &V)` with `K = String`
pub(super) fn weigh_user(k: &String, a: &Arc<UserAccess>) -> usize {
    let starts = |s: &StartNodes| s.0.iter().map(path_bytes).sum::<usize>();
    k.len()
        + a.external_id.len()
        + a.name.len()
        + a.groups.len() * 8
        + starts(&a.content_start_nodes)
        + starts(&a.media_start_nodes)
        + 160
}

pub(super) fn weigh_group(_: &Uuid, g: &Arc<GroupPolicy>) -> usize {
    g.alias.len() + g.name.len() + g.sections.len() * 32 + g.granular.len() * 48 + 256
}

pub(super) fn weigh_node(_: &Uuid, n: &Arc<NodeInfo>) -> usize {
    let access = n.public_access.as_ref().map_or(0, |a| {
        a.member_groups
            .iter()
            .chain(&a.member_usernames)
            .map(|s| s.len() + 24)
            .sum::<usize>()
            + 64
    });
    path_bytes(&n.path) + n.route_path.as_ref().map_or(0, String::len) + access + 96
}

#[allow(clippy::ptr_arg)] // as above
pub(super) fn weigh_key(k: &String, r: &Arc<ApiKeyRecord>) -> usize {
    let s = &r.scope;
    let strings = |v: &[String]| v.iter().map(|x| x.len() + 24).sum::<usize>();
    k.len()
        + s.key_id.len()
        // The record's principal: its id and its copy of the key id.
        + r.principal.id.len()
        + s.key_id.len()
        + s.name.len()
        + strings(&s.cultures)
        + s.subtree_roots.len() * 16
        + 256
}
