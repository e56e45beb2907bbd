//! Cache behaviour under outages and floods (no database): stale-while-revalidate, the
//! `max_staleness` bound, negative entries, the API key lookup limit and the memory budget.

use super::tests::{dev_file, CountingStore};
use super::*;
use crate::authn::ApiKeyRecord;
use crate::authz::{GroupPolicy, NodeId, NodeInfo, NodeKind, NodePath};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn metrics() -> StoreMetrics {
    StoreMetrics::unregistered().expect("metrics")
}

fn expiring() -> CacheConfig {
    CacheConfig {
        ttl: Duration::from_millis(40),
        listener_fallback_ttl: Duration::from_millis(40),
        ..CacheConfig::default()
    }
}

fn file_backed(cfg: CacheConfig, staleness: Duration) -> (Arc<CountingStore>, PolicyCache) {
    let file = Arc::new(FileStore::open(&dev_file()).expect("dev policy loads"));
    let store = CountingStore::new(file, Duration::ZERO);
    let cache = PolicyCache::new(store.clone(), cfg, staleness, metrics());
    cache.set_push_invalidation(true);
    (store, cache)
}

#[tokio::test]
async fn during_an_outage_every_concurrent_warm_caller_is_served_and_one_refresh_runs() {
    let (store, cache) = file_backed(expiring(), Duration::from_secs(60));
    cache.user_access("dev-writer").await.expect("loads");
    store.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let before = store.user_loads.load(Ordering::SeqCst);
    let calls = (0..64).map(|_| {
        let c = cache.clone();
        tokio::spawn(async move { c.user_access("dev-writer").await })
    });
    for r in futures::future::join_all(calls).await {
        let access = r
            .expect("join")
            .expect("served from cache")
            .expect("exists");
        assert_eq!(access.external_id, "dev-writer");
    }
    let refreshes = store.user_loads.load(Ordering::SeqCst) - before;
    assert!(refreshes <= 1, "{refreshes} refreshes for one key");
}

#[tokio::test]
async fn a_stale_entry_is_served_at_once_and_replaced_by_its_background_refresh() {
    let m = metrics();
    let file = Arc::new(FileStore::open(&dev_file()).expect("dev policy loads"));
    let store = CountingStore::new(file, Duration::from_millis(50));
    let cache = PolicyCache::new(
        store.clone(),
        expiring(),
        Duration::from_secs(60),
        m.clone(),
    );
    cache.set_push_invalidation(true);
    cache.api_key("DevBlogKey000001").await.expect("loads");
    tokio::time::sleep(Duration::from_millis(60)).await;
    cache
        .api_key("DevBlogKey000001")
        .await
        .expect("stale served");
    assert_eq!(m.stale_served.get(), 1);
    // Once the refresh has landed, lookups are fresh hits again.
    let hits = || m.cache_hits.with_label_values(&["api_keys"]).get();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = hits();
        cache.api_key("DevBlogKey000001").await.expect("served");
        if hits() > before {
            break;
        }
        assert!(Instant::now() < deadline, "the refresh never landed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_entry_older_than_max_staleness_is_reloaded_and_fails_closed_when_the_store_is_down() {
    let (store, cache) = file_backed(expiring(), Duration::from_millis(100));
    cache.user_access("dev-writer").await.expect("loads");
    store.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = cache.user_access("dev-writer").await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    // A confirmation (the listener's heartbeat came back) makes the cache current again.
    cache.confirm_current(Instant::now());
    assert_eq!(cache.freshness(), Freshness::Current);
}

#[tokio::test]
async fn freshness_is_degraded_without_confirmation_then_stale_past_max_staleness() {
    // Max staleness 1 s: the first check must come within it, even on a loaded machine.
    let (_store, cache) = file_backed(CacheConfig::default(), Duration::from_secs(1));
    cache.set_push_invalidation(false);
    cache.confirm_current(Instant::now());
    assert!(matches!(cache.freshness(), Freshness::Degraded { .. }));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(cache.freshness(), Freshness::Stale { .. }));
}

#[tokio::test]
async fn an_unknown_id_is_remembered_apart_and_forgotten_when_its_row_appears() {
    let (store, cache) = file_backed(CacheConfig::default(), Duration::from_secs(30));
    assert!(cache
        .api_key("NoSuchKey0000001")
        .await
        .expect("ok")
        .is_none());
    let after_first = store.loads.load(Ordering::SeqCst);
    assert!(cache
        .api_key("NoSuchKey0000001")
        .await
        .expect("ok")
        .is_none());
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        after_first,
        "absent is cached"
    );
    cache
        .apply(&Invalidation::ApiKey {
            key_ids: vec!["NoSuchKey0000001".into()],
        })
        .await;
    assert!(cache
        .api_key("NoSuchKey0000001")
        .await
        .expect("ok")
        .is_none());
    assert_eq!(store.loads.load(Ordering::SeqCst), after_first + 1);
}

#[tokio::test]
async fn uncached_api_key_lookups_past_the_rate_are_refused_without_a_store_call() {
    let cfg = CacheConfig {
        api_key_miss_rate: 5,
        ..CacheConfig::default()
    };
    let m = metrics();
    let file = Arc::new(FileStore::open(&dev_file()).expect("dev policy loads"));
    let store = CountingStore::new(file, Duration::ZERO);
    let cache = PolicyCache::new(store.clone(), cfg, Duration::from_secs(30), m.clone());
    let mut limited = 0;
    for i in 0..40 {
        match cache.api_key(&format!("Random{i:010}")).await {
            Err(StoreError::LookupLimited) => limited += 1,
            r => assert!(matches!(r, Ok(None)), "{r:?}"),
        }
    }
    let loads = store.loads.load(Ordering::SeqCst);
    assert!(loads < 20, "{loads} store lookups for 40 random keys");
    assert_eq!(limited, 40 - loads);
    assert_eq!(m.lookups_limited.get(), limited as u64);
    // Known keys already cached are not affected.
    assert!(cache.api_key("Random0000000000").await.is_ok());
}

/// Answers any node key with a node (a deep path and a route) and nothing else.
struct EveryNode;

#[async_trait::async_trait]
impl PolicyStore for EveryNode {
    async fn user_by_external_id(&self, _: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(None)
    }
    async fn user_external_id(&self, _: Uuid) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    async fn group(&self, _: Uuid) -> Result<Option<GroupPolicy>, StoreError> {
        Ok(None)
    }
    async fn group_key_by_alias(&self, _: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(None)
    }
    async fn node(&self, key: Uuid) -> Result<Option<NodeInfo>, StoreError> {
        let id = (key.as_u128() % 1_000_000) as NodeId;
        Ok(Some(NodeInfo {
            key,
            id,
            kind: NodeKind::Document,
            path: NodePath((1..=12).chain([id]).collect::<Vec<NodeId>>().into()),
            trashed: false,
            route_path: Some(format!("/section/page-{id}/")),
            public_access: None,
        }))
    }
    async fn node_by_id(&self, _: NodeId) -> Result<Option<NodeInfo>, StoreError> {
        Ok(None)
    }
    async fn protected_nodes(&self) -> Result<Vec<NodeId>, StoreError> {
        Ok(Vec::new())
    }
    async fn nodes_by_route(&self, _: &str) -> Result<Vec<NodeInfo>, StoreError> {
        Ok(Vec::new())
    }
    async fn api_key(&self, _: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(None)
    }
    async fn touch_api_keys(
        &self,
        _: &[String],
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_flood_of_distinct_ids_stays_within_each_cache_budget() {
    let cfg = CacheConfig {
        max_memory: 1 << 20,
        ..CacheConfig::default()
    };
    let m = metrics();
    let cache = PolicyCache::new(
        Arc::new(EveryNode),
        cfg.clone(),
        Duration::from_secs(30),
        m.clone(),
    );
    for i in 0..20_000u128 {
        cache.node(Uuid::from_u128(i)).await.expect("node");
        cache
            .nodes_by_route(&format!("/nothing/{i}/"))
            .await
            .expect("absent");
    }
    cache.run_pending_maintenance().await;
    cache.update_entry_gauges();
    for name in ["nodes", "negative"] {
        let bytes = m.cache_bytes.with_label_values(&[name]).get();
        let entries = m.cache_entries.with_label_values(&[name]).get();
        let budget = i64::try_from(cfg.budget(name)).expect("fits");
        assert!(bytes <= budget, "{name}: {bytes} bytes over its {budget}");
        assert!(
            entries > 100 && entries < 20_000,
            "{name}: {entries} entries"
        );
    }
}

#[tokio::test]
async fn user_facts_come_by_key_and_say_who_is_an_administrator() {
    let (_, cache) = file_backed(CacheConfig::default(), Duration::from_secs(60));
    let key = |ext: &'static str| {
        let c = cache.clone();
        async move {
            c.user_access(ext)
                .await
                .expect("loads")
                .expect("exists")
                .user_key
        }
    };
    let admin = cache
        .user_facts(key("dev-admin").await)
        .await
        .expect("loads");
    assert_eq!(admin.map(|f| f.is_admin), Some(true));
    let writer = cache
        .user_facts(key("dev-writer").await)
        .await
        .expect("loads");
    assert_eq!(writer.map(|f| f.is_admin), Some(false));
    assert_eq!(cache.user_facts(Uuid::new_v4()).await.expect("loads"), None);
}

#[tokio::test]
async fn the_warm_reads_answer_only_from_fresh_entries() {
    let (store, cache) = file_backed(expiring(), Duration::from_secs(60));
    assert!(
        cache.user_access_now("dev-writer").is_none(),
        "nothing cached yet"
    );
    assert!(cache.api_key_now("DevBlogKey000001").is_none());
    cache.user_access("dev-writer").await.expect("loads");
    cache.api_key("DevBlogKey000001").await.expect("loads");
    let loads = store.user_loads.load(Ordering::SeqCst);
    let access = cache.user_access_now("dev-writer").expect("fresh hit");
    assert_eq!(access.external_id, "dev-writer");
    assert!(cache.api_key_now("DevBlogKey000001").is_some());
    assert_eq!(store.user_loads.load(Ordering::SeqCst), loads, "no load");
    // Unknown users are never answered here ("does not exist" goes the async way).
    assert!(cache.user_access_now("nobody-at-all").is_none());
    // Past the TTL the entry is stale: only the async path may serve it (and refresh it).
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(cache.user_access_now("dev-writer").is_none());
    cache.user_access("dev-writer").await.expect("stale served");
    cache.invalidate_all();
    assert!(cache.api_key_now("DevBlogKey000001").is_none(), "evicted");
}

#[tokio::test]
async fn a_delivery_items_node_and_ancestors_are_answered_warm_by_key_and_by_id() {
    // A warm Delivery item reads its node by key and each ancestor by id (member protection):
    // after one cold load of each, the warm reads answer every one of them without a load,
    // by the exact key or id asked, and nothing else.
    let (store, cache) = file_backed(CacheConfig::default(), Duration::from_secs(60));
    let post = super::tests::node_key(0x1063);
    assert!(cache.node_now(post).is_none(), "nothing cached yet");
    assert!(cache.node_by_id_now(1062).is_none());
    cache.node(post).await.expect("loads").expect("exists");
    for id in [1062, 1051] {
        cache.node_by_id(id).await.expect("loads").expect("exists");
    }
    let loads = store.loads.load(Ordering::SeqCst);
    assert_eq!(cache.node_now(post).expect("warm").id, 1063);
    let blog = cache.node_by_id_now(1062).expect("warm");
    assert_eq!((blog.id, blog.key), (1062, super::tests::node_key(0x1062)));
    assert_eq!(cache.node_by_id_now(1051).expect("warm").id, 1051);
    assert_eq!(cache.node_now(blog.key).expect("warm by key too").id, 1062);
    assert_eq!(store.loads.load(Ordering::SeqCst), loads, "no load");
    assert!(cache.node_by_id_now(1064).is_none(), "never loaded");
    assert!(cache.node_now(super::tests::node_key(0x1064)).is_none());
}
