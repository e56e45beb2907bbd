//! The Auditor against in-memory sinks: ordering, spooling, replay, drops, sampling, shutdown.

use super::*;
use prometheus::Registry;

fn metric(reg: &Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    for fam in reg.gather() {
        if fam.name() != name {
            continue;
        }
        for m in fam.get_metric() {
            let matches = labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            });
            if matches {
                if fam.get_field_type() == prometheus::proto::MetricType::COUNTER {
                    return m.get_counter().get_value();
                }
                return m.get_gauge().get_value();
            }
        }
    }
    0.0
}

#[tokio::test]
async fn every_sink_receives_every_event_in_order_with_the_instance_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (MemorySink::new("a"), MemorySink::new("b"));
    let reg = Registry::new();
    let auditor = Auditor::start_with_sinks(
        &test_config(dir.path()),
        vec![Box::new(a.clone()), Box::new(b.clone())],
        &reg,
    )
    .expect("start");
    let sent: Vec<_> = (0..300)
        .map(|_| {
            let e = fresh_deny();
            let id = e.event_id;
            assert!(auditor.record(e));
            id
        })
        .collect();
    assert!(wait_for(5, || a.ids().len() == 300 && b.ids().len() == 300).await);
    assert_eq!(a.ids(), sent);
    assert_eq!(b.ids(), sent);
    assert!(a
        .events
        .lock()
        .expect("lock")
        .iter()
        .all(|e| &*e.instance_id == "test-1"));
    assert_eq!(
        metric(
            &reg,
            "portcullis_audit_events_written_total",
            &[("sink", "a")]
        ),
        300.0
    );
    auditor.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn failing_sink_spools_and_replays_in_order_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::new("pg");
    let reg = Registry::new();
    let auditor =
        Auditor::start_with_sinks(&test_config(dir.path()), vec![Box::new(sink.clone())], &reg)
            .expect("start");
    let mut sent = Vec::new();
    for i in 0..600 {
        if i == 100 {
            sink.up.store(false, Ordering::SeqCst);
        }
        if i == 500 {
            // Down long enough that the spool must hold the events.
            assert!(
                wait_for(5, || metric(
                    &reg,
                    "portcullis_audit_spool_bytes",
                    &[("sink", "pg")]
                ) > 0.0)
                .await
            );
            assert_eq!(
                metric(&reg, "portcullis_audit_sink_up", &[("sink", "pg")]),
                0.0
            );
            sink.up.store(true, Ordering::SeqCst);
        }
        let e = fresh_deny();
        sent.push(e.event_id);
        auditor.record(e);
    }
    assert!(
        wait_for(10, || sink.ids().len() >= 600).await,
        "got {}",
        sink.ids().len()
    );
    assert_eq!(sink.ids(), sent, "replay must keep order and lose nothing");
    assert!(
        wait_for(5, || metric(
            &reg,
            "portcullis_audit_spool_bytes",
            &[("sink", "pg")]
        ) == 0.0)
        .await
    );
    assert_eq!(
        metric(&reg, "portcullis_audit_sink_up", &[("sink", "pg")]),
        1.0
    );
    auditor.shutdown(Duration::from_secs(2)).await;
    let left: Vec<_> = std::fs::read_dir(dir.path().join("pg"))
        .expect("spool dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .collect();
    assert!(left.is_empty(), "drained spool keeps no segments");
}

#[tokio::test]
async fn full_spool_drops_are_counted_per_sink_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::new("down");
    sink.up.store(false, Ordering::SeqCst);
    let mut cfg = test_config(dir.path());
    cfg.spool.max_bytes = 8192;
    cfg.spool.segment_bytes = 4096;
    let reg = Registry::new();
    let auditor =
        Auditor::start_with_sinks(&cfg, vec![Box::new(sink.clone())], &reg).expect("start");
    for _ in 0..200 {
        auditor.record(fresh_deny());
    }
    let report = auditor.shutdown(Duration::from_millis(200)).await;
    let dropped = metric(
        &reg,
        "portcullis_audit_events_dropped_total",
        &[("sink", "down"), ("reason", "spool_full")],
    );
    assert!(dropped > 0.0, "a full spool must count drops");
    let spool = spool::Spool::open(&cfg.spool, "down").expect("reopen");
    let kept = spool.read(1000).expect("read").events.len() as f64;
    assert_eq!(
        kept + dropped,
        200.0,
        "every event is either spooled or counted"
    );
    assert!(report.spooled_bytes > 0 && report.spooled_bytes <= 8192);
}

#[tokio::test]
async fn shutdown_flushes_queued_events_before_the_batch_is_due() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::new("slow");
    let mut cfg = test_config(dir.path());
    cfg.flush_interval = Duration::from_secs(3600);
    cfg.batch_size = 10_000;
    let reg = Registry::new();
    let auditor =
        Auditor::start_with_sinks(&cfg, vec![Box::new(sink.clone())], &reg).expect("start");
    for _ in 0..25 {
        auditor.record(fresh_deny());
    }
    let report = auditor.shutdown(Duration::from_secs(2)).await;
    assert_eq!(sink.ids().len(), 25);
    assert_eq!(report.writers_finished, 1);
    assert_eq!(report.spooled_bytes, 0);
    assert_eq!(metric(&reg, "portcullis_audit_queue_depth", &[]), 0.0);
}

#[tokio::test]
async fn events_recorded_after_shutdown_wait_in_the_spool_for_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = test_config(dir.path());
    let first = MemorySink::new("s");
    let auditor = Auditor::start_with_sinks(&cfg, vec![Box::new(first.clone())], &Registry::new())
        .expect("start");
    auditor.shutdown(Duration::from_secs(1)).await;
    let late = fresh_deny();
    let late_id = late.event_id;
    auditor.record(late);
    assert!(first.ids().is_empty());
    let second = MemorySink::new("s");
    let again = Auditor::start_with_sinks(&cfg, vec![Box::new(second.clone())], &Registry::new())
        .expect("restart");
    assert!(wait_for(5, || second.ids() == vec![late_id]).await);
    again.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_spills_to_the_spool_instead_of_dropping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::new("q");
    let mut cfg = test_config(dir.path());
    cfg.queue_capacity = 4;
    let reg = Registry::new();
    let auditor =
        Auditor::start_with_sinks(&cfg, vec![Box::new(sink.clone())], &reg).expect("start");
    let sent: std::collections::HashSet<_> = (0..2000)
        .map(|_| {
            let e = fresh_deny();
            let id = e.event_id;
            auditor.record(e);
            id
        })
        .collect();
    assert!(
        wait_for(10, || sink.ids().len() >= 2000).await,
        "got {}",
        sink.ids().len()
    );
    let got: std::collections::HashSet<_> = sink.ids().into_iter().collect();
    assert_eq!(got, sent);
    assert_eq!(sink.ids().len(), 2000, "no duplicates");
    let dropped: f64 = ["spool_full", "spool_error"]
        .iter()
        .map(|r| {
            metric(
                &reg,
                "portcullis_audit_events_dropped_total",
                &[("reason", r)],
            )
        })
        .sum();
    assert_eq!(dropped, 0.0);
    auditor.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn denies_are_recorded_even_when_allows_are_sampled_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = MemorySink::new("m");
    let mut cfg = test_config(dir.path());
    cfg.sample_allow = 0.0;
    let auditor = Auditor::start_with_sinks(&cfg, vec![Box::new(sink.clone())], &Registry::new())
        .expect("start");
    assert!(!auditor.record(sample_allow()));
    assert!(auditor.record(sample_deny()));
    auditor.shutdown(Duration::from_secs(1)).await;
    let events = sink.events.lock().expect("lock");
    assert_eq!(events.len(), 1);
    assert!(events[0].is_deny());
}

#[tokio::test]
async fn file_and_spool_output_never_contain_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("out/audit.jsonl");
    let down = MemorySink::new("down");
    down.up.store(false, Ordering::SeqCst);
    let file = jsonl::JsonlSink::file("file".into(), log.clone(), 1 << 20, 2).expect("file");
    let cfg = test_config(&dir.path().join("spool"));
    let auditor =
        Auditor::start_with_sinks(&cfg, vec![Box::new(file), Box::new(down)], &Registry::new())
            .expect("start");
    auditor.record(sample_allow());
    auditor.record(sample_deny());
    auditor.shutdown(Duration::from_millis(300)).await;
    let written = std::fs::read_to_string(&log).expect("log");
    assert_eq!(written.lines().count(), 2);
    let mut spooled = String::new();
    for e in std::fs::read_dir(dir.path().join("spool/down")).expect("spool") {
        spooled.push_str(&std::fs::read_to_string(e.expect("entry").path()).expect("read"));
    }
    assert!(
        spooled.contains("document.publish"),
        "the spool holds the events"
    );
    for out in [&written, &spooled] {
        assert!(!out.contains("SECRET"), "credential leaked: {out}");
    }
}

#[tokio::test]
async fn start_from_config_names_a_missing_secret_env_var_without_a_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = test_config(dir.path());
    cfg.sinks = vec![SinkConfig::Postgres {
        name: None,
        database_url_env: "PORTCULLIS_TEST_AUDIT_URL_THAT_IS_NOT_SET".into(),
    }];
    match Auditor::start(&cfg, &Registry::new()) {
        Err(AuditError::Env { var, .. }) => {
            assert_eq!(var, "PORTCULLIS_TEST_AUDIT_URL_THAT_IS_NOT_SET")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("started without a database url"),
    }
}

#[tokio::test]
async fn start_from_config_writes_file_sink_lines_and_disabled_audit_records_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let mut cfg = test_config(&dir.path().join("spool"));
    cfg.sinks = vec![SinkConfig::File {
        name: None,
        path: path.clone(),
        max_bytes: 1 << 20,
        keep: 2,
    }];
    let auditor = Auditor::start(&cfg, &Registry::new()).expect("start");
    assert!(auditor.record(sample_deny()));
    auditor.shutdown(Duration::from_secs(2)).await;
    let text = std::fs::read_to_string(&path).expect("file");
    let back: AuditEvent = serde_json::from_str(text.trim_end()).expect("json line");
    assert_eq!(&*back.instance_id, "test-1");

    cfg.enabled = false;
    let off = Auditor::start(&cfg, &Registry::new()).expect("start disabled");
    assert!(!off.record(sample_deny()));
}
