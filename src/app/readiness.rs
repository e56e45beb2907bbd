//! `/readyz`: what the gateway reports about itself, the upstream, the issuers' key sets and
//! the policy store.

use super::Shared;
use crate::store::Freshness;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// One line of `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Shared {
    /// Readiness: not draining, upstream reached at least once, every issuer's key set
    /// fetched, and (Postgres) the store reached once and the cache's grants still honoured;
    /// a file store reports its last failed reload (the previous policy keeps serving).
    pub fn readiness(&self) -> Vec<Check> {
        let mut checks = vec![
            Check {
                name: "draining",
                ok: !self.health.is_draining(),
                detail: None,
            },
            Check {
                name: "upstream",
                ok: self.health.upstream_seen.load(Ordering::SeqCst),
                detail: Some(self.runtime.load().config.management_upstream.to_string()),
            },
            Check {
                name: "jwks",
                ok: self.services.authn.ready(),
                detail: None,
            },
        ];
        let cache = &self.services.cache;
        if self.push_invalidation {
            // The store must have been reached once (the listener connected); after that an
            // outage is served from the cache while it is honoured (`max_staleness`), and the
            // check fails only once cached grants are no longer honoured.
            if cache.listener_up() {
                self.health.store_seen.store(true, Ordering::SeqCst);
            }
            let (fresh, detail) = freshness_detail(cache.freshness(), cache.max_staleness());
            checks.push(Check {
                name: "policy_store",
                ok: self.health.store_seen.load(Ordering::SeqCst) && fresh,
                detail: Some(detail),
            });
        } else {
            checks.push(Check {
                name: "policy_file",
                ok: true,
                detail: Some(match cache.reload_error() {
                    Some(e) => format!("last reload failed, previous policy in force: {e}"),
                    None => "loaded".into(),
                }),
            });
        }
        checks
    }
}

/// Whether cached grants are still honoured, and the readiness detail that says how fresh the
/// cache is (`degraded` while push invalidation is unconfirmed but within `max_staleness`).
fn freshness_detail(f: Freshness, max: Duration) -> (bool, String) {
    let since = |s: Option<Duration>| {
        s.map_or("never".to_owned(), |d| {
            format!("{:.1}s ago", d.as_secs_f64())
        })
    };
    match f {
        Freshness::Current => (true, "listening".into()),
        Freshness::Degraded { since: s } => (
            true,
            format!(
                "degraded: invalidation down, cache last confirmed {}; cached grants honoured up to max_staleness {}s",
                since(s),
                max.as_secs_f64()
            ),
        ),
        Freshness::Stale { since: s } => (
            false,
            format!(
                "stale: cache last confirmed {}, past max_staleness {}s; cached grants not honoured",
                since(s),
                max.as_secs_f64()
            ),
        ),
    }
}
