//! The process's life after start: the background thread (SIGHUP and file-change reloads, the
//! upstream probe) and the graceful stop (drain on SIGTERM, in-flight requests, audit flush).

use super::{AppError, Shared};
use async_trait::async_trait;
use pingora::server::{ExecutionPhase, ShutdownSignal, ShutdownSignalWatch};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The end of a graceful stop. pingora has closed its listeners (and idle keep-alive
/// connections) when it enters the grace period; this waits for the requests still in flight
/// (at most `grace`), flushes the audit trail (writes until `audit_flush`, spools and fsyncs the
/// rest) and exits 0 without waiting out pingora's fixed grace sleep.
pub(super) async fn finish_drain(
    mut phases: tokio::sync::broadcast::Receiver<ExecutionPhase>,
    shared: Arc<Shared>,
    grace: Duration,
    audit_flush: Duration,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match phases.recv().await {
            Ok(ExecutionPhase::ShutdownGracePeriod) => break,
            Ok(_) | Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
    }
    let deadline = Instant::now() + grace;
    let in_flight = || shared.health.in_flight.load(Ordering::SeqCst);
    while in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = shared.auditor.shutdown(audit_flush).await;
    tracing::info!(
        in_flight = in_flight(),
        audit.spooled_bytes = report.spooled_bytes,
        audit.writers_timed_out = report.writers_timed_out,
        "drained; portcullis stopped"
    );
    std::process::exit(0);
}

/// SIGHUP and file-change reloads, and the upstream reachability probe, on their own thread so
/// they work before and independently of pingora's runtimes.
pub(super) fn spawn_background(shared: Arc<Shared>) -> Result<(), AppError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AppError::Thread)?;
    // Register SIGHUP now, before the default action (terminate) could hit us.
    let mut hup = rt
        .block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) })
        .map_err(AppError::Thread)?;
    std::thread::Builder::new()
        .name("portcullis-background".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut mtime = modified(&shared);
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = hup.recv() => { shared.reload(); mtime = modified(&shared); }
                        _ = tick.tick() => {
                            probe_upstream(&shared).await;
                            let watch = shared.runtime.load().config.file.lifecycle.watch;
                            let now = modified(&shared);
                            if watch && now.is_some() && now != mtime {
                                mtime = now;
                                shared.reload();
                            }
                        }
                    }
                }
            })
        })
        .map_err(AppError::Thread)?;
    Ok(())
}

fn modified(shared: &Shared) -> Option<SystemTime> {
    std::fs::metadata(&shared.runtime.load().config.path)
        .and_then(|m| m.modified())
        .ok()
}

async fn probe_upstream(shared: &Shared) {
    if shared.health.upstream_seen.load(Ordering::SeqCst) {
        return;
    }
    let addr = shared.runtime.load().config.management_upstream;
    let connect = tokio::net::TcpStream::connect(addr);
    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), connect).await {
        shared.health.mark_upstream_seen();
    }
}

/// SIGTERM (or SIGQUIT): `/readyz` turns 503 at once, the listener keeps serving (every response
/// with `Connection: close`) for `drain_delay` so load balancers stop sending, then pingora is
/// told to stop accepting; [`finish_drain`] does the rest. SIGINT, also during the delay: stop now.
pub(super) struct DrainOnTerm {
    pub(super) shared: Arc<Shared>,
    pub(super) drain_delay: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for DrainOnTerm {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping now");
                return ShutdownSignal::FastShutdown;
            }
            _ = term.recv() => {}
            _ = quit.recv() => {}
        }
        self.shared.health.draining.store(true, Ordering::SeqCst);
        tracing::info!(
            drain.delay_s = self.drain_delay.as_secs_f64(),
            in_flight = self.shared.health.in_flight.load(Ordering::SeqCst),
            "SIGTERM: not ready; serving until the drain delay ends"
        );
        tokio::select! {
            _ = tokio::time::sleep(self.drain_delay) => {}
            _ = int.recv() => {
                tracing::info!("SIGINT during the drain: stopping now");
                return ShutdownSignal::FastShutdown;
            }
        }
        tracing::info!(
            in_flight = self.shared.health.in_flight.load(Ordering::SeqCst),
            "drain delay over: closing the listeners"
        );
        ShutdownSignal::GracefulTerminate
    }
}
