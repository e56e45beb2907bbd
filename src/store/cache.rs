//! `PolicyCache`: the in-memory view of the policy the hot path reads. moka caches for user
//! access, groups, nodes (by key, id and route) and API keys over an `Arc<dyn PolicyStore>`.
//!
//! - Warm: a fresh entry is returned without touching the store.
//! - Cold: concurrent misses for one key share one load (`try_get_with`).
//! - Freshness: entries live `ttl` while push invalidation is up, `listener_fallback_ttl` while
//!   it is down; an invalidation that lands during a load marks the loaded entry stale.
//! - Fail closed: a failed load returns `StoreError::Unavailable` unless a previously loaded
//!   entry younger than `serve_stale_max` exists, which is served (and counted) instead.
//!
//! Eviction by what changed lives in `invalidate.rs`.

mod invalidate;

use super::{CacheConfig, PolicyStore, StartRef, StoreError, StoreMetrics};
use crate::authn::ApiKeyRecord;
use crate::authz::{
    calculate_start_nodes, GroupPolicy, NodeId, NodeInfo, NodePath, PublicAccess, StartNodes,
    UserAccess, UserState,
};
use moka::future::Cache;
use moka::notification::RemovalCause;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A cached value with what freshness needs: when it was loaded, whether an invalidation raced
/// its load, and (while served stale) when the store may be asked again.
#[derive(Clone)]
struct Entry<V> {
    value: V,
    loaded_at: Instant,
    valid: bool,
    retry_at: Option<Instant>,
}

type Map<K, V> = Cache<K, Entry<V>>;

/// How long a store that just failed is left alone while a stale entry is served.
const STALE_RETRY: Duration = Duration::from_secs(1);

struct Inner {
    store: Arc<dyn PolicyStore>,
    cfg: CacheConfig,
    metrics: StoreMetrics,
    listener_up: AtomicBool,
    /// Bumped by every invalidation; a load that saw it move is not trusted.
    generation: AtomicU64,
    users: Map<String, Option<Arc<UserAccess>>>,
    groups: Map<Uuid, Option<Arc<GroupPolicy>>>,
    aliases: Map<String, Option<Uuid>>,
    nodes: Map<Uuid, Option<Arc<NodeInfo>>>,
    node_ids: Map<NodeId, Option<Uuid>>,
    routes: Map<String, Option<Uuid>>,
    api_keys: Map<String, Option<Arc<ApiKeyRecord>>>,
    /// Users with own start nodes left out at load time (unknown to the mirror, or trashed);
    /// evicted on any node change so a restore or a sync brings them back.
    unresolved_users: Mutex<HashSet<String>>,
    /// API keys used since the last flush (`touch_api_keys`).
    touched: Mutex<HashSet<String>>,
}

/// The policy cache. Cheap to clone; every clone shares the same caches.
#[derive(Clone)]
pub struct PolicyCache {
    inner: Arc<Inner>,
}

fn build<K, V>(name: &'static str, cap: u64, cfg: &CacheConfig, m: &StoreMetrics) -> Map<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let evictions = m.cache_evictions.with_label_values(&[name]);
    Cache::builder()
        .name(name)
        .max_capacity(cap)
        // Kept past `ttl` only so an outage can be bridged with stale entries.
        .time_to_live(cfg.ttl + cfg.serve_stale_max)
        .eviction_listener(move |_k, _v, cause| {
            if cause != RemovalCause::Replaced {
                evictions.inc();
            }
        })
        .build()
}

impl PolicyCache {
    /// A cache over `store`. Push invalidation starts "down" (short TTLs) until a
    /// [`super::Listener`] connects or the owner calls `set_push_invalidation(true)`.
    pub fn new(store: Arc<dyn PolicyStore>, cfg: CacheConfig, metrics: StoreMetrics) -> Self {
        let inner = Inner {
            users: build("users", cfg.users_capacity, &cfg, &metrics),
            groups: build("groups", cfg.groups_capacity, &cfg, &metrics),
            aliases: build("group_aliases", cfg.groups_capacity, &cfg, &metrics),
            nodes: build("nodes", cfg.nodes_capacity, &cfg, &metrics),
            node_ids: build("node_ids", cfg.nodes_capacity, &cfg, &metrics),
            routes: build("routes", cfg.nodes_capacity, &cfg, &metrics),
            api_keys: build("api_keys", cfg.api_keys_capacity, &cfg, &metrics),
            store,
            cfg,
            metrics,
            listener_up: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            unresolved_users: Mutex::new(HashSet::new()),
            touched: Mutex::new(HashSet::new()),
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

    /// True while push invalidation is connected (readiness detail).
    pub fn listener_up(&self) -> bool {
        self.inner.listener_up.load(Ordering::Acquire)
    }

    /// Marks push invalidation up or down: the listener calls it; a `FileStore` deployment sets
    /// it once to `true` because its reload evicts everything.
    pub fn set_push_invalidation(&self, up: bool) {
        self.inner.listener_up.store(up, Ordering::Release);
        self.inner.metrics.listener_up.set(i64::from(up));
    }

    fn ttl(&self) -> Duration {
        if self.listener_up() {
            self.inner.cfg.ttl
        } else {
            self.inner.cfg.listener_fallback_ttl
        }
    }

    /// The shared get-or-load: fresh hit, coalesced load, or stale fallback on error.
    async fn cached<K, V, Fut>(
        &self,
        map: &Map<K, V>,
        name: &'static str,
        key: K,
        load: Fut,
    ) -> Result<V, StoreError>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<V, StoreError>>,
    {
        let m = &self.inner.metrics;
        let now = Instant::now();
        let previous = map.get(&key).await;
        if let Some(e) = &previous {
            if e.valid && now.duration_since(e.loaded_at) < self.ttl() {
                m.cache_hits.with_label_values(&[name]).inc();
                return Ok(e.value.clone());
            }
            if e.retry_at.is_some_and(|r| now < r) {
                m.stale_served.inc();
                return Ok(e.value.clone());
            }
            map.invalidate(&key).await;
        }
        m.cache_misses.with_label_values(&[name]).inc();
        let generation = &self.inner.generation;
        let started = generation.load(Ordering::Acquire);
        let loaded = map
            .try_get_with(key.clone(), async move {
                let value = load.await?;
                Ok::<_, StoreError>(Entry {
                    value,
                    loaded_at: Instant::now(),
                    valid: generation.load(Ordering::Acquire) == started,
                    retry_at: None,
                })
            })
            .await;
        m.cache_entries
            .with_label_values(&[name])
            .set(i64::try_from(map.entry_count()).unwrap_or(i64::MAX));
        match loaded {
            Ok(e) => Ok(e.value),
            Err(err) => match previous {
                Some(e) if e.valid && now.duration_since(e.loaded_at) <= self.stale_max() => {
                    tracing::warn!(cache = name, error = %err, "store unavailable; serving stale entry");
                    m.stale_served.inc();
                    let value = e.value.clone();
                    map.insert(
                        key,
                        Entry {
                            retry_at: Some(Instant::now() + STALE_RETRY),
                            ..e
                        },
                    )
                    .await;
                    Ok(value)
                }
                _ => Err(StoreError::Unavailable(err)),
            },
        }
    }

    fn stale_max(&self) -> Duration {
        // `loaded_at` ages from the load; the entry went stale `ttl` later.
        if self.inner.cfg.serve_stale_max.is_zero() {
            Duration::ZERO
        } else {
            self.ttl() + self.inner.cfg.serve_stale_max
        }
    }

    /// A back-office user's resolved access (groups, calculated start nodes, state), by the
    /// external id mapped from the token. `Ok(None)`: the user is not registered.
    pub async fn user_access(
        &self,
        external_id: &str,
    ) -> Result<Option<Arc<UserAccess>>, StoreError> {
        let i = &self.inner;
        self.cached(
            &i.users,
            "users",
            external_id.to_owned(),
            self.load_user(external_id),
        )
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

    /// Access for a principal that is not registered but whose token maps to group aliases:
    /// the named groups' start nodes, no own start nodes, state active. Unknown aliases are
    /// ignored (they grant nothing).
    pub async fn mapped_access(
        &self,
        external_id: &str,
        aliases: &[String],
    ) -> Result<Arc<UserAccess>, StoreError> {
        let mut keys = Vec::new();
        for a in aliases {
            let i = &self.inner;
            let store = i.store.clone();
            let alias = a.clone();
            let key = self
                .cached(&i.aliases, "group_aliases", a.clone(), async move {
                    store.group_key_by_alias(&alias).await
                })
                .await?;
            keys.extend(key);
        }
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

    async fn groups(&self, keys: &[Uuid]) -> Result<Vec<Arc<GroupPolicy>>, StoreError> {
        let loads = keys.iter().map(|k| self.group(*k));
        let loaded = futures::future::join_all(loads).await;
        let mut out = Vec::with_capacity(loaded.len());
        for g in loaded {
            out.extend(g?);
        }
        Ok(out)
    }

    /// One group (defaults, start nodes, granular entries by node id).
    pub async fn group(&self, key: Uuid) -> Result<Option<Arc<GroupPolicy>>, StoreError> {
        let store = self.inner.store.clone();
        self.cached(&self.inner.groups, "groups", key, async move {
            Ok(store.group(key).await?.map(Arc::new))
        })
        .await
    }

    /// A node of the content mirror by key (path, kind, trashed, own public access).
    pub async fn node(&self, key: Uuid) -> Result<Option<Arc<NodeInfo>>, StoreError> {
        let store = self.inner.store.clone();
        self.cached(&self.inner.nodes, "nodes", key, async move {
            Ok(store.node(key).await?.map(Arc::new))
        })
        .await
    }

    /// A node by int id (ancestors on a path, Umbraco ids in bodies).
    pub async fn node_by_id(&self, id: NodeId) -> Result<Option<Arc<NodeInfo>>, StoreError> {
        let store = self.inner.store.clone();
        let key = self
            .cached(&self.inner.node_ids, "node_ids", id, async move {
                Ok(store.node_by_id(id).await?.map(|n| n.key))
            })
            .await?;
        match key {
            Some(k) => Ok(self.node(k).await?.filter(|n| n.id == id)),
            None => Ok(None),
        }
    }

    /// A node by Delivery route path, exact match.
    pub async fn node_by_route(&self, route: &str) -> Result<Option<Arc<NodeInfo>>, StoreError> {
        let store = self.inner.store.clone();
        let owned = route.to_owned();
        let key = self
            .cached(&self.inner.routes, "routes", route.to_owned(), async move {
                Ok(store.node_by_route(&owned).await?.map(|n| n.key))
            })
            .await?;
        let Some(k) = key else { return Ok(None) };
        let node = self.node(k).await?;
        if node
            .as_ref()
            .is_some_and(|n| n.route_path.as_deref() == Some(route))
        {
            return Ok(node);
        }
        // The node moved away from this route since it was cached: look the route up again.
        self.inner.routes.invalidate(route).await;
        let store = self.inner.store.clone();
        Ok(store.node_by_route(route).await?.map(Arc::new))
    }

    /// Public-access entries on a node's path (itself and its ancestors), nearest last.
    pub async fn public_access_on_path(
        &self,
        path: &NodePath,
    ) -> Result<Vec<(NodeId, Arc<PublicAccess>)>, StoreError> {
        let mut out = Vec::new();
        for id in path.ids().iter().copied().filter(|id| *id > 0) {
            if let Some(pa) = self
                .node_by_id(id)
                .await?
                .and_then(|n| n.public_access.clone())
            {
                out.push((id, pa));
            }
        }
        Ok(out)
    }

    /// A gateway API key by public id; revoked/expired keys are returned as stored and judged
    /// by `authn`.
    pub async fn api_key(&self, key_id: &str) -> Result<Option<Arc<ApiKeyRecord>>, StoreError> {
        let store = self.inner.store.clone();
        let owned = key_id.to_owned();
        self.cached(
            &self.inner.api_keys,
            "api_keys",
            key_id.to_owned(),
            async move { Ok(store.api_key(&owned).await?.map(Arc::new)) },
        )
        .await
    }

    /// Notes that a key was used; written in batches by `flush_api_key_use` (never on the
    /// request path).
    pub fn record_api_key_use(&self, key_id: &str) {
        let mut t = self.inner.touched.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() < 100_000 {
            t.insert(key_id.to_owned());
        }
    }

    /// Writes the recorded key uses (`last_used_at = now`); on error they are kept for the next
    /// flush.
    pub async fn flush_api_key_use(&self) -> Result<usize, StoreError> {
        let batch: Vec<String> = {
            let mut t = self.inner.touched.lock().unwrap_or_else(|p| p.into_inner());
            t.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match self
            .inner
            .store
            .touch_api_keys(&batch, chrono::Utc::now())
            .await
        {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                let mut t = self.inner.touched.lock().unwrap_or_else(|p| p.into_inner());
                t.extend(batch);
                Err(e)
            }
        }
    }

    /// Spawns a task flushing key uses every `every`.
    pub fn spawn_api_key_use_flusher(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = this.flush_api_key_use().await {
                    tracing::warn!(error = %e, "recording api key use failed");
                }
            }
        })
    }

    /// Refreshes `portcullis_cache_entries{cache}` for every cache (call before a scrape).
    pub fn update_entry_gauges(&self) {
        let i = &self.inner;
        let g = &i.metrics.cache_entries;
        let set = |name: &str, n: u64| {
            g.with_label_values(&[name])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        set("users", i.users.entry_count());
        set("groups", i.groups.entry_count());
        set("group_aliases", i.aliases.entry_count());
        set("nodes", i.nodes.entry_count());
        set("node_ids", i.node_ids.entry_count());
        set("routes", i.routes.entry_count());
        set("api_keys", i.api_keys.entry_count());
    }

    /// Evicts every entry of every cache (file reload, listener reconnect).
    pub fn invalidate_all(&self) {
        let i = &self.inner;
        i.generation.fetch_add(1, Ordering::AcqRel);
        i.users.invalidate_all();
        i.groups.invalidate_all();
        i.aliases.invalidate_all();
        i.nodes.invalidate_all();
        i.node_ids.invalidate_all();
        i.routes.invalidate_all();
        i.api_keys.invalidate_all();
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
