//! A raw HTTP/1.1 client over a TCP socket, for requests a client library would normalise
//! (repeated or conflicting framing headers, slow or partial heads, `Expect: 100-continue`).
//! Every read is bounded; nothing here measures time.

#![allow(dead_code)]

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The bound on any single wait for the gateway (generous: the machine is shared and loaded).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One response as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// The gateway's error id (`{"error": …}`), or "" when there is none.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// A client connection.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes `bytes`; `false` when the gateway already closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Reads one response (an interim `1xx` counts as one). `None` when the connection closed
    /// (or was reset) before a complete response arrived.
    pub async fn response(&mut self) -> Option<RawResponse> {
        tokio::time::timeout(PATIENCE, self.read_response())
            .await
            .expect("the gateway answers or closes within the bound")
    }

    /// Waits until the gateway closes the connection, discarding what arrives; `true` when it
    /// closed within `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let wait = async {
            let mut chunk = [0u8; 4096];
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }

    /// Reads exactly `n` bytes (for non-HTTP/1 replies such as an h2 frame); `None` when the
    /// connection closed first.
    pub async fn read_exact(&mut self, n: usize) -> Option<Vec<u8>> {
        let read = async {
            while self.buf.len() < n {
                if !self.fill().await {
                    return None;
                }
            }
            Some(self.buf.drain(..n).collect())
        };
        tokio::time::timeout(PATIENCE, read)
            .await
            .expect("the gateway answers or closes within the bound")
    }

    /// Sends `bytes` one at a time, `every` apart, until they are all sent or the gateway
    /// answers or closes; then reads one response (`None`: closed without one).
    pub async fn trickle(&mut self, bytes: &[u8], every: Duration) -> Option<RawResponse> {
        for b in bytes {
            tokio::select! {
                _ = self.stream.readable() => break,
                _ = tokio::time::sleep(every) => {}
            }
            if !self.send(&[*b]).await {
                break;
            }
        }
        self.response().await
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn read_response(&mut self) -> Option<RawResponse> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut resp = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&status) || status == 204 || status == 304 {
            return Some(resp);
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            resp.body = self.read_chunked().await?;
        } else if let Some(n) = resp.header("content-length") {
            let n: usize = n.parse().ok()?;
            while self.buf.len() < n {
                if !self.fill().await {
                    return None;
                }
            }
            resp.body = self.buf.drain(..n).collect();
        } else {
            while self.fill().await {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Some(resp)
    }

    async fn read_chunked(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                if !self.fill().await {
                    return None;
                }
            };
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                if !self.fill().await {
                    return None;
                }
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
            if size == 0 {
                return Some(body);
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `request` on a fresh connection and reads one response.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Option<RawResponse> {
    let mut c = Raw::connect(addr).await;
    c.send(request).await;
    c.response().await
}

/// An upstream that records the raw bytes of every connection (nothing normalised, nothing
/// refused), and answers `200` once a whole request has arrived: the head and then
/// `Content-Length` bytes, or a chunked body through its `0\r\n\r\n`. A request cut short is
/// never answered. Proves what reached the upstream, byte for byte.
pub struct RawUpstream {
    pub addr: SocketAddr,
    conns: std::sync::Arc<std::sync::Mutex<Vec<RawConn>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What one upstream connection received.
#[derive(Debug, Clone, Default)]
pub struct RawConn {
    pub bytes: Vec<u8>,
    /// The gateway closed the connection.
    pub closed: bool,
}

impl RawUpstream {
    pub async fn start() -> RawUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind raw upstream");
        let addr = listener.local_addr().expect("addr");
        let conns: std::sync::Arc<std::sync::Mutex<Vec<RawConn>>> = Default::default();
        let shared = conns.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let slot = {
                    let mut c = shared.lock().expect("lock");
                    c.push(RawConn::default());
                    c.len() - 1
                };
                tokio::spawn(record(stream, shared.clone(), slot));
            }
        });
        RawUpstream { addr, conns, task }
    }

    /// Every connection so far.
    pub fn conns(&self) -> Vec<RawConn> {
        self.conns.lock().expect("lock").clone()
    }

    /// All bytes received on all connections.
    pub fn received(&self) -> Vec<u8> {
        self.conns().into_iter().flat_map(|c| c.bytes).collect()
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    mut stream: TcpStream,
    conns: std::sync::Arc<std::sync::Mutex<Vec<RawConn>>>,
    slot: usize,
) {
    let mut chunk = [0u8; 16384];
    let mut answered = false;
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let whole = {
            let mut c = conns.lock().expect("lock");
            c[slot].bytes.extend_from_slice(&chunk[..n]);
            complete_request(&c[slot].bytes)
        };
        if whole && !answered {
            answered = true;
            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Upstream: raw\r\n\r\nok";
            let _ = stream.write_all(ok).await;
        }
    }
    conns.lock().expect("lock")[slot].closed = true;
}

/// Whether `bytes` hold one whole request (head and body as its framing says).
fn complete_request(bytes: &[u8]) -> bool {
    let Some(end) = find(bytes, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let body = &bytes[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= len
}
