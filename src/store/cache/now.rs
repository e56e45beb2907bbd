//! Reads that answer from fresh entries without waiting, for the warm request path: each one
//! is `Some(answer)` only when every entry it needs is cached and fresh, and `None` when the
//! asynchronous lookup (cold load, stale entry, "does not exist", or a busy cache) must run.
//! A `None` changes nothing: the async lookup decides as it always did.

use super::tier::Pick;
use super::{api_keys, node_ids, nodes, routes, users, PolicyCache};
use crate::authn::ApiKeyRecord;
use crate::authz::{route_key, NodeId, NodeInfo, UserAccess};
use futures::FutureExt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

impl PolicyCache {
    /// A fresh, valid entry for `key`, counted as a hit; `None` otherwise. moka's read may run
    /// a little housekeeping: when that would wait, the read is dropped (it has no effect
    /// beyond moka's own bookkeeping) and the async lookup runs instead.
    pub(super) fn fresh<K, V, Q>(&self, pick: Pick<K, V>, key: &Q) -> Option<V>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        Q: moka::Equivalent<K> + Hash + ?Sized,
    {
        let tier = pick(self);
        let e = tier.map.get(key).now_or_never()??;
        if !e.valid || Instant::now().duration_since(e.loaded_at) >= self.ttl() {
            return None;
        }
        tier.hits.inc();
        Some(e.value)
    }

    /// [`PolicyCache::user_access`] of a cached registered user.
    pub fn user_access_now(&self, external_id: &str) -> Option<Arc<UserAccess>> {
        self.fresh(users, external_id)
    }

    /// [`PolicyCache::node`] of a cached node.
    pub fn node_now(&self, key: Uuid) -> Option<Arc<NodeInfo>> {
        self.fresh(nodes, &key)
    }

    /// [`PolicyCache::node_by_id`] of a cached node.
    pub fn node_by_id_now(&self, id: NodeId) -> Option<Arc<NodeInfo>> {
        let key = self.fresh(node_ids, &id)?;
        self.node_now(key).filter(|n| n.id == id)
    }

    /// [`PolicyCache::nodes_by_route`] when the key list and every node on it are cached and
    /// every node still answers to the route key (else the async lookup re-reads the list).
    pub fn nodes_by_route_now(&self, key: &str) -> Option<Vec<Arc<NodeInfo>>> {
        let keys = self.fresh(routes, key)?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys.iter() {
            let n = self.node_now(*k)?;
            if n.trashed || n.route_path.as_deref().map(route_key) != Some(key.into()) {
                return None;
            }
            out.push(n);
        }
        Some(out)
    }

    /// [`PolicyCache::api_key`] of a cached key record.
    pub fn api_key_now(&self, key_id: &str) -> Option<Arc<ApiKeyRecord>> {
        self.fresh(api_keys, key_id)
    }
}
