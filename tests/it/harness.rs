//! Test harness: a recording HTTP upstream on loopback and `spawn_gateway()`, which runs the real
//! `portcullis` binary with a generated config on free ports and waits until it is healthy.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The DEV-ONLY secrets `config/policy/dev.toml` and the test issuer use.
pub const DEV_PEPPER: &str = portcullis::dev::DEV_PEPPER;
pub const DEV_HS_SECRET: &str = portcullis::dev::DEV_HS_SECRET;
/// The admin token every harness gateway accepts (token name `test`).
pub const ADMIN_TOKEN: &str = "portcullis-test-admin-token-0123456789abcdef";

/// Top-level config for a gateway in front of the whole site: paths outside the protected
/// prefixes (the tests' `/site/…`) are forwarded unchecked. The default is to deny them.
pub const SITE: &str = "routes.passthrough_outside_prefixes = true";

/// A free port on 127.0.0.1 (bound then released).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A running gateway process; killed on drop.
pub struct Gateway {
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    /// The file audit sink the harness adds when `extra` configures no audit sinks.
    pub audit_path: PathBuf,
    /// `audit.spool.dir` (one sub-directory per sink).
    pub spool_dir: PathBuf,
    pub child: Child,
    _dir: tempfile::TempDir,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

/// Runs `portcullis check-config` on `files`: its exit code and stdout.
pub fn check_config<P: AsRef<std::ffi::OsStr>>(files: &[P]) -> (Option<i32>, String) {
    let out = std::process::Command::new(binary())
        .arg("check-config")
        .args(files)
        .output()
        .expect("run check-config");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The config text for a gateway in front of `upstream` with `extra` TOML appended
/// (top-level keys in `top` go before any table).
pub fn config_text(
    top: &str,
    proxy: SocketAddr,
    admin: SocketAddr,
    upstream: SocketAddr,
    extra: &str,
) -> String {
    format!(
        "{top}\n[listen]\naddress = \"{proxy}\"\nthreads = 1\n[admin]\naddress = \"{admin}\"\n[[admin.tokens]]\nname = \"test\"\nenv = \"PORTCULLIS_ADMIN_TOKEN\"\n[upstream]\nmanagement = \"{upstream}\"\nread_timeout = \"2s\"\nconnect_timeout = \"1s\"\n{extra}\n"
    )
}

/// Starts `portcullis serve` with `top`/`extra` config around the standard listen/admin/upstream
/// sections and waits (bounded) until `/healthz` answers.
pub async fn spawn_gateway(top: &str, upstream: SocketAddr, extra: &str) -> Gateway {
    spawn_gateway_with_env(top, upstream, extra, &[]).await
}

/// Like [`spawn_gateway`], with extra environment variables for the process.
pub async fn spawn_gateway_with_env(
    top: &str,
    upstream: SocketAddr,
    extra: &str,
    env: &[(&str, &str)],
) -> Gateway {
    spawn_gateway_under(&[], top, upstream, extra, env).await
}

/// Like [`spawn_gateway_with_env`], started through `launcher` (a command that runs the rest of
/// its arguments, e.g. `prlimit --nofile=512 --`).
pub async fn spawn_gateway_under(
    launcher: &[&str],
    top: &str,
    upstream: SocketAddr,
    extra: &str,
    env: &[(&str, &str)],
) -> Gateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let (proxy, admin) = (free_addr(), free_addr());
    let config_path = dir.path().join("portcullis.toml");
    let mut extra = extra.to_owned();
    if !extra.contains("[store]") {
        let policy =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy/dev.toml");
        extra.push_str(&format!(
            "\n[store]\nkind = \"file\"\npolicy_file = {:?}\n",
            policy.display().to_string()
        ));
    }
    let audit_path = dir.path().join("audit.jsonl");
    if !extra.contains("[audit") {
        let file = audit_path.clone();
        extra.push_str(&format!(
            "\n[[audit.sinks]]\nkind = \"file\"\npath = {:?}\n",
            file.display().to_string()
        ));
    }
    let spool = dir.path().join("spool");
    extra.push_str(&format!(
        "\n[audit.spool]\ndir = {:?}\n",
        spool.display().to_string()
    ));
    std::fs::write(
        &config_path,
        config_text(top, proxy, admin, upstream, &extra),
    )
    .expect("write config");
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let (program, launch_args) = match launcher {
        [first, rest @ ..] => (*first, rest),
        [] => (binary(), &[][..]),
    };
    let binary_arg = (!launcher.is_empty()).then(binary);
    let child = Command::new(program)
        .args(launch_args)
        .args(binary_arg)
        .args(["--log-format", "json", "serve", "--config"])
        .arg(&config_path)
        .env("PORTCULLIS_LOG", "info")
        .env("PORTCULLIS_KEY_PEPPER", DEV_PEPPER)
        .env("PORTCULLIS_DEV_HS_SECRET", DEV_HS_SECRET)
        .env("PORTCULLIS_ADMIN_TOKEN", ADMIN_TOKEN)
        .envs(env.iter().copied())
        .stdout(Stdio::from(log.try_clone().expect("clone")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn portcullis");
    let gw = Gateway {
        proxy,
        admin,
        config_path,
        log_path,
        audit_path,
        spool_dir: spool,
        child,
        _dir: dir,
    };
    let url = format!("http://{admin}/healthz");
    wait_until(Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            client()
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await
    .unwrap_or_else(|| panic!("gateway did not become healthy; log:\n{}", gw.log()));
    // The admin and proxy services start independently: wait for the proxy listener too.
    wait_until(Duration::from_secs(30), || async move {
        tokio::net::TcpStream::connect(proxy).await.is_ok()
    })
    .await
    .unwrap_or_else(|| panic!("proxy listener did not open; log:\n{}", gw.log()));
    gw
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }
    /// An admin API request carrying the harness admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        client()
            .request(method, self.admin_url(path))
            .bearer_auth(ADMIN_TOKEN)
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
    /// Sends a signal to the gateway process.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
    /// Waits (bounded) for the process to exit and returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }
    /// The value of one metric sample line from `/metrics` (exact label set as rendered).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = client()
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
