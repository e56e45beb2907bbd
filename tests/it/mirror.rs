//! The Umbraco mirror's full sync (`portcullis::mirror`, `portcullis sync umbraco`) against the
//! fake Umbraco's Management API (`fake_umbraco/listing.rs`, `directory.rs`) and a scratch
//! PostgreSQL database: a 10,000-node tree, moves, trashes and restores between syncs, a sync
//! that fails half-way, and the Portcullis-owned rows (API keys, local overrides) it leaves.

use crate::fake_umbraco::model::{Start, Tree};
use crate::fake_umbraco::{FakeUmbraco, State};
use crate::harness::ScratchDb;
use portcullis::mirror::client::Reader;
use portcullis::mirror::{Mirror, SyncConfig, SyncError};
use portcullis::umbraco::{
    ApiUser, CredentialConfig, CredentialKind, ManagementClient, UmbracoError, UmbracoMetrics,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub const CLIENT_ID: &str = "umbraco-back-office-portcullis";
pub const SECRET: &str = "mirror-api-user-secret";

/// A fresh install with the super user and the gateway's API user (an administrator: the
/// users section and root start nodes the listings need).
pub fn install() -> State {
    let mut s = State::fresh_install();
    s.add_user("admin", &["admin"]);
    s.add_api_user(CLIENT_ID, SECRET, &["admin"]);
    s
}

/// A migrated scratch database and a pool on it.
pub async fn database(prefix: &str) -> (ScratchDb, PgPool) {
    let db = ScratchDb::create(prefix).await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&db.url())
        .await
        .expect("connect");
    portcullis::store::migrate(&pool).await.expect("migrate");
    (db, pool)
}

/// A reader of `fake`'s Management API as the gateway's API user.
pub fn reader(fake: &FakeUmbraco) -> Reader {
    let cred = CredentialConfig {
        kind: CredentialKind::UmbracoApiUser,
        client_id: CLIENT_ID.into(),
        ..CredentialConfig::default()
    };
    let client = ManagementClient::new(fake.addr, None).expect("client");
    let metrics = UmbracoMetrics::unregistered().expect("metrics");
    let api_user = Arc::new(ApiUser::with_secret(
        &cred,
        SECRET.into(),
        client.clone(),
        metrics.clone(),
    ));
    Reader::new(client, api_user, metrics, Duration::from_secs(10))
}

/// `[sync]` with small pages so that paging is exercised.
pub fn sync_config() -> SyncConfig {
    SyncConfig {
        page_size: 50,
        concurrency: 4,
        ..SyncConfig::default()
    }
}

/// The mirror of `fake` into `pool`.
pub fn mirror(fake: &FakeUmbraco, pool: &PgPool) -> Mirror {
    Mirror::new(reader(fake), pool.clone(), sync_config())
}

/// A gateway config for `portcullis sync umbraco` against `fake` as the API user (secret from
/// `MIRROR_SECRET`), with `store` (and any other sections) appended.
pub fn sync_config_text(fake: &FakeUmbraco, store: &str) -> String {
    let [proxy, admin] = crate::harness::free_addrs();
    crate::harness::config_text(
        "",
        proxy,
        admin,
        fake.addr,
        &format!(
            "[upstream.credential]\nkind = \"umbraco_api_user\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret_env = \"MIRROR_SECRET\"\n{store}"
        ),
    )
}

/// `(path, trashed)` of a mirrored node, `None` when the mirror does not have it.
pub async fn node(pool: &PgPool, key: Uuid) -> Option<(Vec<i64>, bool)> {
    sqlx::query("select path, trashed from content_nodes where key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
        .expect("query")
        .map(|r| (r.get("path"), r.get("trashed")))
}

/// The mirror's id of a node.
async fn id(pool: &PgPool, key: Uuid) -> i64 {
    sqlx::query_scalar("select id from content_nodes where key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .expect("mirrored")
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Every mirrored row, to compare before and after a failed sync.
async fn snapshot(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select format('%s %s %s %s', key, parent_key, path, trashed) from content_nodes \
         union all select format('%s %s %s', key, alias, default_verbs) from user_groups \
         union all select format('%s %s %s', key, external_id, state) from users \
         union all select format('%s %s', user_key, group_key) from memberships order by 1",
    )
    .fetch_all(pool)
    .await
    .expect("snapshot")
}

#[tokio::test]
async fn a_10000_node_tree_with_groups_and_users_syncs_and_a_second_sync_changes_nothing() {
    let mut s = install();
    let docs = s.add_bulk_tree(Tree::Document, None, 10_000, 12);
    let media = s.add_bulk_tree(Tree::Media, None, 300, 5);
    s.trash(docs[40]);
    let writers = s.group_key("writer");
    s.grant(
        writers,
        docs[3],
        &["Umb.Document.Read", "Umb.Document.Update"],
    );
    s.grant(writers, docs[40], &[]); // an empty set is a real entry
    let limited = s.add_group("limited", &["content", "media"], &["Umb.Document.Read"]);
    s.group_mut(limited).document_start = Some(Start::Node(docs[7]));
    s.group_mut(limited).media_start = Some(Start::Node(media[2]));
    s.group_mut(limited).languages = vec!["da-DK".into()];
    s.group_mut(limited).all_languages = false;
    let ann = s.add_user("ann@example.invalid", &["writer", "limited"]);
    s.user_mut(ann).document_root = true;
    s.user_mut(ann).document_starts = vec![docs[9]];
    let bob = s.add_user("bob@example.invalid", &["editor"]);
    s.user_mut(bob).approved = false;
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_full").await;
    let report = mirror(&fake, &pool).full_sync().await.expect("sync");
    assert_eq!(report.kinds["documents"].inserted, 10_000, "{report:?}");
    assert_eq!(report.kinds["media"].inserted, 300);
    assert_eq!(
        count(
            &pool,
            "select count(*) from content_nodes where kind = 'document'"
        )
        .await,
        10_000
    );
    // Paths are the chain of the mirror's ids; the trashed subtree lies under the bin.
    let deep = docs[9_999];
    let (path, trashed) = node(&pool, deep).await.expect("mirrored");
    assert!(!trashed);
    assert_eq!(path[0], -1);
    assert_eq!(*path.last().expect("id"), id(&pool, deep).await);
    let parent = fake.with(|s| s.nodes[&deep].parent).expect("has a parent");
    assert_eq!(
        path[..path.len() - 1],
        node(&pool, parent).await.expect("parent").0[..]
    );
    let (bin_path, trashed) = node(&pool, docs[40]).await.expect("trashed node");
    assert_eq!((bin_path[..2].to_vec(), trashed), (vec![-1, -20], true));
    let below = fake.with(|s| s.subtree(docs[40]))[1];
    assert!(node(&pool, below).await.expect("trashed child").1);
    // Groups: granular entries (the empty set too), start nodes, languages.
    let verbs: Vec<Vec<String>> = sqlx::query_scalar(
        "select verbs from group_permissions where group_key = $1 order by cardinality(verbs)",
    )
    .bind(writers)
    .fetch_all(&pool)
    .await
    .expect("entries");
    assert_eq!(
        verbs,
        vec![
            vec![],
            vec![
                "Umb.Document.Read".to_owned(),
                "Umb.Document.Update".to_owned()
            ]
        ]
    );
    let g = sqlx::query("select content_start_key, media_start_key, all_languages, languages from user_groups where key = $1")
        .bind(limited)
        .fetch_one(&pool)
        .await
        .expect("group");
    assert_eq!(g.get::<Option<Uuid>, _>("content_start_key"), Some(docs[7]));
    assert_eq!(g.get::<Option<Uuid>, _>("media_start_key"), Some(media[2]));
    assert_eq!(
        (
            g.get::<bool, _>("all_languages"),
            g.get::<Vec<String>, _>("languages")
        ),
        (false, vec!["da-DK".to_owned()])
    );
    // Users: state, groups, own start nodes including the root.
    let u = sqlx::query(
        "select state, content_start_root, content_start_keys from users where external_id = $1",
    )
    .bind("ann@example.invalid")
    .fetch_one(&pool)
    .await
    .expect("ann");
    assert_eq!(u.get::<String, _>("state"), "active");
    assert!(u.get::<bool, _>("content_start_root"));
    assert_eq!(u.get::<Vec<Uuid>, _>("content_start_keys"), vec![docs[9]]);
    let groups: Vec<String> = sqlx::query_scalar(
        "select g.alias from memberships m join user_groups g on g.key = m.group_key \
         where m.user_key = $1 order by 1",
    )
    .bind(ann)
    .fetch_all(&pool)
    .await
    .expect("memberships");
    assert_eq!(groups, ["limited", "writer"]);
    assert_eq!(count(&pool, "select count(*) from users where external_id = 'bob@example.invalid' and state = 'disabled'").await, 1);
    let again = mirror(&fake, &pool).full_sync().await.expect("second sync");
    assert_eq!(again.changed(), 0, "{again:?}");
}

#[tokio::test]
async fn moves_trashes_and_restores_between_syncs_rewrite_whole_subtrees() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let blog = s.add_node(Tree::Document, "blog", Some(home));
    let post = s.add_node(Tree::Document, "post", Some(blog));
    let about = s.add_node(Tree::Document, "about", Some(home));
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_moves").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("sync");
    let (home_id, blog_id, post_id, about_id) = (
        id(&pool, home).await,
        id(&pool, blog).await,
        id(&pool, post).await,
        id(&pool, about).await,
    );
    assert_eq!(
        node(&pool, post).await,
        Some((vec![-1, home_id, blog_id, post_id], false))
    );
    // Move blog (with post) under about.
    fake.with(|s| s.move_node(blog, Some(about)));
    m.full_sync().await.expect("sync after move");
    assert_eq!(
        node(&pool, post).await,
        Some((vec![-1, home_id, about_id, blog_id, post_id], false))
    );
    // Trash blog: the subtree goes under the bin, ids unchanged.
    fake.with(|s| s.trash(blog));
    m.full_sync().await.expect("sync after trash");
    assert_eq!(
        node(&pool, post).await,
        Some((vec![-1, -20, blog_id, post_id], true))
    );
    // Restore under home.
    fake.with(|s| s.move_node(blog, Some(home)));
    m.full_sync().await.expect("sync after restore");
    assert_eq!(
        node(&pool, post).await,
        Some((vec![-1, home_id, blog_id, post_id], false))
    );
    // Delete for good: gone from the mirror.
    fake.with(|s| s.delete_node(blog));
    let r = m.full_sync().await.expect("sync after delete");
    assert_eq!(r.kinds["documents"].deleted, 2);
    assert_eq!(node(&pool, post).await, None);
}

#[tokio::test]
async fn a_sync_that_fails_half_way_changes_nothing() {
    let mut s = install();
    let docs = s.add_bulk_tree(Tree::Document, None, 600, 4);
    let users: Vec<Uuid> = (0..120)
        .map(|i| s.add_user(&format!("user{i}"), &["writer"]))
        .collect();
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_fail").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("first sync");
    let before = snapshot(&pool).await;
    // Umbraco changes: a subtree moves, a user is disabled, a group loses its verbs.
    let first_user = fake.with(|s| {
        s.move_node(docs[5], Some(docs[300]));
        let writer = s.group_key("writer");
        s.group_mut(writer).fallback.clear();
        // A user the test added: the first key of `s.users` may be the mirror's own API user,
        // and disabling it fails every later call (403).
        let u = users[0];
        s.user_mut(u).approved = false;
        // The tree walk fails after some pages.
        s.fail_after.insert("tree_children", 20);
        u
    });
    let err = m.full_sync().await.expect_err("the walk fails");
    let failed = |e: &SyncError, on: &str| matches!(e, SyncError::Umbraco(UmbracoError::Status { path, status: 500 }) if *path == on);
    assert!(failed(&err, "tree_children"), "{err:?}");
    assert_eq!(
        snapshot(&pool).await,
        before,
        "a failed tree walk applied something"
    );
    // The users listing fails on its second page: trees and groups apply, users do not.
    fake.with(|s| {
        s.fail_after.remove("tree_children");
        s.fail_after.insert("users", 1);
    });
    let err = m.full_sync().await.expect_err("the users listing fails");
    assert!(failed(&err, "users"), "{err:?}");
    let state: String = sqlx::query_scalar("select state from users where key = $1")
        .bind(first_user)
        .fetch_one(&pool)
        .await
        .expect("user");
    assert_eq!(state, "active", "users were applied from a partial listing");
    let (moved, _) = node(&pool, docs[5]).await.expect("moved node");
    assert!(
        moved.contains(&id(&pool, docs[300]).await),
        "the tree was not applied"
    );
    fake.with(|s| s.fail_after.clear());
    m.full_sync().await.expect("sync after the fault");
    let state: String = sqlx::query_scalar("select state from users where key = $1")
        .bind(first_user)
        .fetch_one(&pool)
        .await
        .expect("user");
    assert_eq!(state, "disabled");
}

#[tokio::test]
async fn api_keys_and_local_rows_survive_a_sync_and_umbraco_rows_follow_umbraco() {
    let fake = FakeUmbraco::start(install()).await;
    let (_db, pool) = database("mirror_owned").await;
    // The dev policy (Umbraco-owned users and nodes, one API key) plus local overrides.
    let dev = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy/dev.toml");
    let mut file = portcullis::store::PolicyFile::parse(
        &std::fs::read_to_string(dev).expect("dev policy"),
        "dev.toml",
    )
    .expect("parses");
    let text = r#"
        [[groups]]
        key = "00000000-0000-0000-0000-000000000abd"
        alias = "partners"
        name = "Partners"
        sections = ["content"]
        origin = "local"
        [[users]]
        key = "00000000-0000-0000-0000-000000000aaa"
        external_id = "ext|partner-1"
        name = "Partner One"
        groups = ["partners", "writer"]
        origin = "local"
    "#;
    let local = portcullis::store::PolicyFile::parse(text, "local.toml").expect("local rows");
    file.groups.extend(local.groups);
    file.users.extend(local.users);
    portcullis::store::apply_policy(&pool, &file, false)
        .await
        .expect("apply");
    let keys_before = count(&pool, "select count(*) from api_keys").await;
    assert!(keys_before > 0);
    let r = mirror(&fake, &pool).full_sync().await.expect("sync");
    assert!(
        r.kinds["users"].deleted > 0,
        "the dev policy's umbraco users are gone: {r:?}"
    );
    assert_eq!(
        count(&pool, "select count(*) from api_keys").await,
        keys_before
    );
    let users: Vec<String> = sqlx::query_scalar("select external_id from users order by 1")
        .fetch_all(&pool)
        .await
        .expect("users");
    assert_eq!(users, ["admin", "ext|partner-1", CLIENT_ID]);
    let partner_groups: Vec<String> = sqlx::query_scalar(
        "select g.alias from memberships m join user_groups g on g.key = m.group_key \
         where m.user_key = '00000000-0000-0000-0000-000000000aaa' order by 1",
    )
    .fetch_all(&pool)
    .await
    .expect("memberships");
    assert_eq!(partner_groups, ["partners", "writer"]);
    assert_eq!(
        count(
            &pool,
            "select count(*) from user_groups where alias = 'partners' and origin = 'local'"
        )
        .await,
        1
    );
    // Umbraco has no content: the dev policy's nodes are gone.
    assert_eq!(count(&pool, "select count(*) from content_nodes").await, 0);
}

// The binary runs blocking on this thread: the fake answers from the other worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portcullis_sync_umbraco_runs_as_the_binary_and_reports_counts() {
    let mut s = install();
    s.add_bulk_tree(Tree::Document, None, 30, 3);
    s.add_user("carol", &["editor"]);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("mirror_cli").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("portcullis.toml");
    let text = sync_config_text(
        &fake,
        "[store]\nkind = \"postgres\"\ndatabase_url_env = \"MIRROR_DB\"\n[sync]\npage_size = 7\n",
    );
    std::fs::write(&config, text).expect("config");
    let run = |secret: &str| {
        std::process::Command::new(crate::harness::binary())
            .args(["sync", "umbraco", "--config"])
            .arg(&config)
            .env("MIRROR_SECRET", secret)
            .env("MIRROR_DB", db.url())
            .env("PORTCULLIS_ADMIN_TOKEN", "unused")
            .output()
            .expect("run")
    };
    let out = run(SECRET);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["kinds"]["documents"]["inserted"], 30, "{report}");
    assert_eq!(report["kinds"]["users"]["seen"], 3);
    assert!(report["duration_ms"].is_u64());
    assert_eq!(
        count(
            &pool,
            "select count(*) from users where external_id = 'carol'"
        )
        .await,
        1
    );
    // A refused API user: exit 1, the reason on stderr, the secret nowhere.
    let out = run("wrong-secret");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the client credentials"), "{err}");
    assert!(!err.contains("wrong-secret"));
}
