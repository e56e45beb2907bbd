//! End to end on Postgres: two gateway processes share one policy database; a revocation made
//! in SQL reaches both through push invalidation.

use crate::harness::*;
use crate::pipeline::{doc, send, token, AUTHN, TOP};
use std::time::{Duration, Instant};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Drops the test database when the test ends, pass or fail.
struct TempDb {
    name: String,
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A fresh runtime on its own thread: Drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(ADMIN_URL).await {
                    let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                        .execute(&pool)
                        .await;
                }
            });
        })
        .join();
    }
}

async fn editor_status(gw: &Gateway, bearer: &str) -> u16 {
    send(client().get(gw.url(&doc(1063))).bearer_auth(bearer))
        .await
        .0
}

#[tokio::test]
async fn a_membership_revoked_in_sql_is_denied_by_two_gateways_within_a_second() {
    let admin = sqlx::PgPool::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 is required for this test");
    let name = format!("portcullis_e2e_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    let _db = TempDb { name: name.clone() };
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect test db");
    portcullis::store::postgres::migrate(&pool)
        .await
        .expect("migrate");
    let file = portcullis::store::policy_file::PolicyFile::parse(
        portcullis::dev::DEV_POLICY,
        "config/policy/dev.toml",
    )
    .expect("dev policy parses");
    portcullis::store::postgres::apply_policy(&pool, &file, false)
        .await
        .expect("apply dev policy");

    let up = Upstream::start().await;
    let extra =
        format!("{AUTHN}\n[store]\nkind = \"postgres\"\ndatabase_url_env = \"E2E_DATABASE_URL\"\n");
    let env = [("E2E_DATABASE_URL", url.as_str())];
    let a = spawn_gateway_with_env(TOP, up.addr, &extra, &env).await;
    let b = spawn_gateway_with_env(TOP, up.addr, &extra, &env).await;
    let editor = token("dev-editor");
    for gw in [&a, &b] {
        // Twice: the second answer comes from the warm cache the revocation must evict.
        assert_eq!(editor_status(gw, &editor).await, 200, "log:\n{}", gw.log());
        assert_eq!(editor_status(gw, &editor).await, 200);
    }
    assert_eq!(up.requests().len(), 4);

    let revoked_at = Instant::now();
    let deleted = sqlx::query(
        "delete from memberships m using users u where m.user_key = u.key and u.external_id = 'dev-editor'",
    )
    .execute(&pool)
    .await
    .expect("revoke")
    .rows_affected();
    assert_eq!(deleted, 1);
    let mut latencies = Vec::new();
    for (label, gw) in [("a", &a), ("b", &b)] {
        let denied = wait_until(Duration::from_secs(5), || {
            let (gw, editor) = (gw, editor.clone());
            async move { editor_status(gw, &editor).await == 403 }
        })
        .await;
        assert!(
            denied.is_some(),
            "gateway {label} still allows; log:\n{}",
            gw.log()
        );
        latencies.push((label, revoked_at.elapsed()));
    }
    println!("revocation latency (SQL commit to deny observed): {latencies:?}");
    for (label, l) in &latencies {
        assert!(*l < Duration::from_secs(1), "gateway {label} took {l:?}");
    }
    // Once denied, denied for good: nothing more reaches the upstream.
    let forwarded = up.requests().len();
    for gw in [&a, &b] {
        assert_eq!(editor_status(gw, &editor).await, 403);
    }
    assert_eq!(
        up.requests().len(),
        forwarded,
        "a revoked request reached the upstream"
    );
    drop((a, b));
    pool.close().await;
}
