//! Delivery routes mirrored from Umbraco (`GET document/urls`, `src/mirror/routes.rs`) and used
//! by the real gateway for item-by-path requests. Umbraco's side: `DocumentUrlController` →
//! `PublishedUrlInfoProvider.GetAllAsync` (URLs of the default culture only without domains;
//! collisions reported as messages), `DocumentUrlService.GetLegacyRouteFormat`/`GetFullUrl`
//! (`hideTopLevelNodeFromPath`), `ApiContentRouteBuilder` (the Delivery `route.path` is that URL
//! for a non-root node), `RequestCultureService` (`Accept-Language`) and
//! `DocumentUrlService.GetDocumentKeyByRoute` (the by-path walk), in Umbraco-CMS.

use crate::fake_umbraco::model::{State, Tree};
use crate::fake_umbraco::FakeUmbraco;
use crate::harness::*;
use crate::mirror::{database, install, mirror};
use crate::mirror_webhook::{gateway as hook_gateway, ids, HOOK_SECRET};
use crate::pipeline::{assert_denied, send, AUTHN, TOP};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The tree: `home` (the first root) with `blog/post-1` and `about`; a second root `site-b`
/// with its own `blog` (whose `/blog/` collides with home's: Umbraco routes `/blog/` to home's,
/// so site-b's blog has no URL); `news`, variant (`en-US` "news", `da-DK` "nyheder"); and
/// `draft`, unpublished.
struct Site {
    home: Uuid,
    blog: Uuid,
    post: Uuid,
    about: Uuid,
    site_b: Uuid,
    b_blog: Uuid,
    news: Uuid,
    draft: Uuid,
}

fn site() -> (State, Site) {
    let mut s = install();
    let home = s.add_node(Tree::Document, "Home", None);
    let blog = s.add_node(Tree::Document, "Blog", Some(home));
    let post = s.add_node(Tree::Document, "Post 1", Some(blog));
    let about = s.add_node(Tree::Document, "About", Some(home));
    let site_b = s.add_node(Tree::Document, "Site B", None);
    let b_blog = s.add_node(Tree::Document, "Blog", Some(site_b));
    let news = s.add_node(Tree::Document, "News", Some(home));
    let draft = s.add_node(Tree::Document, "Draft", Some(home));
    s.urls.variants.insert(
        news,
        BTreeMap::from([
            ("en-US".into(), "news".into()),
            ("da-DK".into(), "nyheder".into()),
        ]),
    );
    s.urls.unpublished.insert(draft);
    let keys = Site {
        home,
        blog,
        post,
        about,
        site_b,
        b_blog,
        news,
        draft,
    };
    (s, keys)
}

async fn route(pool: &PgPool, key: Uuid) -> Option<String> {
    sqlx::query_scalar("select route_path from content_nodes where key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .expect("mirrored")
}

/// A gateway on the mirrored store in front of a recording upstream (`AUTHN` sets
/// `authz.delivery_default_culture = "en-us"`).
async fn gateway(up: &Upstream, db_url: &str) -> Gateway {
    let extra =
        format!("{AUTHN}\n[store]\nkind = \"postgres\"\ndatabase_url_env = \"ROUTES_DB\"\n");
    spawn_gateway_with_env(TOP, up.addr, &extra, &[("ROUTES_DB", db_url)]).await
}

/// A Delivery key scoped to `root`'s subtree; returns its secret.
async fn scoped_key(gw: &Gateway, root: Uuid) -> String {
    let body = json!({"name": "site", "owner": "web team", "apis": ["delivery"],
                      "subtree_roots": [root]});
    let (status, _, v) = send(gw.admin(Method::POST, "/v1/keys").json(&body)).await;
    assert_eq!(status, 201, "{v}");
    v["secret"].as_str().expect("secret").to_owned()
}

async fn by_path(
    gw: &Gateway,
    key: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = client()
        .get(gw.url(&format!("/umbraco/delivery/api/v2/content/item/{path}")))
        .header("Api-Key", key);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_routes_answer_item_paths_follow_a_move_and_a_second_sync_changes_nothing() {
    let (state, k) = site();
    let fake = FakeUmbraco::start(state).await;
    let (db, pool) = database("mirror_routes").await;
    let report = mirror(&fake, &pool).full_sync().await.expect("sync");
    assert_eq!(report.kinds["routes"].seen, 8, "{report:?}");
    let expect = [
        (k.home, Some("/")),
        (k.blog, Some("/blog/")),
        (k.post, Some("/blog/post-1/")),
        (k.about, Some("/about/")),
        (k.site_b, Some("/site-b/")),
        (k.b_blog, None), // collides with home's /blog/
        (k.news, Some("/news/")),
        (k.draft, None), // unpublished
    ];
    for (key, want) in expect {
        assert_eq!(route(&pool, key).await.as_deref(), want, "{key}");
    }
    let again = mirror(&fake, &pool).full_sync().await.expect("second sync");
    assert_eq!(again.changed(), 0, "{again:?}");

    let up = Upstream::start().await;
    let gw = gateway(&up, &db.url()).await;
    let home_key = scoped_key(&gw, k.home).await;
    let blog_key = scoped_key(&gw, k.blog).await;
    for p in ["blog", "Blog/Post-1/", "about", "news"] {
        assert_eq!(by_path(&gw, &home_key, p, &[]).await.0, 200, "{p}");
    }
    assert_eq!(by_path(&gw, &blog_key, "blog/post-1", &[]).await.0, 200);
    let got = by_path(&gw, &blog_key, "about", &[]).await;
    assert_denied(&got, 403, "outside_key_scope");
    // `/site-b/` is the other root, outside the home key.
    let got = by_path(&gw, &home_key, "site-b", &[]).await;
    assert_denied(&got, 403, "outside_key_scope");
    // No route: the unknown-node mode (deny) decides.
    for p in ["draft", "nyheder"] {
        assert_denied(&by_path(&gw, &home_key, p, &[]).await, 403, "unknown_node");
    }
    // Under a Start-Item: site-b's blog has no route (its URL collides), so it is unknown.
    let b = k.site_b.to_string();
    let b_key = scoped_key(&gw, k.site_b).await;
    let got = by_path(&gw, &b_key, "blog", &[("Start-Item", &b)]).await;
    assert_denied(&got, 403, "unknown_node");
    let got = by_path(&gw, &b_key, "site-b", &[("Start-Item", &b)]).await;
    assert_denied(&got, 403, "unknown_node");
    assert_eq!(by_path(&gw, &b_key, "site-b", &[]).await.0, 200);
    // Cultures: the default culture (any case) resolves; another culture is not mirrored;
    // a list Umbraco ignores counts as none.
    let en = by_path(&gw, &home_key, "news", &[("Accept-Language", "EN-us")]).await;
    assert_eq!(en.0, 200, "{}", en.2);
    let da = by_path(&gw, &home_key, "news", &[("Accept-Language", "da-DK")]).await;
    assert_denied(&da, 403, "unknown_node");
    let list = [("Accept-Language", "da-DK,da;q=0.9")];
    assert_eq!(by_path(&gw, &home_key, "news", &list).await.0, 200);

    // Move the blog under site-b: its routes follow with the next sync.
    fake.with(|s| s.move_node(k.blog, Some(k.site_b)));
    mirror(&fake, &pool)
        .full_sync()
        .await
        .expect("sync after move");
    assert_eq!(route(&pool, k.post).await.as_deref(), Some("/blog/post-1/"));
    // Two blogs under site-b now collide: the first by sort order keeps the URL.
    assert_eq!(route(&pool, k.blog).await.as_deref(), Some("/blog/"));
    assert_eq!(route(&pool, k.b_blog).await, None);
    let post = wait_until(std::time::Duration::from_secs(30), || async {
        by_path(&gw, &home_key, "blog", &[]).await.0 == 403
    })
    .await;
    assert!(
        post.is_some(),
        "the moved blog is still allowed; log:\n{}",
        gw.log()
    );
    assert_denied(
        &by_path(&gw, &home_key, "blog", &[]).await,
        403,
        "outside_key_scope",
    );
    drop(gw);
    pool.close().await;
}

async fn deliver(gw: &Gateway, event: &str, keys: &[Uuid]) {
    let got = crate::mirror_webhook::deliver(gw, Some(HOOK_SECRET), event, ids(keys)).await;
    assert_eq!(got.0, 200, "{event}: {}; log:\n{}", got.1, gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_refresh_the_routes_of_the_whole_subtree() {
    let (state, k) = site();
    let fake = FakeUmbraco::start(state).await;
    let (db, pool) = database("mirror_routes_hook").await;
    mirror(&fake, &pool).full_sync().await.expect("sync");
    let hooks = hook_gateway(&fake, &db.url()).await;
    let up = Upstream::start().await;
    let gw = gateway(&up, &db.url()).await;
    let home_key = scoped_key(&gw, k.home).await;
    assert_eq!(by_path(&gw, &home_key, "blog/post-1", &[]).await.0, 200);

    // A rename published on the blog renames every descendant's route.
    fake.with(|s| {
        if let Some(n) = s.nodes.get_mut(&k.blog) {
            n.name = "Journal".into();
        }
    });
    deliver(&hooks, "Umbraco.ContentPublish", &[k.blog]).await;
    assert_eq!(route(&pool, k.blog).await.as_deref(), Some("/journal/"));
    assert_eq!(
        route(&pool, k.post).await.as_deref(),
        Some("/journal/post-1/")
    );
    // A move (Umbraco lists the node and its descendants): routes follow the new parent.
    fake.with(|s| s.move_node(k.blog, Some(k.about)));
    deliver(&hooks, "Umbraco.ContentMoved", &[k.blog, k.post]).await;
    assert_eq!(
        route(&pool, k.post).await.as_deref(),
        Some("/about/journal/post-1/")
    );
    let moved = wait_until(std::time::Duration::from_secs(30), || async {
        by_path(&gw, &home_key, "about/journal/post-1", &[]).await.0 == 200
    })
    .await;
    assert!(moved.is_some(), "log:\n{}", gw.log());
    assert_denied(
        &by_path(&gw, &home_key, "journal/post-1", &[]).await,
        403,
        "unknown_node",
    );
    // Unpublishing the blog takes the routes of its subtree away; delivered twice, the same.
    fake.with(|s| {
        s.urls.unpublished.insert(k.blog);
    });
    for _ in 0..2 {
        deliver(&hooks, "Umbraco.ContentUnpublish", &[k.blog]).await;
        assert_eq!(route(&pool, k.blog).await, None);
        assert_eq!(route(&pool, k.post).await, None);
    }
    // Site-b's blog no longer collides since the rename, but no event named it: the
    // periodic sync gives it its route (until then it is unknown: the safe side).
    assert_eq!(route(&pool, k.b_blog).await, None);
    let again = mirror(&fake, &pool).full_sync().await.expect("sync");
    assert_eq!(again.kinds["routes"].updated, 1, "{again:?}");
    assert_eq!(route(&pool, k.b_blog).await.as_deref(), Some("/blog/"));
    // An event on a root re-reads every route (a root's segment or order changes what
    // Umbraco walks first); a second delivery changes nothing.
    fake.with(|s| {
        s.urls.unpublished.remove(&k.blog);
        if let Some(n) = s.nodes.get_mut(&k.home) {
            n.sort_order = 5;
        }
        s.tree_index = None;
    });
    deliver(&hooks, "Umbraco.ContentSorted", &[k.home, k.site_b]).await;
    assert_eq!(route(&pool, k.home).await.as_deref(), Some("/home/"));
    assert_eq!(route(&pool, k.site_b).await.as_deref(), Some("/"));
    assert_eq!(
        route(&pool, k.post).await.as_deref(),
        Some("/about/journal/post-1/")
    );
    let again = mirror(&fake, &pool).full_sync().await.expect("sync");
    assert_eq!(again.kinds["routes"].updated, 0, "{again:?}");
    drop((gw, hooks));
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_read_before_a_webhook_leaves_the_webhooks_routes() {
    use portcullis::authz::NodeKind;
    use portcullis::mirror::webhook::Refresh;
    use portcullis::mirror::SyncKind;
    let (state, k) = site();
    let fake = FakeUmbraco::start(state).await;
    let (_db, pool) = database("mirror_routes_race").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("initial sync");
    // The sync reads the tree and its routes; then the blog is renamed and its webhook applied.
    let read = m.read(SyncKind::Documents).await.expect("read");
    fake.with(|s| {
        if let Some(n) = s.nodes.get_mut(&k.blog) {
            n.name = "Journal".into();
        }
    });
    m.refresh(Refresh::Nodes(NodeKind::Document), &[k.blog])
        .await
        .expect("webhook");
    assert_eq!(
        route(&pool, k.post).await.as_deref(),
        Some("/journal/post-1/")
    );
    // The sync's apply keeps the routes of the subtree the webhook touched after its ticket.
    m.apply(&read).await.expect("apply the older read");
    assert_eq!(route(&pool, k.blog).await.as_deref(), Some("/journal/"));
    assert_eq!(
        route(&pool, k.post).await.as_deref(),
        Some("/journal/post-1/")
    );
    assert_eq!(route(&pool, k.about).await.as_deref(), Some("/about/"));
    pool.close().await;
}
