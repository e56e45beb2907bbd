//! The mirrored languages on a real database: the default one is cached by the policy cache
//! and forgotten when a `languages` change is notified.

use super::postgres::mirror_languages::{replace_languages, MirrorLanguage};
use super::{CacheConfig, Invalidation, PolicyCache, PostgresStore, StoreMetrics};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

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
    replace_languages(&pool, &[lang("en-US", true), lang("da-DK", false)], T)
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
    let r = replace_languages(&pool, &[lang("en-US", false), lang("da-DK", true)], T)
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
