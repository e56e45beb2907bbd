//! Full syncs and webhooks interleaved (docs/MIRROR.md "Webhooks and full syncs"): a sync reads
//! Umbraco's state A ([`Mirror::read`]), Umbraco changes to B and the webhooks for B are
//! applied ([`Mirror::refresh`], what `POST /v1/webhooks/umbraco` runs), then the sync applies
//! what it read ([`Mirror::apply`]). The store must hold B: a sync that starts now changes
//! nothing. Deterministic: the steps run one after the other against the fake Umbraco and a
//! scratch database.

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::FakeUmbraco;
use crate::mirror::{database, install, mirror, node};
use portcullis::authz::NodeKind;
use portcullis::mirror::webhook::Refresh;
use portcullis::mirror::{Mirror, SyncKind};
use sqlx::PgPool;
use uuid::Uuid;

/// Every mirrored row that B decides (nodes, groups and entries, users and memberships).
async fn rows(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select format('%s %s %s %s', key, parent_key, path, trashed) from content_nodes \
         union all select format('%s %s %s %s', key, alias, default_verbs, content_start_key) \
           from user_groups \
         union all select format('%s %s %s', group_key, node_key, verbs) from group_permissions \
         union all select format('%s %s %s', key, external_id, state) from users \
         union all select format('%s %s', user_key, group_key) from memberships order by 1",
    )
    .fetch_all(pool)
    .await
    .expect("rows")
}

/// The store equals what Umbraco holds now: a fresh sync finds nothing to change.
async fn holds_umbracos_state(m: &Mirror, pool: &PgPool) {
    let before = rows(pool).await;
    let report = m.full_sync().await.expect("checking sync");
    assert_eq!(report.changed(), 0, "the store was not at B: {report:?}");
    assert_eq!(rows(pool).await, before);
}

async fn hook(m: &Mirror, refresh: Refresh, ids: &[Uuid]) {
    m.refresh(refresh, ids).await.expect("webhook applies");
}

#[tokio::test]
async fn a_sync_that_read_the_tree_before_webhooks_leaves_their_moves_trashes_deletes_and_creates()
{
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let blog = s.add_node(Tree::Document, "blog", Some(home));
    let post = s.add_node(Tree::Document, "post", Some(blog));
    let deep = s.add_node(Tree::Document, "deep", Some(post));
    let about = s.add_node(Tree::Document, "about", Some(home));
    let news = s.add_node(Tree::Document, "news", Some(home));
    let old = s.add_node(Tree::Document, "old", Some(home));
    let old_child = s.add_node(Tree::Document, "old-child", Some(old));
    let binned = s.add_node(Tree::Document, "binned", None);
    s.trash(binned);
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_race_tree").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("initial sync");

    // The sync reads A.
    let read = m.read(SyncKind::Documents).await.expect("read A");
    // Umbraco goes to B; each change's webhook is applied before the sync's apply.
    let fresh = fake.with(|s| {
        s.move_node(blog, Some(about)); // a subtree move: only the top node is delivered
        s.trash(news);
        s.delete_node(old);
        s.move_node(binned, Some(home)); // a restore
        s.add_node(Tree::Document, "fresh", Some(about))
    });
    let docs = Refresh::Nodes(NodeKind::Document);
    hook(&m, docs, &[blog]).await;
    hook(&m, docs, &[news]).await;
    hook(&m, docs, &[old, old_child]).await;
    hook(&m, docs, &[binned]).await;
    hook(&m, docs, &[fresh]).await;
    let b = rows(&pool).await;

    let r = m.apply(&read).await.expect("the sync applies A");
    assert_eq!(rows(&pool).await, b, "the sync wrote A back: {r:?}");
    assert!(r.newer >= 4, "rows left to the webhooks: {r:?}");
    let id = |k| {
        let pool = pool.clone();
        async move { node(&pool, k).await.expect("mirrored").0.last().copied() }
    };
    let (h, a, bl, p) = (
        id(home).await,
        id(about).await,
        id(blog).await,
        id(post).await,
    );
    let d = id(deep).await;
    let want: Vec<i64> = [Some(-1), h, a, bl, p, d].into_iter().flatten().collect();
    assert_eq!(node(&pool, deep).await, Some((want, false)));
    assert_eq!(node(&pool, news).await.map(|n| n.1), Some(true));
    assert_eq!(node(&pool, old_child).await, None);
    assert_eq!(node(&pool, binned).await.map(|n| n.1), Some(false));
    assert!(node(&pool, fresh).await.is_some());
    holds_umbracos_state(&m, &pool).await;
}

#[tokio::test]
async fn a_sync_that_read_users_and_groups_before_webhooks_leaves_their_changes() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let ed = s.add_user("ed", &["editor"]);
    let gone = s.add_user("gone", &["writer"]);
    let doomed = s.add_group("doomed", &["content"], &["Umb.Document.Read"]);
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_race_users").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("initial sync");

    let groups = m.read(SyncKind::UserGroups).await.expect("read groups A");
    let users = m.read(SyncKind::Users).await.expect("read users A");
    let (writer, custom, newbie) = fake.with(|s| {
        let writer = s.group_key("writer");
        s.group_mut(writer).fallback.clear();
        s.grant(writer, home, &["Umb.Document.Read"]);
        s.groups.remove(&doomed);
        let custom = s.add_group("custom", &["content"], &[]);
        s.disable_user(ed);
        s.user_mut(ed).groups.push(custom);
        s.users.remove(&gone);
        (writer, custom, s.add_user("newbie", &["custom"]))
    });
    hook(&m, Refresh::Groups, &[writer, doomed, custom]).await;
    hook(&m, Refresh::Users, &[ed, gone, newbie]).await;
    let b = rows(&pool).await;

    let g = m.apply(&groups).await.expect("groups A applied");
    let u = m.apply(&users).await.expect("users A applied");
    assert_eq!(rows(&pool).await, b, "A written back: {g:?} {u:?}");
    assert_eq!((g.newer, u.newer), (2, 2), "{g:?} {u:?}");
    let state: String = sqlx::query_scalar("select state from users where key = $1")
        .bind(ed)
        .fetch_one(&pool)
        .await
        .expect("ed");
    assert_eq!(state, "disabled");
    holds_umbracos_state(&m, &pool).await;
}

#[tokio::test]
async fn a_webhook_after_the_sync_applied_and_a_sync_after_the_webhook_still_converge() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let blog = s.add_node(Tree::Document, "blog", Some(home));
    let about = s.add_node(Tree::Document, "about", Some(home));
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_race_after").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("initial sync");
    // A webhook older than the sync's read: the sync's newer state wins.
    fake.with(|s| s.move_node(blog, Some(about)));
    hook(&m, Refresh::Nodes(NodeKind::Document), &[blog]).await;
    fake.with(|s| s.move_node(blog, Some(home)));
    let read = m.read(SyncKind::Documents).await.expect("read");
    let r = m.apply(&read).await.expect("apply");
    assert_eq!((r.updated, r.newer), (1, 0), "{r:?}");
    holds_umbracos_state(&m, &pool).await;
}
