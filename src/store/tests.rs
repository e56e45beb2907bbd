//! Unit tests of the policy file, the file store and the cache (no database).

use super::*;
use crate::authn::ApiKeyRecord;
use crate::authz::{GroupPolicy, NodeId, NodeInfo};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub(crate) fn dev_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy/dev.toml")
}

pub(crate) fn node_key(id: u128) -> Uuid {
    Uuid::from_u128(id)
}

/// Wraps a store, counting loads; can be made to fail or to slow down.
pub(crate) struct CountingStore {
    pub inner: Arc<dyn PolicyStore>,
    pub user_loads: AtomicUsize,
    pub loads: AtomicUsize,
    pub failing: AtomicBool,
    pub delay: Duration,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn PolicyStore>, delay: Duration) -> Arc<Self> {
        Arc::new(CountingStore {
            inner,
            user_loads: AtomicUsize::new(0),
            loads: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            delay,
        })
    }
    async fn step(&self) -> Result<(), StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt {
                what: "test store",
                value: "down".into(),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl PolicyStore for CountingStore {
    async fn user_by_external_id(&self, ext: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_loads.fetch_add(1, Ordering::SeqCst);
        self.step().await?;
        self.inner.user_by_external_id(ext).await
    }
    async fn user_external_id(&self, key: Uuid) -> Result<Option<String>, StoreError> {
        self.step().await?;
        self.inner.user_external_id(key).await
    }
    async fn group(&self, key: Uuid) -> Result<Option<GroupPolicy>, StoreError> {
        self.step().await?;
        self.inner.group(key).await
    }
    async fn group_key_by_alias(&self, alias: &str) -> Result<Option<Uuid>, StoreError> {
        self.step().await?;
        self.inner.group_key_by_alias(alias).await
    }
    async fn node(&self, key: Uuid) -> Result<Option<NodeInfo>, StoreError> {
        self.step().await?;
        self.inner.node(key).await
    }
    async fn node_by_id(&self, id: NodeId) -> Result<Option<NodeInfo>, StoreError> {
        self.step().await?;
        self.inner.node_by_id(id).await
    }
    async fn protected_nodes(&self) -> Result<Vec<NodeId>, StoreError> {
        self.step().await?;
        self.inner.protected_nodes().await
    }
    async fn nodes_by_route(&self, key: &str) -> Result<Vec<NodeInfo>, StoreError> {
        self.step().await?;
        self.inner.nodes_by_route(key).await
    }
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.step().await?;
        self.inner.api_key(key_id).await
    }
    async fn touch_api_keys(
        &self,
        ids: &[String],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.inner.touch_api_keys(ids, at).await
    }
}

pub(super) fn metrics() -> StoreMetrics {
    StoreMetrics::unregistered().expect("metrics")
}

/// `store.max_staleness` for caches that do not test it.
pub(super) const STALENESS: Duration = Duration::from_secs(30);

fn counting_cache(delay: Duration, cfg: CacheConfig) -> (Arc<CountingStore>, PolicyCache) {
    let file = Arc::new(FileStore::open(&dev_file()).expect("dev policy loads"));
    let counting = CountingStore::new(file, delay);
    let cache = PolicyCache::new(counting.clone(), cfg, STALENESS, metrics());
    cache.set_push_invalidation(true);
    (counting, cache)
}

#[tokio::test]
async fn the_writer_is_narrowed_to_the_blog_by_an_own_start_node() {
    let (_, cache) = counting_cache(Duration::ZERO, CacheConfig::default());
    let a = cache
        .user_access("dev-writer")
        .await
        .expect("loads")
        .expect("exists");
    let ids: Vec<_> = a.content_start_nodes.0.iter().map(|p| p.node()).collect();
    assert_eq!(ids, vec![1062]);
    assert!(a.media_start_nodes.has_root());
    let writer = &a.groups[0];
    assert!(
        writer.granular[&1070].is_empty(),
        "an empty entry is a real entry"
    );
    let admin = cache
        .user_access("dev-admin")
        .await
        .expect("loads")
        .expect("exists");
    assert!(admin.content_start_nodes.has_root());
    assert!(cache.user_access("nobody").await.expect("loads").is_none());
}

#[tokio::test]
async fn nodes_resolve_by_key_id_and_route_with_public_access() {
    let (_, cache) = counting_cache(Duration::ZERO, CacheConfig::default());
    let found = cache.nodes_by_route("/members/lounge/").await.expect("ok");
    assert_eq!(found.len(), 1);
    let n = found[0].clone();
    assert_eq!(n.id, 1071);
    let protected = cache.protected_nodes().await.expect("ok");
    let on_path: Vec<NodeId> = n
        .path
        .ids()
        .iter()
        .copied()
        .filter(|id| protected.contains(*id))
        .collect();
    assert_eq!(
        on_path,
        [1070],
        "the lounge's one protected node is its parent"
    );
    let parent = cache.node_by_id(1070).await.expect("ok").expect("found");
    let pa = parent.public_access.as_ref().expect("the entry");
    assert_eq!(pa.member_usernames, ["ann"]);
    let trashed = cache.node_by_id(1090).await.expect("ok").expect("found");
    assert!(trashed.trashed && trashed.path.in_recycle_bin());
    assert!(cache.node(node_key(0xdead)).await.expect("ok").is_none());
    let key = cache
        .api_key("DevBlogKey000001")
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(key.scope.subtree_roots, vec![node_key(0x1062)]);
}

#[tokio::test]
async fn concurrent_misses_for_one_user_share_one_load() {
    let (store, cache) = counting_cache(Duration::from_millis(50), CacheConfig::default());
    let calls = (0..32).map(|_| {
        let c = cache.clone();
        tokio::spawn(async move { c.user_access("dev-editor").await })
    });
    for r in futures::future::join_all(calls).await {
        assert!(r.expect("task").expect("loads").is_some());
    }
    assert_eq!(store.user_loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_warm_cache_makes_no_store_call() {
    let (store, cache) = counting_cache(Duration::ZERO, CacheConfig::default());
    cache.user_access("dev-writer").await.expect("loads");
    cache.node(node_key(0x1063)).await.expect("loads");
    cache.api_key("DevBlogKey000001").await.expect("loads");
    let before = store.loads.load(Ordering::SeqCst);
    for _ in 0..100 {
        cache.user_access("dev-writer").await.expect("hit");
        cache.node(node_key(0x1063)).await.expect("hit");
        cache.api_key("DevBlogKey000001").await.expect("hit");
    }
    assert_eq!(store.loads.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn a_store_error_with_nothing_cached_fails_closed() {
    let (store, cache) = counting_cache(Duration::ZERO, CacheConfig::default());
    store.failing.store(true, Ordering::SeqCst);
    let r = cache.user_access("dev-writer").await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(matches!(
        cache.api_key("DevBlogKey000001").await,
        Err(StoreError::Unavailable(_))
    ));
}

fn short() -> CacheConfig {
    CacheConfig {
        ttl: Duration::from_millis(40),
        listener_fallback_ttl: Duration::from_millis(40),
        ..CacheConfig::default()
    }
}

async fn wait_until_expired(cache: &PolicyCache, store: &CountingStore) {
    // Expiry is by age; poll (bounded) until a lookup goes back to the store.
    let before = store.loads.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(2);
    while store.loads.load(Ordering::SeqCst) == before {
        assert!(Instant::now() < deadline, "entry never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let _ = cache.api_key("DevBlogKey000001").await;
    }
}

#[tokio::test]
async fn an_expired_entry_is_served_stale_during_an_outage_and_counted() {
    let file = Arc::new(FileStore::open(&dev_file()).expect("loads"));
    let store = CountingStore::new(file, Duration::ZERO);
    let m = metrics();
    let cache = PolicyCache::new(store.clone(), short(), Duration::from_secs(60), m.clone());
    cache.set_push_invalidation(true);
    cache.api_key("DevBlogKey000001").await.expect("loads");
    store.failing.store(true, Ordering::SeqCst);
    wait_until_expired(&cache, &store).await;
    let k = cache
        .api_key("DevBlogKey000001")
        .await
        .expect("stale is served");
    assert!(k.is_some());
    assert!(m.stale_served.get() >= 1);
}

#[tokio::test]
async fn past_max_staleness_an_outage_fails_closed() {
    let file = Arc::new(FileStore::open(&dev_file()).expect("loads"));
    let store = CountingStore::new(file, Duration::ZERO);
    let staleness = Duration::from_millis(50);
    let cache = PolicyCache::new(store.clone(), short(), staleness, metrics());
    cache.set_push_invalidation(true);
    cache.api_key("DevBlogKey000001").await.expect("loads");
    store.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(matches!(
        cache.api_key("DevBlogKey000001").await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn with_push_invalidation_down_entries_use_the_fallback_ttl() {
    let cfg = CacheConfig {
        listener_fallback_ttl: Duration::from_millis(30),
        ..CacheConfig::default()
    };
    let (store, cache) = counting_cache(Duration::ZERO, cfg);
    cache.api_key("DevBlogKey000001").await.expect("loads");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = store.loads.load(Ordering::SeqCst);
    cache
        .api_key("DevBlogKey000001")
        .await
        .expect("hit: push is up, ttl is long");
    assert_eq!(store.loads.load(Ordering::SeqCst), before);
    cache.set_push_invalidation(false);
    assert!(!cache.listener_up());
    // Older than the fallback ttl: served while one refresh reloads it in the background.
    cache.api_key("DevBlogKey000001").await.expect("served");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.loads.load(Ordering::SeqCst) != before + 1 {
        assert!(Instant::now() < deadline, "no refresh");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_group_change_evicts_the_group_and_the_users_holding_it() {
    let (store, cache) = counting_cache(Duration::ZERO, CacheConfig::default());
    cache.user_access("dev-writer").await.expect("loads");
    cache.user_access("dev-editor").await.expect("loads");
    let writer = Uuid::from_u128(0x9fc2a16f_528c_46d6_a014_75bf4ec2480c);
    cache.apply(&Invalidation::Group { key: writer }).await;
    let before = store.user_loads.load(Ordering::SeqCst);
    cache.user_access("dev-editor").await.expect("hit");
    assert_eq!(
        store.user_loads.load(Ordering::SeqCst),
        before,
        "editor untouched"
    );
    cache.user_access("dev-writer").await.expect("reload");
    assert_eq!(
        store.user_loads.load(Ordering::SeqCst),
        before + 1,
        "writer evicted"
    );
}

#[tokio::test]
async fn a_node_move_evicts_its_cached_subtree_and_dependent_users() {
    let (store, cache) = counting_cache(Duration::ZERO, CacheConfig::default());
    for id in [0x1062, 0x1063, 0x1064, 0x1080] {
        cache.node(node_key(id)).await.expect("loads");
    }
    cache.user_access("dev-writer").await.expect("loads");
    cache.user_access("dev-editor").await.expect("loads");
    let (nodes0, users0) = (
        store.loads.load(Ordering::SeqCst),
        store.user_loads.load(Ordering::SeqCst),
    );
    cache
        .apply(&Invalidation::Node {
            key: node_key(0x1062),
            ids: vec![1062],
            routes: vec![],
        })
        .await;
    cache.node(node_key(0x1080)).await.expect("hit");
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        nodes0,
        "1080 is not below 1062"
    );
    for id in [0x1062, 0x1063, 0x1064] {
        cache.node(node_key(id)).await.expect("reload");
    }
    assert_eq!(store.loads.load(Ordering::SeqCst), nodes0 + 3);
    cache.user_access("dev-editor").await.expect("hit");
    assert_eq!(
        store.user_loads.load(Ordering::SeqCst),
        users0,
        "editor starts at root"
    );
    cache.user_access("dev-writer").await.expect("reload");
    assert_eq!(
        store.user_loads.load(Ordering::SeqCst),
        users0 + 1,
        "writer starts at 1062"
    );
}

#[tokio::test]
async fn an_invalidation_during_a_load_does_not_leave_a_fresh_entry() {
    let (store, cache) = counting_cache(Duration::from_millis(80), CacheConfig::default());
    let c = cache.clone();
    let load = tokio::spawn(async move { c.api_key("DevBlogKey000001").await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    cache
        .apply(&Invalidation::ApiKey {
            key_ids: vec!["DevBlogKey000001".into()],
        })
        .await;
    load.await.expect("task").expect("loads");
    let before = store.loads.load(Ordering::SeqCst);
    cache.api_key("DevBlogKey000001").await.expect("reloads");
    assert_eq!(store.loads.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn mapped_groups_give_an_unregistered_user_their_start_nodes() {
    let (_, cache) = counting_cache(Duration::ZERO, CacheConfig::default());
    let a = cache
        .mapped_access("jwt:idp#x", &["writer".into(), "unknown".into()], &[])
        .await
        .expect("loads");
    assert_eq!(a.groups.len(), 1);
    assert!(a.content_start_nodes.has_root());
}

#[tokio::test]
async fn stored_group_mappings_give_an_issuers_idp_groups_their_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.toml");
    let text = std::fs::read_to_string(dev_file()).expect("readable")
        + "\n[[group_mappings]]\nissuer = \"corp\"\nidp_group = \"g1\"\ngroups = [\"writer\", \"editor\"]\n";
    std::fs::write(&path, text).expect("write");
    let store = Arc::new(FileStore::open(&path).expect("opens"));
    let cache = PolicyCache::new(store, CacheConfig::default(), STALENESS, metrics());
    let keys = cache
        .stored_mappings("corp", &["g1".into(), "g2".into()])
        .await
        .expect("loads");
    assert_eq!(keys.len(), 2);
    assert!(cache
        .stored_mappings("other", &["g1".into()])
        .await
        .expect("loads")
        .is_empty());
    assert!(cache
        .stored_mappings("corp", &[])
        .await
        .expect("loads")
        .is_empty());
    let a = cache
        .mapped_access("jwt:corp#x", &["writer".into()], &keys)
        .await
        .expect("loads");
    assert_eq!(a.groups.len(), 2, "writer is counted once");
    assert_eq!(
        Invalidation::parse(r#"{"table":"group_mappings","op":"delete","issuer":"corp"}"#),
        Invalidation::GroupMappings {
            issuer: "corp".into()
        }
    );
}

/// docs/STORE.md: the protected-node list is one cache entry, read from the store once while
/// it fits its share of `max_memory`, and on every use when it does not.
#[tokio::test]
async fn the_protected_node_list_is_kept_only_within_its_memory_share() {
    let uses = |cache: PolicyCache| async move {
        for _ in 0..3 {
            let list = cache.protected_nodes().await.expect("loads");
            assert!(list.contains(1070), "the members lounge's parent is listed");
            cache.run_pending_maintenance().await;
        }
    };
    let (store, cache) = counting_cache(Duration::ZERO, CacheConfig::default());
    uses(cache).await;
    assert_eq!(store.loads.load(Ordering::SeqCst), 1, "kept");
    // A share of 10 bytes: smaller than the one-entry list with moka's bookkeeping.
    let tiny = CacheConfig {
        max_memory: 1000,
        ..CacheConfig::default()
    };
    let (store, cache) = counting_cache(Duration::ZERO, tiny);
    uses(cache).await;
    assert_eq!(store.loads.load(Ordering::SeqCst), 3, "read on every use");
}
