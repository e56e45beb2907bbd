//! The [`Auditor`] handle and the per-sink writer tasks.
//!
//! `record` is sync and never waits: it `try_send`s the event to each sink's bounded queue and,
//! when a queue is full (or its writer has stopped), appends it to that sink's spool instead.
//! Each writer task batches its queue to its sink. While a sink fails, the writer moves queued
//! events behind the spooled ones and retries with backoff, replaying the spool in order once the
//! sink accepts writes again.

use super::config::AuditConfig;
use super::jsonl::JsonlSink;
use super::metrics::AuditMetrics;
use super::postgres::PostgresSink;
use super::spool::Spool;
use super::webhook::WebhookSink;
use super::{AuditError, AuditEvent, AuditSink, SinkConfig};
use prometheus::{IntCounter, IntGauge, Registry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Handle the proxy keeps; cheap to clone. Dropping it does not stop the writers: call
/// [`Auditor::shutdown`].
#[derive(Clone)]
pub struct Auditor {
    inner: Arc<Inner>,
}

struct Inner {
    sinks: Vec<Arc<SinkShared>>,
    /// Allows are kept when the low 62 bits of the event id's hash are below this.
    sample_below: u64,
    instance_id: Arc<str>,
    queue_depth: IntGauge,
    stop: watch::Sender<Option<Instant>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// What one sink's writer and the hot path share.
pub(crate) struct SinkShared {
    pub(crate) name: String,
    tx: mpsc::Sender<Arc<AuditEvent>>,
    pub(crate) spool: Mutex<Spool>,
    pub(crate) spool_bytes: IntGauge,
    pub(crate) written: IntCounter,
    pub(crate) up: IntGauge,
    metrics: AuditMetrics,
    /// Drops not yet reported in a log line, and when the last line was written (ms since start).
    unlogged_drops: AtomicU64,
    last_drop_log_ms: AtomicU64,
    started: Instant,
}

/// What [`Auditor::shutdown`] achieved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Writers that finished before the deadline.
    pub writers_finished: usize,
    /// Writers still running at the deadline (their spool keeps what they had not written).
    pub writers_timed_out: usize,
    /// Bytes left in the spools for the next start to replay.
    pub spooled_bytes: u64,
}

const LOW_62: u64 = (1 << 62) - 1;

impl Auditor {
    /// Builds the configured sinks and starts their writers. Must run inside a tokio runtime.
    /// Secrets (database URL, webhook token) are read from the env vars the config names.
    pub fn start(cfg: &AuditConfig, registry: &Registry) -> Result<Auditor, AuditError> {
        let mut sinks: Vec<Box<dyn AuditSink>> = Vec::new();
        if cfg.enabled {
            for sc in &cfg.sinks {
                sinks.push(build_sink(sc, cfg)?);
            }
        }
        Self::start_with_sinks(cfg, sinks, registry)
    }

    /// Starts writers for sinks built by the caller (tests, a shared pool). Must run inside a
    /// tokio runtime. Opens each sink's spool; events left by an earlier run are replayed first.
    pub fn start_with_sinks(
        cfg: &AuditConfig,
        sinks: Vec<Box<dyn AuditSink>>,
        registry: &Registry,
    ) -> Result<Auditor, AuditError> {
        let metrics = AuditMetrics::register(registry)?;
        let (stop, stop_rx) = watch::channel(None);
        let mut shared = Vec::new();
        let mut tasks = Vec::new();
        for sink in sinks {
            let name = sink.name().to_owned();
            let spool = Spool::open(&cfg.spool, &name)?;
            let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
            let s = Arc::new(SinkShared {
                spool_bytes: metrics.spool_bytes.with_label_values(&[&name]),
                written: metrics.written.with_label_values(&[&name]),
                up: metrics.sink_up.with_label_values(&[&name]),
                name,
                tx,
                spool: Mutex::new(spool),
                metrics: metrics.clone(),
                unlogged_drops: AtomicU64::new(0),
                last_drop_log_ms: AtomicU64::new(0),
                started: Instant::now(),
            });
            s.up.set(1);
            s.refresh_spool_gauge();
            let writer = super::auditor_writer::Writer::new(
                sink,
                rx,
                s.clone(),
                cfg,
                metrics.queue_depth.clone(),
                stop_rx.clone(),
            );
            tasks.push(tokio::spawn(writer.run()));
            shared.push(s);
        }
        let rate = cfg.sample_allow.clamp(0.0, 1.0);
        Ok(Auditor {
            inner: Arc::new(Inner {
                sinks: shared,
                sample_below: if rate >= 1.0 {
                    u64::MAX
                } else {
                    (rate * LOW_62 as f64) as u64
                },
                instance_id: Arc::from(cfg.resolved_instance_id()),
                queue_depth: metrics.queue_depth.clone(),
                stop,
                tasks: Mutex::new(tasks),
            }),
        })
    }

    /// Whether an event with this id would be kept: there is a sink, and it is a deny or an
    /// allow the sample keeps. Lets the caller skip building an event `record` would drop.
    pub fn keeps(&self, event_id: uuid::Uuid, deny: bool) -> bool {
        !self.inner.sinks.is_empty() && (deny || sampled(event_id, self.inner.sample_below))
    }

    /// Records one event: never blocks, never fails. Denies are always kept; allows are kept at
    /// the configured sample rate. Returns whether the event was kept.
    pub fn record(&self, mut event: AuditEvent) -> bool {
        let inner = &*self.inner;
        if !self.keeps(event.event_id, event.is_deny()) {
            return false;
        }
        event.instance_id = Arc::clone(&inner.instance_id);
        let ev = Arc::new(event);
        for sink in &inner.sinks {
            inner.queue_depth.inc();
            if let Err(e) = sink.tx.try_send(ev.clone()) {
                inner.queue_depth.dec();
                // Full queue or stopped writer: the spool keeps it rather than dropping it.
                let ev = match e {
                    mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev) => {
                        ev
                    }
                };
                sink.spill(&[ev]);
            }
        }
        true
    }

    /// The instance id stamped on events.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// Flushes queued events to the sinks until `deadline` (what is left goes to the spools),
    /// syncs the spools and persists their cursors. Events recorded afterwards go straight to the
    /// spool. Calling it twice is harmless.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let at = Instant::now() + deadline;
        self.inner.stop.send_replace(Some(at));
        let tasks = match self.inner.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        let mut report = ShutdownReport::default();
        // Grace past the deadline for the final spool write and sync of what was still queued.
        let grace = tokio::time::Instant::from_std(at) + Duration::from_secs(2);
        for t in tasks {
            match tokio::time::timeout_at(grace, t).await {
                Ok(_) => report.writers_finished += 1,
                Err(_) => report.writers_timed_out += 1,
            }
        }
        for s in &self.inner.sinks {
            let mut spool = s.lock_spool();
            if let Err(e) = spool.persist() {
                tracing::error!(audit.sink = %s.name, error = %e, "audit spool persist failed");
            }
            report.spooled_bytes += spool.waiting_bytes();
        }
        report
    }
}

impl SinkShared {
    pub(crate) fn lock_spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        // A writer that panicked mid-append leaves a spool whose on-disk state is still valid.
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends to the spool; whatever does not fit (or cannot be written) is counted and logged.
    pub(crate) fn spill(&self, events: &[Arc<AuditEvent>]) {
        if events.is_empty() {
            return;
        }
        let res = {
            let mut spool = self.lock_spool();
            let r = spool.append(events);
            self.spool_bytes
                .set(i64::try_from(spool.waiting_bytes()).unwrap_or(i64::MAX));
            r
        };
        match res {
            Ok(a) if a.full > 0 => self.count_drop("spool_full", a.full, None),
            Ok(_) => {}
            Err(e) => self.count_drop("spool_error", events.len() as u64, Some(&e)),
        }
    }

    /// Counts `n` lost events and logs them: at most one line per second per sink (the writer
    /// reports leftovers on its next tick), each carrying how many were dropped since the
    /// previous line, so every drop shows in the logs.
    pub(crate) fn count_drop(&self, reason: &str, n: u64, err: Option<&AuditError>) {
        self.metrics
            .dropped
            .with_label_values(&[&self.name, reason])
            .inc_by(n);
        self.unlogged_drops.fetch_add(n, Ordering::Relaxed);
        if let Some(e) = err {
            tracing::error!(audit.sink = %self.name, error = %e, "audit spool write failed");
        }
        self.log_drops(reason);
    }

    /// Writes the pending drop count to the log if the last line is at least a second old.
    pub(crate) fn log_drops(&self, reason: &str) {
        if self.unlogged_drops.load(Ordering::Relaxed) == 0 {
            return;
        }
        // +1 so that 0 keeps meaning "never logged".
        let now_ms = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.last_drop_log_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < 1000 {
            return;
        }
        if self
            .last_drop_log_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let dropped = self.unlogged_drops.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                tracing::error!(
                    audit.sink = %self.name,
                    audit.drop_reason = reason,
                    audit.dropped = dropped,
                    "audit events dropped (see portcullis_audit_events_dropped_total)"
                );
            }
        }
    }

    pub(crate) fn refresh_spool_gauge(&self) -> bool {
        let spool = self.lock_spool();
        let waiting = spool.waiting_bytes();
        self.spool_bytes
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        waiting > 0
    }
}

/// Deterministic per event id: the same id is always kept or always sampled out.
fn sampled(id: uuid::Uuid, below: u64) -> bool {
    if below == u64::MAX {
        return true;
    }
    // v7 ids from one process share counter bits, so mix all 128 bits before comparing.
    let (hi, lo) = id.as_u64_pair();
    (splitmix64(lo ^ splitmix64(hi)) & LOW_62) < below
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn build_sink(sc: &SinkConfig, cfg: &AuditConfig) -> Result<Box<dyn AuditSink>, AuditError> {
    let name = sc.name().to_owned();
    Ok(match sc {
        SinkConfig::Stdout { .. } => Box::new(JsonlSink::stdout(name)),
        SinkConfig::File {
            path,
            max_bytes,
            keep,
            ..
        } => Box::new(JsonlSink::file(name, path.clone(), *max_bytes, *keep)?),
        SinkConfig::Postgres {
            database_url_env, ..
        } => {
            let url = env(database_url_env)?;
            Box::new(PostgresSink::connect_lazy(name, &url, cfg.write_timeout)?)
        }
        SinkConfig::Webhook { url, token_env, .. } => {
            let token = token_env.as_deref().map(env).transpose()?;
            Box::new(WebhookSink::new(name, url, token, cfg.write_timeout)?)
        }
    })
}

/// A secret from the environment; the error names the variable, never a value.
fn env(var: &str) -> Result<String, AuditError> {
    std::env::var(var).map_err(|source| AuditError::Env {
        var: var.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_roughly_the_configured_fraction_of_allows() {
        let below = (0.25 * LOW_62 as f64) as u64;
        let kept = (0..20_000)
            .filter(|_| sampled(uuid::Uuid::now_v7(), below))
            .count();
        assert!((4_000..6_000).contains(&kept), "kept {kept} of 20000");
    }

    #[test]
    fn sampling_is_deterministic_per_event_id() {
        let id = uuid::Uuid::now_v7();
        let below = LOW_62 / 2;
        assert_eq!(sampled(id, below), sampled(id, below));
        assert!(sampled(id, u64::MAX));
        assert!(!sampled(id, 0));
    }
}
