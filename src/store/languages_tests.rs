//! The mirrored languages on a real database: the default one is cached by the policy cache
//! and forgotten when a `languages` change is notified.

use super::postgres::mirror::Ticket;
use super::postgres::mirror_languages::{replace_languages, MirrorLanguage};
use super::{CacheConfig, Invalidation, PolicyCache, PostgresStore, StoreMetrics};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

async fn sync(pool: &PgPool) -> Ticket {
    Ticket::sync(pool).await.expect("ticket")
}

fn lang(iso: &str, default: bool) -> MirrorLanguage {
    MirrorLanguage {
        iso_code: iso.into(),
        is_default: default,
        is_mandatory: default,
        fallback_iso_code: None,
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn the_mirrored_default_language_is_cached_until_a_languages_change_is_notified(
    pool: PgPool,
) {
    let metrics = || StoreMetrics::unregistered().expect("metrics");
    let store = Arc::new(PostgresStore::new(pool.clone(), metrics()));
    let cache = PolicyCache::new(store, CacheConfig::default(), T, metrics());
    cache.set_push_invalidation(true);
    assert_eq!(cache.default_language().await.expect("read"), None);
    assert_eq!(
        cache.default_language_now(),
        Some(None),
        "cached: none mirrored"
    );
    replace_languages(
        &pool,
        &[lang("en-US", true), lang("da-DK", false)],
        sync(&pool).await,
        T,
    )
    .await
    .expect("replace");
    // What the trigger sends for the table (`portcullis_notify_row('iso_code')`).
    let notified = Invalidation::parse(r#"{"table":"languages","op":"insert","iso_code":"en-US"}"#);
    assert_eq!(notified, Invalidation::Languages);
    cache.apply(&notified).await;
    assert_eq!(cache.default_language_now(), None, "forgotten");
    assert_eq!(
        cache.default_language().await.expect("read").as_deref(),
        Some("en-US")
    );
    let r = replace_languages(
        &pool,
        &[lang("en-US", false), lang("da-DK", true)],
        sync(&pool).await,
        T,
    )
    .await
    .expect("replace");
    assert_eq!((r.inserted, r.updated, r.deleted), (0, 2, 0));
    assert_eq!(
        cache.default_language_now().flatten().as_deref(),
        Some("en-US"),
        "the warm answer until the change is notified"
    );
    cache.apply(&Invalidation::Languages).await;
    assert_eq!(
        cache.default_language().await.expect("read").as_deref(),
        Some("da-DK")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn an_older_writer_of_the_languages_applied_after_a_newer_one_changes_nothing(pool: PgPool) {
    // A full sync read the languages, then a `languageSaved` webhook read and applied newer
    // ones; the sync's apply comes last and is skipped.
    let old = sync(&pool).await;
    let new = Ticket::webhook(&pool).await.expect("ticket");
    let r = replace_languages(&pool, &[lang("da-DK", true)], new, T)
        .await
        .expect("newer");
    assert_eq!(r.inserted, 1);
    let r = replace_languages(&pool, &[lang("en-US", true)], old, T)
        .await
        .expect("older");
    assert_eq!((r.inserted, r.deleted, r.newer), (0, 0, 1), "{r:?}");
    let rows: Vec<String> = sqlx::query_scalar("select iso_code from languages")
        .fetch_all(&pool)
        .await
        .expect("rows");
    assert_eq!(rows, ["da-DK"]);
    // A writer that began after both applies what it read.
    let r = replace_languages(&pool, &[lang("en-US", true)], sync(&pool).await, T)
        .await
        .expect("later");
    assert_eq!((r.inserted, r.deleted), (1, 1));
}
