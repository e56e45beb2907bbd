//! Local overrides over the admin API (`/v1/overrides/…`) on real gateway processes and a
//! scratch PostgreSQL database: every endpoint's success and error answers (naming the field),
//! ETags with `If-Match` required, Umbraco-owned rows read-only, every change recorded; a group
//! mapping and a local group made with the CLI let an external IdP principal through on two
//! replicas until the mapping is deleted; and a mirror sync leaves the overrides as they were.

use crate::admin_keys::call;
use crate::harness::*;
use crate::pipeline::{doc, node, send, AUTHN, TOP};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// The dev issuer with a groups claim (mappings need one).
fn authn_with_groups() -> String {
    AUTHN.replace(
        "audiences = [\"portcullis-dev\"]",
        "audiences = [\"portcullis-dev\"]\ngroups_claim = \"groups\"",
    )
}

pub fn pg_extra() -> String {
    format!(
        "{}\n[store]\nkind = \"postgres\"\ndatabase_url_env = \"E2E_DATABASE_URL\"\n",
        authn_with_groups()
    )
}

async fn pg_gateway(up: &Upstream, url: &str) -> Gateway {
    spawn_gateway_with_env(TOP, up.addr, &pg_extra(), &[("E2E_DATABASE_URL", url)]).await
}

/// A dev-issuer token for `sub` with `groups` in its groups claim.
pub fn token_with_groups(sub: &str, groups: &[&str]) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "https://dev.portcullis.invalid", "aud": "portcullis-dev", "sub": sub,
        "groups": groups, "iat": now, "exp": now + 3600,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(DEV_HS_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("token")
}

pub fn local_group() -> Value {
    json!({"alias": "extReaders", "name": "External readers", "sections": ["content"],
           "default_verbs": ["Umb.Document.Read"], "content_start": node(1062),
           "languages": ["en-US"],
           "permissions": [{"node": node(1063), "verbs": ["Umb.Document.Read", "Umb.Document.Update"]}]})
}

fn etag(h: &reqwest::header::HeaderMap) -> String {
    h["etag"].to_str().expect("etag").to_owned()
}

/// Asserts each (request, status, field) answer.
async fn expect_all(cases: Vec<(reqwest::RequestBuilder, u16, Option<&str>)>) {
    for (i, (req, want, field)) in cases.into_iter().enumerate() {
        let (status, _, v) = call(req).await;
        assert_eq!(status, want, "case {i}: {v}");
        if let Some(f) = field {
            assert_eq!(v["field"], f, "case {i}: {v}");
        }
    }
}

#[tokio::test]
async fn groups_are_created_read_replaced_and_deleted_with_etags_and_recorded() {
    let (db, pool) = ScratchDb::with_dev_policy("ovgroups").await;
    let up = Upstream::start().await;
    let gw = pg_gateway(&up, &db.url()).await;
    const BASE: &str = "/v1/overrides/groups";
    let one = "/v1/overrides/groups/extReaders";

    let (status, h, created) = call(gw.admin(Method::POST, BASE).json(&local_group())).await;
    assert_eq!(status, 201, "{created}; log:\n{}", gw.log());
    assert_eq!(h["location"], one);
    assert_eq!(created["origin"], "local");
    assert_eq!(created["languages"], json!(["en-us"]));
    assert_eq!(created["permissions"][0]["node"], node(1063));
    let (status, h2, shown) = call(gw.admin(Method::GET, one)).await;
    assert_eq!((status, &shown), (200, &created));
    assert_eq!(etag(&h2), etag(&h));
    let (_, _, local) = call(gw.admin(Method::GET, &format!("{BASE}?origin=local"))).await;
    assert_eq!(local["items"], json!([created]));
    let (_, _, all) = call(gw.admin(Method::GET, BASE)).await;
    let editor = all["items"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["alias"] == "editor"))
        .expect("editor listed")
        .clone();
    assert_eq!(editor["origin"], "umbraco");

    let with = |field: &str, value: Value| {
        let mut b = local_group();
        b[field] = value;
        b
    };
    let post = |b: Value| gw.admin(Method::POST, BASE).json(&b);
    expect_all(vec![
        (post(local_group()), 409, Some("alias")),
        (post(with("alias", json!("editor"))), 409, Some("alias")),
        (post(with("colour", json!("red"))), 400, Some("colour")),
        (
            post(with("content_start", json!("nowhere"))),
            400,
            Some("content_start"),
        ),
        (post(with("alias", json!("bad alias"))), 422, Some("alias")),
        (post(with("name", json!(""))), 422, Some("name")),
        (
            post(with("content_start", json!(node(9999)))),
            422,
            Some("content_start"),
        ),
        (
            post(with("media_start", json!(node(1063)))),
            422,
            Some("media_start"),
        ),
        (
            post(with("languages", json!(["en us"]))),
            422,
            Some("languages[0]"),
        ),
        (
            post(with("default_verbs", json!(["a b"]))),
            422,
            Some("default_verbs[0]"),
        ),
        (
            post(with(
                "permissions",
                json!([{"node": node(9999), "verbs": []}]),
            )),
            422,
            Some("permissions[0].node"),
        ),
        (
            gw.admin(Method::GET, "/v1/overrides/groups/nope"),
            404,
            None,
        ),
        (
            gw.admin(Method::GET, &format!("{BASE}?origin=mars")),
            400,
            Some("origin"),
        ),
        (gw.admin(Method::PATCH, one), 405, None),
    ])
    .await;

    // Edits: If-Match required and current; the Umbraco mirror's rows are read-only.
    let put = |tag: Option<&str>, body: Value| {
        let r = gw.admin(Method::PUT, one).json(&body);
        match tag {
            Some(t) => r.header("if-match", t),
            None => r,
        }
    };
    let mut renamed = local_group();
    renamed["name"] = json!("Outside readers");
    let edit_editor = gw
        .admin(Method::PUT, "/v1/overrides/groups/editor")
        .header("if-match", etag(&h))
        .json(&with("alias", json!("editor")));
    expect_all(vec![
        (put(None, renamed.clone()), 428, None),
        (put(Some("\"0000\""), renamed.clone()), 412, None),
        (
            put(Some(&etag(&h)), with("alias", json!("other"))),
            422,
            Some("alias"),
        ),
        (edit_editor, 409, Some("origin")),
        (
            gw.admin(Method::DELETE, "/v1/overrides/groups/editor"),
            409,
            Some("origin"),
        ),
        (gw.admin(Method::DELETE, one), 428, None),
    ])
    .await;
    let (status, h3, v) = call(put(Some(&etag(&h)), renamed)).await;
    assert_eq!(
        (status, &v["name"]),
        (200, &json!("Outside readers")),
        "{v}"
    );
    assert_eq!(v["key"], created["key"], "a replace keeps the key");
    assert_ne!(etag(&h3), etag(&h));
    let (status, _, _) = call(gw.admin(Method::DELETE, one).header("if-match", etag(&h))).await;
    assert_eq!(status, 412, "the old etag is stale");
    let (status, _, _) = call(gw.admin(Method::DELETE, one).header("if-match", etag(&h3))).await;
    assert_eq!(status, 204);
    let (status, _, _) = call(gw.admin(Method::GET, one)).await;
    assert_eq!(status, 404);

    let rows: Vec<(String, String, Option<Value>, Option<Value>)> = sqlx::query_as(
        "select actor, action, before, after from admin_changes \
         where kind = 'group' and resource = 'extReaders' order by occurred_at",
    )
    .fetch_all(&pool)
    .await
    .expect("changes");
    let actions: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    assert!(rows.iter().all(|r| r.0 == "admin:test"));
    assert_eq!(
        rows[1].2.as_ref().map(|b| b["name"].clone()),
        Some(json!("External readers"))
    );
    assert_eq!(
        rows[1].3.as_ref().map(|a| a["name"].clone()),
        Some(json!("Outside readers"))
    );
    assert!(rows[2].3.is_none());
}

#[tokio::test]
async fn group_mappings_and_users_answer_every_endpoint_and_refuse_what_they_must() {
    let (db, pool) = ScratchDb::with_dev_policy("ovusers").await;
    let up = Upstream::start().await;
    let gw = pg_gateway(&up, &db.url()).await;
    let (status, _, _) = call(
        gw.admin(Method::POST, "/v1/overrides/groups")
            .json(&local_group()),
    )
    .await;
    assert_eq!(status, 201);

    const MAPPINGS: &str = "/v1/overrides/group-mappings";
    let mapping =
        json!({"issuer": "dev", "idp_group": "contractors/eu", "groups": ["writer", "extReaders"]});
    let (status, h, m) = call(gw.admin(Method::POST, MAPPINGS).json(&mapping)).await;
    assert_eq!(status, 201, "{m}");
    assert_eq!(m["groups"], json!(["extReaders", "writer"]));
    let one = "/v1/overrides/group-mappings/dev/contractors%2Feu";
    assert_eq!(h["location"], one);
    let (status, _, shown) = call(gw.admin(Method::GET, one)).await;
    assert_eq!((status, &shown), (200, &m));
    let with = |field: &str, value: Value| {
        let mut b = mapping.clone();
        b[field] = value;
        b
    };
    let post = |b: Value| gw.admin(Method::POST, MAPPINGS).json(&b);
    expect_all(vec![
        (post(mapping.clone()), 409, Some("idp_group")),
        (post(with("issuer", json!("nope"))), 422, Some("issuer")),
        (post(with("groups", json!([]))), 422, Some("groups")),
        (
            post(with("groups", json!(["writer", "nope"]))),
            422,
            Some("groups[1]"),
        ),
        (post(with("idp_group", json!(""))), 422, Some("idp_group")),
        (post(json!({"issuer": "dev"})), 400, None),
        (
            gw.admin(Method::GET, "/v1/overrides/group-mappings/dev/none"),
            404,
            None,
        ),
    ])
    .await;
    let (status, h2, v) = call(
        gw.admin(Method::PUT, one)
            .header("if-match", etag(&h))
            .json(&with("groups", json!(["writer"]))),
    )
    .await;
    assert_eq!((status, &v["groups"]), (200, &json!(["writer"])), "{v}");
    let (_, _, list) = call(gw.admin(Method::GET, MAPPINGS)).await;
    assert_eq!(list["items"], json!([v]));

    const USERS: &str = "/v1/overrides/users";
    let user = json!({"external_id": "ext|anna", "name": "Anna", "groups": ["writer", "extReaders"],
                      "content_start": [node(1070)], "media_start": ["root"]});
    let (status, hu, u) = call(gw.admin(Method::POST, USERS).json(&user)).await;
    assert_eq!(status, 201, "{u}");
    assert_eq!(
        (u["state"].clone(), u["groups"].clone()),
        (json!("active"), json!(["extReaders", "writer"]))
    );
    assert_eq!(hu["location"], "/v1/overrides/users/ext%7Canna");
    let with = |field: &str, value: Value| {
        let mut b = user.clone();
        b[field] = value;
        b
    };
    let post = |b: Value| gw.admin(Method::POST, USERS).json(&b);
    let dev_editor = "/v1/overrides/users/dev-editor";
    let (_, he, editor) = call(gw.admin(Method::GET, dev_editor)).await;
    assert_eq!(
        (editor["origin"].clone(), editor["groups"].clone()),
        (json!("umbraco"), json!(["editor"]))
    );
    expect_all(vec![
        (post(user.clone()), 409, Some("external_id")),
        (
            post(with("external_id", json!("dev-editor"))),
            409,
            Some("external_id"),
        ),
        (
            post(with("groups", json!(["nope"]))),
            422,
            Some("groups[0]"),
        ),
        (post(with("state", json!("asleep"))), 400, Some("state")),
        (
            post(with("content_start", json!([node(9999)]))),
            422,
            Some("content_start[0]"),
        ),
        (
            post(with("media_start", json!([node(1070)]))),
            422,
            Some("media_start[0]"),
        ),
        (
            gw.admin(Method::PUT, dev_editor)
                .header("if-match", etag(&he))
                .json(&with("external_id", json!("dev-editor"))),
            409,
            Some("origin"),
        ),
        (
            gw.admin(Method::DELETE, dev_editor)
                .header("if-match", etag(&he)),
            409,
            Some("origin"),
        ),
        (
            gw.admin(Method::DELETE, "/v1/overrides/users/ext%7Canna"),
            428,
            None,
        ),
    ])
    .await;
    let (status, _, _) = call(
        gw.admin(Method::DELETE, "/v1/overrides/users/ext%7Canna")
            .header("if-match", etag(&hu)),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = call(gw.admin(Method::DELETE, one).header("if-match", etag(&h2))).await;
    assert_eq!(status, 204);
    let (_, _, list) = call(gw.admin(Method::GET, MAPPINGS)).await;
    assert_eq!(list["items"], json!([]));

    let kinds: Vec<(String, String)> = sqlx::query_as(
        "select kind, action from admin_changes where kind <> 'group' order by occurred_at",
    )
    .fetch_all(&pool)
    .await
    .expect("changes");
    let want = [
        ("group_mapping", "create"),
        ("group_mapping", "update"),
        ("user", "create"),
        ("user", "delete"),
        ("group_mapping", "delete"),
    ];
    let got: Vec<(&str, &str)> = kinds
        .iter()
        .map(|(k, a)| (k.as_str(), a.as_str()))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn overrides_need_a_postgres_store_and_an_admin_token() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = crate::admin_keys::policy_copy(dir.path());
    let extra = format!(
        "{AUTHN}\n[store]\nkind = \"file\"\npolicy_file = {:?}\n",
        policy.display().to_string()
    );
    let gw = spawn_gateway(TOP, up.addr, &extra).await;
    let (status, _, v) = call(gw.admin(Method::GET, "/v1/overrides/groups")).await;
    assert_eq!((status, &v["error"]), (501, &json!("not_configured")));
    let (status, _, _) = call(client().get(gw.admin_url("/v1/overrides/users"))).await;
    assert_eq!(status, 401);
}

/// Polls until `bearer` gets `want` on document 1063 through `gw` (bounded).
pub async fn wait_doc_status(gw: &Gateway, bearer: &str, want: u16) {
    let got = wait_until(Duration::from_secs(10), || async move {
        send(client().get(gw.url(&doc(1063))).bearer_auth(bearer))
            .await
            .0
            == want
    })
    .await;
    assert!(got.is_some(), "never {want}; log:\n{}", gw.log());
}
