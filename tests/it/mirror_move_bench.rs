//! Measurement, not a test assertion (issue 13's closing note): how long after a move webhook
//! both replicas enforce the moved subtree with its new ancestry. Two gateway binaries share one
//! Postgres store with the mirror, against the fake Umbraco; an API key may read only the
//! subtree under `inside`. Each of `PCL_MOVES` (default 50) rounds moves a subtree of
//! `PCL_SUBTREE` nodes (default 10: a top node and its children) from `outside` to `inside` in
//! the fake, delivers `Umbraco.ContentMoved` (the moved node and its descendants, as Umbraco
//! sends) to replica A's admin listener, and polls both replicas' proxy with a Delivery read of
//! the last child under the key (not 403, not a connection error: decided by the new ancestry)
//! until both allow it. The
//! delay is counted from just before the delivery; printed as p50/p99/max per replica and for
//! "both", with the webhook's own answer time (its Management API reads of the fake, whose
//! `item` listing scans every node, and the apply) and what "both" took after that answer.
//!
//! `benches/mirror_move/run` runs it (`cargo test --test it mirror_move_bench -- --ignored
//! --nocapture`).

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::FakeUmbraco;
use crate::harness::{client, spawn_gateway_with_env, Gateway};
use crate::mirror::{database, install, mirror, CLIENT_ID, SECRET};
use crate::pipeline::{AUTHN, TOP};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

const HOOK_SECRET: &str = "umbraco-webhook-secret-for-the-bench";
/// Give up on one round after this long (a measurement, not a pass/fail bound).
const GIVE_UP: Duration = Duration::from_secs(30);

async fn replica(fake: &FakeUmbraco, db_url: &str) -> Gateway {
    let extra = format!(
        "{AUTHN}\n[upstream.credential]\nkind = \"umbraco_api_user\"\nclient_id = \"{CLIENT_ID}\"\n\
         [store]\nkind = \"postgres\"\ndatabase_url_env = \"MIRROR_DB\"\n\
         [sync]\ninterval = \"1h\"\n"
    );
    spawn_gateway_with_env(
        TOP,
        fake.addr,
        &extra,
        &[
            ("MIRROR_DB", db_url),
            ("PORTCULLIS_UMBRACO_CLIENT_SECRET", SECRET),
            ("PORTCULLIS_UMBRACO_WEBHOOK_SECRET", HOOK_SECRET),
            ("PORTCULLIS_LOG", "warn"),
        ],
    )
    .await
}

/// The status the proxy answers for a Delivery read of `key` with the API key `secret`.
async fn status(gw: &Gateway, key: Uuid, secret: &str) -> u16 {
    client()
        .get(gw.url(&format!("/umbraco/delivery/api/v2/content/item/{key}")))
        .header("Api-Key", secret)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn summary(name: &str, mut d: Vec<Duration>) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        d.len(),
        ms(percentile(&d, 0.50)),
        ms(percentile(&d, 0.99)),
        ms(*d.last().expect("samples")),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with benches/mirror_move/run"]
async fn mirror_move_bench_two_replicas_enforce_a_moved_subtree() {
    let size = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (moves, nodes) = (size("PCL_MOVES", 50), size("PCL_SUBTREE", 10).max(2));
    let mut s = install();
    let inside = s.add_node(Tree::Document, "inside", None);
    let outside = s.add_node(Tree::Document, "outside", None);
    let subtrees: Vec<Vec<Uuid>> = (0..moves)
        .map(|i| {
            let top = s.add_node(Tree::Document, &format!("moved-{i}"), Some(outside));
            let children = (1..nodes)
                .map(|j| s.add_node(Tree::Document, &format!("child-{i}-{j}"), Some(top)))
                .collect::<Vec<_>>();
            std::iter::once(top).chain(children).collect()
        })
        .collect();
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("mirror_move_bench").await;
    mirror(&fake, &pool)
        .full_sync()
        .await
        .expect("initial sync");
    let (a, b) = (
        replica(&fake, &db.url()).await,
        replica(&fake, &db.url()).await,
    );
    let key = json!({"name": "bench", "owner": "bench", "apis": ["delivery"],
                     "subtree_roots": [inside], "cultures": ["en-US"]});
    let resp = a
        .admin(Method::POST, "/v1/keys")
        .json(&key)
        .send()
        .await
        .expect("admin answers");
    let v: serde_json::Value = resp.json().await.expect("key json");
    let secret = v["secret"].as_str().expect("secret").to_owned();
    // Warm-up: both replicas know the key and deny a child that is still outside.
    for gw in [&a, &b] {
        let t = Instant::now();
        while status(gw, subtrees[0][nodes - 1], &secret).await != 403 {
            assert!(t.elapsed() < GIVE_UP, "never 403; log:\n{}", gw.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (mut on_a, mut on_b, mut both) = (Vec::new(), Vec::new(), Vec::new());
    let (mut answers, mut after_answer) = (Vec::new(), Vec::new());
    for subtree in &subtrees {
        let (top, child) = (subtree[0], subtree[nodes - 1]);
        fake.with(|s| s.move_node(top, Some(inside)));
        let ids: Vec<serde_json::Value> = subtree.iter().map(|k| json!({"id": k})).collect();
        let started = Instant::now();
        let delivered = client()
            .post(a.admin_url("/v1/webhooks/umbraco"))
            .header("umb-webhook-event", "Umbraco.ContentMoved")
            .header("x-portcullis-webhook-secret", HOOK_SECRET)
            .json(&ids);
        let hook = tokio::spawn(async move {
            let r = delivered.send().await.map(|r| r.status());
            (r, started.elapsed())
        });
        let (mut da, mut db_) = (None, None);
        while da.is_none() || db_.is_none() {
            assert!(started.elapsed() < GIVE_UP, "round never converged");
            if da.is_none() && !matches!(status(&a, child, &secret).await, 403 | 0) {
                da = Some(started.elapsed());
            }
            if db_.is_none() && !matches!(status(&b, child, &secret).await, 403 | 0) {
                db_ = Some(started.elapsed());
            }
        }
        let (code, answered) = hook.await.expect("join");
        let code = code.expect("webhook answered");
        assert_eq!(code.as_u16(), 200, "webhook; log:\n{}", a.log());
        let (da, db_) = (da.expect("a"), db_.expect("b"));
        on_a.push(da);
        on_b.push(db_);
        both.push(da.max(db_));
        answers.push(answered);
        after_answer.push(da.max(db_).saturating_sub(answered));
    }
    println!("mirror move bench: {moves} moves of a {nodes}-node subtree, webhook to replica A");
    summary("replica A (got the webhook)", on_a);
    summary("replica B (store notification)", on_b);
    summary("both replicas", both);
    summary("webhook answered (Umbraco reads + apply)", answers);
    summary("both replicas, after the webhook's answer", after_answer);
}
