//! One cache tier and the shared get-or-load: fresh hits, coalesced cold loads, stale entries
//! served while one background refresh per key runs, "does not exist" answers in their own
//! short-lived cache, and a memory budget enforced by moka weighers.

use super::{PolicyCache, StoreError};
use crate::store::{CacheConfig, StoreMetrics};
use moka::future::Cache;
use moka::notification::RemovalCause;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A cached value, when it was loaded, and whether an invalidation raced its load (then it is
/// returned to the request that loaded it but never served again).
#[derive(Clone)]
pub(super) struct Entry<V> {
    pub(super) value: V,
    pub(super) loaded_at: Instant,
    pub(super) valid: bool,
}

/// The key of a "does not exist" answer, per lookup kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Absent {
    User(String),
    UserKey(Uuid),
    Group(Uuid),
    Alias(String),
    Node(Uuid),
    NodeId(i64),
    Route(String),
    ApiKey(String),
    Mappings(String),
}

impl Absent {
    pub(super) fn weight(&self) -> usize {
        match self {
            Absent::User(s)
            | Absent::Alias(s)
            | Absent::Route(s)
            | Absent::ApiKey(s)
            | Absent::Mappings(s) => s.len(),
            Absent::UserKey(_) | Absent::Group(_) | Absent::Node(_) => 16,
            Absent::NodeId(_) => 8,
        }
    }
}

/// The hasher of every tier and of the negative cache. Keys come from requests (external ids,
/// key ids, node keys and ids), so it is keyed per process as std's SipHash is, but it costs a
/// fraction of SipHash per lookup, and a warm Delivery request makes about ten lookups.
pub(super) type KeyHasher = ahash::RandomState;

/// The negative cache: absent keys and when the answer was loaded.
pub(super) type Negatives = Cache<Absent, Instant, KeyHasher>;

/// Bookkeeping per moka entry beyond key and value (moka's own nodes, the `Arc`s around them).
const ENTRY_OVERHEAD: usize = 160;

/// A refresh that failed leaves its key alone this long (the stale entry is served meanwhile).
const REFRESH_RETRY: Duration = Duration::from_secs(1);

/// Most keys tracked as "refreshing or recently failed" per tier; past it refreshes wait.
const MAX_REFRESHING: usize = 10_000;

/// What every tier is made from: the cache settings, how long past `ttl` an entry may be
/// served, and the metrics its counters are series of.
#[derive(Clone, Copy)]
pub(super) struct Setup<'a> {
    pub(super) cfg: &'a CacheConfig,
    pub(super) max_staleness: Duration,
    pub(super) metrics: &'a StoreMetrics,
}

/// One cache of present values: `name` labels its metrics and picks its memory share.
pub(super) struct Tier<K, V> {
    pub(super) name: &'static str,
    pub(super) map: Cache<K, Entry<V>, KeyHasher>,
    /// The negative-cache key of a key the store does not have; `None` for a tier whose
    /// loads always find a value (nothing to remember).
    absent: fn(&K) -> Option<Absent>,
    /// `portcullis_cache_hits_total{cache=name}`, resolved once.
    pub(super) hits: prometheus::IntCounter,
    /// Keys with a background refresh running or recently failed: no new one before the instant.
    refreshing: Mutex<HashMap<K, Instant>>,
}

impl<K, V> Tier<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A tier holding at most its share of `cfg.max_memory`, entries weighed by `weigh`; its
    /// hit and eviction counters are `setup.metrics`' series labelled `name`, resolved once.
    pub(super) fn new(
        name: &'static str,
        setup: &Setup,
        absent: fn(&K) -> Option<Absent>,
        weigh: fn(&K, &V) -> usize,
    ) -> Self {
        let Setup {
            cfg,
            max_staleness,
            metrics,
        } = *setup;
        let evictions = metrics.cache_evictions.with_label_values(&[name]);
        let hits = metrics.cache_hits.with_label_values(&[name]);
        let map = Cache::builder()
            .name(name)
            .max_capacity(cfg.budget(name))
            .weigher(move |k, e: &Entry<V>| {
                u32::try_from(weigh(k, &e.value) + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            // Kept past `ttl` only so that an outage can be bridged up to `max_staleness`.
            .time_to_live(cfg.ttl + max_staleness)
            .eviction_listener(move |_k, _v, cause| {
                if cause != RemovalCause::Replaced {
                    evictions.inc();
                }
            })
            .build_with_hasher(KeyHasher::new());
        Tier {
            name,
            map,
            absent,
            hits,
            refreshing: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn absent_key(&self, k: &K) -> Option<Absent> {
        (self.absent)(k)
    }

    /// Claims the key's one background refresh; `false` while one runs or just failed.
    fn claim_refresh(&self, key: &K, now: Instant) -> bool {
        let mut r = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        if r.get(key).is_some_and(|until| now < *until) {
            return false;
        }
        if r.len() >= MAX_REFRESHING {
            r.retain(|_, until| now < *until);
            if r.len() >= MAX_REFRESHING {
                return false;
            }
        }
        // Queries are bounded by `query_timeout`; this only guards a refresh that never ends.
        r.insert(key.clone(), now + Duration::from_secs(60));
        true
    }

    fn end_refresh(&self, key: &K, ok: bool) {
        let mut r = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            r.remove(key);
        } else {
            r.insert(key.clone(), Instant::now() + REFRESH_RETRY);
        }
    }

    pub(super) fn clear_refreshing(&self) {
        self.refreshing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Why a coalesced load produced no entry (shared with every caller waiting on it).
#[derive(Debug)]
enum Miss {
    Absent,
    Failed(Arc<StoreError>),
}

/// Picks a tier out of the cache (a spawned refresh holds the cache, not a borrow).
pub(super) type Pick<K, V> = fn(&PolicyCache) -> &Tier<K, V>;

impl PolicyCache {
    /// The shared get-or-load. `load` is called for a cold miss (coalesced per key) or for the
    /// one background refresh of a stale entry; `Ok(None)` means "does not exist".
    pub(super) async fn cached<K, V, F, Fut>(
        &self,
        pick: Pick<K, V>,
        key: K,
        load: F,
    ) -> Result<Option<V>, StoreError>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: FnOnce(PolicyCache) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Option<V>, StoreError>> + Send + 'static,
    {
        let tier = pick(self);
        let m = &self.inner.metrics;
        let now = Instant::now();
        if let Some(e) = tier.map.get(&key).await {
            if e.valid && now.duration_since(e.loaded_at) < self.ttl() {
                tier.hits.inc();
                return Ok(Some(e.value));
            }
            if e.valid && self.honoured(e.loaded_at, now) {
                // Stale while revalidate: this caller (and every other) gets the entry now.
                m.stale_served.inc();
                if tier.claim_refresh(&key, now) {
                    self.spawn_refresh(pick, key, load);
                }
                return Ok(Some(e.value));
            }
            // Raced an invalidation, or older than `max_staleness` allows: load it again.
            tier.map.invalidate(&key).await;
        }
        let absent = tier.absent_key(&key);
        if let Some(at) = match &absent {
            Some(a) => self.inner.negatives.get(a).await,
            None => None,
        } {
            let ttl = self.inner.cfg.negative_ttl.min(self.ttl());
            if now.duration_since(at) < ttl {
                m.cache_hits.with_label_values(&["negative"]).inc();
                return Ok(None);
            }
        }
        m.cache_misses.with_label_values(&[tier.name]).inc();
        if matches!(absent, Some(Absent::ApiKey(_))) && !self.inner.key_misses.try_acquire() {
            m.lookups_limited.inc();
            return Err(StoreError::LookupLimited);
        }
        let generation = self.inner.generation.load(Ordering::Acquire);
        let this = self.clone();
        let loaded = tier
            .map
            .try_get_with(key, async move {
                match load(this.clone()).await {
                    Ok(Some(value)) => Ok(Entry {
                        value,
                        loaded_at: Instant::now(),
                        valid: this.inner.generation.load(Ordering::Acquire) == generation,
                    }),
                    Ok(None) => Err(Miss::Absent),
                    Err(e) => Err(Miss::Failed(Arc::new(e))),
                }
            })
            .await;
        match loaded {
            Ok(e) => Ok(Some(e.value)),
            Err(miss) => match &*miss {
                Miss::Absent => {
                    self.remember_absent(absent, generation).await;
                    Ok(None)
                }
                Miss::Failed(e) => Err(StoreError::Unavailable(e.clone())),
            },
        }
    }

    /// Caches a "does not exist" unless an invalidation ran during the load (or the tier
    /// keeps no such answers).
    async fn remember_absent(&self, absent: Option<Absent>, generation: u64) {
        let Some(absent) = absent else { return };
        if self.inner.generation.load(Ordering::Acquire) == generation {
            self.inner.negatives.insert(absent, Instant::now()).await;
        }
    }

    /// Reloads one stale entry off the request path; the old value stays readable meanwhile.
    fn spawn_refresh<K, V, F, Fut>(&self, pick: Pick<K, V>, key: K, load: F)
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: FnOnce(PolicyCache) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Option<V>, StoreError>> + Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let generation = this.inner.generation.load(Ordering::Acquire);
            let result = load(this.clone()).await;
            let tier = pick(&this);
            let ok = result.is_ok();
            let valid = this.inner.generation.load(Ordering::Acquire) == generation;
            match result {
                Ok(Some(value)) => {
                    let entry = Entry {
                        value,
                        loaded_at: Instant::now(),
                        valid,
                    };
                    tier.map.insert(key.clone(), entry).await;
                }
                Ok(None) => {
                    tier.map.invalidate(&key).await;
                    this.remember_absent(tier.absent_key(&key), generation)
                        .await;
                }
                Err(e) => {
                    tracing::debug!(cache = tier.name, error = %e, "background refresh failed; serving the cached entry");
                }
            }
            tier.end_refresh(&key, ok);
        });
    }
}
