//! Umbraco's webhooks into the mirror, through the real gateway's admin listener
//! (`POST /v1/webhooks/umbraco`): the secret header is required, and deliveries that come
//! twice and out of order converge to what Umbraco holds (Minimal payloads as in
//! `src/Umbraco.Core/Webhooks/Events/**`: a move lists the node and its descendants).

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::FakeUmbraco;
use crate::harness::{client, spawn_gateway_with_env, Gateway};
use crate::mirror::{database, install, mirror, node, CLIENT_ID, SECRET};
use serde_json::{json, Value};
use uuid::Uuid;

pub const HOOK_SECRET: &str = "umbraco-webhook-secret-for-tests";
const HEADER: &str = "x-portcullis-webhook-secret";

/// A gateway with the mirror (API user, Postgres store, webhook secret) in front of `fake`.
pub async fn gateway(fake: &FakeUmbraco, db_url: &str) -> Gateway {
    let extra = format!(
        "[upstream.credential]\nkind = \"umbraco_api_user\"\nclient_id = \"{CLIENT_ID}\"\n\
         [store]\nkind = \"postgres\"\ndatabase_url_env = \"MIRROR_DB\"\n"
    );
    spawn_gateway_with_env(
        "",
        fake.addr,
        &extra,
        &[
            ("MIRROR_DB", db_url),
            ("PORTCULLIS_UMBRACO_CLIENT_SECRET", SECRET),
            ("PORTCULLIS_UMBRACO_WEBHOOK_SECRET", HOOK_SECRET),
        ],
    )
    .await
}

/// Delivers `body` for `event` as Umbraco does; returns the status and JSON answer.
pub async fn deliver(gw: &Gateway, secret: Option<&str>, event: &str, body: Value) -> (u16, Value) {
    let mut req = client()
        .post(gw.admin_url("/v1/webhooks/umbraco"))
        .header("umb-webhook-event", event)
        .header("umb-webhook-retrycount", "0")
        .json(&body);
    if let Some(s) = secret {
        req = req.header(HEADER, s);
    }
    let resp = req.send().await.expect("admin answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub fn ids(keys: &[Uuid]) -> Value {
    Value::Array(keys.iter().map(|k| json!({"id": k})).collect())
}

async fn mirror_id(pool: &sqlx::PgPool, key: Uuid) -> i64 {
    node(pool, key)
        .await
        .expect("mirrored")
        .0
        .last()
        .copied()
        .expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_need_the_secret_and_converge_when_delivered_twice_and_out_of_order() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let blog = s.add_node(Tree::Document, "blog", Some(home));
    let post = s.add_node(Tree::Document, "post", Some(blog));
    let about = s.add_node(Tree::Document, "about", Some(home));
    let ed = s.add_user("ed", &["editor"]);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("mirror_hook").await;
    mirror(&fake, &pool)
        .full_sync()
        .await
        .expect("initial sync");
    let gw = gateway(&fake, &db.url()).await;
    let moved = json!({"id": blog});
    // Refused without the secret, with a wrong one: nothing read, nothing applied.
    for secret in [None, Some("wrong"), Some("")] {
        let (status, body) = deliver(&gw, secret, "Umbraco.ContentMoved", moved.clone()).await;
        assert_eq!(status, 401, "{secret:?}: {body}");
        assert_eq!(body["error"], "unauthenticated", "{body}");
    }
    // Umbraco: blog moves under about, then about (with blog and post) goes to the bin.
    fake.with(|s| s.move_node(blog, Some(about)));
    let move_event = ids(&[blog, post]);
    fake.with(|s| s.trash(about));
    let trash_event = ids(&[about, blog, post]);
    // Delivered out of order and each twice.
    let key = Some(HOOK_SECRET);
    for (event, body) in [
        ("Umbraco.ContentMovedToRecycleBin", &trash_event),
        ("Umbraco.ContentMoved", &move_event),
        ("Umbraco.ContentMoved", &move_event),
        ("Umbraco.ContentMovedToRecycleBin", &trash_event),
    ] {
        let (status, answer) = deliver(&gw, key, event, body.clone()).await;
        assert_eq!(status, 200, "{event}: {answer}");
    }
    let (a, b, p) = (
        mirror_id(&pool, about).await,
        mirror_id(&pool, blog).await,
        mirror_id(&pool, post).await,
    );
    assert_eq!(
        node(&pool, post).await,
        Some((vec![-1, -20, a, b, p], true))
    );
    assert_eq!(node(&pool, about).await, Some((vec![-1, -20, a], true)));
    // Restored under home: only the top node is delivered; its subtree follows.
    fake.with(|s| s.move_node(about, Some(home)));
    let (status, _) = deliver(&gw, key, "Umbraco.ContentMoved", json!([{"id": about}])).await;
    assert_eq!(status, 200);
    let h = mirror_id(&pool, home).await;
    assert_eq!(node(&pool, post).await, Some((vec![-1, h, a, b, p], false)));
    // Deleted for good, delivered twice: gone, and the second delivery changes nothing.
    fake.with(|s| s.delete_node(blog));
    for _ in 0..2 {
        let (status, _) = deliver(&gw, key, "Umbraco.ContentDelete", json!({"id": blog})).await;
        assert_eq!(status, 200);
    }
    assert_eq!(node(&pool, blog).await, None);
    assert_eq!(node(&pool, post).await, None);
    // A user disabled, a group's verbs changed, a group deleted.
    let writer = fake.with(|s| {
        s.disable_user(ed);
        let w = s.group_key("writer");
        s.group_mut(w).fallback.clear();
        w
    });
    assert_eq!(deliver(&gw, key, "userSaved", ids(&[ed])).await.0, 200);
    assert_eq!(
        deliver(&gw, key, "userGroupSaved", ids(&[writer])).await.0,
        200
    );
    let state: String = sqlx::query_scalar("select state from users where key = $1")
        .bind(ed)
        .fetch_one(&pool)
        .await
        .expect("user");
    assert_eq!(state, "disabled");
    let verbs: Vec<String> =
        sqlx::query_scalar("select default_verbs from user_groups where key = $1")
            .bind(writer)
            .fetch_one(&pool)
            .await
            .expect("group");
    assert!(verbs.is_empty(), "{verbs:?}");
    let custom = fake.with(|s| s.add_group("custom", &["content"], &[]));
    assert_eq!(
        deliver(&gw, key, "userGroupSaved", ids(&[custom])).await.0,
        200
    );
    fake.with(|s| s.groups.remove(&custom));
    assert_eq!(
        deliver(&gw, key, "UserGroupDeleted", ids(&[custom]))
            .await
            .0,
        200
    );
    let left: i64 = sqlx::query_scalar("select count(*) from user_groups where key = $1")
        .bind(custom)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(left, 0);
    // Events the mirror does not use are acknowledged; a payload without ids is a 400.
    let (status, body) = deliver(&gw, key, "userLoginSuccess", json!({"id": ed})).await;
    assert_eq!((status, body["ignored"].clone()), (200, json!(true)));
    assert_eq!(
        deliver(&gw, key, "Umbraco.ContentSaved", json!([])).await.0,
        400
    );
}

/// `assignedUserGroupPermissions` names groups and nodes by int ids only
/// (`AssignedUserGroupPermissionsWebhookEvent` sends `notification.EntityPermissions`:
/// src/Umbraco.Core/Webhooks/Events/User/AssignedUserGroupPermissionsWebhookEvent.cs,
/// src/Umbraco.Core/Models/Membership/EntityPermission.cs; fired by
/// `UserService.ReplaceUserGroupPermissions`/`AssignUserGroupPermission`): every group is
/// refreshed, idempotently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_group_permissions_refresh_every_group() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("mirror_hook_perms").await;
    mirror(&fake, &pool)
        .full_sync()
        .await
        .expect("initial sync");
    let gw = gateway(&fake, &db.url()).await;
    let writer = fake.with(|s| {
        let w = s.group_key("writer");
        s.grant(w, home, &["Umb.Document.Read"]);
        w
    });
    let body = json!([{"entityId": 1060, "userGroupId": 3,
        "assignedPermissions": ["Umb.Document.Read"], "isDefaultPermissions": false}]);
    let event = "assignedUserGroupPermissions";
    let (status, answer) = deliver(&gw, Some(HOOK_SECRET), event, body.clone()).await;
    assert_eq!(
        (status, answer["changed"].clone()),
        (200, json!(1)),
        "{answer}"
    );
    let verbs: Vec<String> = sqlx::query_scalar(
        "select verbs from group_permissions where group_key = $1 and node_key = $2",
    )
    .bind(writer)
    .bind(home)
    .fetch_one(&pool)
    .await
    .expect("entry mirrored");
    assert_eq!(verbs, ["Umb.Document.Read"]);
    let (status, answer) = deliver(&gw, Some(HOOK_SECRET), event, body).await;
    assert_eq!(
        (status, answer["changed"].clone()),
        (200, json!(0)),
        "{answer}"
    );
    let (status, _) = deliver(&gw, Some(HOOK_SECRET), event, json!({"id": writer})).await;
    assert_eq!(status, 400);
}
