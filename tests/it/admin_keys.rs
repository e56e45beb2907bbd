//! The API key lifecycle over the admin API, on real gateway processes: a key made by the
//! gateway works through the proxy, rotation keeps the old secret for its overlap, revocation
//! stops it at once (file store) and on every replica (Postgres), every change is recorded
//! without a secret, and every bad request gets its status and the field at fault.

use crate::harness::*;
use crate::pipeline::{node, send, AUTHN, TOP};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn item(n: u32) -> String {
    format!("/umbraco/delivery/api/v2/content/item/{}", node(n))
}

/// The status of a Delivery read of node `n` with `key`.
pub async fn key_status(gw: &Gateway, n: u32, key: &str) -> u16 {
    send(client().get(gw.url(&item(n))).header("Api-Key", key))
        .await
        .0
}

/// Polls until `key` gets `want` on node `n` (bounded); panics with the log otherwise.
pub async fn wait_key_status(gw: &Gateway, n: u32, key: &str, want: u16) {
    wait_until(Duration::from_secs(10), || async move {
        key_status(gw, n, key).await == want
    })
    .await
    .unwrap_or_else(|| panic!("key never got {want} on {n}; log:\n{}", gw.log()));
}

/// Status and JSON body of an admin call.
pub async fn call(r: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    send(r).await
}

/// A copy of the dev policy file in `dir` (tests write to it).
pub fn policy_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy/dev.toml");
    let dst = dir.join("policy.toml");
    std::fs::copy(src, &dst).expect("copy policy");
    dst
}

async fn file_gateway(up: &Upstream, policy: &Path) -> Gateway {
    let extra = format!(
        "{AUTHN}\n[store]\nkind = \"file\"\npolicy_file = {:?}\n",
        policy.display().to_string()
    );
    spawn_gateway(TOP, up.addr, &extra).await
}

fn scoped_key() -> Value {
    json!({"name": "blog", "owner": "web team", "apis": ["delivery"],
           "subtree_roots": [node(1062)], "cultures": ["en-US"]})
}

#[tokio::test]
async fn a_created_key_works_rotates_with_overlap_and_stops_when_revoked_on_a_file_store() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = policy_copy(dir.path());
    let gw = file_gateway(&up, &policy).await;

    let (status, h, v) = call(gw.admin(Method::POST, "/v1/keys").json(&scoped_key())).await;
    assert_eq!(status, 201, "{v}");
    let secret = v["secret"].as_str().expect("secret").to_owned();
    let id = v["key"]["key_id"].as_str().expect("id").to_owned();
    assert!(secret.starts_with(&format!("pcl_dev_{id}_")), "{secret}");
    assert_eq!(h["location"], format!("/v1/keys/{id}"));
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(v["key"]["cultures"], json!(["en-us"]));
    assert_eq!(v["key"]["status"], "active");
    assert!(v["key"].get("hash").is_none(), "{v}");

    wait_key_status(&gw, 1063, &secret, 200).await;
    assert_eq!(
        key_status(&gw, 1080, &secret).await,
        403,
        "outside the subtree"
    );
    // Only the hash reached the file; its comments and other tables are kept.
    let text = std::fs::read_to_string(&policy).expect("read policy");
    assert!(
        !text.contains(&secret[secret.len() - 44..]),
        "secret in the file"
    );
    assert!(text.contains(&format!("key_id = \"{id}\"")), "{text}");
    assert!(
        text.contains("DevBlogKey000001") && text.contains("\n#"),
        "{text}"
    );

    let (status, h, shown) = call(gw.admin(Method::GET, &format!("/v1/keys/{id}"))).await;
    assert_eq!(status, 200);
    let etag = h["etag"].to_str().expect("etag").to_owned();
    let (_, _, list) = call(gw.admin(Method::GET, "/v1/keys?owner=web%20team")).await;
    assert_eq!(list["items"], json!([shown]));
    for body in [shown.to_string(), list.to_string()] {
        assert!(!body.contains(&secret[secret.len() - 44..]) && !body.contains("hash"));
    }

    // A stale If-Match is refused; the current one is accepted.
    let patch = |tag: &str| {
        gw.admin(Method::PATCH, &format!("/v1/keys/{id}"))
            .header("if-match", tag)
            .json(&json!({"rate_limit_rps": 100, "owner": "platform"}))
    };
    let (status, _, v) = call(patch("\"0000\"")).await;
    assert_eq!((status, &v["error"]), (412, &json!("precondition_failed")));
    let (status, _, v) = call(patch(&etag)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["rate_limit_rps"].clone(), v["owner"].clone()),
        (json!(100), json!("platform"))
    );

    // Rotation: old and new secrets both work during the overlap.
    let rotate = |body: Value| {
        gw.admin(Method::POST, &format!("/v1/keys/{id}/rotate"))
            .json(&body)
    };
    let (status, _, v) = call(rotate(json!({"overlap_seconds": 600}))).await;
    assert_eq!(status, 200, "{v}");
    let second = v["secret"].as_str().expect("secret").to_owned();
    assert!(v["key"]["previous_secret_expires_at"].is_string());
    wait_key_status(&gw, 1063, &second, 200).await;
    assert_eq!(key_status(&gw, 1063, &secret).await, 200, "overlap");
    // Rotating with no overlap ends every older secret at once.
    let (_, _, v) = call(rotate(json!({"overlap_seconds": 0}))).await;
    let third = v["secret"].as_str().expect("secret").to_owned();
    wait_key_status(&gw, 1063, &second, 401).await;
    assert_eq!(key_status(&gw, 1063, &secret).await, 401);
    assert_eq!(key_status(&gw, 1063, &third).await, 200);

    let (status, _, v) = call(gw.admin(Method::POST, &format!("/v1/keys/{id}/revoke"))).await;
    assert_eq!((status, &v["status"]), (200, &json!("revoked")));
    wait_key_status(&gw, 1063, &third, 401).await;
    let (status, _, _) = call(gw.admin(Method::POST, &format!("/v1/keys/{id}/revoke"))).await;
    assert_eq!(status, 200, "revoking twice is fine");
    let (status, _, v) = call(rotate(json!({}))).await;
    assert_eq!((status, &v["field"]), (409, &json!("revoked")));

    // The change log: who, what, before and after, never a secret or a hash.
    let log = std::fs::read_to_string(portcullis::store::keys::change_log_path(&policy))
        .expect("change log");
    let rows: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("row"))
        .collect();
    let actions: Vec<&str> = rows
        .iter()
        .map(|r| r["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions, ["create", "update", "rotate", "rotate", "revoke"]);
    assert!(rows
        .iter()
        .all(|r| r["actor"] == "admin:test" && r["resource"] == id));
    assert_eq!(rows[1]["before"]["owner"], "web team");
    assert_eq!(rows[1]["after"]["owner"], "platform");
    for s in [&secret, &second, &third] {
        assert!(!log.contains(&s[s.len() - 44..]));
    }
    assert!(!log.contains("hash"), "{log}");
}

#[tokio::test]
async fn bad_key_requests_get_their_status_and_the_field_at_fault() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = policy_copy(dir.path());
    let gw = file_gateway(&up, &policy).await;
    let before = std::fs::read_to_string(&policy).expect("read");
    let create = |body: Value| gw.admin(Method::POST, "/v1/keys").json(&body);
    let with = |field: &str, value: Value| {
        let mut b = scoped_key();
        b[field] = value;
        b
    };
    let mut no_owner = scoped_key();
    no_owner.as_object_mut().expect("object").remove("owner");
    let cases = [
        (no_owner, 400, None),
        (with("colour", json!("red")), 400, Some("colour")),
        (with("apis", json!(["graphql"])), 400, Some("apis[0]")),
        (
            with("rate_limit_rps", json!(-1)),
            400,
            Some("rate_limit_rps"),
        ),
        (with("apis", json!([])), 422, Some("apis")),
        (
            with("apis", json!(["delivery", "delivery"])),
            422,
            Some("apis[1]"),
        ),
        (with("name", json!(" ")), 422, Some("name")),
        (
            with("subtree_roots", json!([node(9999)])),
            422,
            Some("subtree_roots[0]"),
        ),
        (with("cultures", json!(["en us"])), 422, Some("cultures[0]")),
        (with("acts_as", json!("nobody")), 422, Some("acts_as")),
        (
            with("rate_limit_rps", json!(0)),
            422,
            Some("rate_limit_rps"),
        ),
        (
            with("expires_at", json!("2020-01-01T00:00:00Z")),
            422,
            Some("expires_at"),
        ),
    ];
    for (body, want, field) in cases {
        let (status, _, v) = call(create(body.clone())).await;
        assert_eq!(status, want, "{body} → {v}");
        if let Some(f) = field {
            assert_eq!(v["field"], f, "{body} → {v}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(&policy).expect("read"),
        before,
        "nothing written"
    );

    let (status, _, v) = call(gw.admin(Method::GET, "/v1/keys/AAAAAAAAAAAAAAAA")).await;
    assert_eq!((status, &v["error"]), (404, &json!("not_found")));
    let (status, _, _) = call(gw.admin(Method::GET, "/v1/keys/not-an-id")).await;
    assert_eq!(status, 404);
    let (status, _, _) = call(gw.admin(Method::DELETE, "/v1/keys/DevBlogKey000001")).await;
    assert_eq!(status, 405);
    let (status, _, v) = call(gw.admin(Method::GET, "/v1/keys?status=lost")).await;
    assert_eq!((status, &v["field"]), (400, &json!("status")));
    let (status, _, v) = call(
        gw.admin(Method::POST, "/v1/keys/DevBlogKey000001/rotate")
            .json(&json!({"overlap_seconds": 99_999_999})),
    )
    .await;
    assert_eq!((status, &v["field"]), (422, &json!("overlap_seconds")));
    let (status, _, _) = call(
        client()
            .get(gw.admin_url("/v1/keys"))
            .bearer_auth("wrong-token-0123456789abcdef0123456789"),
    )
    .await;
    assert_eq!(status, 401);
}

/// Two gateways sharing the database `url`.
pub async fn two_pg_gateways(up: &Upstream, url: &str) -> (Gateway, Gateway) {
    let extra =
        format!("{AUTHN}\n[store]\nkind = \"postgres\"\ndatabase_url_env = \"E2E_DATABASE_URL\"\n");
    let env = [("E2E_DATABASE_URL", url)];
    let a = spawn_gateway_with_env(TOP, up.addr, &extra, &env).await;
    let b = spawn_gateway_with_env(TOP, up.addr, &extra, &env).await;
    (a, b)
}

#[tokio::test]
async fn keys_changed_on_one_postgres_replica_take_effect_on_both_and_are_recorded() {
    let (_db, pool) = ScratchDb::with_dev_policy("keys").await;
    let up = Upstream::start().await;
    let (a, b) = two_pg_gateways(&up, &_db.url()).await;

    let (status, _, v) = call(a.admin(Method::POST, "/v1/keys").json(&scoped_key())).await;
    assert_eq!(status, 201, "{v}; log:\n{}", a.log());
    let first = v["secret"].as_str().expect("secret").to_owned();
    let id = v["key"]["key_id"].as_str().expect("id").to_owned();
    for gw in [&a, &b] {
        wait_key_status(gw, 1063, &first, 200).await;
    }
    let (_, _, on_b) = call(b.admin(Method::GET, &format!("/v1/keys/{id}"))).await;
    assert_eq!(on_b["name"], "blog");

    let (status, _, v) = call(
        b.admin(Method::POST, &format!("/v1/keys/{id}/rotate"))
            .json(&json!({"overlap_seconds": 600})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let second = v["secret"].as_str().expect("secret").to_owned();
    for gw in [&a, &b] {
        wait_key_status(gw, 1063, &second, 200).await;
        assert_eq!(key_status(gw, 1063, &first).await, 200, "overlap");
    }

    let (status, _, _) = call(a.admin(Method::POST, &format!("/v1/keys/{id}/revoke"))).await;
    assert_eq!(status, 200);
    for gw in [&a, &b] {
        wait_key_status(gw, 1063, &second, 401).await;
        assert_eq!(key_status(gw, 1063, &first).await, 401);
    }

    let rows: Vec<(String, String, Option<Value>, Option<Value>)> = sqlx::query_as(
        "select actor, action, before, after from admin_changes \
         where kind = 'api_key' and resource = $1 order by occurred_at",
    )
    .bind(&id)
    .fetch_all(&pool)
    .await
    .expect("changes");
    let actions: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(actions, ["create", "rotate", "revoke"]);
    assert!(rows.iter().all(|r| r.0 == "admin:test"));
    assert!(rows[0].2.is_none());
    assert_eq!(
        rows[2].2.as_ref().map(|v| v["revoked"].clone()),
        Some(json!(false))
    );
    assert_eq!(
        rows[2].3.as_ref().map(|v| v["revoked"].clone()),
        Some(json!(true))
    );
    let all = format!("{rows:?}");
    for s in [&first, &second] {
        assert!(!all.contains(&s[s.len() - 44..]), "a secret was recorded");
    }
    assert!(!all.contains("hash"), "{all}");
}
