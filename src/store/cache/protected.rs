//! The ids of every node with a public-access entry ([`ProtectedNodes`]): one cache entry that a
//! Delivery item's member-protection check reads instead of each of its ancestors. It is a
//! tier like the others (fresh for `ttl`, served stale while one refresh runs, dropped by a
//! load that raced an invalidation) and is evicted by every public-access or node change.

use super::tier::Tier;
use super::PolicyCache;
use crate::authz::ProtectedNodes;
use crate::store::StoreError;
use std::sync::Arc;

pub(super) type ProtectedTier = Tier<(), Arc<ProtectedNodes>>;

pub(super) fn protected(c: &PolicyCache) -> &ProtectedTier {
    &c.inner.protected
}

pub(super) fn weigh_protected(_: &(), p: &Arc<ProtectedNodes>) -> usize {
    p.len() * 8 + 16
}

impl PolicyCache {
    /// Every node with a public-access entry, from the cache or the store.
    pub async fn protected_nodes(&self) -> Result<Arc<ProtectedNodes>, StoreError> {
        let loaded = self
            .cached(protected, (), |c| async move {
                let ids = c.inner.store.protected_nodes().await?;
                Ok(Some(Arc::new(ProtectedNodes::new(ids))))
            })
            .await?;
        // The load always finds a list (an empty one when nothing is protected), and the tier
        // keeps no "absent" answers; should it ever answer so, fail closed.
        loaded.ok_or(StoreError::Corrupt {
            what: "protected node list",
            value: "absent".into(),
        })
    }

    /// [`PolicyCache::protected_nodes`] when the cached list is fresh.
    pub fn protected_nodes_now(&self) -> Option<Arc<ProtectedNodes>> {
        self.fresh(protected, &())
    }

    /// Drops the cached list (a public-access or node change).
    pub(super) async fn forget_protected_nodes(&self) {
        self.inner.protected.map.invalidate(&()).await;
    }
}
