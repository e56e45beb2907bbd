//! Stopping the real binary with signals: the drain (readiness first, then the listener, then
//! in-flight requests) and the audit trail on the way out (written or spooled, never lost).

use crate::harness::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A client that keeps connections alive between requests, as a load balancer's would.
fn keepalive_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// The `X-Portcullis-Decision-Id` of each answered request (its audit event id).
type Ids = Arc<Mutex<Vec<String>>>;

fn decision_id(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-portcullis-decision-id")
        .and_then(|v| v.to_str().ok())
        .expect("every answer names its audit event")
        .to_owned()
}

/// Event ids written to a JSON-lines audit file.
fn ids_in_jsonl(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["event_id"].as_str().map(str::to_owned))
        .collect()
}

/// Event ids waiting in a sink's spool (`{checksum} {json}` lines in `*.seg` files).
fn ids_in_spool(dir: &std::path::Path) -> Vec<String> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "seg") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines() {
                let json = line.get(17..).unwrap_or_default();
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
                    ids.extend(v["event_id"].as_str().map(str::to_owned));
                }
            }
        }
    }
    ids
}

#[tokio::test]
async fn a_load_loop_across_sigterm_has_zero_failed_requests_and_the_listener_closes_after_the_drain_delay(
) {
    let up = Upstream::start().await;
    let lifecycle = "[lifecycle]\ndrain_delay = \"2s\"\ngrace_period = \"15s\"";
    // The slow request below outlasts the harness's 2 s upstream read timeout.
    let env = [("PORTCULLIS_UPSTREAM__READ_TIMEOUT", "20s")];
    let mut gw = spawn_gateway_with_env(SITE, up.addr, lifecycle, &env).await;
    // The load balancer: sends while `/readyz` says ready (polled every 50 ms).
    let sending = Arc::new(AtomicBool::new(true));
    let answered = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..6 {
        let (sending, answered, failures) = (sending.clone(), answered.clone(), failures.clone());
        let url = gw.url(&format!("/site/load/{w}?delay_ms=10"));
        workers.push(tokio::spawn(async move {
            let c = keepalive_client();
            let start = Instant::now();
            // Bounded: stops when the balancer stops sending, at 3000 requests or after 60 s.
            for _ in 0..3000 {
                if !sending.load(Ordering::SeqCst) || start.elapsed() > Duration::from_secs(60) {
                    break;
                }
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failures.lock().expect("lock").push(r.status().to_string()),
                    Err(e) => failures.lock().expect("lock").push(e.to_string()),
                }
            }
        }));
    }
    wait_until(Duration::from_secs(30), || async {
        answered.load(Ordering::SeqCst) >= 100
    })
    .await
    .expect("load is flowing");
    // In flight when the listener closes: must still be answered.
    let slow_url = gw.url("/site/slow?delay_ms=5000");
    let slow = tokio::spawn(async move { client().get(slow_url).send().await });
    wait_until(Duration::from_secs(10), || async {
        up.requests().iter().any(|r| r.uri.contains("/site/slow"))
    })
    .await
    .expect("the slow request reached the upstream");

    gw.signal("TERM");
    let readyz = gw.admin_url("/readyz");
    wait_until(Duration::from_secs(10), || {
        let readyz = readyz.clone();
        async move {
            client()
                .get(&readyz)
                .send()
                .await
                .is_ok_and(|r| r.status() == 503)
        }
    })
    .await
    .expect("/readyz turns 503 after SIGTERM");
    sending.store(false, Ordering::SeqCst);
    // Not ready, still serving: the answer tells the client not to reuse the connection.
    let during = client()
        .get(gw.url("/site/during-drain"))
        .send()
        .await
        .expect("the listener still accepts during the drain delay");
    assert_eq!(during.status(), 200);
    assert_eq!(
        during.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    for w in workers {
        w.await.expect("worker");
    }
    let failed = failures.lock().expect("lock").clone();
    assert_eq!(
        failed,
        Vec::<String>::new(),
        "failed requests across SIGTERM"
    );

    // After the drain delay the listener refuses new connections while the slow one runs on.
    let proxy = gw.proxy;
    wait_until(Duration::from_secs(20), || async move {
        tokio::net::TcpStream::connect(proxy).await.is_err()
    })
    .await
    .expect("the listener closes after the drain delay");
    assert!(!slow.is_finished(), "the slow request is still in flight");
    let slow = slow
        .await
        .expect("join")
        .expect("in-flight request answered");
    assert_eq!(slow.status(), 200);
    assert_eq!(
        gw.wait_exit(Duration::from_secs(30)).await,
        Some(0),
        "log:\n{}",
        gw.log()
    );
    println!(
        "drain: {} requests answered, 0 failed",
        answered.load(Ordering::SeqCst)
    );
}

/// Sends `n` requests (8 at a time) and returns the decision ids of the answers.
async fn answered_ids(gw: &Gateway, n: usize) -> Vec<String> {
    let ids: Ids = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (ids, base) = (ids.clone(), gw.url("/site/audited"));
        tasks.push(tokio::spawn(async move {
            let c = keepalive_client();
            for i in (t..n).step_by(8) {
                let r = c.get(format!("{base}/{i}")).send().await.expect("answer");
                assert_eq!(r.status(), 200);
                ids.lock().expect("lock").push(decision_id(&r));
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    let ids = ids.lock().expect("lock").clone();
    ids
}

#[tokio::test]
async fn sigterm_writes_every_queued_audit_event_to_a_working_sink_before_exiting() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    // Nothing is written on its own for a minute: only the shutdown flush can write them.
    let extra = format!(
        "[lifecycle]\ndrain_delay = \"0s\"\n[audit]\nflush_interval = \"60s\"\nbatch_size = 100000\n\
         [[audit.sinks]]\nkind = \"file\"\npath = {:?}\n",
        file.display().to_string()
    );
    let mut gw = spawn_gateway(SITE, up.addr, &extra).await;
    let sent = answered_ids(&gw, 300).await;
    assert!(
        ids_in_jsonl(&file).is_empty(),
        "nothing flushed before the stop"
    );
    gw.signal("TERM");
    assert_eq!(
        gw.wait_exit(Duration::from_secs(30)).await,
        Some(0),
        "log:\n{}",
        gw.log()
    );
    let written = ids_in_jsonl(&file);
    let unique: HashSet<&String> = written.iter().collect();
    assert_eq!(unique.len(), written.len(), "each event once");
    let missing: Vec<&String> = sent.iter().filter(|id| !unique.contains(id)).collect();
    assert!(missing.is_empty(), "{} of 300 events lost", missing.len());
}

/// Accepts connections and never answers: a webhook sink that hangs every write.
async fn black_hole() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

#[tokio::test]
async fn sigterm_with_a_hung_sink_spools_every_event_before_exiting() {
    let up = Upstream::start().await;
    let hole = black_hole().await;
    let extra = format!(
        "[lifecycle]\ndrain_delay = \"0s\"\n[audit]\nflush_interval = \"100ms\"\nwrite_timeout = \"3s\"\n\
         [[audit.sinks]]\nkind = \"webhook\"\nurl = \"http://{hole}/events\"\n"
    );
    let mut gw = spawn_gateway(SITE, up.addr, &extra).await;
    let sent = answered_ids(&gw, 200).await;
    gw.signal("TERM");
    assert_eq!(
        gw.wait_exit(Duration::from_secs(30)).await,
        Some(0),
        "log:\n{}",
        gw.log()
    );
    let spooled = ids_in_spool(&gw.spool_dir.join("webhook"));
    let unique: HashSet<&String> = spooled.iter().collect();
    let missing: Vec<&String> = sent.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of 200 events neither written nor spooled",
        missing.len()
    );
}

#[tokio::test]
async fn sigint_with_a_hung_sink_cuts_the_write_short_and_spools_every_event() {
    let up = Upstream::start().await;
    let hole = black_hole().await;
    // The write would hang for 60 s; a stop must not wait for it, nor lose its batch.
    let extra = format!(
        "[audit]\nflush_interval = \"100ms\"\nwrite_timeout = \"60s\"\n\
         [[audit.sinks]]\nkind = \"webhook\"\nurl = \"http://{hole}/events\"\n"
    );
    let mut gw = spawn_gateway(SITE, up.addr, &extra).await;
    let sent = answered_ids(&gw, 200).await;
    gw.signal("INT");
    assert_eq!(
        gw.wait_exit(Duration::from_secs(30)).await,
        Some(0),
        "log:\n{}",
        gw.log()
    );
    let spooled = ids_in_spool(&gw.spool_dir.join("webhook"));
    let unique: HashSet<&String> = spooled.iter().collect();
    let missing = sent.iter().filter(|id| !unique.contains(id)).count();
    assert_eq!(missing, 0, "events neither written nor spooled");
}
