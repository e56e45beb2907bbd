//! Postgres tests (`#[sqlx::test]`, one fresh database each, migrations applied). They need
//! PostgreSQL at `DATABASE_URL` and fail loudly when it is unreachable.

use super::tests::{dev_file, node_key};
use super::*;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn dev_policy() -> PolicyFile {
    let text = std::fs::read_to_string(dev_file()).expect("readable");
    PolicyFile::parse(&text, "dev.toml").expect("parses")
}

fn metrics() -> StoreMetrics {
    StoreMetrics::unregistered().expect("metrics")
}

fn pg_cache(pool: &PgPool) -> PolicyCache {
    let store = Arc::new(PostgresStore::new(pool.clone(), metrics()));
    let staleness = StoreConfig::default().max_staleness;
    PolicyCache::new(store, CacheConfig::default(), staleness, metrics())
}

fn listener(pool: &PgPool, cache: &PolicyCache) -> Listener {
    let d = StoreConfig::default();
    Listener::new(
        pool.clone(),
        cache.clone(),
        d.listener_heartbeat,
        d.listener_timeout,
    )
}

async fn wait_for(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn migrations_seed_exactly_the_five_built_in_groups(pool: PgPool) {
    let exported = export_policy(&pool).await.expect("exports");
    let mut builtins = policy_file::builtin_groups();
    builtins.sort_by(|a, b| a.alias.cmp(&b.alias));
    assert_eq!(exported.groups, builtins);
    let flagged: i64 = sqlx::query_scalar("select count(*) from user_groups where built_in")
        .fetch_one(&pool)
        .await
        .expect("counts");
    assert_eq!(flagged, 5);
}

#[sqlx::test(migrations = "./migrations")]
async fn apply_then_export_round_trips_and_a_second_apply_writes_nothing(pool: PgPool) {
    let file = dev_policy();
    let first = apply_policy(&pool, &file, false).await.expect("applies");
    assert_eq!(first.written["content_nodes"], 10);
    assert_eq!(first.written["users"], 5);
    let exported = export_policy(&pool).await.expect("exports");
    assert_eq!(exported, file.normalized());
    let again = apply_policy(&pool, &exported, true).await.expect("applies");
    assert_eq!(again.total(), 0, "{again:?}");
}

#[sqlx::test(migrations = "./migrations")]
async fn prune_removes_what_the_file_does_not_name_but_never_built_in_groups(pool: PgPool) {
    let mut file = dev_policy();
    file.groups.push(policy_file::GroupEntry {
        key: Uuid::from_u128(0xabc),
        alias: "blogEditors".into(),
        name: "Blog editors".into(),
        sections: vec!["content".into()],
        default_verbs: vec![],
        content_start: Some(policy_file::StartRef::Node(node_key(0x1062))),
        media_start: None,
        all_languages: false,
        languages: vec!["en-US".into()],
        origin: policy_file::Origin::Umbraco,
    });
    apply_policy(&pool, &file, false).await.expect("applies");
    let mut smaller = dev_policy();
    smaller.groups.clear();
    smaller.users.retain(|u| u.external_id != "dev-sensitive");
    smaller.permissions.retain(|p| p.group != "editor");
    smaller.api_keys.clear();
    let report = apply_policy(&pool, &smaller, true).await.expect("prunes");
    assert_eq!(report.pruned["user_groups"], 1, "{report:?}");
    assert_eq!(report.pruned["users"], 1);
    assert_eq!(report.pruned["group_permissions"], 1);
    assert_eq!(report.pruned["api_keys"], 1);
    let exported = export_policy(&pool).await.expect("exports");
    assert_eq!(exported, smaller.normalized());
    assert_eq!(exported.groups.len(), 5);
}

#[sqlx::test(migrations = "./migrations")]
async fn an_invalid_file_changes_nothing(pool: PgPool) {
    let mut file = dev_policy();
    file.permissions[0].group = "nope".into();
    let r = apply_policy(&pool, &file, true).await;
    assert!(matches!(r, Err(StoreError::InvalidPolicy(_))), "{r:?}");
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&pool)
        .await
        .expect("counts");
    assert_eq!(users, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_postgres_store_resolves_what_the_file_store_resolves(pool: PgPool) {
    apply_policy(&pool, &dev_policy(), false)
        .await
        .expect("applies");
    let pg = pg_cache(&pool);
    let file = PolicyCache::new(
        Arc::new(FileStore::open(&dev_file()).expect("opens")),
        CacheConfig::default(),
        StoreConfig::default().max_staleness,
        metrics(),
    );
    for ext in [
        "dev-admin",
        "dev-editor",
        "dev-writer",
        "dev-translator",
        "dev-sensitive",
    ] {
        let a = pg.user_access(ext).await.expect("ok").expect("exists");
        let b = file.user_access(ext).await.expect("ok").expect("exists");
        assert_eq!(a, b, "{ext}");
    }
    for id in [1051, 1063, 1071, 1090, 2002] {
        let a = pg.node_by_id(id).await.expect("ok");
        let b = file.node_by_id(id).await.expect("ok");
        assert_eq!(a, b, "node {id}");
    }
    let by_route = |found: Vec<Arc<NodeInfo>>| found.iter().map(|n| n.id).collect::<Vec<_>>();
    assert_eq!(
        by_route(pg.nodes_by_route("/blog/post-2/").await.expect("ok")),
        [1064]
    );
    assert_eq!(
        by_route(pg.nodes_by_route("/blog/post-2/").await.expect("ok")),
        by_route(file.nodes_by_route("/blog/post-2/").await.expect("ok"))
    );
    assert_eq!(
        pg.api_key("DevBlogKey000001").await.expect("ok"),
        file.api_key("DevBlogKey000001").await.expect("ok")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_trashed_group_start_node_is_ignored(pool: PgPool) {
    let mut file = dev_policy();
    file.groups.push(policy_file::GroupEntry {
        key: Uuid::from_u128(0xabc),
        alias: "old".into(),
        name: "Old".into(),
        sections: vec![],
        default_verbs: vec![],
        content_start: Some(policy_file::StartRef::Node(node_key(0x1090))),
        media_start: None,
        all_languages: false,
        languages: vec![],
        origin: policy_file::Origin::Umbraco,
    });
    apply_policy(&pool, &file, false).await.expect("applies");
    let g = pg_cache(&pool)
        .group(Uuid::from_u128(0xabc))
        .await
        .expect("ok")
        .expect("exists");
    assert_eq!(g.content_start, None);
}

#[sqlx::test(migrations = "./migrations")]
async fn touching_api_keys_records_use_without_a_notification(pool: PgPool) {
    apply_policy(&pool, &dev_policy(), false)
        .await
        .expect("applies");
    let cache = pg_cache(&pool);
    let mut l = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .expect("connects");
    l.listen(listen::CHANNEL).await.expect("listens");
    cache.record_api_key_use("DevBlogKey000001");
    assert_eq!(cache.flush_api_key_use().await.expect("flushes"), 1);
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select last_used_at from api_keys where key_id = 'DevBlogKey000001'")
            .fetch_one(&pool)
            .await
            .expect("reads");
    assert!(used.is_some());
    sqlx::query("select pg_notify('portcullis_policy', 'marker')")
        .execute(&pool)
        .await
        .expect("notifies");
    let first = tokio::time::timeout(Duration::from_secs(5), l.recv())
        .await
        .expect("a notification arrives")
        .expect("receives");
    assert_eq!(
        first.payload(),
        "marker",
        "touch must not invalidate the key"
    );
}

/// Two gateways (caches with their own listeners) on one database: a revoke via SQL is seen
/// by both within one second.
#[sqlx::test(migrations = "./migrations")]
async fn two_gateways_enforce_a_revoked_permission_and_key_within_a_second(pool: PgPool) {
    apply_policy(&pool, &dev_policy(), false)
        .await
        .expect("applies");
    let gateways = [pg_cache(&pool), pg_cache(&pool)];
    let listeners: Vec<_> = gateways
        .iter()
        .map(|c| listener(&pool, c).spawn())
        .collect();
    for g in &gateways {
        wait_for("listener", Duration::from_secs(5), || g.listener_up()).await;
        let w = g
            .user_access("dev-writer")
            .await
            .expect("ok")
            .expect("exists");
        assert!(w.groups[0].granular.contains_key(&1070));
        assert!(
            !g.api_key("DevBlogKey000001")
                .await
                .expect("ok")
                .expect("exists")
                .revoked
        );
    }

    let start = Instant::now();
    sqlx::query("delete from group_permissions where node_key = $1")
        .bind(node_key(0x1070))
        .execute(&pool)
        .await
        .expect("revokes");
    sqlx::query("update api_keys set revoked = true where key_id = 'DevBlogKey000001'")
        .execute(&pool)
        .await
        .expect("revokes");
    for (i, g) in gateways.iter().enumerate() {
        loop {
            let w = g
                .user_access("dev-writer")
                .await
                .expect("ok")
                .expect("exists");
            let k = g
                .api_key("DevBlogKey000001")
                .await
                .expect("ok")
                .expect("exists");
            if !w.groups[0].granular.contains_key(&1070) && k.revoked {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "gateway {i} still allows"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        println!(
            "gateway {i} enforced the revoke after {:?}",
            start.elapsed()
        );
    }
    for l in listeners {
        l.abort();
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_subtree_move_via_sql_reaches_the_cached_paths(pool: PgPool) {
    apply_policy(&pool, &dev_policy(), false)
        .await
        .expect("applies");
    let cache = pg_cache(&pool);
    let listener = listener(&pool, &cache).spawn();
    wait_for("listener", Duration::from_secs(5), || cache.listener_up()).await;
    let post = cache
        .node(node_key(0x1063))
        .await
        .expect("ok")
        .expect("exists");
    assert_eq!(post.path.to_string(), "-1,1051,1062,1063");
    // Move the blog (and its posts) under About, as the mirror would.
    sqlx::query(
        "update content_nodes set path = array[-1,1051,1080] || path[3:], \
         parent_key = case when id = 1062 then $1 else parent_key end \
         where path @> array[1062::bigint]",
    )
    .bind(node_key(0x1080))
    .execute(&pool)
    .await
    .expect("moves");
    let start = Instant::now();
    loop {
        let post = cache
            .node(node_key(0x1063))
            .await
            .expect("ok")
            .expect("exists");
        if post.path.to_string() == "-1,1051,1080,1062,1063" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "stale path {}",
            post.path
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let writer = cache
        .user_access("dev-writer")
        .await
        .expect("ok")
        .expect("exists");
    assert_eq!(
        writer.content_start_nodes.0[0].to_string(),
        "-1,1051,1080,1062"
    );
    listener.abort();
}

#[sqlx::test(migrations = "./migrations")]
async fn a_lost_listener_is_reported_and_reconnects(pool: PgPool) {
    let cache = pg_cache(&pool);
    let listener = listener(&pool, &cache).spawn();
    wait_for("listener", Duration::from_secs(5), || cache.listener_up()).await;
    let db: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&pool)
        .await
        .expect("reads");
    // Block reconnects, then kill every backend of the test database (the listening one and
    // the pool's idle ones, which a reconnect would otherwise reuse).
    let admin_url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set");
    let admin = PgPool::connect(&admin_url)
        .await
        .expect("postgres is reachable");
    sqlx::query(&format!(
        "alter database \"{db}\" with allow_connections false"
    ))
    .execute(&admin)
    .await
    .expect("alters");
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(&db)
        .execute(&admin)
        .await
        .expect("terminates");
    wait_for("listener down", Duration::from_secs(5), || {
        !cache.listener_up()
    })
    .await;
    sqlx::query(&format!(
        "alter database \"{db}\" with allow_connections true"
    ))
    .execute(&admin)
    .await
    .expect("alters");
    wait_for("listener back", Duration::from_secs(15), || {
        cache.listener_up()
    })
    .await;
    listener.abort();
}

#[sqlx::test(migrations = "./migrations")]
async fn own_root_and_trashed_start_nodes_round_trip_and_resolve_as_in_the_file_store(
    pool: PgPool,
) {
    let file = super::file_tests::start_node_policy();
    apply_policy(&pool, &file, false).await.expect("applies");
    let exported = export_policy(&pool).await.expect("exports");
    assert_eq!(exported, file.normalized());
    super::file_tests::assert_own_start_nodes_resolve_as_umbraco(&pg_cache(&pool)).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn the_sql_route_key_is_the_rust_route_key(pool: PgPool) {
    for p in [
        "/", "", "/Blog/", "/blog", "a//B/", "//x//y//", "/CAFÉ/", "/İ/ſ/K",
    ] {
        let sql: String = sqlx::query_scalar("select portcullis_route_key($1)")
            .bind(p)
            .fetch_one(&pool)
            .await
            .expect("runs");
        assert_eq!(sql, crate::authz::route_key(p), "{p:?}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn every_live_document_with_the_route_key_is_returned_by_both_stores(pool: PgPool) {
    let mut file = dev_policy();
    use crate::authz::NodeKind;
    use policy_file::NodeEntry;
    let entry = |id: i64, parent: Option<i64>, trashed: bool, route: &str| NodeEntry {
        key: node_key(id as u128),
        id,
        parent: parent.map(|p| node_key(p as u128)),
        kind: NodeKind::Document,
        trashed,
        route_path: Some(route.into()),
    };
    // A second site with its own "/Blog", and a trashed page that had the route.
    file.nodes.push(entry(0x3001, None, false, "/"));
    file.nodes.push(entry(0x3002, Some(0x3001), false, "/Blog"));
    file.nodes.push(entry(0x3003, None, true, "/blog/"));
    apply_policy(&pool, &file, false).await.expect("applies");
    let pg = PostgresStore::new(pool.clone(), metrics());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.toml");
    std::fs::write(&path, toml::to_string(&file).expect("serialises")).expect("writes");
    let fs = FileStore::open(&path).expect("opens");
    for store in [&pg as &dyn PolicyStore, &fs] {
        let mut ids: Vec<i64> = store
            .nodes_by_route("/blog/")
            .await
            .expect("ok")
            .iter()
            .map(|n| n.id)
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, [1062, 0x3002]);
        assert!(store
            .nodes_by_route("/nothing/")
            .await
            .expect("ok")
            .is_empty());
    }
}
