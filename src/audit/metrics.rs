//! The audit metrics (`portcullis_audit_*`), registered once in the registry the caller passes.

use super::AuditError;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Handles to the audit metrics. Cheap to clone (the handles are `Arc`s inside).
#[derive(Clone, Debug)]
pub struct AuditMetrics {
    /// Events waiting in the in-memory queues, all sinks together.
    pub queue_depth: IntGauge,
    /// Bytes waiting in each sink's spool.
    pub spool_bytes: IntGaugeVec,
    /// Events each sink accepted.
    pub written: IntCounterVec,
    /// Events lost, by sink and reason (`spool_full`, `spool_error`, `rejected`, `corrupt`).
    pub dropped: IntCounterVec,
    /// 1 while the sink's last write succeeded, 0 while it is failing.
    pub sink_up: IntGaugeVec,
}

/// Every metric name this module exports (the dashboard test checks against these).
pub const METRIC_NAMES: &[&str] = &[
    "portcullis_audit_queue_depth",
    "portcullis_audit_spool_bytes",
    "portcullis_audit_events_written_total",
    "portcullis_audit_events_dropped_total",
    "portcullis_audit_sink_up",
];

impl AuditMetrics {
    /// Creates and registers the metrics; fails if they are already registered in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, AuditError> {
        let m = Self::unregistered()?;
        for c in [
            Box::new(m.queue_depth.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.spool_bytes.clone()),
            Box::new(m.written.clone()),
            Box::new(m.dropped.clone()),
            Box::new(m.sink_up.clone()),
        ] {
            registry.register(c).map_err(AuditError::Metrics)?;
        }
        Ok(m)
    }

    fn unregistered() -> Result<Self, AuditError> {
        Ok(AuditMetrics {
            queue_depth: IntGauge::new(
                "portcullis_audit_queue_depth",
                "Audit events waiting in the in-memory queues (all sinks).",
            )
            .map_err(AuditError::Metrics)?,
            spool_bytes: IntGaugeVec::new(
                Opts::new(
                    "portcullis_audit_spool_bytes",
                    "Bytes of audit events waiting in the on-disk spool.",
                ),
                &["sink"],
            )
            .map_err(AuditError::Metrics)?,
            written: IntCounterVec::new(
                Opts::new(
                    "portcullis_audit_events_written_total",
                    "Audit events accepted by a sink.",
                ),
                &["sink"],
            )
            .map_err(AuditError::Metrics)?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "portcullis_audit_events_dropped_total",
                    "Audit events lost, by sink and reason.",
                ),
                &["sink", "reason"],
            )
            .map_err(AuditError::Metrics)?,
            sink_up: IntGaugeVec::new(
                Opts::new(
                    "portcullis_audit_sink_up",
                    "1 while the audit sink accepts writes, 0 while it fails.",
                ),
                &["sink"],
            )
            .map_err(AuditError::Metrics)?,
        })
    }
}
