//! Faults between the cache and a real Postgres, injected with a [`FaultProxy`]: the
//! connection reset (RST) or silently blackholed. The listener must notice within its timeout,
//! cached grants must end at `max_staleness`, and a revocation must still arrive through the
//! fallback TTL when only the listener is cut off. Measured bounds are printed (see
//! docs/STORE.md); the assertions only wait, with generous bounds.

use super::fault::{Fault, FaultProxy};
use super::tests::dev_file;
use super::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Short enough to keep each test at a few seconds.
fn drill_config() -> StoreConfig {
    StoreConfig {
        query_timeout: Duration::from_millis(500),
        pool_acquire_timeout: Duration::from_millis(500),
        max_staleness: Duration::from_secs(3),
        listener_heartbeat: Duration::from_millis(200),
        listener_timeout: Duration::from_secs(1),
        cache: CacheConfig {
            listener_fallback_ttl: Duration::from_millis(500),
            ..CacheConfig::default()
        },
        ..StoreConfig::default()
    }
}

/// A cache whose store queries go to `store_opts` and whose listener connects to `listen_opts`.
fn drill_cache(
    cfg: &StoreConfig,
    store_opts: PgConnectOptions,
    listen_opts: PgConnectOptions,
) -> (PolicyCache, tokio::task::JoinHandle<()>) {
    let metrics = StoreMetrics::unregistered().expect("metrics");
    let store = PostgresStore::new(connect_with(cfg, store_opts), metrics.clone())
        .with_query_timeout(cfg.query_timeout);
    let cache = PolicyCache::new(
        Arc::new(store),
        cfg.cache.clone(),
        cfg.max_staleness,
        metrics,
    );
    let listener = Listener::new(
        connect_with(cfg, listen_opts),
        cache.clone(),
        cfg.listener_heartbeat,
        cfg.listener_timeout,
    );
    (cache, listener.spawn())
}

async fn seeded(pool_opts: PgPoolOptions, conn_opts: &PgConnectOptions) -> PgPool {
    let pool = pool_opts
        .connect_with(conn_opts.clone())
        .await
        .expect("direct pool");
    let text = std::fs::read_to_string(dev_file()).expect("readable");
    let file = PolicyFile::parse(&text, "dev.toml").expect("parses");
    apply_policy(&pool, &file, false).await.expect("applies");
    pool
}

async fn proxy_to(conn_opts: &PgConnectOptions) -> FaultProxy {
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], conn_opts.get_port()));
    FaultProxy::start(upstream).await.expect("proxy")
}

/// Polls `cond` (async) every 20 ms for up to 30 s; returns how long it took.
async fn within_30s<F, Fut>(what: &str, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// Partitions store and listener together with `fault`: the listener is declared dead, warm
/// grants are served (stale) until `max_staleness`, then refused; healing brings it back.
async fn partition(fault: Fault, pool_opts: PgPoolOptions, conn_opts: PgConnectOptions) {
    let _direct = seeded(pool_opts, &conn_opts).await;
    let proxy = proxy_to(&conn_opts).await;
    let via = conn_opts.clone().port(proxy.addr.port());
    let cfg = drill_config();
    let (cache, listener) = drill_cache(&cfg, via.clone(), via);
    within_30s("listener up", || async { cache.listener_up() }).await;
    let user = |c: PolicyCache| async move { c.user_access("dev-writer").await };
    assert!(user(cache.clone()).await.expect("loads").is_some());

    proxy.set(fault);
    let cut = Instant::now();
    let detected = within_30s("listener declared dead", || async { !cache.listener_up() }).await;
    assert!(matches!(cache.freshness(), Freshness::Degraded { .. }));
    // Warm: still answered from the cache (the refresh fails in the background).
    assert!(user(cache.clone()).await.expect("served stale").is_some());
    let refused = within_30s("cached grants end", || {
        let c = cache.clone();
        async move { c.user_access("dev-writer").await.is_err() }
    })
    .await;
    assert!(matches!(cache.freshness(), Freshness::Stale { .. }));
    println!(
        "{fault:?}: listener dead after {detected:?}; cached grants refused {:?} after the fault \
         (max_staleness {:?})",
        cut.elapsed().min(refused + detected),
        cfg.max_staleness
    );

    proxy.set(Fault::Pass);
    within_30s("listener back", || async { cache.listener_up() }).await;
    within_30s("store answers again", || {
        let c = cache.clone();
        async move { c.user_access("dev-writer").await.is_ok() }
    })
    .await;
    listener.abort();
}

#[sqlx::test(migrations = "./migrations")]
async fn a_silent_partition_is_found_by_the_heartbeat_and_ends_cached_grants_at_max_staleness(
    pool_opts: PgPoolOptions,
    conn_opts: PgConnectOptions,
) {
    partition(Fault::Blackhole, pool_opts, conn_opts).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_reset_connection_is_found_at_once_and_ends_cached_grants_at_max_staleness(
    pool_opts: PgPoolOptions,
    conn_opts: PgConnectOptions,
) {
    partition(Fault::Cut, pool_opts, conn_opts).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn with_only_the_listener_blackholed_a_revocation_arrives_through_the_fallback_ttl(
    pool_opts: PgPoolOptions,
    conn_opts: PgConnectOptions,
) {
    let direct = seeded(pool_opts, &conn_opts).await;
    let proxy = proxy_to(&conn_opts).await;
    let via = conn_opts.clone().port(proxy.addr.port());
    let cfg = drill_config();
    let (cache, listener) = drill_cache(&cfg, conn_opts.clone(), via);
    within_30s("listener up", || async { cache.listener_up() }).await;
    let groups = |c: PolicyCache| async move {
        c.user_access("dev-writer")
            .await
            .expect("store answers")
            .expect("exists")
            .groups
            .len()
    };
    assert_eq!(groups(cache.clone()).await, 1);

    proxy.set(Fault::Blackhole);
    within_30s("listener declared dead", || async { !cache.listener_up() }).await;
    let revoked = Instant::now();
    sqlx::query(
        "delete from memberships m using users u \
         where m.user_key = u.key and u.external_id = 'dev-writer'",
    )
    .execute(&direct)
    .await
    .expect("revokes");
    let took = within_30s("revocation applied", || {
        let c = cache.clone();
        async move { groups(c).await == 0 }
    })
    .await;
    println!(
        "listener blackholed, store reachable: revocation applied {took:?} after commit \
         (fallback ttl {:?}, measured from {:?})",
        cfg.cache.listener_fallback_ttl,
        revoked.elapsed()
    );
    listener.abort();
}
