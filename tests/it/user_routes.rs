//! User routes (`user/avatar/{id}` and the other user-management endpoints with a user check)
//! decided from the mirrored users: a non-administrator may not act on an administrator
//! (Umbraco's `UserPermissionHandler` → `UserPermissionService.AuthorizeAccessAsync`,
//! `NonAdminUpdateOfAdmin`), and a user the store does not know follows the unknown-node mode.
//! Through the real gateway on a Postgres store synced from the fake Umbraco, in front of the
//! recording upstream.

use crate::fake_umbraco::FakeUmbraco;
use crate::harness::{client, spawn_gateway_with_env, wait_until, Upstream};
use crate::mirror::{database, install, mirror};
use crate::pipeline::{assert_denied, send, token, AUTHN, TOP};
use std::time::Duration;
use uuid::Uuid;

fn avatar(user: Uuid) -> String {
    format!("/umbraco/management/api/v1/user/avatar/{user}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_administrator_may_manage_users_but_not_administrators() {
    let mut s = install();
    s.add_group("hr", &["users"], &[]);
    s.add_user("hr-alice", &["hr"]);
    let ed = s.add_user("ed", &["editor"]);
    let root = s.add_user("root", &["admin"]);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("user_routes").await;
    let sync = mirror(&fake, &pool);
    sync.full_sync().await.expect("sync");
    let up = Upstream::start().await;
    let extra = format!("{AUTHN}\n[store]\nkind = \"postgres\"\ndatabase_url_env = \"USERS_DB\"\n");
    let gw = spawn_gateway_with_env(TOP, up.addr, &extra, &[("USERS_DB", &db.url())]).await;
    let alice = token("hr-alice");
    let clear = |user: Uuid| client().delete(gw.url(&avatar(user))).bearer_auth(&alice);
    // A user who is not an administrator: forwarded.
    let got = send(clear(ed)).await;
    assert_eq!(got.0, 200, "{}", got.2);
    // An administrator: refused, nothing forwarded.
    assert_denied(&send(clear(root)).await, 403, "admin_required");
    // A user the store does not know: the unknown-node mode (deny by default).
    assert_denied(&send(clear(Uuid::new_v4())).await, 403, "unknown_node");
    assert_eq!(up.requests().len(), 1, "only the allowed request");
    // ed becomes an administrator in Umbraco; the next sync's NOTIFY evicts the cached facts.
    fake.with(|s| {
        let admin = s.group_key("admin");
        s.user_mut(ed).groups.push(admin);
    });
    sync.full_sync().await.expect("second sync");
    let refused = wait_until(Duration::from_secs(30), || async {
        send(clear(ed)).await.2["error"] == "admin_required"
    })
    .await;
    assert!(refused.is_some(), "ed's new group is enforced");
}
