//! Umbraco's languages in the mirror (`portcullis::mirror::languages`) and their use: a
//! culture-limited API key's Delivery request that names no culture is judged by the mirrored
//! default language, through the gateway binary. Umbraco's side, from its source: without a
//! usable `Accept-Language` (`RequestCultureService.GetRequestedCulture` takes only a value
//! matching `^[\w-]*$`), `LocalizeFromAcceptLanguageHeaderAttribute` sets no culture and the
//! request is served in the default language (`DefaultCultureAccessor`: the language flagged
//! `isDefault` in `GET language`, `AllLanguageController`).

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::FakeUmbraco;
use crate::harness::{wait_until, Gateway};
use crate::mirror::{database, install, mirror};
use crate::mirror_public_access::{delivery_item, member_gateway};
use crate::mirror_webhook::{deliver, HOOK_SECRET};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

async fn languages(pool: &PgPool) -> Vec<(String, bool)> {
    sqlx::query_as("select iso_code, is_default from languages order by iso_code")
        .fetch_all(pool)
        .await
        .expect("languages")
}

#[tokio::test]
async fn the_sync_mirrors_the_languages_and_a_second_sync_changes_nothing() {
    let mut s = install();
    s.add_language("en-US", true);
    s.add_language("da-DK", false);
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_lang").await;
    let m = mirror(&fake, &pool);
    let report = m.full_sync().await.expect("sync");
    assert_eq!(report.kinds["languages"].inserted, 2, "{report:?}");
    assert_eq!(
        languages(&pool).await,
        [("da-DK".to_owned(), false), ("en-US".to_owned(), true)]
    );
    let again = m.full_sync().await.expect("second sync");
    assert_eq!(again.kinds["languages"].changed(), 0, "{again:?}");
    fake.with(|s| {
        s.add_language("da-DK", true);
        s.protection.languages.retain(|l| l.iso_code != "en-US");
        s.add_language("de-DE", false);
    });
    let r = m.full_sync().await.expect("third sync");
    let l = &r.kinds["languages"];
    assert_eq!((l.inserted, l.updated, l.deleted), (1, 1, 1), "{r:?}");
    assert_eq!(
        languages(&pool).await,
        [("da-DK".to_owned(), true), ("de-DE".to_owned(), false)]
    );
}

/// Creates a Delivery API key limited to `cultures` through the admin API; returns its secret.
async fn culture_key(gw: &Gateway, cultures: &[&str]) -> String {
    let body = json!({"name": "site", "owner": "web", "apis": ["delivery"], "cultures": cultures});
    let resp = gw
        .admin(reqwest::Method::POST, "/v1/keys")
        .json(&body)
        .send()
        .await
        .expect("admin answers");
    assert_eq!(resp.status().as_u16(), 201);
    let v: Value = resp.json().await.expect("json");
    v["secret"].as_str().expect("secret").to_owned()
}

/// A Delivery item request with API key `key` and `accept_language` (see [`delivery_item`]).
async fn item(
    gw: &Gateway,
    fake: &FakeUmbraco,
    node: Uuid,
    key: &str,
    accept_language: Option<&str>,
) -> (u16, Value, bool) {
    let mut headers = vec![("api-key", key)];
    headers.extend(accept_language.map(|l| ("accept-language", l)));
    delivery_item(gw, fake, node, &headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirrored_default_language_decides_a_culture_limited_keys_request_without_a_culture() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    s.add_language("en-US", true);
    s.add_language("da-DK", false);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("mirror_lang_gate").await;
    mirror(&fake, &pool).full_sync().await.expect("sync");
    // No `authz.delivery_default_culture`: the mirrored default language decides.
    let gw = member_gateway(&fake, &db.url(), "").await;
    let english = culture_key(&gw, &["en-us"]).await;
    let danish = culture_key(&gw, &["da-dk"]).await;
    let refused = (403, json!("culture_not_allowed"), false);
    assert!(
        item(&gw, &fake, home, &english, None).await.2,
        "en-US is served"
    );
    assert_eq!(item(&gw, &fake, home, &danish, None).await, refused);
    assert!(item(&gw, &fake, home, &danish, Some("da-DK")).await.2);
    // A list is ignored by Umbraco (the default culture is served): judged as no header.
    assert_eq!(
        item(&gw, &fake, home, &danish, Some("da-DK, da;q=0.9")).await,
        refused
    );
    // Umbraco's default becomes da-DK; the webhook writes it, `NOTIFY` reaches every gateway.
    fake.with(|s| s.add_language("da-DK", true));
    let hook = deliver(
        &gw,
        Some(HOOK_SECRET),
        "languageSaved",
        json!([{"id": Uuid::new_v4()}]),
    )
    .await;
    assert_eq!(
        (hook.0, hook.1["changed"].clone()),
        (200, json!(2)),
        "{}",
        hook.1
    );
    // The gateway forgets its cached default when the change's `NOTIFY` arrives.
    let moved = wait_until(Duration::from_secs(30), || async {
        item(&gw, &fake, home, &danish, None).await.2
    })
    .await;
    assert!(moved.is_some(), "da-DK is served now");
    assert_eq!(item(&gw, &fake, home, &english, None).await, refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_default_culture_wins_over_the_mirrored_one() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    s.add_language("en-US", true);
    let fake = FakeUmbraco::start(s).await;
    let (db, pool) = database("mirror_lang_conf").await;
    mirror(&fake, &pool).full_sync().await.expect("sync");
    let gw = member_gateway(&fake, &db.url(), "delivery_default_culture = \"da-dk\"").await;
    let english = culture_key(&gw, &["en-us"]).await;
    let danish = culture_key(&gw, &["da-dk"]).await;
    assert!(item(&gw, &fake, home, &danish, None).await.2);
    assert_eq!(
        item(&gw, &fake, home, &english, None).await,
        (403, json!("culture_not_allowed"), false)
    );
}
