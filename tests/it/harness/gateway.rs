//! The gateway under test: `spawn_gateway()` runs the real `portcullis` binary with a generated
//! config on free ports and waits until it is healthy.

use super::client;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The DEV-ONLY secrets `config/policy/dev.toml` and the test issuer use.
pub const DEV_PEPPER: &str = portcullis::dev::DEV_PEPPER;
pub const DEV_HS_SECRET: &str = portcullis::dev::DEV_HS_SECRET;
/// The admin token every harness gateway accepts (token name `test`).
pub const ADMIN_TOKEN: &str = "portcullis-test-admin-token-0123456789abcdef";

/// Top-level config for a gateway in front of the whole site: paths outside the protected
/// prefixes (the tests' `/site/…`) are forwarded unchecked. The default is to deny them.
pub const SITE: &str = "routes.passthrough_outside_prefixes = true";

/// A port on 127.0.0.1 that refuses connections: bound without listening, and held (so no other
/// test, and no port [`free_addrs`] hands out, can take it) until this is dropped.
pub struct ClosedPort {
    pub addr: SocketAddr,
    _socket: tokio::net::TcpSocket,
}

pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    ClosedPort {
        addr: socket.local_addr().expect("addr"),
        _socket: socket,
    }
}

/// `N` distinct free ports on 127.0.0.1: all are held at once, so no two are the same (picking
/// them one by one can hand the same released port out twice), then released.
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let held: Vec<_> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("addr"))
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
///
/// The ports are released before the gateway binds them, so another test may take one in
/// between; pingora then logs "… is in use, will try again" and keeps trying. Such a gateway is
/// stopped and started again on new ports (at most three tries); any other failure to become
/// healthy panics with the gateway's log.
pub async fn spawn_gateway_under(
    launcher: &[&str],
    top: &str,
    upstream: SocketAddr,
    extra: &str,
    env: &[(&str, &str)],
) -> Gateway {
    let launch = Launch {
        launcher,
        top,
        upstream,
        extra,
        env,
    };
    for _ in 0..3 {
        let mut gw = start_gateway(free_addrs(), &launch);
        match wait_healthy(&mut gw).await {
            Healthy::Yes => return gw,
            Healthy::PortTaken => continue,
            Healthy::No => panic!("gateway did not become healthy; log:\n{}", gw.log()),
        }
    }
    panic!("gateway found its ports taken three times")
}

/// What a gateway is started with, beside its ports.
struct Launch<'a> {
    launcher: &'a [&'a str],
    top: &'a str,
    upstream: SocketAddr,
    extra: &'a str,
    env: &'a [(&'a str, &'a str)],
}

/// Writes the config (listening on `proxy` and `admin`) and starts the process.
fn start_gateway([proxy, admin]: [SocketAddr; 2], launch: &Launch<'_>) -> Gateway {
    let Launch {
        launcher,
        top,
        upstream,
        extra,
        env,
    } = *launch;
    let dir = tempfile::tempdir().expect("tempdir");
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
    Gateway {
        proxy,
        admin,
        config_path,
        log_path,
        audit_path,
        spool_dir: spool,
        child,
        _dir: dir,
    }
}

enum Healthy {
    Yes,
    /// Another process holds one of its ports.
    PortTaken,
    /// It exited, or it was not healthy within the bound.
    No,
}

/// Waits (bounded) until `/healthz` answers 200 and the proxy listener accepts (the admin and
/// proxy services start independently), or the gateway exits or says a port is taken.
async fn wait_healthy(gw: &mut Gateway) -> Healthy {
    let url = gw.admin_url("/healthz");
    let port_taken = |gw: &Gateway| gw.log().contains(" is in use, will try again");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut healthy = false;
    while Instant::now() < deadline {
        if port_taken(gw) {
            return Healthy::PortTaken;
        }
        if let Ok(Some(_)) = gw.child.try_wait() {
            return Healthy::No;
        }
        if !healthy {
            let answer = client().get(&url).send().await;
            healthy = answer.is_ok_and(|r| r.status() == 200);
        }
        if healthy && tokio::net::TcpStream::connect(gw.proxy).await.is_ok() {
            // Both answered; they were this gateway's unless it failed to bind one.
            return if port_taken(gw) {
                Healthy::PortTaken
            } else {
                Healthy::Yes
            };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Healthy::No
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

/// The retry above depends on pingora's words for a taken port: a gateway started on a port
/// another socket listens on is seen as `PortTaken`, not as healthy (the other socket accepts
/// connections) and not after the 30 s bound.
#[tokio::test]
async fn a_gateway_on_a_taken_port_is_seen_as_such() {
    let thief = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let [admin] = free_addrs();
    let taken = [thief.local_addr().expect("addr"), admin];
    let upstream = closed_port();
    let launch = Launch {
        launcher: &[],
        top: SITE,
        upstream: upstream.addr,
        extra: "",
        env: &[],
    };
    let mut gw = start_gateway(taken, &launch);
    assert!(
        matches!(wait_healthy(&mut gw).await, Healthy::PortTaken),
        "{}",
        gw.log()
    );
}
