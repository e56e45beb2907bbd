//! Consistency checks of a [`PolicyFile`]: duplicates, dangling references, broken trees and
//! malformed hashes. Every problem is collected; nothing stops at the first.

use super::policy_file::{PolicyFile, StartRef};
use crate::authz::NodeKind;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Lists every problem of `f`, each prefixed with where it is (`nodes[3]`, `users[0].groups`).
/// `known` holds nodes that exist outside the file (the database's mirror) and may be named.
pub(crate) fn problems(f: &PolicyFile, known: &HashMap<Uuid, NodeKind>) -> Vec<String> {
    let mut p = Vec::new();
    if f.has_no_entries() && !f.empty {
        p.push(
            "the file has no entries; write `empty = true` at its top if that is on purpose".into(),
        );
    }
    let groups = f.groups_with_builtins();
    let mut kinds: HashMap<Uuid, NodeKind> = known.clone();
    kinds.extend(f.nodes.iter().map(|n| (n.key, n.kind)));
    let names = Names {
        kinds,
        aliases: groups.iter().map(|g| g.alias.as_str()).collect(),
        external_ids: f
            .users
            .iter()
            .map(|u| u.external_id.as_str())
            .filter(|e| !e.is_empty())
            .collect(),
    };
    group_problems(f, &names, &mut p);
    node_problems(f, &names, &mut p);
    user_problems(f, &names, &mut p);
    entry_problems(f, &names, &mut p);
    api_key_problems(f, &names, &mut p);
    mapping_problems(f, &names, &mut p);
    p
}

/// What the file's entries may name: nodes (with their kind), group aliases (the built-in
/// groups' too) and users' external ids.
struct Names<'f> {
    kinds: HashMap<Uuid, NodeKind>,
    aliases: HashSet<&'f str>,
    external_ids: HashSet<&'f str>,
}

impl Names<'_> {
    /// Why start node `k` cannot be a start node of kind `want` (`unknown` names a missing one).
    fn start_problem(&self, k: &Uuid, want: NodeKind, unknown: &str) -> Option<String> {
        match self.kinds.get(k) {
            None => Some(format!("{unknown} `{k}`")),
            Some(kind) if *kind != want => Some(format!("`{k}` is a {}", kind.as_str())),
            Some(_) => None,
        }
    }
}

fn group_problems(f: &PolicyFile, names: &Names, p: &mut Vec<String>) {
    let mut group_keys = HashSet::new();
    let mut aliases = HashSet::new();
    for (i, g) in f.groups.iter().enumerate() {
        if !group_keys.insert(g.key) {
            p.push(format!("groups[{i}]: duplicate key `{}`", g.key));
        }
        if g.alias.is_empty() || !aliases.insert(g.alias.as_str()) {
            p.push(format!(
                "groups[{i}]: duplicate or empty alias `{}`",
                g.alias
            ));
        }
        for (field, start, want) in [
            ("content_start", g.content_start, NodeKind::Document),
            ("media_start", g.media_start, NodeKind::Media),
        ] {
            if let Some(StartRef::Node(k)) = start {
                if let Some(why) = names.start_problem(&k, want, "unknown node") {
                    p.push(format!("groups[{i}].{field}: {why}"));
                }
            }
        }
    }
}

fn node_problems(f: &PolicyFile, names: &Names, p: &mut Vec<String>) {
    let paths = f.node_paths();
    let mut node_keys = HashSet::new();
    let mut node_ids = HashSet::new();
    for (i, n) in f.nodes.iter().enumerate() {
        if !node_keys.insert(n.key) {
            p.push(format!("nodes[{i}]: duplicate key `{}`", n.key));
        }
        if n.id <= 0 || !node_ids.insert(n.id) {
            p.push(format!(
                "nodes[{i}]: id `{}` is duplicate or not positive",
                n.id
            ));
        }
        if let Some(parent) = n.parent {
            match names.kinds.get(&parent) {
                None => p.push(format!("nodes[{i}]: unknown parent `{parent}`")),
                Some(k) if *k != n.kind => {
                    p.push(format!("nodes[{i}]: parent `{parent}` is a {}", k.as_str()));
                }
                Some(_) => {
                    if !paths.contains_key(&n.key) {
                        p.push(format!(
                            "nodes[{i}]: parent chain of `{}` is a cycle",
                            n.key
                        ));
                    }
                }
            }
        }
        if let Some(r) = &n.route_path {
            if !r.starts_with('/') {
                p.push(format!("nodes[{i}]: route_path `{r}` must start with `/`"));
            }
        }
    }
}

fn user_problems(f: &PolicyFile, names: &Names, p: &mut Vec<String>) {
    let mut user_keys = HashSet::new();
    let mut ext_ids = HashSet::new();
    for (i, u) in f.users.iter().enumerate() {
        if !user_keys.insert(u.key) {
            p.push(format!("users[{i}]: duplicate key `{}`", u.key));
        }
        if u.external_id.is_empty() || !ext_ids.insert(u.external_id.as_str()) {
            p.push(format!(
                "users[{i}]: duplicate or empty external_id `{}`",
                u.external_id
            ));
        }
        for a in &u.groups {
            if !names.aliases.contains(a.as_str()) {
                p.push(format!("users[{i}].groups: unknown group `{a}`"));
            }
        }
        for (field, starts, want) in [
            ("content_start", &u.content_start, NodeKind::Document),
            ("media_start", &u.media_start, NodeKind::Media),
        ] {
            for s in starts {
                let StartRef::Node(k) = s else { continue };
                if let Some(why) = names.start_problem(k, want, "unknown start node") {
                    p.push(format!("users[{i}].{field}: {why}"));
                }
            }
        }
    }
}

/// Granular permission entries and public-access entries.
fn entry_problems(f: &PolicyFile, names: &Names, p: &mut Vec<String>) {
    let mut entries = HashSet::new();
    for (i, e) in f.permissions.iter().enumerate() {
        if !names.aliases.contains(e.group.as_str()) {
            p.push(format!("permissions[{i}]: unknown group `{}`", e.group));
        }
        if !names.kinds.contains_key(&e.node) {
            p.push(format!("permissions[{i}]: unknown node `{}`", e.node));
        }
        if !entries.insert((e.group.as_str(), e.node)) {
            p.push(format!(
                "permissions[{i}]: duplicate entry for `{}` on `{}`",
                e.group, e.node
            ));
        }
    }
    let mut protected = HashSet::new();
    for (i, a) in f.public_access.iter().enumerate() {
        if !names.kinds.contains_key(&a.node) {
            p.push(format!("public_access[{i}]: unknown node `{}`", a.node));
        }
        if !protected.insert(a.node) {
            p.push(format!("public_access[{i}]: duplicate node `{}`", a.node));
        }
    }
}

fn api_key_problems(f: &PolicyFile, names: &Names, p: &mut Vec<String>) {
    let sha256 = |h: &str| hex::decode(h).is_ok_and(|h| h.len() == 32);
    let mut key_ids = HashSet::new();
    for (i, k) in f.api_keys.iter().enumerate() {
        if k.key_id.is_empty() || !key_ids.insert(k.key_id.as_str()) {
            p.push(format!(
                "api_keys[{i}]: duplicate or empty key_id `{}`",
                k.key_id
            ));
        }
        if !sha256(&k.hash) {
            p.push(format!(
                "api_keys[{i}]: hash must be 64 hex characters (sha-256)"
            ));
        }
        if k.apis.is_empty() {
            p.push(format!("api_keys[{i}]: apis must name at least one api"));
        }
        if k.rate_limit_rps == Some(0) {
            p.push(format!("api_keys[{i}]: rate_limit_rps must be at least 1"));
        }
        for r in &k.subtree_roots {
            if !names.kinds.contains_key(r) {
                p.push(format!("api_keys[{i}]: unknown subtree root `{r}`"));
            }
        }
        if let Some(a) = &k.acts_as {
            if !names.external_ids.contains(a.as_str()) {
                p.push(format!(
                    "api_keys[{i}]: acts_as `{a}` is not a user external_id"
                ));
            }
        }
        match (&k.previous_hash, k.previous_expires_at) {
            (None, None) => {}
            (Some(h), Some(_)) if sha256(h) => {}
            (Some(_), Some(_)) => p.push(format!(
                "api_keys[{i}]: previous_hash must be 64 hex characters (sha-256)"
            )),
            _ => p.push(format!(
                "api_keys[{i}]: previous_hash and previous_expires_at go together"
            )),
        }
    }
}

fn mapping_problems(f: &PolicyFile, names: &Names, p: &mut Vec<String>) {
    let mut mapped = HashSet::new();
    for (i, m) in f.group_mappings.iter().enumerate() {
        if m.issuer.is_empty() || m.idp_group.is_empty() {
            p.push(format!(
                "group_mappings[{i}]: issuer and idp_group must not be empty"
            ));
        }
        if !mapped.insert((m.issuer.as_str(), m.idp_group.as_str())) {
            p.push(format!(
                "group_mappings[{i}]: duplicate mapping for `{}` from `{}`",
                m.idp_group, m.issuer
            ));
        }
        if m.groups.is_empty() {
            p.push(format!(
                "group_mappings[{i}]: groups must name at least one group"
            ));
        }
        for a in &m.groups {
            if !names.aliases.contains(a.as_str()) {
                p.push(format!("group_mappings[{i}].groups: unknown group `{a}`"));
            }
        }
    }
}
