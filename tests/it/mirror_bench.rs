//! Measurement, not a test assertion (issue 13's closing note): `portcullis sync umbraco`, the
//! binary, against the fake Umbraco serving a 100,000-node document tree, 10,000 users and 50
//! groups, into a scratch Postgres database, under `/usr/bin/time -v`. Prints wall time and
//! peak RSS of a first sync (everything inserted) and of a second one (nothing changed).
//!
//! `benches/sync/run` runs it (`cargo test --test it mirror_bench -- --ignored --nocapture`);
//! `PCL_SYNC_NODES`, `PCL_SYNC_USERS`, `PCL_SYNC_GROUPS` change the sizes.

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::FakeUmbraco;
use crate::harness::binary;
use crate::mirror::{database, install, sync_config_text, SECRET};

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One `/usr/bin/time -v` line's value, e.g. `Maximum resident set size (kbytes)`.
fn time_field<'a>(stderr: &'a str, label: &str) -> &'a str {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim_start_matches(':').trim())
        .unwrap_or("?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with benches/sync/run"]
async fn mirror_bench_full_sync_of_a_large_site() {
    let (nodes, users, groups) = (
        size("PCL_SYNC_NODES", 100_000),
        size("PCL_SYNC_USERS", 10_000),
        size("PCL_SYNC_GROUPS", 50),
    );
    let mut s = install();
    let docs = s.add_bulk_tree(Tree::Document, None, nodes, 12);
    s.add_bulk_directory(groups, users, &docs);
    s.index_tree();
    let fake = FakeUmbraco::start(s).await;
    let (db, _pool) = database("mirror_bench").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("portcullis.toml");
    let text = sync_config_text(
        &fake,
        "[store]\nkind = \"postgres\"\ndatabase_url_env = \"MIRROR_DB\"\n",
    );
    std::fs::write(&config, text).expect("config");
    println!("mirror bench: {nodes} document nodes (fan-out 12), {users} users, {groups} groups");
    for round in ["first sync", "second sync (no change)"] {
        let (config, url) = (config.clone(), db.url());
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("/usr/bin/time")
                .arg("-v")
                .arg(binary())
                .args(["sync", "umbraco", "--config"])
                .arg(&config)
                .env("MIRROR_SECRET", SECRET)
                .env("MIRROR_DB", url)
                // Logs share stdout with the report: keep them to errors.
                .env("PORTCULLIS_LOG", "error")
                .output()
                .expect("run /usr/bin/time")
        })
        .await
        .expect("join");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{err}", String::from_utf8_lossy(&out.stdout)));
        println!(
            "{round}: wall {} (m:ss), peak RSS {} KiB, CPU {}, changed {}, report duration {} ms",
            time_field(&err, "Elapsed (wall clock) time (h:mm:ss or m:ss)"),
            time_field(&err, "Maximum resident set size (kbytes)"),
            time_field(&err, "Percent of CPU this job got"),
            report["changed"],
            report["duration_ms"],
        );
        println!("  {}", report["kinds"]);
    }
}
