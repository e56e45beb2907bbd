//! One sink's writer task: batches its queue to the sink, falls back to the spool while the sink
//! fails, replays the spool in order when it recovers, and drains everything on shutdown.

use super::auditor::SinkShared;
use super::config::AuditConfig;
use super::{AuditError, AuditEvent, AuditSink};
use prometheus::IntGauge;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

pub(crate) struct Writer {
    sink: Box<dyn AuditSink>,
    rx: mpsc::Receiver<Arc<AuditEvent>>,
    shared: Arc<SinkShared>,
    queue_depth: IntGauge,
    batch_size: usize,
    flush_interval: Duration,
    fsync_interval: Duration,
    write_timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    backoff: Duration,
    /// While the sink is failing: no write before this instant.
    retry_at: Option<Instant>,
    pending: Vec<Arc<AuditEvent>>,
    pending_since: Option<Instant>,
    /// The shutdown deadline, once [`super::Auditor::shutdown`] set one.
    stop: watch::Receiver<Option<Instant>>,
    /// Events came in the last round: take the queue on a timer (see `next_events`).
    gathering: bool,
    /// The last take filled a batch: the queue may hold more.
    backlog: bool,
}

/// What the writer loop does next.
enum Next {
    /// This many events moved from the queue into `pending` (0: a timer is due).
    Taken(usize),
    /// The stop deadline was set: drain.
    Stop,
    /// The queue closed or the Auditor was dropped without a shutdown.
    Gone,
}

/// While events keep coming, the writer takes the queue this often (one wake per interval
/// instead of one per event); a batch is still written within `flush_interval`.
const GATHER: Duration = Duration::from_millis(20);

impl Writer {
    pub(crate) fn new(
        sink: Box<dyn AuditSink>,
        rx: mpsc::Receiver<Arc<AuditEvent>>,
        shared: Arc<SinkShared>,
        cfg: &AuditConfig,
        queue_depth: IntGauge,
        stop: watch::Receiver<Option<Instant>>,
    ) -> Self {
        Writer {
            sink,
            rx,
            shared,
            queue_depth,
            batch_size: cfg.batch_size.max(1),
            flush_interval: cfg.flush_interval,
            fsync_interval: cfg.spool.fsync_interval,
            write_timeout: cfg.write_timeout,
            min_backoff: cfg.retry_backoff,
            max_backoff: cfg.max_retry_backoff.max(cfg.retry_backoff),
            backoff: cfg.retry_backoff,
            retry_at: None,
            pending: Vec::new(),
            pending_since: None,
            stop,
            gathering: false,
            backlog: false,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            // A write may have seen the stop first (it shortens itself to the deadline).
            let stopped = *self.stop.borrow();
            if let Some(deadline) = stopped {
                self.drain(deadline).await;
                return;
            }
            let before = self.pending.len();
            let taken = match self.next_events().await {
                Next::Taken(n) => n,
                Next::Stop => continue,
                Next::Gone => {
                    // The queue or the Auditor is gone without a shutdown: drain briefly.
                    self.drain(Instant::now() + self.write_timeout).await;
                    return;
                }
            };
            self.gathering = taken > 0;
            if taken > 0 {
                self.queue_depth.sub(taken as i64);
                if before == 0 {
                    self.pending_since = Some(Instant::now());
                }
            }
            self.step(None).await;
        }
    }

    /// Waits for events, a due write or a stop. Idle, it waits on the queue (the first event
    /// wakes the writer). Busy (events came last round), it takes the queue every [`GATHER`]
    /// without a waker in it, so `record` wakes no thread per event.
    async fn next_events(&mut self) -> Next {
        let wake = self.next_wake();
        let room = self.batch_size.saturating_sub(self.pending.len()).max(1);
        if !self.gathering {
            return tokio::select! {
                biased;
                changed = self.stop.changed() => if changed.is_err() { Next::Gone } else { Next::Stop },
                n = self.rx.recv_many(&mut self.pending, room) => if n == 0 { Next::Gone } else { Next::Taken(n) },
                _ = tokio::time::sleep_until(wake.into()) => Next::Taken(0),
            };
        }
        // A full batch was left in the queue last time: take the next one without waiting.
        let tick = if self.backlog {
            Instant::now()
        } else {
            wake.min(Instant::now() + GATHER)
        };
        tokio::select! {
            biased;
            changed = self.stop.changed() => return if changed.is_err() { Next::Gone } else { Next::Stop },
            _ = tokio::time::sleep_until(tick.into()) => {}
        }
        let mut n = 0;
        while n < room {
            match self.rx.try_recv() {
                Ok(ev) => {
                    self.pending.push(ev);
                    n += 1;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) if n == 0 => return Next::Gone,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        self.backlog = n == room;
        Next::Taken(n)
    }

    /// When the loop must wake even without new events.
    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut wake = now + self.flush_interval.min(self.fsync_interval);
        let spooled = !self.shared.lock_spool().is_empty();
        if spooled {
            wake = wake.min(self.retry_at.unwrap_or(now));
        }
        if let Some(since) = self.pending_since {
            wake = wake.min(since + self.flush_interval);
        }
        wake
    }

    /// One round: replay the spool if it has data (queued events go behind it to keep order),
    /// otherwise write a full or due batch. `deadline` bounds each write during shutdown.
    async fn step(&mut self, deadline: Option<Instant>) {
        let spooled = self.shared.refresh_spool_gauge();
        let sink_down = self.retry_at.is_some_and(|t| Instant::now() < t);
        if spooled || (sink_down && !self.pending.is_empty()) {
            let batch = std::mem::take(&mut self.pending);
            self.pending_since = None;
            self.shared.spill(&batch);
            if !sink_down {
                self.replay_one(deadline).await;
            }
        } else if !self.pending.is_empty() {
            let due = self.pending.len() >= self.batch_size
                || deadline.is_some()
                || self
                    .pending_since
                    .is_some_and(|t| t.elapsed() >= self.flush_interval);
            if due {
                let batch = std::mem::take(&mut self.pending);
                self.pending_since = None;
                match self.write(&batch, deadline).await {
                    Ok(()) => {}
                    Err(e) if e.is_permanent() => {
                        self.shared
                            .count_drop("rejected", batch.len() as u64, Some(&e));
                    }
                    Err(_) => self.shared.spill(&batch),
                }
            }
        }
        {
            let mut spool = self.shared.lock_spool();
            if let Err(e) = spool.sync_if_due() {
                tracing::error!(audit.sink = %self.shared.name, error = %e, "audit spool sync failed");
            }
        }
        self.shared.log_drops("pending");
        self.shared.refresh_spool_gauge();
    }

    /// Sends the oldest spooled batch; commits it on success (or on a permanent rejection,
    /// counted), keeps it for the next retry otherwise.
    async fn replay_one(&mut self, deadline: Option<Instant>) -> bool {
        let read = self.shared.lock_spool().read(self.batch_size);
        let batch = match read {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(audit.sink = %self.shared.name, error = %e, "audit spool read failed");
                self.fail();
                return false;
            }
        };
        if batch.corrupt > 0 {
            self.shared.count_drop("corrupt", batch.corrupt, None);
        }
        let ok = if batch.events.is_empty() {
            true
        } else {
            match self.write(&batch.events, deadline).await {
                Ok(()) => true,
                Err(e) if e.is_permanent() => {
                    self.shared
                        .count_drop("rejected", batch.events.len() as u64, Some(&e));
                    true
                }
                Err(_) => false,
            }
        };
        if ok {
            if let Err(e) = self.shared.lock_spool().commit(batch.end) {
                tracing::error!(audit.sink = %self.shared.name, error = %e, "audit spool commit failed");
            }
        }
        ok
    }

    /// Writes one batch with the write timeout; tracks the sink's health and backoff.
    async fn write(
        &mut self,
        batch: &[Arc<AuditEvent>],
        deadline: Option<Instant>,
    ) -> Result<(), AuditError> {
        let started = Instant::now();
        let mut end = started + self.write_timeout;
        if let Some(d) = deadline.or(*self.stop.borrow()) {
            end = end.min(d);
        }
        // A shutdown that starts during the write cuts it to the shutdown deadline: a hung sink
        // must not hold events in memory past it (they are spooled instead).
        let mut watching = true;
        let res = {
            let write = self.sink.write(batch);
            tokio::pin!(write);
            loop {
                tokio::select! {
                    r = &mut write => break r,
                    _ = tokio::time::sleep_until(end.into()) => break Err(AuditError::Timeout {
                        sink: self.shared.name.clone(),
                        after: end.saturating_duration_since(started),
                    }),
                    changed = self.stop.changed(), if watching => match changed {
                        Ok(()) => if let Some(d) = *self.stop.borrow() { end = end.min(d) },
                        Err(_) => watching = false,
                    },
                }
            }
        };
        match &res {
            Ok(()) => {
                self.shared.written.inc_by(batch.len() as u64);
                if self.retry_at.take().is_some() {
                    tracing::info!(audit.sink = %self.shared.name, "audit sink recovered");
                }
                self.backoff = self.min_backoff;
                self.shared.up.set(1);
            }
            Err(e) if e.is_permanent() => {}
            Err(e) => {
                if self.retry_at.is_none() {
                    tracing::warn!(audit.sink = %self.shared.name, error = %e, "audit sink failing; spooling");
                }
                self.fail();
            }
        }
        res
    }

    fn fail(&mut self) {
        self.shared.up.set(0);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.max_backoff);
    }

    /// Shutdown: stop accepting, take everything queued, write it (spool first) until the
    /// deadline, spool the rest and sync.
    async fn drain(&mut self, deadline: Instant) {
        // After close(), `record` sees `Closed` and spools directly; nothing is lost in between.
        self.rx.close();
        while let Some(ev) = self.rx.recv().await {
            self.queue_depth.dec();
            self.pending.push(ev);
        }
        if !self.pending.is_empty() {
            self.pending_since = Some(Instant::now());
        }
        // Ignore backoff now: one more attempt is worth it while time remains.
        self.retry_at = None;
        while Instant::now() < deadline {
            let spooled = !self.shared.lock_spool().is_empty();
            if !spooled && self.pending.is_empty() {
                break;
            }
            if spooled {
                let batch = std::mem::take(&mut self.pending);
                self.shared.spill(&batch);
                if !self.replay_one(Some(deadline)).await {
                    break;
                }
            } else {
                let n = self.pending.len().min(self.batch_size);
                let batch: Vec<_> = self.pending.drain(..n).collect();
                match self.write(&batch, Some(deadline)).await {
                    Ok(()) => {}
                    Err(e) if e.is_permanent() => {
                        self.shared
                            .count_drop("rejected", batch.len() as u64, Some(&e));
                    }
                    Err(_) => {
                        self.shared.spill(&batch);
                        break;
                    }
                }
            }
        }
        let rest = std::mem::take(&mut self.pending);
        self.shared.spill(&rest);
        let res = self.shared.lock_spool().persist();
        if let Err(e) = res {
            tracing::error!(audit.sink = %self.shared.name, error = %e, "audit spool persist failed");
        }
        self.shared.log_drops("shutdown");
        self.shared.refresh_spool_gauge();
    }
}
