//! The background sync of `serve` (docs/MIRROR.md): a full sync every `sync.interval`, counted
//! from the end of the previous round, and one at start when the store has no mirrored node.
//!
//! One replica syncs at a time: a round first takes the store's round lock
//! ([`SyncRound`]) and a replica that finds it held skips that round. A round is never waited
//! for at shutdown: each kind is applied in one transaction, so a round cut short by the process
//! exiting leaves every kind as it was before or after its apply, never half-written, and the
//! round lock goes with the closed connection. No round starts once the gateway drains.
//!
//! Metrics (`portcullis_sync_*`) describe this job only: `portcullis sync umbraco` is another
//! process and exports none.

use super::full::SyncReport;
use super::{Mirror, SyncError};
use crate::store::postgres::mirror::{has_mirrored_nodes, SyncRound};
use prometheus::{Gauge, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::time::{Duration, Instant, SystemTime};

/// Handles to the background sync's metrics. Cheap to clone.
#[derive(Clone)]
pub struct SyncMetrics {
    /// `portcullis_sync_last_success_timestamp_seconds`: Unix time the last round succeeded.
    pub last_success: Gauge,
    /// `portcullis_sync_duration_seconds{result}`: rounds that ran (`ok`, `failed`).
    pub duration: HistogramVec,
    /// `portcullis_sync_items_changed_total{kind}`: the report's inserted + updated + deleted.
    pub changed: IntCounterVec,
    /// `portcullis_sync_failures_total{reason}`: `umbraco`, `store`, `tree_changed`,
    /// `too_many_nodes`.
    pub failures: IntCounterVec,
    /// `portcullis_sync_rounds_total{result}`: `ok`, `failed`, `skipped` (another replica's
    /// round held the lock).
    pub rounds: IntCounterVec,
}

impl SyncMetrics {
    /// Creates the metrics and registers them in `registry` (fails if already registered).
    pub fn register(registry: &Registry) -> Result<SyncMetrics, prometheus::Error> {
        let m = SyncMetrics {
            last_success: Gauge::new(
                "portcullis_sync_last_success_timestamp_seconds",
                "Unix time of the last successful background sync of the Umbraco mirror",
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "portcullis_sync_duration_seconds",
                    "Duration of background sync rounds that ran, by result",
                )
                .buckets(vec![
                    0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0,
                ]),
                &["result"],
            )?,
            changed: IntCounterVec::new(
                Opts::new(
                    "portcullis_sync_items_changed_total",
                    "Mirror rows the background sync inserted, updated or deleted, by kind",
                ),
                &["kind"],
            )?,
            failures: IntCounterVec::new(
                Opts::new(
                    "portcullis_sync_failures_total",
                    "Background sync rounds that failed, by reason",
                ),
                &["reason"],
            )?,
            rounds: IntCounterVec::new(
                Opts::new(
                    "portcullis_sync_rounds_total",
                    "Background sync rounds, by result (skipped: another replica was syncing)",
                ),
                &["result"],
            )?,
        };
        registry.register(Box::new(m.last_success.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        registry.register(Box::new(m.changed.clone()))?;
        registry.register(Box::new(m.failures.clone()))?;
        registry.register(Box::new(m.rounds.clone()))?;
        Ok(m)
    }
}

impl SyncError {
    /// The `reason` label of a failure.
    pub fn reason(&self) -> &'static str {
        match self {
            SyncError::Umbraco(_) => "umbraco",
            SyncError::Store(_) => "store",
            SyncError::TreeChanged { .. } => "tree_changed",
            SyncError::TooManyNodes { .. } => "too_many_nodes",
            SyncError::NoApiUser | SyncError::NotPostgres => "config",
        }
    }
}

/// What one round did.
#[derive(Debug)]
pub enum Round {
    Synced(SyncReport),
    /// Another replica's round held the lock.
    Skipped,
    Failed(SyncError),
}

/// The background sync: a mirror, its metrics and the interval.
pub struct SyncJob {
    mirror: Mirror,
    metrics: SyncMetrics,
    interval: Duration,
}

impl SyncJob {
    pub fn new(mirror: Mirror, metrics: SyncMetrics) -> SyncJob {
        let interval = mirror.cfg.interval;
        SyncJob {
            mirror,
            metrics,
            interval,
        }
    }

    /// Runs rounds until `draining()` says the gateway stops. Spawn it; it never returns
    /// otherwise.
    pub async fn run(self, draining: impl Fn() -> bool) {
        let first = match has_mirrored_nodes(&self.mirror.pool).await {
            Ok(true) => self.interval,
            Ok(false) => Duration::ZERO,
            Err(e) => {
                tracing::warn!(error = %crate::config::error_chain(&e), "cannot tell whether the mirror is empty; syncing now");
                Duration::ZERO
            }
        };
        tracing::info!(
            sync.interval_s = self.interval.as_secs_f64(),
            sync.first_in_s = first.as_secs_f64(),
            "background sync of the umbraco mirror scheduled"
        );
        tokio::time::sleep(first).await;
        loop {
            if draining() {
                return;
            }
            self.round().await;
            tokio::time::sleep(self.interval).await;
        }
    }

    /// One round: take the round lock (or skip), sync, release, count.
    pub async fn round(&self) -> Round {
        let lock = match SyncRound::try_begin(&self.mirror.pool).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                self.metrics.rounds.with_label_values(&["skipped"]).inc();
                tracing::info!("another replica is syncing the umbraco mirror; round skipped");
                return Round::Skipped;
            }
            Err(e) => return self.failed(SyncError::Store(e), Duration::ZERO),
        };
        let started = Instant::now();
        let mut report = SyncReport::default();
        let outcome = self.mirror.full_sync_into(&mut report).await;
        lock.release().await;
        for (kind, r) in &report.kinds {
            self.metrics
                .changed
                .with_label_values(&[kind])
                .inc_by(r.changed());
        }
        let took = started.elapsed();
        match outcome {
            Ok(()) => {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
                self.metrics.last_success.set(now.as_secs_f64());
                self.metrics.rounds.with_label_values(&["ok"]).inc();
                self.metrics
                    .duration
                    .with_label_values(&["ok"])
                    .observe(took.as_secs_f64());
                tracing::info!(
                    sync.changed = report.changed(),
                    sync.duration_ms = took.as_millis() as u64,
                    "umbraco mirror synced"
                );
                Round::Synced(report)
            }
            Err(e) => self.failed(e, took),
        }
    }

    fn failed(&self, e: SyncError, took: Duration) -> Round {
        self.metrics.failures.with_label_values(&[e.reason()]).inc();
        self.metrics.rounds.with_label_values(&["failed"]).inc();
        if !took.is_zero() {
            self.metrics
                .duration
                .with_label_values(&["failed"])
                .observe(took.as_secs_f64());
        }
        tracing::warn!(error = %crate::config::error_chain(&e), "background sync of the umbraco mirror failed; the next round retries");
        Round::Failed(e)
    }
}
