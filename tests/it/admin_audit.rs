//! `GET /v1/audit` on a real gateway writing its audit trail to PostgreSQL: filters, pages that
//! follow `next_cursor` without gaps or repeats, bad parameters, and 501 without a Postgres sink.

use crate::admin_keys::call;
use crate::harness::*;
use crate::pipeline::{doc, send, token, AUTHN, TOP};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

async fn page(gw: &Gateway, query: &str) -> Value {
    let (status, _, v) = call(gw.admin(Method::GET, &format!("/v1/audit{query}"))).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["event_id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn the_audit_trail_is_paged_newest_first_and_filtered() {
    let db = ScratchDb::create("adminaudit").await;
    let pool = sqlx::PgPool::connect(&db.url()).await.expect("connect");
    portcullis::store::postgres::migrate(&pool)
        .await
        .expect("migrate");
    let up = Upstream::start().await;
    let extra = format!(
        "{AUTHN}\n[audit]\nflush_interval = \"50ms\"\n\
         [[audit.sinks]]\nkind = \"postgres\"\ndatabase_url_env = \"E2E_AUDIT_URL\"\n"
    );
    let url = db.url();
    let gw = spawn_gateway_with_env(TOP, up.addr, &extra, &[("E2E_AUDIT_URL", url.as_str())]).await;
    let editor = token("dev-editor");
    for _ in 0..3 {
        let got = send(client().get(gw.url(&doc(1063))).bearer_auth(&editor)).await;
        assert_eq!(got.0, 200);
    }
    for _ in 0..2 {
        assert_eq!(send(client().get(gw.url(&doc(1063)))).await.0, 401);
    }
    wait_until(Duration::from_secs(20), || async {
        ids(&page(&gw, "").await).len() == 5
    })
    .await
    .unwrap_or_else(|| panic!("5 events never listed; log:\n{}", gw.log()));

    let all = page(&gw, "").await;
    assert_eq!(all["next_cursor"], Value::Null);
    let times: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["occurred_at"].as_str().expect("time"))
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    let denies = page(&gw, "?decision=deny").await;
    assert_eq!(ids(&denies).len(), 2);
    assert!(denies["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|e| e["decision"] == "deny"));

    // Pages of two follow each other exactly.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    for _ in 0..5 {
        let p = page(&gw, &query).await;
        seen.extend(ids(&p));
        match p["next_cursor"].as_str() {
            Some(c) => query = format!("?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));

    for (q, field) in [
        ("?limit=0", "limit"),
        ("?decision=maybe", "decision"),
        ("?cursor=zzz", "cursor"),
        ("?node=1063", "node"),
        ("?color=red", "color"),
    ] {
        let (status, _, v) = call(gw.admin(Method::GET, &format!("/v1/audit{q}"))).await;
        assert_eq!((status, &v["field"]), (400, &json!(field)), "{q}: {v}");
    }
}

#[tokio::test]
async fn without_a_postgres_audit_sink_the_audit_endpoint_is_501() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let (status, _, v) = call(gw.admin(Method::GET, "/v1/audit")).await;
    assert_eq!((status, &v["error"]), (501, &json!("not_configured")));
}
