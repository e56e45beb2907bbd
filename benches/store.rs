//! Cold-miss cost of the policy cache over PostgreSQL: resolving a user's access (user row,
//! 5 groups with 200 explicit entries in total, own start node) with every cache empty.
//! Needs PostgreSQL at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! creates and drops the database `portcullis_bench_store`.
//!
//! `cargo bench --bench store -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portcullis::authz::NodeKind;
use portcullis::store::policy_file::{GroupEntry, NodeEntry, PermissionEntry, StartRef, UserEntry};
use portcullis::store::{
    apply_policy, migrate, CacheConfig, PolicyCache, PolicyFile, PostgresStore, StoreMetrics,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// One database per bench process: parallel runs (several engineers, CI) never drop each
/// other's; dropped again when the bench ends.
fn db_name() -> String {
    format!("portcullis_bench_store_{}", std::process::id())
}

/// A chain of 12 nested documents with 20 siblings at each level (252 nodes), five groups
/// with 40 explicit entries each, and a user in all five with an own start node.
fn policy() -> PolicyFile {
    let mut f = PolicyFile::default();
    let mut parent: Option<Uuid> = None;
    let mut id = 10_000;
    let mut spine = Vec::new();
    for _depth in 0..12 {
        let mut first = None;
        for _ in 0..21 {
            id += 1;
            let key = Uuid::from_u128(id as u128);
            f.nodes.push(NodeEntry {
                key,
                id,
                parent,
                kind: NodeKind::Document,
                trashed: false,
                route_path: Some(format!("/n{id}/")),
            });
            first.get_or_insert(key);
        }
        parent = first;
        spine.extend(first);
    }
    let all_nodes: Vec<Uuid> = f.nodes.iter().map(|n| n.key).collect();
    for g in 0..5u128 {
        let alias = format!("bench{g}");
        f.groups.push(GroupEntry {
            key: Uuid::from_u128(0xb000 + g),
            alias: alias.clone(),
            name: alias.clone(),
            sections: vec!["content".into(), "media".into()],
            default_verbs: vec!["Umb.Document.Read".into()],
            content_start: Some(StartRef::Node(spine[g as usize])),
            media_start: Some(StartRef::Root),
            all_languages: false,
            languages: vec!["en-us".into(), "da-dk".into()],
            origin: Default::default(),
        });
        for i in 0..40 {
            f.permissions.push(PermissionEntry {
                group: alias.clone(),
                node: all_nodes[(g as usize * 40 + i) % all_nodes.len()],
                verbs: vec!["Umb.Document.Read".into(), "Umb.Document.Update".into()],
            });
        }
    }
    f.users.push(UserEntry {
        key: Uuid::from_u128(0xa1),
        external_id: "bench-user".into(),
        name: "Bench".into(),
        email: None,
        state: portcullis::authz::UserState::Active,
        groups: (0..5).map(|g| format!("bench{g}")).collect(),
        content_start: vec![StartRef::Node(spine[3])],
        media_start: vec![],
        origin: Default::default(),
    });
    f
}

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_unset| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn drop_db() {
    let admin = PgPool::connect(&admin_url())
        .await
        .expect("postgres is reachable");
    sqlx::query(&format!(
        "drop database if exists {} with (force)",
        db_name()
    ))
    .execute(&admin)
    .await
    .expect("drops");
}

async fn setup() -> PgPool {
    let url = admin_url();
    let admin = PgPool::connect(&url).await.expect("postgres is reachable");
    let db = db_name();
    sqlx::query(&format!("create database {db}"))
        .execute(&admin)
        .await
        .expect("creates");
    let base = url
        .rsplit_once('/')
        .map_or(url.as_str(), |(b, _)| b)
        .to_owned();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&format!("{base}/{db}"))
        .await
        .expect("connects");
    migrate(&pool).await.expect("migrates");
    apply_policy(&pool, &policy(), false)
        .await
        .expect("applies");
    pool
}

fn cold_cache(pool: &PgPool) -> PolicyCache {
    let m = StoreMetrics::unregistered().expect("metrics");
    let store = Arc::new(PostgresStore::new(pool.clone(), m.clone()));
    let staleness = portcullis::store::StoreConfig::default().max_staleness;
    let cache = PolicyCache::new(store, CacheConfig::default(), staleness, m);
    cache.set_push_invalidation(true);
    cache
}

fn percentiles(name: &str, rt: &tokio::runtime::Runtime, pool: &PgPool, n: usize) {
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let cache = cold_cache(pool);
            let t = Instant::now();
            rt.block_on(cache.user_access("bench-user"))
                .expect("loads")
                .expect("exists");
            t.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{name}: n={n} p50={:?} p99={:?} max={:?}",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pool = rt.block_on(setup());
    percentiles("cold user access (5 groups, 200 entries)", &rt, &pool, 500);
    // The empty cache is built outside the timed part: only the loads are measured.
    c.bench_function("store/cold_user_access_postgres", |b| {
        b.iter_batched(
            || cold_cache(&pool),
            |cache| {
                rt.block_on(cache.user_access("bench-user"))
                    .expect("loads")
                    .expect("exists")
            },
            BatchSize::SmallInput,
        )
    });
    let warm = cold_cache(&pool);
    rt.block_on(warm.user_access("bench-user")).expect("loads");
    c.bench_function("store/warm_user_access", |b| {
        b.iter(|| rt.block_on(warm.user_access("bench-user")).expect("hit"))
    });
    c.bench_function("store/cold_node_postgres", |b| {
        b.iter(|| {
            let cache = cold_cache(&pool);
            rt.block_on(cache.node(Uuid::from_u128(10_100)))
                .expect("loads")
        })
    });
    rt.block_on(async {
        pool.close().await;
        drop_db().await;
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
