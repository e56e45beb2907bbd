//! Access for principals that are not registered users: the groups their token maps to, by
//! the issuer's config `group_map` (aliases) and by the store's `group_mappings` (admin API
//! overrides and policy files), cached per issuer and evicted by its `NOTIFY`.

use super::{access, aliases, mappings, PolicyCache};
use crate::authz::{UserAccess, UserState};
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// One issuer's stored mappings: IdP group → group keys.
pub(super) type Mappings = HashMap<String, Vec<Uuid>>;

#[allow(clippy::ptr_arg)] // the weigher's signature is `fn(&K, &V)` with `K = String`
pub(super) fn weigh_mappings(k: &String, m: &Arc<Mappings>) -> usize {
    k.len()
        + m.iter()
            .map(|(g, keys)| g.len() + keys.len() * 16 + 48)
            .sum::<usize>()
        + 64
}

impl PolicyCache {
    /// The group keys the store maps `idp_groups` of issuer `issuer` (its configured name)
    /// to, sorted and without repeats; empty when none is mapped.
    pub async fn stored_mappings(
        &self,
        issuer: &str,
        idp_groups: &[String],
    ) -> Result<Vec<Uuid>, StoreError> {
        if idp_groups.is_empty() {
            return Ok(Vec::new());
        }
        let name = issuer.to_owned();
        let loaded = self
            .cached(mappings, issuer.to_owned(), move |c| async move {
                let mut m = Mappings::new();
                for (g, key) in c.inner.store.group_mappings(&name).await? {
                    m.entry(g).or_default().push(key);
                }
                Ok(Some(Arc::new(m)))
            })
            .await?
            .unwrap_or_default();
        let mut keys: Vec<Uuid> = idp_groups
            .iter()
            .filter_map(|g| loaded.get(g))
            .flatten()
            .copied()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    /// Access for a principal that is not registered but whose token maps to groups: the
    /// aliases `group_aliases` (config `group_map`) and the keys `group_keys` (stored
    /// mappings); their start nodes, no own start nodes, state active. Unknown aliases and
    /// keys are ignored (they grant nothing).
    pub async fn mapped_access(
        &self,
        external_id: &str,
        group_aliases: &[String],
        group_keys: &[Uuid],
    ) -> Result<Arc<UserAccess>, StoreError> {
        let mut keys = Vec::new();
        for a in group_aliases {
            let alias = a.clone();
            let key = self
                .cached(aliases, a.clone(), move |c| async move {
                    c.inner.store.group_key_by_alias(&alias).await
                })
                .await?;
            keys.extend(key);
        }
        keys.extend(
            group_keys
                .iter()
                .filter(|k| !keys.contains(k))
                .copied()
                .collect::<Vec<_>>(),
        );
        let groups = self.groups(&keys).await?;
        Ok(Arc::new(access(
            Uuid::nil(),
            external_id,
            external_id,
            UserState::Active,
            groups,
            &[],
            &[],
        )))
    }
}
