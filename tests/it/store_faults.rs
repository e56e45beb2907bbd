//! The real gateway with its Postgres behind a fault proxy the test controls: a blackholed
//! store makes cold decisions 503 at the decision deadline (never a hang), warm users are
//! served from the cache while `/readyz` reports the cache degraded, and once `max_staleness`
//! passes cached grants end (503, `/readyz` not ready) until the store is back.

use crate::harness::*;
use crate::pipeline::{doc, send, token, AUTHN, TOP};
use portcullis::store::fault::{Fault, FaultProxy};
use std::time::Duration;

async fn status_as(gw: &Gateway, user: &str) -> (u16, serde_json::Value) {
    let (status, _, body) = send(client().get(gw.url(&doc(1063))).bearer_auth(token(user))).await;
    (status, body)
}

async fn readyz(gw: &Gateway) -> (u16, String) {
    let r = client()
        .get(gw.admin_url("/readyz"))
        .send()
        .await
        .expect("readyz");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test]
async fn a_blackholed_store_fails_cold_decisions_at_the_deadline_and_warm_ones_at_max_staleness() {
    let (db, pool) = ScratchDb::with_dev_policy("faults").await;
    let proxy = FaultProxy::start(([127, 0, 0, 1], 5432).into())
        .await
        .expect("proxy");
    let url = db.url().replace("127.0.0.1:5432", &proxy.addr.to_string());

    let up = Upstream::start().await;
    // A query may hang longer than the deadline: the deadline is what answers.
    let extra = format!(
        "{AUTHN}\n[store]\nkind = \"postgres\"\ndatabase_url_env = \"FAULTS_DATABASE_URL\"\n\
         query_timeout = \"10s\"\npool_acquire_timeout = \"10s\"\ndecision_deadline = \"1s\"\n\
         max_staleness = \"5s\"\nlistener_heartbeat = \"200ms\"\nlistener_timeout = \"1s\"\n\
         [store.cache]\nlistener_fallback_ttl = \"500ms\"\n"
    );
    let env = [("FAULTS_DATABASE_URL", url.as_str())];
    let gw = spawn_gateway_with_env(TOP, up.addr, &extra, &env).await;
    wait_until(Duration::from_secs(30), || async {
        readyz(&gw).await.0 == 200
    })
    .await
    .unwrap_or_else(|| panic!("never ready; log:\n{}", gw.log()));
    assert_eq!(status_as(&gw, "dev-editor").await.0, 200, "warm-up");

    proxy.set(Fault::Blackhole);
    // Cold: nothing cached for this user; the store never answers.
    let (status, body) = status_as(&gw, "dev-writer").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "store_unavailable");
    // Warm: served from the cache while the outage is younger than max_staleness.
    assert_eq!(status_as(&gw, "dev-editor").await.0, 200);
    wait_until(Duration::from_secs(20), || async {
        let (s, text) = readyz(&gw).await;
        s == 200 && text.contains("degraded")
    })
    .await
    .expect("/readyz reports the cache degraded while still ready");
    assert_eq!(gw.metric("portcullis_listener_up").await, Some(0.0));
    assert!(gw
        .metric("portcullis_policy_staleness_seconds")
        .await
        .is_some_and(|s| s > 0.0));

    wait_until(Duration::from_secs(30), || async {
        status_as(&gw, "dev-editor").await.0 == 503
    })
    .await
    .expect("cached grants end after max_staleness");
    let (s, text) = readyz(&gw).await;
    assert_eq!(s, 503, "{text}");
    assert!(text.contains("stale"), "{text}");

    proxy.set(Fault::Pass);
    wait_until(Duration::from_secs(30), || async {
        status_as(&gw, "dev-editor").await.0 == 200 && readyz(&gw).await.0 == 200
    })
    .await
    .unwrap_or_else(|| panic!("no recovery; log:\n{}", gw.log()));
    drop(gw);
    pool.close().await;
}
