//! Test harness: a recording HTTP upstream on loopback and `spawn_gateway()`, which runs the real
//! `portcullis` binary with a generated config on free ports and waits until it is healthy.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod gateway;
pub use gateway::*;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// How the upstream answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with a JSON summary of the request and the header `x-upstream: recorder`.
    Echo,
    /// Waits, then echoes.
    Delay(Duration),
}

/// A recording upstream on 127.0.0.1.
pub struct Upstream {
    pub addr: SocketAddr,
    records: Arc<Mutex<Vec<Recorded>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let records: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let behaviour = Arc::new(Mutex::new(Behaviour::Echo));
        let (r, b) = (records.clone(), behaviour.clone());
        let (addr, task) =
            serve_loopback(move |parts, body| handle(parts, body, r.clone(), b.clone())).await;
        Upstream {
            addr,
            records,
            behaviour,
            task,
        }
    }

    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().expect("lock") = b;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.records.lock().expect("lock").clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves HTTP/1.1 on a free 127.0.0.1 port, answering every request (head and whole body)
/// with `handler`; the listener stops when the returned task is aborted.
pub async fn serve_loopback<F, Fut>(handler: F) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(http::request::Parts, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback server");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, hyper::Error>(handler(parts, body).await)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    (addr, task)
}

async fn handle(
    parts: http::request::Parts,
    body: Bytes,
    records: Arc<Mutex<Vec<Recorded>>>,
    behaviour: Arc<Mutex<Behaviour>>,
) -> Response<Full<Bytes>> {
    let summary = serde_json::json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "body_len": body.len(),
    });
    records.lock().expect("lock").push(Recorded {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body,
    });
    let b = behaviour.lock().expect("lock").clone();
    if let Behaviour::Delay(d) = b {
        tokio::time::sleep(d).await;
    }
    // `?delay_ms=N` delays this one answer (slow requests among fast ones).
    let delay_ms = parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("delay_ms=")))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("x-upstream", "recorder")
        .body(Full::new(Bytes::from(summary.to_string())))
        .expect("response")
}

/// A client without connection reuse and with a bounded timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        // A fresh connection per request: no race with the gateway closing an idle one.
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// Polls `check` every 25 ms until it is true or `within` passes.
pub async fn wait_until<F, Fut>(within: Duration, mut check: F) -> Option<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return Some(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

/// The tests' PostgreSQL server (trust auth, user `postgres`).
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh database for one test, dropped when the test ends (also on panic).
pub struct ScratchDb {
    pub name: String,
}

impl ScratchDb {
    /// Creates `portcullis_<prefix>_<uuid>`; fails loudly when PostgreSQL is unreachable.
    pub async fn create(prefix: &str) -> ScratchDb {
        use sqlx::{Connection, Executor};
        let name = format!("portcullis_{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(PG_ADMIN_URL)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 is required");
        c.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        ScratchDb { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// A scratch database, migrated, holding the dev policy (`config/policy/dev.toml`).
    pub async fn with_dev_policy(prefix: &str) -> (ScratchDb, sqlx::PgPool) {
        let db = ScratchDb::create(prefix).await;
        let pool = sqlx::PgPool::connect(&db.url()).await.expect("connect");
        portcullis::store::postgres::migrate(&pool)
            .await
            .expect("migrate");
        let file = portcullis::store::policy_file::PolicyFile::parse(
            portcullis::dev::DEV_POLICY,
            "config/policy/dev.toml",
        )
        .expect("dev policy parses");
        portcullis::store::postgres::apply_policy(&pool, &file, false)
            .await
            .expect("apply dev policy");
        (db, pool)
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        use sqlx::{Connection, Executor};
        let name = self.name.clone();
        // Drop runs inside the test's runtime: clean up on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(PG_ADMIN_URL).await {
                    let _ = c
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}
