//! The mirror's file target (`portcullis::mirror::to_file`, `portcullis sync umbraco` with a
//! file store) against the fake Umbraco: Umbraco's rows written into the policy file,
//! Portcullis's rows and the operator's comments kept, node numbers stable across moves, a
//! failed read or an invalid result leaving the file untouched.

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::FakeUmbraco;
use crate::mirror::{install, reader, sync_config, sync_config_text, SECRET};
use portcullis::mirror::to_file::sync_file;
use portcullis::mirror::SyncError;
use portcullis::store::policy_file::{Origin, PolicyFile};
use portcullis::store::StoreError;
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

const PARTNERS: Uuid = Uuid::from_u128(0x5a17_0001);
const PARTNER: Uuid = Uuid::from_u128(0x5a17_0002);
const GONE: Uuid = Uuid::from_u128(0x5a17_0003);

/// A policy file an operator kept: a comment, a local group with a granular entry on `node`, a
/// local user, a group mapping, an Umbraco user Umbraco no longer has, and `numbered` already
/// numbered 42.
fn kept_policy(node: Uuid, numbered: Uuid) -> String {
    format!(
        "# operator note: partners come from the external IdP\n\n\
         [[groups]]\nkey = \"{PARTNERS}\"\nalias = \"partners\"\nname = \"Partners\"\n\
         sections = [\"content\"]\ndefault_verbs = [\"Umb.Document.Read\"]\norigin = \"local\"\n\n\
         [[users]]\nkey = \"{PARTNER}\"\nexternal_id = \"ext-partner\"\nname = \"Partner\"\n\
         groups = [\"partners\"]\norigin = \"local\"\n\n\
         [[users]]\nkey = \"{GONE}\"\nexternal_id = \"gone\"\nname = \"Gone\"\n\n\
         [[nodes]]\nkey = \"{numbered}\"\nid = 42\nkind = \"document\"\n\n\
         [[permissions]]\ngroup = \"partners\"\nnode = \"{node}\"\nverbs = [\"Umb.Document.Update\"]\n\n\
         [[group_mappings]]\nissuer = \"idp\"\nidp_group = \"partners\"\ngroups = [\"partners\"]\n"
    )
}

fn load(path: &Path) -> (String, PolicyFile) {
    let text = std::fs::read_to_string(path).expect("policy file");
    let file = PolicyFile::parse(&text, "synced").expect("parses");
    (text, file)
}

fn ids(file: &PolicyFile) -> HashMap<Uuid, i64> {
    file.nodes.iter().map(|n| (n.key, n.id)).collect()
}

#[tokio::test]
async fn a_file_sync_writes_umbracos_rows_and_keeps_portcullis_rows_and_comments() {
    let mut s = install();
    let docs = s.add_bulk_tree(Tree::Document, None, 200, 4);
    s.add_bulk_tree(Tree::Media, None, 20, 2);
    s.trash(docs[10]);
    let writer = s.group_key("writer");
    s.grant(writer, docs[3], &["Umb.Document.Read"]);
    s.add_user("carol", &["writer", "editor"]);
    let fake = FakeUmbraco::start(s).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, kept_policy(docs[3], docs[5])).expect("policy");

    let report = sync_file(&reader(&fake), &sync_config(), &path)
        .await
        .expect("sync");
    assert_eq!(report.kinds["nodes"].inserted, 219, "{report:?}");
    assert_eq!(report.kinds["users"].deleted, 1, "{report:?}");

    let (text, file) = load(&path);
    assert!(text.starts_with("# operator note"), "comment lost:\n{text}");
    file.validate()
        .expect("the written file loads as serve loads it");
    portcullis::store::FileStore::open(&path).expect("the file store opens it");
    assert_eq!(file.nodes.len(), 220);
    assert_eq!(ids(&file)[&docs[5]], 42, "a numbered node keeps its number");
    assert!(file
        .nodes
        .iter()
        .filter(|n| n.key != docs[5])
        .all(|n| n.id >= 1_000_000_000));
    let trashed = file.nodes.iter().find(|n| n.key == docs[10]).expect("node");
    assert!(trashed.trashed && trashed.parent.is_none());
    // Portcullis's rows are kept as they were.
    let partners = file
        .groups
        .iter()
        .find(|g| g.key == PARTNERS)
        .expect("kept");
    assert_eq!(partners.origin, Origin::Local);
    assert!(file.users.iter().any(|u| u.key == PARTNER));
    assert_eq!(file.group_mappings.len(), 1);
    assert!(file
        .permissions
        .iter()
        .any(|p| p.group == "partners" && p.node == docs[3]));
    // Umbraco's rows follow Umbraco.
    assert!(!file.users.iter().any(|u| u.key == GONE));
    let carol = file
        .users
        .iter()
        .find(|u| u.external_id == "carol")
        .expect("carol");
    assert_eq!(carol.groups, ["editor", "writer"]);
    let entry = file
        .permissions
        .iter()
        .find(|p| p.group == "writer" && p.node == docs[3])
        .expect("writer's granular entry");
    assert_eq!(entry.verbs, ["Umb.Document.Read"]);
}

#[tokio::test]
async fn a_move_keeps_every_number_and_a_second_sync_rewrites_nothing() {
    let mut s = install();
    let docs = s.add_bulk_tree(Tree::Document, None, 120, 4);
    let fake = FakeUmbraco::start(s).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    let (r, cfg) = (reader(&fake), sync_config());
    sync_file(&r, &cfg, &path).await.expect("first sync");
    let (_, before) = load(&path);
    let routed = |f: &portcullis::store::policy_file::PolicyFile, k: uuid::Uuid| {
        f.nodes
            .iter()
            .find(|n| n.key == k)
            .and_then(|n| n.route_path.clone())
    };
    let old_route = routed(&before, docs[20]).expect("a published node has a route");
    fake.with(|s| s.move_node(docs[20], Some(docs[1])));
    let moved = fake.with(|s| s.subtree(docs[20]).len()) as u64;
    let report = sync_file(&r, &cfg, &path).await.expect("sync after a move");
    let nodes = &report.kinds["nodes"];
    // The moved node's parent, and the routes of its whole subtree.
    assert_eq!(
        (nodes.inserted, nodes.updated, nodes.deleted),
        (0, moved, 0),
        "{report:?}"
    );
    let (text, after) = load(&path);
    assert_ne!(routed(&after, docs[20]), Some(old_route));
    assert!(routed(&after, docs[20]).is_some());
    assert_eq!(ids(&after), ids(&before), "numbers changed");
    let moved = after
        .nodes
        .iter()
        .find(|n| n.key == docs[20])
        .expect("moved");
    assert_eq!(moved.parent, Some(docs[1]));
    let report = sync_file(&r, &cfg, &path).await.expect("third sync");
    assert_eq!(report.kinds.values().map(|k| k.changed()).sum::<u64>(), 0);
    assert_eq!(load(&path).0, text, "an unchanged Umbraco rewrote the file");
}

#[tokio::test]
async fn a_failed_read_or_an_invalid_result_leaves_the_file_as_it_was() {
    let mut s = install();
    let docs = s.add_bulk_tree(Tree::Document, None, 60, 4);
    let fake = FakeUmbraco::start(s).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, kept_policy(docs[3], docs[5])).expect("policy");
    let (r, cfg) = (reader(&fake), sync_config());
    sync_file(&r, &cfg, &path).await.expect("first sync");
    let before = std::fs::read(&path).expect("read");

    fake.with(|s| {
        s.add_user("dave", &["editor"]);
        s.fail_after.insert("users", 0);
    });
    let err = sync_file(&r, &cfg, &path).await.expect_err("users fail");
    assert!(matches!(err, SyncError::Umbraco(_)), "{err:?}");
    assert_eq!(std::fs::read(&path).expect("read"), before);

    // Umbraco deletes the node the local group's entry names: the result would not load, so
    // nothing is written and the problem is named.
    fake.with(|s| {
        s.fail_after.clear();
        s.delete_node(docs[3]);
    });
    let err = sync_file(&r, &cfg, &path).await.expect_err("invalid");
    match err {
        SyncError::Store(StoreError::InvalidPolicy(problems)) => assert!(
            problems.iter().any(|p| p.contains(&docs[3].to_string())),
            "{problems:?}"
        ),
        other => panic!("expected an invalid policy, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

// The binary runs blocking on this thread: the fake answers from the other worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portcullis_sync_umbraco_writes_a_file_stores_policy_file_that_check_config_accepts() {
    let mut s = install();
    s.add_bulk_tree(Tree::Document, None, 30, 3);
    s.add_user("carol", &["editor"]);
    let fake = FakeUmbraco::start(s).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, policy) = (
        dir.path().join("portcullis.toml"),
        dir.path().join("p.toml"),
    );
    let store = format!(
        "[store]\nkind = \"file\"\npolicy_file = \"{}\"\n",
        policy.display()
    );
    let text = sync_config_text(&fake, &store);
    std::fs::write(&config, text).expect("config");
    let out = std::process::Command::new(crate::harness::binary())
        .args(["sync", "umbraco", "--config"])
        .arg(&config)
        .env("MIRROR_SECRET", SECRET)
        .env("PORTCULLIS_ADMIN_TOKEN", "unused")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["kinds"]["nodes"]["inserted"], 30, "{report}");
    let (_, file) = load(&policy);
    assert!(file.users.iter().any(|u| u.external_id == "carol"));
    let (code, stdout) = crate::harness::check_config(&[config.as_path()]);
    assert_eq!(code, Some(0), "{stdout}");
}
