//! The request-head deadline, enforced before pingora sees a byte. pingora 0.9.1 reads a
//! connection's first bytes with no deadline of its own: the h2c preface peek
//! (`apps/mod.rs`, `try_peek` = `read_exact` of 24 bytes) waits forever for a client that sends
//! fewer, and `read_request` applies its timeout per read, so a head trickled a byte at a time
//! never ends. So the edge reads the head itself — until the end of an HTTP/1.x head, the full
//! h2c preface, `listen.limits.max_head_bytes`, the deadline, or the close — and hands the bytes back to pingora with
//! `Stream::rewind`, which pingora then parses as if it had read them.

use bytes::BytesMut;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::server::ShutdownWatch;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// RFC 9113 §3.4: what an h2c client sends first (pingora's h2c detection compares these bytes).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What arrived on a connection before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// A complete HTTP/1.x head (possibly followed by body bytes).
    Http1,
    /// More than `listen.limits.max_head_bytes` without the end of a head: 431 without waiting
    /// for the rest (the head checks would refuse it anyway), so one connection holds at most
    /// that much before its head is parsed.
    TooLarge,
    /// The h2c connection preface.
    H2c,
    /// The client closed (or reset) the connection, or the server is shutting down.
    Closed,
    /// The deadline passed; `partial` when some bytes had arrived (they get a 408).
    TimedOut { partial: bool },
}

/// How long to wait and how much to read. A fresh connection's head is due `head` after
/// accept; on a kept-alive connection the next request's first byte may take `idle`, its head
/// then `head` from there. A head is at most `max_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub head: Duration,
    pub idle: Option<Duration>,
    pub max_bytes: usize,
}

/// Reads the head of the next request into `buf` (empty on entry). `h2c` allows the preface
/// (only as a connection's first bytes).
pub async fn read_head(
    stream: &mut L4Stream,
    buf: &mut BytesMut,
    limits: HeadLimits,
    h2c: bool,
    shutdown: &ShutdownWatch,
) -> Head {
    let stop = shutting_down(shutdown.clone());
    tokio::pin!(stop);
    let mut deadline = Instant::now() + limits.idle.unwrap_or(limits.head);
    let mut scanned = 0;
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.read_buf(buf)) => r,
            // Only an idle connection (nothing read yet) is closed for a shutdown.
            _ = &mut stop, if buf.is_empty() => return Head::Closed,
        };
        let first_bytes = buf.is_empty();
        match read {
            Err(_) => {
                return Head::TimedOut {
                    partial: !buf.is_empty(),
                }
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Head::Closed,
            Ok(Ok(_)) => {}
        }
        if first_bytes && limits.idle.is_some() {
            // The keep-alive wait is over: the head is due `head` after its first byte.
            deadline = Instant::now() + limits.head;
        }
        if h2c && buf.len() <= H2_PREFACE.len() && H2_PREFACE.starts_with(buf) {
            if buf.len() == H2_PREFACE.len() {
                return Head::H2c;
            }
            continue;
        }
        if h2c && buf.starts_with(H2_PREFACE) {
            return Head::H2c;
        }
        if head_end(buf, scanned).is_some() {
            return Head::Http1;
        }
        if buf.len() > limits.max_bytes {
            return Head::TooLarge;
        }
        // Resume the scan where a terminator split across reads could start.
        scanned = buf.len().saturating_sub(3);
    }
}

/// Resolves once the server shuts down (or its signal is gone).
async fn shutting_down(mut watch: ShutdownWatch) {
    while !*watch.borrow_and_update() {
        if watch.changed().await.is_err() {
            return;
        }
    }
}

/// The end of an HTTP/1.x head in `buf`: the index after the empty line. httparse (pingora's
/// parser) also accepts bare `LF` line ends, so `\n\n` ends a head as `\r\n\r\n` does, and
/// it skips empty lines before the request line (RFC 9112 §2.2), so those end nothing — else a
/// client could open with `\r\n\r\n` and trickle the rest past the deadline. Scans from `from`
/// only, so reading a head costs linear time in its length.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let mut i = from.max(start);
    while i < buf.len() {
        let nl = i + memchr::memchr(b'\n', &buf[i..])?;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Answers a head the edge refuses (408 `request_timeout`, 431 `head_too_large`) with the
/// gateway's JSON error body, then closes: the write side first, and what the client still
/// sends is read and dropped for a moment (as nginx's lingering close does) so that closing
/// with unread bytes does not reset the connection before the client has read the answer.
/// Bounded throughout: a client that does not read gets nothing.
pub async fn refuse(stream: &mut L4Stream, reason: crate::authz::DenyReason) {
    let request_id = uuid::Uuid::now_v7().to_string();
    let reply = super::respond::deny(reason, &request_id);
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}: {request_id}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        reply.status.as_u16(),
        reply.status.canonical_reason().unwrap_or_default(),
        reply.body.len(),
        super::headers::REQUEST_ID,
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&reply.body).await?;
        stream.shutdown().await
    };
    if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(1), write).await {
        let mut sink = [0u8; 4096];
        let mut left = LINGER_BYTES;
        let drain = async {
            while left > 0 {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
}

/// At most this much is read and dropped after a refusal.
const LINGER_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_at_the_first_empty_line_with_crlf_or_bare_lf() {
        assert_eq!(
            head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 0),
            Some(27)
        );
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: a\n\n", 0), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r", 0), None);
        assert_eq!(head_end(b"", 0), None);
    }

    #[test]
    fn empty_lines_before_the_request_line_do_not_end_a_head() {
        assert_eq!(head_end(b"\r\n\r\n\n\n", 0), None);
        assert_eq!(head_end(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n", 0), None);
        assert_eq!(
            head_end(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0),
            Some(31)
        );
    }

    #[test]
    fn a_scan_resumed_three_bytes_back_finds_a_terminator_split_across_reads() {
        let whole = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for split in 1..whole.len() {
            let from = split.saturating_sub(3);
            assert_eq!(head_end(&whole[..split], 0), None, "split {split}");
            assert_eq!(head_end(whole, from), Some(whole.len()), "split {split}");
        }
    }

    #[test]
    fn scanning_a_long_run_of_line_feeds_without_an_end_is_linear() {
        // "\n x" repeated: every position is a candidate, none is an end.
        let buf = b"\n x".repeat(300_000);
        assert_eq!(head_end(&buf, 0), None);
    }
}
