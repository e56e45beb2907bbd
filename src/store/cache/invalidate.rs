//! Evicting exactly what changed. Each [`Invalidation`] (parsed from a `NOTIFY` payload by
//! `listen.rs`) removes the affected entries and everything derived from them: a group change
//! also evicts the users holding that group; a node move evicts its whole cached subtree, the
//! groups whose start node lies on it and the users whose start nodes do; a public-access or
//! node change drops the list of protected nodes.

use super::tier::Absent;
use super::PolicyCache;
use crate::authz::{route_key, NodeId, StartNodes};
use crate::store::Invalidation;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use uuid::Uuid;

fn starts_touch(s: &StartNodes, ids: &[NodeId]) -> bool {
    s.0.iter().any(|p| ids.iter().any(|id| p.contains(*id)))
}

impl PolicyCache {
    /// Applies one invalidation to every cache. Counted in `portcullis_invalidations_total`.
    pub async fn apply(&self, inv: &Invalidation) {
        let i = &self.inner;
        i.generation.fetch_add(1, Ordering::AcqRel);
        i.metrics
            .invalidations
            .with_label_values(&[inv.table()])
            .inc();
        match inv {
            Invalidation::All => self.invalidate_all(),
            Invalidation::User { key, external_ids } => {
                for ext in external_ids {
                    i.users.map.invalidate(ext).await;
                    i.negatives.invalidate(&Absent::User(ext.clone())).await;
                }
                self.evict_users_where(|a| a.user_key == *key).await;
                i.user_keys.map.invalidate(key).await;
                i.negatives.invalidate(&Absent::UserKey(*key)).await;
            }
            Invalidation::Membership { user_key } => {
                self.evict_users_where(|a| a.user_key == *user_key).await;
            }
            Invalidation::Group { key } => {
                i.groups.map.invalidate(key).await;
                // An alias may have been renamed, freed or taken ("absent" answers included).
                i.aliases.map.invalidate_all();
                i.negatives.invalidate_all();
                self.evict_users_where(|a| a.groups.iter().any(|g| g.key == *key))
                    .await;
            }
            Invalidation::PublicAccess { node_key } => {
                i.nodes.map.invalidate(node_key).await;
                self.forget_protected_nodes().await;
            }
            Invalidation::ApiKey { key_ids } => {
                for k in key_ids {
                    i.api_keys.map.invalidate(k).await;
                    i.negatives.invalidate(&Absent::ApiKey(k.clone())).await;
                }
            }
            Invalidation::GroupMappings { issuer } => {
                i.mappings.map.invalidate(issuer).await;
            }
            Invalidation::Languages => self.forget_default_language(),
            Invalidation::Node { key, ids, routes } => self.evict_node(*key, ids, routes).await,
            Invalidation::NodesFlush => {
                i.nodes.map.invalidate_all();
                i.protected.map.invalidate_all();
                i.node_ids.map.invalidate_all();
                i.routes.map.invalidate_all();
                // Start node paths are embedded in groups and users.
                i.groups.map.invalidate_all();
                i.users.map.invalidate_all();
                i.negatives.invalidate_all();
            }
        }
    }

    async fn evict_node(&self, key: Uuid, ids: &[NodeId], routes: &[String]) {
        let i = &self.inner;
        i.nodes.map.invalidate(&key).await;
        // A deleted node takes its entry along (a cascade notifies `public_access` too).
        self.forget_protected_nodes().await;
        i.negatives.invalidate(&Absent::Node(key)).await;
        for id in ids {
            i.negatives.invalidate(&Absent::NodeId(*id)).await;
        }
        // Notifications carry stored route paths; the caches are keyed by route key.
        let routes: Vec<String> = routes.iter().map(|r| route_key(r)).collect();
        for r in &routes {
            i.negatives.invalidate(&Absent::Route(r.clone())).await;
        }
        // The whole cached subtree: every node whose path passes through a changed id.
        let below: Vec<Uuid> = i
            .nodes
            .map
            .iter()
            .filter(|(_, e)| ids.iter().any(|id| e.value.path.contains(*id)))
            .map(|(k, _)| *k)
            .collect();
        for k in below {
            i.nodes.map.invalidate(&k).await;
        }
        for id in ids {
            i.node_ids.map.invalidate(id).await;
        }
        for r in &routes {
            i.routes.map.invalidate(r).await;
        }
        // Groups whose start node is on the moved branch, and the users holding them.
        let groups: HashSet<Uuid> = i
            .groups
            .map
            .iter()
            .filter(|(_, e)| {
                let g = &e.value;
                [&g.content_start, &g.media_start]
                    .into_iter()
                    .flatten()
                    .any(|p| ids.iter().any(|id| p.contains(*id)))
            })
            .map(|(k, _)| *k)
            .collect();
        for g in &groups {
            i.groups.map.invalidate(g).await;
        }
        let unresolved: HashSet<String> =
            std::mem::take(&mut *i.unresolved_users.lock().unwrap_or_else(|p| p.into_inner()));
        let stale_users: Vec<String> = i
            .users
            .map
            .iter()
            .filter(|(ext, e)| {
                let a = &e.value;
                unresolved.contains(ext.as_str())
                    || a.groups.iter().any(|g| groups.contains(&g.key))
                    || starts_touch(&a.content_start_nodes, ids)
                    || starts_touch(&a.media_start_nodes, ids)
            })
            .map(|(k, _)| k.as_ref().clone())
            .collect();
        for u in stale_users {
            i.users.map.invalidate(&u).await;
        }
    }

    async fn evict_users_where(&self, pred: impl Fn(&crate::authz::UserAccess) -> bool) {
        let i = &self.inner;
        let keys: Vec<String> = i
            .users
            .map
            .iter()
            .filter(|(_, e)| pred(&e.value))
            .map(|(k, _)| k.as_ref().clone())
            .collect();
        for k in keys {
            i.users.map.invalidate(&k).await;
        }
    }
}
