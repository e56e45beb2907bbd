//! The proxy listener's connection edge, between pingora's accept loop and its HTTP handling
//! (`HttpProxy`): the connection cap, the request-head deadline and the keep-alive idle
//! timeout. pingora 0.9.1 offers no hook before it reads a request (see [`super::edge_head`]),
//! so `Edge` is the listener's `ServerApp`: it reads each request's head under the deadlines,
//! rewinds it into the stream and hands the connection to `HttpProxy` one request at a time,
//! taking it back between requests to wait for the next one no longer than the idle timeout.
//! h2c connections are handed over whole after their preface (`h2_idle_timeout` closes them).

use super::edge_head::{read_head, refuse, Head, HeadLimits};
use super::Gateway;
use crate::app::Shared;
use crate::authz::DenyReason;
use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use pingora_proxy::HttpProxy;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The head buffer's first capacity: pingora's `INIT_HEADER_BUF_SIZE`.
const HEAD_BUFFER: usize = 4096;

/// File descriptors kept free beside the upstream pool when `listen.max_connections` is
/// derived: the admin listener and its clients, the policy store, audit sinks, files.
pub const FD_RESERVE: u64 = 256;

/// The process's soft open-file limit (`RLIMIT_NOFILE`), read from `/proc/self/limits`
/// (Linux); `None` where that is unavailable or says `unlimited`.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The default connection cap: every proxied connection may hold an upstream connection too,
/// so half of what the file-descriptor limit leaves after the upstream keep-alive pool and
/// [`FD_RESERVE`]; at least 1. Without a known limit, 1024 (the usual soft limit) is assumed.
pub fn default_max_connections(fd_limit: Option<u64>, keepalive_pool: usize) -> usize {
    let limit = fd_limit.unwrap_or(1024);
    let free = limit.saturating_sub(FD_RESERVE + keepalive_pool as u64);
    usize::try_from(free / 2).unwrap_or(usize::MAX).max(1)
}

/// Connection metrics of the proxy listener.
#[derive(Clone)]
pub struct EdgeMetrics {
    open: IntGauge,
    refused: IntCounter,
    /// `reason`: head_timeout | idle_timeout.
    closed: IntCounterVec,
}

impl EdgeMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<EdgeMetrics> {
        let m = EdgeMetrics {
            open: IntGauge::new(
                "portcullis_connections_open",
                "Connections open on the proxy listener",
            )?,
            refused: IntCounter::new(
                "portcullis_connections_refused_total",
                "Proxy connections closed at accept because listen.max_connections were open",
            )?,
            closed: IntCounterVec::new(
                Opts::new(
                    "portcullis_connections_timed_out_total",
                    "Proxy connections closed by the head deadline or the keep-alive idle timeout",
                ),
                &["reason"],
            )?,
        };
        registry.register(Box::new(m.open.clone()))?;
        registry.register(Box::new(m.refused.clone()))?;
        registry.register(Box::new(m.closed.clone()))?;
        Ok(m)
    }
}

/// The proxy listener's application: the edge in front of pingora's `HttpProxy`.
pub struct Edge {
    proxy: Arc<HttpProxy<Gateway>>,
    shared: Arc<Shared>,
    open: AtomicUsize,
    metrics: EdgeMetrics,
}

/// One admitted connection; counted as open until dropped.
struct Slot<'a>(&'a Edge);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.open.dec();
    }
}

/// The limits one connection runs with (read from the config in force when it was accepted).
struct ConnLimits {
    head: Duration,
    idle: Duration,
    max_head_bytes: usize,
    max_connections: usize,
}

impl Edge {
    pub fn new(proxy: HttpProxy<Gateway>, shared: Arc<Shared>, metrics: EdgeMetrics) -> Edge {
        Edge {
            proxy: Arc::new(proxy),
            shared,
            open: AtomicUsize::new(0),
            metrics,
        }
    }

    fn limits(&self) -> ConnLimits {
        let rt = self.shared.runtime.load();
        let listen = &rt.config.file.listen;
        ConnLimits {
            head: listen.request_head_timeout,
            idle: listen.keepalive_timeout,
            max_head_bytes: listen.limits.max_head_bytes,
            max_connections: rt.config.max_connections,
        }
    }

    /// Admits a connection while fewer than `max` are open; counts a refusal otherwise.
    fn admit(&self, max: usize) -> Option<Slot<'_>> {
        if self.open.fetch_add(1, Ordering::SeqCst) >= max {
            self.open.fetch_sub(1, Ordering::SeqCst);
            self.metrics.refused.inc();
            return None;
        }
        self.metrics.open.inc();
        Some(Slot(self))
    }

    fn h2c(&self) -> bool {
        self.proxy.server_options.as_ref().is_some_and(|o| o.h2c)
    }

    /// Serves one connection: each request's head under the deadlines, then pingora.
    async fn serve(&self, mut stream: Box<L4Stream>, shutdown: &ShutdownWatch, limits: ConnLimits) {
        let mut settings: Option<HttpPersistentSettings> = None;
        let mut reused = false;
        loop {
            // Room for a whole usual head in one read (pingora starts its own head buffer at
            // the same size); from empty, `read_buf` would grow it 64 bytes first, one read
            // and one reallocation per doubling.
            let mut buf = BytesMut::with_capacity(HEAD_BUFFER);
            let head_limits = HeadLimits {
                head: limits.head,
                idle: reused.then_some(limits.idle),
                max_bytes: limits.max_head_bytes,
            };
            let h2c = !reused && self.h2c();
            match read_head(&mut stream, &mut buf, head_limits, h2c, shutdown).await {
                Head::Closed => return,
                Head::TimedOut { partial } => {
                    let reason = if reused && !partial {
                        "idle_timeout"
                    } else {
                        "head_timeout"
                    };
                    self.metrics.closed.with_label_values(&[reason]).inc();
                    if partial {
                        refuse(&mut stream, DenyReason::RequestTimeout).await;
                    }
                    return;
                }
                Head::TooLarge => {
                    refuse(&mut stream, DenyReason::HeadTooLarge).await;
                    return;
                }
                Head::H2c => {
                    stream.rewind(&buf);
                    // pingora's own h2c path: it finds the preface again and serves h2.
                    ServerApp::process_new(&self.proxy, stream, shutdown).await;
                    return;
                }
                Head::Http1 => stream.rewind(&buf),
            }
            let mut session = ServerSession::new_http1(stream);
            match settings.take() {
                Some(s) => s.apply_to_session(&mut session),
                // As pingora's own loop does for a connection's first request.
                None => session.set_keepalive((!*shutdown.borrow()).then_some(60)),
            }
            // Boxed: pingora's request future is large, and this loop's own state stays small.
            let request = Box::pin(self.proxy.process_new_http(session, shutdown));
            let Some(next) = request.await else {
                return;
            };
            let (next, s) = next.consume();
            let Some(next) = tcp(next) else {
                return;
            };
            (stream, settings, reused) = (next, s, true);
        }
    }
}

/// The TCP stream behind pingora's boxed stream (`None` for any other kind).
fn tcp(stream: Stream) -> Option<Box<L4Stream>> {
    stream.into_any().downcast::<L4Stream>().ok()
}

#[async_trait]
impl ServerApp for Edge {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let limits = self.limits();
        // Refused: the stream is dropped, which closes the connection.
        let _slot = self.admit(limits.max_connections)?;
        match tcp(stream) {
            Some(stream) => self.serve(stream, shutdown, limits).await,
            // Only plain TCP listeners are configured; anything else is closed, never served
            // without the deadlines.
            None => tracing::error!("proxy listener: not a TCP stream; connection closed"),
        }
        None
    }

    async fn cleanup(&self) {
        // Wakes requests parked in pingora's `read_request` so that shutdown is not delayed.
        self.proxy.http_cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_the_reserve_and_the_pool_and_halves_the_rest() {
        assert_eq!(
            default_max_connections(Some(1024), 128),
            (1024 - 256 - 128) / 2
        );
        assert_eq!(default_max_connections(Some(65536), 128), (65536 - 384) / 2);
        assert_eq!(default_max_connections(None, 128), 320);
        assert_eq!(default_max_connections(Some(100), 128), 1, "never zero");
    }

    #[test]
    fn the_open_file_limit_is_read_on_linux() {
        if std::path::Path::new("/proc/self/limits").exists() {
            assert!(open_file_limit().is_some_and(|n| n > 0));
        }
    }
}
