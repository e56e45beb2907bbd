//! A policy file parsed in pieces (`policy_parse`) is the file parsed whole: the same lists
//! in the same order, the same error (message, line and column) when it is invalid, and the
//! file store loads and reloads such a file as before.

use super::policy_file::{GroupEntry, NodeEntry, Origin, PermissionEntry, PolicyFile, UserEntry};
use super::policy_parse::{cuts, parse_in};
use super::tests::node_key;
use super::{FileStore, PolicyStore, StoreError};
use crate::authz::{NodeKind, UserState};
use uuid::Uuid;

/// A policy of `n` nodes in a tree of fan-out 12, 2 groups, users and granular entries.
fn generated(n: u128) -> PolicyFile {
    let group = |alias: &str, key: u128| GroupEntry {
        key: Uuid::from_u128(key),
        alias: alias.into(),
        name: alias.to_uppercase(),
        sections: vec!["content".into()],
        default_verbs: vec!["Umb.Document.Read".into()],
        content_start: Some(super::policy_file::StartRef::Root),
        media_start: None,
        all_languages: true,
        languages: vec![],
        origin: Origin::Local,
    };
    let nodes = (1..=n).map(|i| NodeEntry {
        key: node_key(i),
        id: 1000 + i as i64,
        parent: (i > 1).then(|| node_key(i / 12 + 1).min(node_key(i - 1))),
        kind: NodeKind::Document,
        trashed: false,
        route_path: Some(format!("/n{i}/")),
    });
    let users = (0..n / 10).map(|i| UserEntry {
        key: Uuid::from_u128(0x5000_0000 + i),
        external_id: format!("u{i}"),
        name: format!("User {i}"),
        email: None,
        state: UserState::Active,
        groups: vec![if i % 2 == 0 { "bulk0" } else { "bulk1" }.into()],
        content_start: vec![],
        media_start: vec![],
        origin: Origin::Umbraco,
    });
    let permissions = (1..=n / 20).map(|i| PermissionEntry {
        group: "bulk0".into(),
        node: node_key(i * 20),
        verbs: vec!["Umb.Document.Update".into()],
    });
    PolicyFile {
        groups: vec![group("bulk0", 0x7000), group("bulk1", 0x7001)],
        users: users.collect(),
        nodes: nodes.collect(),
        permissions: permissions.collect(),
        ..PolicyFile::default()
    }
}

fn whole(text: &str) -> Result<PolicyFile, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn a_large_file_in_pieces_is_the_file_parsed_whole() {
    let file = generated(6_000);
    let text = toml::to_string(&file).expect("serialises");
    assert!(text.len() > 4 * 256 * 1024, "{} bytes", text.len());
    assert!(cuts(&text, 256 * 1024).len() >= 4);
    let parsed = parse_in(&text, 256 * 1024).expect("parses");
    assert_eq!(parsed, file);
    assert_eq!(
        parse_in(&text, 0).expect("parses"),
        file,
        "one piece per header"
    );
    let with_empty = format!("empty = false\n{text}");
    assert_eq!(parse_in(&with_empty, 0).expect("parses"), file);
}

#[test]
fn only_top_level_list_headers_at_a_line_start_cut_the_file() {
    let text = r#"
[[groups]]
key = "00000000-0000-0000-0000-000000007000"
alias = "a"
name = """
[[nodes]]
key = "not a header"
"""
[[users]] # a comment
key = "00000000-0000-0000-0000-000000005000"
external_id = 'x'
name = '''
[[users]]
'''
groups = [
  "a",
]
[[users.groups]]
"#;
    // `[[groups]]`, `[[users]]`; not the ones in strings nor `[[users.groups]]`.
    let at: Vec<usize> = cuts(text, 0);
    let expected: Vec<usize> = [text.find("[[groups]]"), text.find("[[users]] #")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(at, expected);
    // `[[users.groups]]` extends a static array: the whole document's error, as is.
    assert_eq!(
        parse_in(text, 0).expect_err("invalid").to_string(),
        whole(text).expect_err("invalid").to_string()
    );
    let valid = text.replace("[[users.groups]]\n", "");
    let parsed = parse_in(&valid, 0).expect("parses");
    assert_eq!(parsed, whole(&valid).expect("parses"));
    assert_eq!(parsed.groups[0].name, "[[nodes]]\nkey = \"not a header\"\n");
    assert_eq!(parsed.users[0].name, "[[users]]\n");
}

#[test]
fn an_invalid_file_gets_the_error_of_the_whole_document() {
    let base = toml::to_string(&generated(300)).expect("serialises");
    let node = "[[nodes]]\nkey = \"00000000-0000-0000-0000-00000000ffff\"\nid = 99999\nkind = \"document\"\n";
    let cases = [
        // A syntax error in the last piece.
        format!("{base}{node}route_path = \n"),
        // A field no node has.
        format!("{base}{node}colour = \"red\"\n"),
        // A key twice in one table.
        format!("{base}{node}id = 99998\n"),
        // A table of the last node, after another list's header.
        format!("{base}[[users]]\nkey = \"00000000-0000-0000-0000-00000000fff0\"\nexternal_id = \"z\"\nname = \"z\"\n[nodes.extra]\na = 1\n"),
        // An inline list at the top cannot be extended by `[[nodes]]` later.
        format!("nodes = []\n{base}"),
        // Only `empty` is a top-level key; `[empty]` later is a table.
        format!("empty = true\n{base}[empty]\n"),
        // A value of the wrong type deep in the file.
        format!("{base}{}", node.replace("99999", "\"x\"")),
    ];
    for text in &cases {
        let expected = whole(text)
            .expect_err("the whole document is invalid")
            .to_string();
        assert!(expected.contains("line "), "{expected}");
        for size in [0, 1024, 256 * 1024] {
            let got = parse_in(text, size).expect_err("invalid").to_string();
            assert_eq!(got, expected, "pieces of {size} bytes");
        }
        let Err(StoreError::ParseFile { path, source }) = PolicyFile::parse(text, "p.toml") else {
            panic!("a parse error");
        };
        assert_eq!((path.as_str(), source.to_string()), ("p.toml", expected));
    }
}

fn write(path: &std::path::Path, text: &str, secs: u64) {
    std::fs::write(path, text).expect("write");
    // A distinct modification time, so the reload sees each write.
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + secs);
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(at).expect("set mtime");
}

#[tokio::test]
async fn a_large_file_store_reloads_and_keeps_its_policy_on_an_invalid_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.toml");
    let mut file = generated(6_000);
    let text = toml::to_string(&file).expect("serialises");
    write(&path, &text, 1);
    let store = FileStore::open(&path).expect("opens");
    let last = node_key(6_000);
    let node = store.node(last).await.expect("ok").expect("listed");
    assert_eq!(node.id, 7_000);
    assert!(store
        .user_by_external_id("u599")
        .await
        .expect("ok")
        .is_some());

    // An error in the last piece: the whole document's error, the old policy kept.
    let broken = format!("{text}[[nodes]]\nkey = 1\n");
    write(&path, &broken, 2);
    let err = store.reload_if_changed().expect_err("invalid");
    let expected = whole(&broken).expect_err("invalid").to_string();
    let StoreError::ParseFile { source, .. } = &err else {
        panic!("a parse error: {err}");
    };
    assert_eq!(source.to_string(), expected);
    assert_eq!(
        store.node(last).await.expect("ok").map(|n| n.id),
        Some(7_000)
    );

    // Valid but inconsistent (a user in an unknown group): refused, old policy kept.
    file.users[0].groups = vec!["nope".into()];
    write(&path, &toml::to_string(&file).expect("serialises"), 3);
    let Err(StoreError::InvalidPolicy(p)) = store.reload_if_changed() else {
        panic!("an invalid policy");
    };
    assert_eq!(p, vec!["users[0].groups: unknown group `nope`".to_owned()]);
    assert!(store.node(last).await.expect("ok").is_some());

    // A valid change swaps in.
    file.users[0].groups = vec!["bulk1".into()];
    file.nodes.pop();
    file.permissions.pop(); // the popped node's entry
    write(&path, &toml::to_string(&file).expect("serialises"), 4);
    assert!(store.reload_if_changed().expect("reloads"));
    assert_eq!(store.node(last).await.expect("ok"), None);
    let u0 = store
        .user_by_external_id("u0")
        .await
        .expect("ok")
        .expect("u0");
    assert_eq!(u0.group_aliases, vec!["bulk1".to_owned()]);
    assert!(!store.reload_if_changed().expect("unchanged"));
}
