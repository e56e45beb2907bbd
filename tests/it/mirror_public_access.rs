//! Public-access entries in the Umbraco mirror (`portcullis::mirror::public_access`): the full
//! sync writes a row only for the document that owns an entry, with its members' usernames
//! and its member group names; changed and removed entries converge; the webhooks (which name
//! entries, not documents) converge whatever the order. Umbraco's side, read from its source:
//! `GetPublicAccessDocumentController` answers a node's own entry only
//! (`GetEntryByContentKeyWithoutAncestorsAsync`; 404 for a node that only inherits one),
//! `PublicAccessPresentationFactory` names members by id and groups by name, and
//! `ByKeyMemberController` gives a member's `username`.

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::{FakeUmbraco, State};
use crate::harness::{client, spawn_gateway_with_env, wait_until, Gateway};
use crate::mirror::{database, install, mirror, CLIENT_ID, SECRET};
use crate::mirror_webhook::{deliver, HOOK_SECRET};
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use std::time::Duration;
use uuid::Uuid;

/// `node → (member groups, member usernames)` of every stored entry, sorted.
pub async fn entries(pool: &PgPool) -> Vec<(Uuid, Vec<String>, Vec<String>)> {
    sqlx::query(
        "select node_key, member_groups, member_usernames from public_access order by node_key",
    )
    .fetch_all(pool)
    .await
    .expect("public_access")
    .iter()
    .map(|r| {
        (
            r.get("node_key"),
            r.get("member_groups"),
            r.get("member_usernames"),
        )
    })
    .collect()
}

fn row(node: Uuid, groups: &[&str], users: &[&str]) -> (Uuid, Vec<String>, Vec<String>) {
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
    (node, v(groups), v(users))
}

fn sorted(mut v: Vec<(Uuid, Vec<String>, Vec<String>)>) -> Vec<(Uuid, Vec<String>, Vec<String>)> {
    v.sort();
    v
}

/// A site whose `members` section is protected for member `ann` and group `vip`, with a
/// `lounge` under it (inherits), a `vault` under the lounge with its own entry for `bob`, and
/// an unprotected `about`. Returns (state, members, lounge, vault, about).
pub fn protected_site() -> (State, Uuid, Uuid, Uuid, Uuid) {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let members = s.add_node(Tree::Document, "members", Some(home));
    let lounge = s.add_node(Tree::Document, "lounge", Some(members));
    let vault = s.add_node(Tree::Document, "vault", Some(lounge));
    let about = s.add_node(Tree::Document, "about", Some(home));
    s.add_member("ann", &["vip"]);
    s.add_member("bob", &[]);
    s.member_group("gold");
    // `ghost` names no member: Umbraco's answer leaves it out, and so does the mirror.
    s.protect(members, &["ann", "ghost"], &["vip"]);
    s.protect(vault, &["bob"], &[]);
    (s, members, lounge, vault, about)
}

#[tokio::test]
async fn the_sync_writes_entries_only_on_owning_documents_with_member_usernames() {
    let (s, members, lounge, vault, about) = protected_site();
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_pa").await;
    let m = mirror(&fake, &pool);
    let report = m.full_sync().await.expect("sync");
    let pa = &report.kinds["public_access"];
    assert_eq!((pa.seen, pa.inserted, pa.deleted), (2, 2, 0), "{report:?}");
    assert_eq!(
        entries(&pool).await,
        sorted(vec![
            row(members, &["vip"], &["ann"]),
            row(vault, &[], &["bob"]),
        ])
    );
    // Only the nodes the tree marks `isProtected` are asked (members, lounge, vault — the
    // lounge answers 404: it only inherits); each member's username is read once.
    assert_eq!(fake.calls("document_public_access"), 3);
    assert_eq!(fake.calls("member"), 2);
    assert!(!entries(&pool)
        .await
        .iter()
        .any(|e| e.0 == lounge || e.0 == about));
    let again = m.full_sync().await.expect("second sync");
    assert_eq!(again.kinds["public_access"].changed(), 0, "{again:?}");
}

#[tokio::test]
async fn changed_and_removed_entries_converge_and_entries_off_mirrored_documents_stay() {
    let (s, members, lounge, vault, about) = protected_site();
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_pa_change").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("sync");
    // A hand-written entry on a mirrored document (Umbraco has none there) and one on a node
    // the mirror does not own (an element).
    let element = Uuid::new_v4();
    for sql in [
        format!("insert into public_access values ('{about}', '{{staff}}', '{{}}')"),
        format!(
            "insert into content_nodes (key, id, parent_key, path, kind) \
             values ('{element}', 77, null, '{{-1,77}}', 'element')"
        ),
        format!("insert into public_access values ('{element}', '{{staff}}', '{{}}')"),
    ] {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    fake.with(|s| {
        s.protect(members, &[], &["gold", "vip"]);
        s.unprotect(vault);
        s.protect(lounge, &["bob"], &[]);
    });
    let report = m.full_sync().await.expect("second sync");
    let pa = &report.kinds["public_access"];
    assert_eq!(
        (pa.inserted, pa.updated, pa.deleted),
        (1, 1, 2),
        "lounge new, members changed, vault and the hand-written entry on about gone: {report:?}"
    );
    assert_eq!(
        entries(&pool).await,
        sorted(vec![
            row(members, &["gold", "vip"], &[]),
            row(lounge, &[], &["bob"]),
            row(element, &["staff"], &[]),
        ])
    );
}

#[tokio::test]
async fn a_failing_entry_read_changes_no_entry() {
    let (s, members, _, vault, _) = protected_site();
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_pa_fail").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("sync");
    let before = entries(&pool).await;
    fake.with(|s| {
        s.unprotect(members);
        s.unprotect(vault);
        s.fail_after.insert("member", 0);
        s.protect(vault, &["ann"], &[]);
    });
    assert!(m.full_sync().await.is_err(), "the member read fails");
    assert_eq!(entries(&pool).await, before, "nothing of the kind applied");
}

const MEMBER_SECRET: &str = "member-issuer-hs256-secret-for-tests-0123456789";

/// A gateway on the mirrored store with the API user, the webhook secret, a member token
/// issuer (HS256, groups in `roles`) and a public Delivery API; `authz` is appended.
pub async fn member_gateway(fake: &FakeUmbraco, db_url: &str, authz: &str) -> Gateway {
    let extra = format!(
        "[upstream.credential]\nkind = \"umbraco_api_user\"\nclient_id = \"{CLIENT_ID}\"\n\
         [store]\nkind = \"postgres\"\ndatabase_url_env = \"MIRROR_DB\"\n\
         [[authn.issuers]]\nname = \"members\"\nissuer = \"https://members.invalid\"\n\
         hs_secret_env = \"MEMBER_HS_SECRET\"\nalgorithms = [\"HS256\"]\n\
         audiences = [\"delivery\"]\nsubject = \"member\"\ngroups_claim = \"roles\"\n\
         [authz]\ndelivery_public = true\n{authz}\n"
    );
    spawn_gateway_with_env(
        "mode = \"enforce\"",
        fake.addr,
        &extra,
        &[
            ("MIRROR_DB", db_url),
            ("MEMBER_HS_SECRET", MEMBER_SECRET),
            ("PORTCULLIS_UMBRACO_CLIENT_SECRET", SECRET),
            ("PORTCULLIS_UMBRACO_WEBHOOK_SECRET", HOOK_SECRET),
        ],
    )
    .await
}

/// A member access token as the member issuer signs it.
fn member_token(username: &str, roles: &[&str]) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "https://members.invalid", "aud": "delivery", "sub": username,
        "roles": roles, "iat": now, "exp": now + 600,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(MEMBER_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("sign")
}

/// Status and `error` of a Delivery item request with `headers`, and whether it reached
/// Umbraco (the fake has no Delivery API: what the gateway forwards it answers with 404).
pub async fn delivery_item(
    gw: &Gateway,
    fake: &FakeUmbraco,
    node: Uuid,
    headers: &[(&str, &str)],
) -> (u16, Value, bool) {
    let path = format!("/umbraco/delivery/api/v2/content/item/{node}");
    let before = fake.requests().iter().filter(|r| r.path == path).count();
    let mut req = client().get(gw.url(&path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("gateway answers");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let reached = fake.requests().iter().filter(|r| r.path == path).count() > before;
    (status, body["error"].clone(), reached)
}

/// [`delivery_item`] with a member token, or without a credential.
async fn item(
    gw: &Gateway,
    fake: &FakeUmbraco,
    node: Uuid,
    member: Option<&str>,
) -> (u16, Value, bool) {
    let bearer = member.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    delivery_item(gw, fake, node, &headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirrored_protected_node_is_enforced_on_delivery_requests_through_the_gateway() {
    let (s, members, lounge, vault, about) = protected_site();
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("mirror_pa_gate").await;
    mirror(&fake, &pool).full_sync().await.expect("sync");
    let gw = member_gateway(&fake, &db.url(), "").await;
    let (ann, bob) = (member_token("ann", &[]), member_token("bob", &[]));
    let vip = member_token("zed", &["VIP"]);
    let denied = |status: u16, error: &str| (status, json!(error), false);
    // The lounge inherits the members section's entry (ann, group vip); the vault's own entry
    // (bob) is the nearest there. Allowed requests reach Umbraco (the fake has no Delivery API
    // and answers 404); refused ones never do.
    assert_eq!(
        item(&gw, &fake, lounge, None).await,
        denied(401, "member_required")
    );
    assert_eq!(
        item(&gw, &fake, lounge, Some(&bob)).await,
        denied(403, "member_not_allowed")
    );
    assert!(
        item(&gw, &fake, lounge, Some(&ann)).await.2,
        "ann by username"
    );
    assert!(
        item(&gw, &fake, members, Some(&vip)).await.2,
        "zed by group vip"
    );
    assert_eq!(
        item(&gw, &fake, vault, Some(&ann)).await,
        denied(403, "member_not_allowed")
    );
    assert!(item(&gw, &fake, vault, Some(&bob)).await.2);
    assert!(item(&gw, &fake, about, None).await.2, "not protected");
}

/// An entry that appears above a node whose answers are cached protects it: member protection
/// reads the store's list of protected nodes, and every `public_access` change drops the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_written_above_a_cached_node_protects_it() {
    let (mut s, members, lounge, _, _) = protected_site();
    s.unprotect(members);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("mirror_pa_list").await;
    mirror(&fake, &pool).full_sync().await.expect("sync");
    let gw = member_gateway(&fake, &db.url(), "").await;
    // The lounge, its ancestors and the list of protected nodes get cached, none with an entry.
    for _ in 0..2 {
        assert!(item(&gw, &fake, lounge, None).await.2, "open");
    }
    // Written as the mirror writes it; the row's `NOTIFY` reaches the gateway.
    sqlx::query("insert into public_access values ($1, '{vip}', '{ann}')")
        .bind(members)
        .execute(&pool)
        .await
        .expect("insert");
    let closed = wait_until(Duration::from_secs(30), || async {
        item(&gw, &fake, lounge, None).await == (401, json!("member_required"), false)
    })
    .await;
    assert!(closed.is_some(), "the lounge stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_access_webhooks_converge_when_delivered_twice_and_out_of_order() {
    let (s, members, lounge, vault, _) = protected_site();
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("mirror_pa_hook").await;
    mirror(&fake, &pool).full_sync().await.expect("sync");
    let gw = member_gateway(&fake, &db.url(), "").await;
    // The Minimal payloads name the *entries* (`PublicAccessEntrySavedWebhookEvent`), which the
    // Management API cannot look up: every delivery re-reads all protected documents.
    let entry = json!([{"id": Uuid::new_v4()}]);
    fake.with(|s| {
        s.protect(lounge, &["bob"], &["gold"]);
        s.unprotect(vault);
    });
    let saved = deliver(
        &gw,
        Some(HOOK_SECRET),
        "publicAccessEntrySaved",
        entry.clone(),
    )
    .await;
    assert_eq!(saved.0, 200, "{}", saved.1);
    let expected = sorted(vec![
        row(members, &["vip"], &["ann"]),
        row(lounge, &["gold"], &["bob"]),
    ]);
    assert_eq!(entries(&pool).await, expected);
    // The vault's deletion event arrives late, twice, after the save: nothing changes.
    for _ in 0..2 {
        let late = deliver(
            &gw,
            Some(HOOK_SECRET),
            "publicAccessEntryDeleted",
            entry.clone(),
        )
        .await;
        assert_eq!(
            (late.0, late.1["changed"].clone()),
            (200, json!(0)),
            "{}",
            late.1
        );
    }
    assert_eq!(entries(&pool).await, expected);
    fake.with(|s| s.unprotect(members));
    let gone = deliver(
        &gw,
        Some(HOOK_SECRET),
        "publicAccessEntryDeleted",
        entry.clone(),
    )
    .await;
    assert_eq!((gone.0, gone.1["changed"].clone()), (200, json!(1)));
    assert_eq!(entries(&pool).await, vec![row(lounge, &["gold"], &["bob"])]);
    // The member protection follows (the gateway evicts the node when the change's `NOTIFY`
    // arrives): the members section is open now.
    let open = wait_until(Duration::from_secs(30), || async {
        item(&gw, &fake, members, None).await.2
    })
    .await;
    assert!(open.is_some(), "the members section stayed protected");
}

#[tokio::test]
async fn the_file_target_writes_the_owning_documents_entries_and_keeps_media_entries() {
    let (mut s, members, lounge, vault, about) = protected_site();
    let picture = s.add_node(Tree::Media, "picture", None);
    let fake = FakeUmbraco::start(s).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    // A hand-written entry on a document Umbraco does not protect, and one on a media node.
    let kept = format!(
        "[[nodes]]\nkey = \"{about}\"\nid = 7\nkind = \"document\"\n\n\
         [[nodes]]\nkey = \"{picture}\"\nid = 8\nkind = \"media\"\n\n\
         [[public_access]]\nnode = \"{about}\"\nmember_groups = [\"staff\"]\n\n\
         [[public_access]]\nnode = \"{picture}\"\nmember_groups = [\"staff\"]\n"
    );
    std::fs::write(&path, kept).expect("policy");
    let (r, cfg) = (crate::mirror::reader(&fake), crate::mirror::sync_config());
    let report = portcullis::mirror::to_file::sync_file(&r, &cfg, &path)
        .await
        .expect("sync");
    let pa = &report.kinds["public_access"];
    assert_eq!((pa.inserted, pa.deleted), (2, 1), "{report:?}");
    let text = std::fs::read_to_string(&path).expect("file");
    let file = portcullis::store::PolicyFile::parse(&text, "synced").expect("parses");
    file.validate().expect("loads as serve loads it");
    let got: Vec<_> = file
        .public_access
        .iter()
        .map(|a| (a.node, a.member_groups.clone(), a.member_usernames.clone()))
        .collect();
    let want = vec![
        row(members, &["vip"], &["ann"]),
        row(vault, &[], &["bob"]),
        row(picture, &["staff"], &[]),
    ];
    assert_eq!(sorted(got), sorted(want));
    assert!(!file.public_access.iter().any(|a| a.node == lounge));
    let again = portcullis::mirror::to_file::sync_file(&r, &cfg, &path)
        .await
        .expect("second sync");
    assert_eq!(again.kinds["public_access"].changed(), 0, "{again:?}");
}

/// Measurement (docs/MIRROR.md "Measured"): what reading public access adds to a full sync of
/// a 10,000-node tree when a 2,500-node section is protected (one entry at its top: every node
/// of the section is asked, one member username read). Prints the numbers; asserts no timing.
#[tokio::test]
#[ignore = "measurement: cargo test --test it measure_public_access -- --ignored --nocapture"]
async fn measure_public_access_sync_over_a_protected_section() {
    let mut s = install();
    let section = s.add_node(Tree::Document, "members", None);
    s.add_bulk_tree(Tree::Document, Some(section), 2_500, 8);
    s.add_bulk_tree(Tree::Document, None, 7_499, 8);
    s.add_member("ann", &["vip"]);
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_pa_measure").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("first sync");
    let run = |label: &'static str| {
        let m = m.clone();
        async move {
            let started = std::time::Instant::now();
            let r = m.full_sync().await.expect("sync");
            println!(
                "{label}: full sync {} ms, public_access {:?}",
                started.elapsed().as_millis(),
                r.kinds["public_access"]
            );
        }
    };
    run("unprotected").await;
    fake.with(|s| s.protect(section, &["ann"], &["vip"]));
    let before = fake.calls("document_public_access");
    run("protected (first)").await;
    run("protected (unchanged)").await;
    println!(
        "public-access calls per sync: {}",
        (fake.calls("document_public_access") - before) / 2
    );
}
