//! `PolicyCache`: the in-memory view of the policy the hot path reads. moka caches for user
//! access, groups, nodes (by key, id and route), the protected nodes and API keys over an `Arc<dyn PolicyStore>`.
//!
//! - Warm: a fresh entry is returned without touching the store.
//! - Cold: concurrent misses for one key share one load; "does not exist" answers live in a
//!   separate negative cache for `negative_ttl`; cold API key lookups are rate-limited.
//! - Freshness: entries are fresh for `ttl` while push invalidation is up, `listener_fallback_ttl`
//!   while it is down. A stale entry is still served while one background refresh per key
//!   reloads it, as long as it is *honoured*: the cache was confirmed current (listener
//!   heartbeat) or the entry loaded no longer than `max_staleness` ago. Past that it must be
//!   reloaded, and a store that cannot answer fails the lookup closed.
//! - Memory: every cache is bounded by its share of `max_memory` (entries weighed by size).
//!
//! The get-or-load lives in `tier.rs`, eviction by what changed in `invalidate.rs`.

mod freshness;
mod invalidate;
mod key_use;
mod languages;
mod mapped;
mod now;
mod protected;
mod tier;
mod weigh;

use super::{CacheConfig, PolicyStore, StartRef, StoreError, StoreMetrics};
use crate::authn::ApiKeyRecord;
use crate::authz::{
    calculate_start_nodes, route_key, GroupPolicy, NodeId, NodeInfo, NodePath, StartNodes,
    UserAccess, UserFacts, UserState,
};
pub use freshness::Freshness;
use key_use::TokenBucket;
use mapped::{weigh_mappings, Mappings};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tier::{Absent, Negatives, Tier};
use uuid::Uuid;
use weigh::{weigh_group, weigh_key, weigh_node, weigh_user};

struct Inner {
    store: Arc<dyn PolicyStore>,
    cfg: CacheConfig,
    max_staleness: Duration,
    metrics: StoreMetrics,
    listener_up: AtomicBool,
    /// Time base of `confirmed_ms`.
    epoch: Instant,
    /// When the cache was last confirmed current, in ms since `epoch` + 1 (0: never).
    confirmed_ms: AtomicU64,
    /// The file store: every change evicts the whole cache, so it is always current.
    always_current: AtomicBool,
    /// Bumped by every invalidation; a load that saw it move is not trusted.
    generation: AtomicU64,
    users: Tier<String, Arc<UserAccess>>,
    /// User key → external id (the user routes name the users they act on by key).
    user_keys: Tier<Uuid, Arc<str>>,
    groups: Tier<Uuid, Arc<GroupPolicy>>,
    aliases: Tier<String, Uuid>,
    /// Per issuer name: IdP group → group keys (`group_mappings`).
    mappings: Tier<String, Arc<Mappings>>,
    nodes: Tier<Uuid, Arc<NodeInfo>>,
    node_ids: Tier<NodeId, Uuid>,
    routes: Tier<String, Arc<[Uuid]>>,
    /// Every node with a public-access entry (`protected.rs`).
    protected: protected::ProtectedTier,
    api_keys: Tier<String, Arc<ApiKeyRecord>>,
    negatives: Negatives,
    key_misses: TokenBucket,
    /// Users with own start nodes left out at load time (unknown to the mirror, or trashed);
    /// evicted on any node change so a restore or a sync brings them back.
    unresolved_users: Mutex<HashSet<String>>,
    /// API keys used since the last flush (`touch_api_keys`); looked up on every API-key
    /// request, hashed as the tiers are.
    touched: Mutex<HashSet<String, tier::KeyHasher>>,
    /// The last failed reload of the policy source (file store), for readiness.
    reload_error: Mutex<Option<String>>,
    /// The mirrored default language (`languages.rs`).
    default_language: languages::DefaultLanguage,
}

/// The policy cache. Cheap to clone; every clone shares the same caches.
#[derive(Clone)]
pub struct PolicyCache {
    inner: Arc<Inner>,
}

fn users(c: &PolicyCache) -> &Tier<String, Arc<UserAccess>> {
    &c.inner.users
}
fn user_keys(c: &PolicyCache) -> &Tier<Uuid, Arc<str>> {
    &c.inner.user_keys
}
fn groups(c: &PolicyCache) -> &Tier<Uuid, Arc<GroupPolicy>> {
    &c.inner.groups
}
fn aliases(c: &PolicyCache) -> &Tier<String, Uuid> {
    &c.inner.aliases
}
fn mappings(c: &PolicyCache) -> &Tier<String, Arc<Mappings>> {
    &c.inner.mappings
}
fn nodes(c: &PolicyCache) -> &Tier<Uuid, Arc<NodeInfo>> {
    &c.inner.nodes
}
fn node_ids(c: &PolicyCache) -> &Tier<NodeId, Uuid> {
    &c.inner.node_ids
}
fn routes(c: &PolicyCache) -> &Tier<String, Arc<[Uuid]>> {
    &c.inner.routes
}
fn api_keys(c: &PolicyCache) -> &Tier<String, Arc<ApiKeyRecord>> {
    &c.inner.api_keys
}

impl PolicyCache {
    /// A cache over `store`. Push invalidation starts "down" (short TTLs) until a
    /// [`super::Listener`] connects, or [`PolicyCache::set_always_current`] (file store).
    pub fn new(
        store: Arc<dyn PolicyStore>,
        cfg: CacheConfig,
        max_staleness: Duration,
        metrics: StoreMetrics,
    ) -> Self {
        let setup = tier::Setup {
            cfg: &cfg,
            max_staleness,
            metrics: &metrics,
        };
        let negatives = moka::future::Cache::builder()
            .name("negative")
            .max_capacity(cfg.budget("negative"))
            .weigher(|k: &Absent, _: &Instant| u32::try_from(k.weight() + 96).unwrap_or(u32::MAX))
            .time_to_live(cfg.negative_ttl)
            .build_with_hasher(tier::KeyHasher::new());
        let inner = Inner {
            users: Tier::new(
                "users",
                &setup,
                |k| Some(Absent::User(k.clone())),
                weigh_user,
            ),
            user_keys: Tier::new(
                "user_keys",
                &setup,
                |k| Some(Absent::UserKey(*k)),
                |_, ext| ext.len() + 40,
            ),
            groups: Tier::new("groups", &setup, |k| Some(Absent::Group(*k)), weigh_group),
            aliases: Tier::new(
                "group_aliases",
                &setup,
                |k| Some(Absent::Alias(k.clone())),
                |k, _| k.len() + 16,
            ),
            mappings: Tier::new(
                "group_mappings",
                &setup,
                |k| Some(Absent::Mappings(k.clone())),
                weigh_mappings,
            ),
            nodes: Tier::new("nodes", &setup, |k| Some(Absent::Node(*k)), weigh_node),
            node_ids: Tier::new("node_ids", &setup, |k| Some(Absent::NodeId(*k)), |_, _| 24),
            routes: Tier::new(
                "routes",
                &setup,
                |k| Some(Absent::Route(k.clone())),
                |k, v| k.len() + v.len() * 16 + 16,
            ),
            protected: Tier::new(
                "protected_nodes",
                &setup,
                |_| None,
                protected::weigh_protected,
            ),
            api_keys: Tier::new(
                "api_keys",
                &setup,
                |k| Some(Absent::ApiKey(k.clone())),
                weigh_key,
            ),
            negatives,
            key_misses: TokenBucket::new(cfg.api_key_miss_rate),
            store,
            cfg,
            max_staleness,
            metrics,
            listener_up: AtomicBool::new(false),
            epoch: Instant::now(),
            confirmed_ms: AtomicU64::new(0),
            always_current: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            unresolved_users: Mutex::new(HashSet::new()),
            touched: Mutex::new(HashSet::default()),
            reload_error: Mutex::new(None),
            default_language: Default::default(),
        };
        inner.metrics.listener_up.set(0);
        PolicyCache {
            inner: Arc::new(inner),
        }
    }

    /// The store behind the cache (for the CLI and explain).
    pub fn store(&self) -> &Arc<dyn PolicyStore> {
        &self.inner.store
    }

    /// A back-office user's resolved access (groups, calculated start nodes, state), by the
    /// external id mapped from the token. `Ok(None)`: the user is not registered.
    pub async fn user_access(
        &self,
        external_id: &str,
    ) -> Result<Option<Arc<UserAccess>>, StoreError> {
        let ext = external_id.to_owned();
        self.cached(users, external_id.to_owned(), move |c| async move {
            c.load_user(&ext).await
        })
        .await
    }

    async fn load_user(&self, ext: &str) -> Result<Option<Arc<UserAccess>>, StoreError> {
        let Some(u) = self.inner.store.user_by_external_id(ext).await? else {
            return Ok(None);
        };
        let groups = self.groups(&u.group_keys).await?;
        let (content_own, c_missing) = self.own_start_paths(&u.content_start).await?;
        let (media_own, m_missing) = self.own_start_paths(&u.media_start).await?;
        let unresolved = c_missing || m_missing;
        let mut set = self
            .inner
            .unresolved_users
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if unresolved {
            set.insert(ext.to_owned());
        } else {
            set.remove(ext);
        }
        drop(set);
        Ok(Some(Arc::new(access(
            u.key,
            ext,
            &u.name,
            u.state,
            groups,
            &content_own,
            &media_own,
        ))))
    }

    /// Paths of a user's own start nodes, and whether any was left out. Umbraco's
    /// `UserExtensions.CombineStartNodes` ignores unknown nodes and nodes in the recycle bin for
    /// user start nodes as for group ones; the user is re-resolved when nodes change.
    async fn own_start_paths(
        &self,
        starts: &[StartRef],
    ) -> Result<(Vec<NodePath>, bool), StoreError> {
        let mut paths = Vec::new();
        let mut left_out = false;
        for s in starts {
            match s {
                StartRef::Root => paths.push(NodePath::root()),
                StartRef::Node(k) => match self.node(*k).await? {
                    Some(n) if !n.trashed && !n.path.in_recycle_bin() => paths.push(n.path.clone()),
                    _ => left_out = true,
                },
            }
        }
        Ok((paths, left_out))
    }

    async fn groups(&self, keys: &[Uuid]) -> Result<Vec<Arc<GroupPolicy>>, StoreError> {
        let loads = keys.iter().map(|k| self.group(*k));
        let loaded = futures::future::join_all(loads).await;
        let mut out = Vec::with_capacity(loaded.len());
        for g in loaded {
            out.extend(g?);
        }
        Ok(out)
    }

    /// What a user check needs of the user with `key` (is it an administrator: a member of
    /// the group with alias `admin`), from the same access the user's own requests resolve.
    /// `Ok(None)`: the store has no such user.
    pub async fn user_facts(&self, key: Uuid) -> Result<Option<UserFacts>, StoreError> {
        let ext = self
            .cached(user_keys, key, move |c| async move {
                Ok(c.inner.store.user_external_id(key).await?.map(Arc::from))
            })
            .await?;
        let Some(ext) = ext else {
            return Ok(None);
        };
        Ok(self.user_access(&ext).await?.map(|a| UserFacts {
            is_admin: a.admin_group().is_some(),
        }))
    }

    /// One group (defaults, start nodes, granular entries by node id).
    pub async fn group(&self, key: Uuid) -> Result<Option<Arc<GroupPolicy>>, StoreError> {
        self.cached(groups, key, move |c| async move {
            Ok(c.inner.store.group(key).await?.map(Arc::new))
        })
        .await
    }

    /// A node of the content mirror by key (path, kind, trashed, own public access).
    pub async fn node(&self, key: Uuid) -> Result<Option<Arc<NodeInfo>>, StoreError> {
        self.cached(nodes, key, move |c| async move {
            Ok(c.inner.store.node(key).await?.map(Arc::new))
        })
        .await
    }

    /// A node by int id (ancestors on a path, Umbraco ids in bodies).
    pub async fn node_by_id(&self, id: NodeId) -> Result<Option<Arc<NodeInfo>>, StoreError> {
        let key = self
            .cached(node_ids, id, move |c| async move {
                Ok(c.inner.store.node_by_id(id).await?.map(|n| n.key))
            })
            .await?;
        match key {
            Some(k) => Ok(self.node(k).await?.filter(|n| n.id == id)),
            None => Ok(None),
        }
    }

    /// Every live document with the route key `key` (`crate::authz::route_key`); the list of
    /// keys is cached, the nodes come from the node cache. A node that no longer has the key
    /// (moved, renamed, trashed since) makes the list be read again from the store.
    pub async fn nodes_by_route(&self, key: &str) -> Result<Vec<Arc<NodeInfo>>, StoreError> {
        let owned = key.to_owned();
        let keys = self
            .cached(routes, key.to_owned(), move |c| async move {
                let found = c.inner.store.nodes_by_route(&owned).await?;
                Ok((!found.is_empty()).then(|| found.iter().map(|n| n.key).collect()))
            })
            .await?;
        let Some(keys) = keys else {
            return Ok(Vec::new());
        };
        let mut nodes = Vec::with_capacity(keys.len());
        for k in keys.iter() {
            match self.node(*k).await? {
                Some(n)
                    if !n.trashed && n.route_path.as_deref().map(route_key) == Some(key.into()) =>
                {
                    nodes.push(n);
                }
                _ => {
                    self.inner.routes.map.invalidate(key).await;
                    let store = self.inner.store.clone();
                    let fresh = store.nodes_by_route(key).await?;
                    return Ok(fresh.into_iter().map(Arc::new).collect());
                }
            }
        }
        Ok(nodes)
    }

    /// A gateway API key by public id; revoked/expired keys are returned as stored and judged
    /// by `authn`.
    pub async fn api_key(&self, key_id: &str) -> Result<Option<Arc<ApiKeyRecord>>, StoreError> {
        let owned = key_id.to_owned();
        self.cached(api_keys, key_id.to_owned(), move |c| async move {
            Ok(c.inner.store.api_key(&owned).await?.map(Arc::new))
        })
        .await
    }

    /// Refreshes `portcullis_cache_entries{cache}` and `portcullis_cache_bytes{cache}` for
    /// every cache, and the staleness gauge (call before a scrape).
    pub fn update_entry_gauges(&self) {
        let i = &self.inner;
        let m = &i.metrics;
        let set = |name: &str, entries: u64, bytes: u64| {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            m.cache_entries.with_label_values(&[name]).set(n(entries));
            m.cache_bytes.with_label_values(&[name]).set(n(bytes));
        };
        macro_rules! tier {
            ($($t:ident),*) => {$(
                set(i.$t.name, i.$t.map.entry_count(), i.$t.map.weighted_size());
            )*};
        }
        tier!(
            users, user_keys, groups, aliases, mappings, nodes, node_ids, routes, protected,
            api_keys
        );
        set(
            "negative",
            i.negatives.entry_count(),
            i.negatives.weighted_size(),
        );
        self.freshness();
    }

    /// Runs moka's pending housekeeping (evictions to budget) now, for measurements and tests.
    pub async fn run_pending_maintenance(&self) {
        let i = &self.inner;
        macro_rules! tier {
            ($($t:ident),*) => {$( i.$t.map.run_pending_tasks().await; )*};
        }
        tier!(
            users, user_keys, groups, aliases, mappings, nodes, node_ids, routes, protected,
            api_keys
        );
        i.negatives.run_pending_tasks().await;
    }

    /// Evicts every entry of every cache (file reload, listener reconnect).
    pub fn invalidate_all(&self) {
        let i = &self.inner;
        i.generation.fetch_add(1, Ordering::AcqRel);
        macro_rules! tier {
            ($($t:ident),*) => {$(
                i.$t.map.invalidate_all();
                i.$t.clear_refreshing();
            )*};
        }
        tier!(
            users, user_keys, groups, aliases, mappings, nodes, node_ids, routes, protected,
            api_keys
        );
        i.negatives.invalidate_all();
        self.forget_default_language();
    }
}

/// Builds a user's access from their groups and own start node paths (UMBRACO.md §6).
fn access(
    key: Uuid,
    ext: &str,
    name: &str,
    state: UserState,
    groups: Vec<Arc<GroupPolicy>>,
    content_own: &[NodePath],
    media_own: &[NodePath],
) -> UserAccess {
    let starts = |f: fn(&GroupPolicy) -> Option<&NodePath>, own: &[NodePath]| -> StartNodes {
        let g: Vec<NodePath> = groups.iter().filter_map(|g| f(g).cloned()).collect();
        calculate_start_nodes(&g, own)
    };
    let content_start_nodes = starts(|g| g.content_start.as_ref(), content_own);
    let media_start_nodes = starts(|g| g.media_start.as_ref(), media_own);
    UserAccess {
        user_key: key,
        external_id: ext.to_owned(),
        name: name.to_owned(),
        state,
        groups,
        content_start_nodes,
        media_start_nodes,
    }
}
