//! Not a test assertion: writes the seeded policy file the mixed workload of
//! `benches/load/run` (issue 15) serves from. The mirror bench's generator (`add_bulk_tree`,
//! fan-out 12; `add_bulk_directory`) fills the fake Umbraco with 100,000 document nodes,
//! 10,000 users and 50 groups; each group then gets granular entries up to 5,000 in all, one in
//! ten of them without `Umb.Document.Read` (so a read below it is denied); the mirror's file
//! target (`sync_file`, what `portcullis sync umbraco` does with a file store) writes it all to
//! `PCL_LOAD_SEED`.
//!
//! `benches/load/seed` runs it (`cargo test --test it load_seed -- --ignored --nocapture`);
//! `PCL_SYNC_NODES`, `PCL_SYNC_USERS`, `PCL_SYNC_GROUPS`, `PCL_SEED_ENTRIES` change the sizes.

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::FakeUmbraco;
use crate::mirror::{install, reader, sync_config};
use portcullis::mirror::to_file::sync_file;

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "generator: run with benches/load/seed"]
async fn load_seed_writes_the_seeded_policy_file() {
    let path = std::env::var("PCL_LOAD_SEED").expect("PCL_LOAD_SEED: where to write the file");
    let (nodes, users, groups, entries) = (
        size("PCL_SYNC_NODES", 100_000),
        size("PCL_SYNC_USERS", 10_000),
        size("PCL_SYNC_GROUPS", 50),
        size("PCL_SEED_ENTRIES", 5_000),
    );
    let mut s = install();
    let docs = s.add_bulk_tree(Tree::Document, None, nodes, 12);
    let group_keys = s.add_bulk_directory(groups, users, &docs);
    // add_bulk_directory gave each group one entry; the rest are spread over the tree by a
    // fixed stride (deterministic for a given size), every tenth without Read.
    let per_group = entries / groups.max(1);
    for (g, group) in group_keys.iter().enumerate() {
        for j in 1..per_group {
            let node = docs[(g * per_group + j) * 7_919 % docs.len()];
            let verbs: &[&str] = if j % 10 == 0 {
                &["Umb.Document.Update"]
            } else {
                &["Umb.Document.Read", "Umb.Document.Update"]
            };
            s.grant(*group, node, verbs);
        }
    }
    s.index_tree();
    let fake = FakeUmbraco::start(s).await;
    let report = sync_file(&reader(&fake), &sync_config(), std::path::Path::new(&path))
        .await
        .expect("file sync");
    println!(
        "load seed: {nodes} document nodes (fan-out 12), {users} users, {groups} groups, \
         {per_group} entries per group -> {path} in {} ms",
        report.duration_ms
    );
}
