//! The background sync of `serve` (`[sync] interval`, docs/MIRROR.md), through the gateway
//! binary against the fake Umbraco and a scratch database: a sync at start while nothing is
//! mirrored, changes picked up without a webhook, `portcullis_sync_*` on `/metrics` for a
//! success and a failure, a round skipped while another replica holds the round lock, and a
//! SIGTERM that neither waits for a running round nor lets it write half its work.

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::FakeUmbraco;
use crate::harness::{spawn_gateway_with_env, wait_until, Gateway};
use crate::mirror::{database, install, node, CLIENT_ID, SECRET};
use portcullis::store::postgres::mirror::{MIRROR_LOCK, SYNC_LOCK};
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// Generous bound for anything a 1 s interval should do.
const WITHIN: Duration = Duration::from_secs(60);

async fn gateway(fake: &FakeUmbraco, db_url: &str, extra: &str) -> Gateway {
    let config = format!(
        "[upstream.credential]\nkind = \"umbraco_api_user\"\nclient_id = \"{CLIENT_ID}\"\n\
         [store]\nkind = \"postgres\"\ndatabase_url_env = \"MIRROR_DB\"\n{extra}\n"
    );
    spawn_gateway_with_env(
        "",
        fake.addr,
        &config,
        &[
            ("MIRROR_DB", db_url),
            ("PORTCULLIS_UMBRACO_CLIENT_SECRET", SECRET),
        ],
    )
    .await
}

async fn mirrored(pool: &PgPool, key: Uuid) -> bool {
    node(pool, key).await.is_some()
}

async fn wait_mirrored(pool: &PgPool, key: Uuid, gw: &Gateway) {
    wait_until(WITHIN, || mirrored(pool, key))
        .await
        .unwrap_or_else(|| panic!("node {key} never mirrored; log:\n{}", gw.log()));
}

/// Waits until the metric sample `series` is at least `min`.
async fn wait_metric(gw: &Gateway, series: &str, min: f64) {
    wait_until(WITHIN, || async move {
        gw.metric(series).await.is_some_and(|v| v >= min)
    })
    .await
    .unwrap_or_else(|| panic!("{series} never reached {min}; log:\n{}", gw.log()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_is_synced_at_start_and_changes_arrive_without_a_webhook() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("sync_start").await;
    // A long interval: only the start-up round can mirror `home`.
    let gw = gateway(&fake, &db.url(), "[sync]\ninterval = \"1h\"").await;
    wait_mirrored(&pool, home, &gw).await;
    // The round goes on with groups and users after the documents: wait for its end.
    wait_metric(&gw, "portcullis_sync_last_success_timestamp_seconds", 1.7e9).await;
    drop(gw);

    // Mirrored nodes now: a restarted gateway waits an interval; with "1s" it picks up a node
    // added in Umbraco (no webhook) within a few rounds.
    let blog = fake.with(|s| s.add_node(Tree::Document, "blog", Some(home)));
    let gw = gateway(&fake, &db.url(), "[sync]\ninterval = \"1s\"").await;
    wait_mirrored(&pool, blog, &gw).await;
    wait_metric(&gw, "portcullis_sync_rounds_total{result=\"ok\"}", 1.0).await;
    wait_metric(
        &gw,
        "portcullis_sync_items_changed_total{kind=\"documents\"}",
        1.0,
    )
    .await;
    assert!(gw
        .metric("portcullis_sync_duration_seconds_count{result=\"ok\"}")
        .await
        .is_some_and(|n| n >= 1.0));
    // Umbraco answers 500: the rounds fail, counted by reason; the mirror keeps what it has.
    fake.with(|s| s.fail_after.insert("tree_root", 0));
    wait_metric(
        &gw,
        "portcullis_sync_failures_total{reason=\"umbraco\"}",
        1.0,
    )
    .await;
    wait_metric(&gw, "portcullis_sync_rounds_total{result=\"failed\"}", 1.0).await;
    assert!(mirrored(&pool, blog).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_finds_the_round_lock_held_skips_its_rounds() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("sync_lock").await;
    // Another replica's round: the round lock held on a session of its own.
    let mut other = PgConnection::connect(&db.url()).await.expect("connect");
    sqlx::query("select pg_advisory_lock($1)")
        .bind(SYNC_LOCK)
        .execute(&mut other)
        .await
        .expect("lock");
    let gw = gateway(&fake, &db.url(), "[sync]\ninterval = \"1s\"").await;
    wait_metric(&gw, "portcullis_sync_rounds_total{result=\"skipped\"}", 2.0).await;
    assert!(
        !mirrored(&pool, home).await,
        "a skipped round syncs nothing"
    );
    assert_eq!(fake.calls("tree_root"), 0, "a skipped round reads nothing");
    other.close().await.expect("release");
    wait_mirrored(&pool, home, &gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_round_exits_without_waiting_and_the_round_writes_nothing() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("sync_term").await;
    // Hold the mirror's write lock: the round's first apply transaction waits inside it.
    let mut writer = PgConnection::connect(&db.url()).await.expect("connect");
    sqlx::query("select pg_advisory_lock($1)")
        .bind(MIRROR_LOCK)
        .execute(&mut writer)
        .await
        .expect("lock");
    let mut gw = gateway(
        &fake,
        &db.url(),
        "[sync]\ninterval = \"1s\"\napply_timeout = \"10m\"\n[lifecycle]\ndrain_delay = \"0s\"",
    )
    .await;
    let waiting = || async {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from pg_locks where locktype = 'advisory' and not granted",
        )
        .fetch_one(&pool)
        .await
        .expect("pg_locks");
        n > 0
    };
    wait_until(WITHIN, waiting)
        .await
        .unwrap_or_else(|| panic!("the round never reached its apply; log:\n{}", gw.log()));
    gw.signal("TERM");
    let code = gw.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(
        code,
        Some(0),
        "exits without waiting for the round; log:\n{}",
        gw.log()
    );
    writer.close().await.expect("release");
    // The round's transaction ended with its connection: nothing of it was written, and its
    // round lock is free for the next gateway.
    assert!(!mirrored(&pool, home).await);
    let free = wait_until(WITHIN, || async {
        sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(SYNC_LOCK)
            .fetch_one(&pool)
            .await
            .unwrap_or(false)
    })
    .await;
    assert!(free.is_some(), "the round lock went with the gateway");
}
