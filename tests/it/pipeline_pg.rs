//! End to end on Postgres: two gateway processes share one policy database; a revocation made
//! in SQL reaches both through push invalidation.

use crate::harness::*;
use crate::pipeline::{doc, send, token, AUTHN, TOP};
use std::time::{Duration, Instant};

async fn editor_status(gw: &Gateway, bearer: &str) -> u16 {
    send(client().get(gw.url(&doc(1063))).bearer_auth(bearer))
        .await
        .0
}

#[tokio::test]
async fn a_membership_revoked_in_sql_is_denied_by_two_gateways_within_a_second() {
    let (db, pool) = ScratchDb::with_dev_policy("e2e").await;
    let url = db.url();

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
