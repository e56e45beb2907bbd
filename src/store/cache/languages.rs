//! The mirrored default language: the culture Umbraco serves a Delivery request that sends no
//! usable `Accept-Language` (`DefaultCultureAccessor`), for culture-limited API keys when
//! `authz.delivery_default_culture` is not configured. One small answer, read without waiting
//! on the warm path while fresh (the caches' `ttl`: long while push invalidation is up, short
//! while it is down), loaded from the store otherwise, and forgotten by every `languages`
//! change (`NOTIFY`) and every whole-cache eviction.

use super::PolicyCache;
use crate::store::StoreError;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The cached answer (`None` inside: no default language is mirrored) and when it was loaded.
#[derive(Default)]
pub(super) struct DefaultLanguage {
    slot: Mutex<Option<(Option<Arc<str>>, Instant)>>,
}

impl DefaultLanguage {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<(Option<Arc<str>>, Instant)>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PolicyCache {
    /// The mirrored default language when the cached answer is fresh (`Some(None)`: none is
    /// mirrored); `None` when it must be loaded ([`PolicyCache::default_language`]).
    pub fn default_language_now(&self) -> Option<Option<Arc<str>>> {
        let slot = self.inner.default_language.slot();
        let (value, loaded_at) = slot.as_ref()?;
        (loaded_at.elapsed() < self.ttl()).then(|| value.clone())
    }

    /// The mirrored default language's ISO code (`None`: Umbraco's languages are not mirrored),
    /// from the cache or the store. A load that an invalidation raced is returned but not kept.
    pub async fn default_language(&self) -> Result<Option<Arc<str>>, StoreError> {
        if let Some(v) = self.default_language_now() {
            return Ok(v);
        }
        let generation = self.inner.generation.load(Ordering::Acquire);
        let value: Option<Arc<str>> = self.inner.store.default_language().await?.map(Arc::from);
        // Checked under the lock: an invalidation bumps the generation before it takes the
        // lock to forget, so it either fails this check or clears what is stored here.
        let mut slot = self.inner.default_language.slot();
        if self.inner.generation.load(Ordering::Acquire) == generation {
            *slot = Some((value.clone(), Instant::now()));
        }
        Ok(value)
    }

    /// Drops the cached answer (a `languages` change, a whole-cache eviction).
    pub(super) fn forget_default_language(&self) {
        *self.inner.default_language.slot() = None;
    }
}
