//! Unit tests of the policy file (parsing, checks, built-in groups) and the file store
//! (reloads, own start nodes); no database.

use super::tests::{dev_file, metrics, node_key, STALENESS};
use super::*;
use crate::authz::ROOT_ID;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[test]
fn the_dev_policy_file_is_valid() {
    let text = std::fs::read_to_string(dev_file()).expect("readable");
    let f = PolicyFile::parse(&text, "dev.toml").expect("parses");
    f.validate().expect("valid");
    assert_eq!(f.groups.len(), 5);
    assert_eq!(f.normalized().groups, {
        let mut b = policy_file::builtin_groups();
        b.sort_by(|x, y| x.alias.cmp(&y.alias));
        b
    });
}

#[test]
fn built_in_groups_are_umbracos_five() {
    let g = policy_file::builtin_groups();
    let find = |a: &str| g.iter().find(|x| x.alias == a).expect("group exists");
    assert_eq!(
        find("admin").key.to_string(),
        "e5e7f6c8-7f9c-4b5b-8d5d-9e1e5a4f7e4d"
    );
    assert_eq!(find("admin").default_verbs.len(), 17);
    let editor = find("editor");
    assert!(!editor
        .default_verbs
        .iter()
        .any(|v| v == "Umb.Document.Permissions"));
    assert!(!editor
        .default_verbs
        .iter()
        .any(|v| v == "Umb.Document.CultureAndHostnames"));
    assert_eq!(editor.default_verbs.len(), 15);
    assert_eq!(find("writer").sections, ["content", "library"]);
    assert_eq!(find("translator").sections, ["translation"]);
    let s = find("sensitiveData");
    assert!(s.sections.is_empty() && s.default_verbs.is_empty());
    assert!(s.content_start.is_none() && !s.all_languages);
    assert!(g
        .iter()
        .filter(|x| x.alias != "sensitiveData")
        .all(|x| x.all_languages && x.content_start == Some(policy_file::StartRef::Root)));
}

#[test]
fn every_problem_in_a_policy_file_is_reported_at_once() {
    let f = PolicyFile::parse(
        r#"
        [[nodes]]
        key = "00000000-0000-0000-0000-000000000001"
        id = 1
        parent = "00000000-0000-0000-0000-000000000002"
        kind = "document"
        [[nodes]]
        key = "00000000-0000-0000-0000-000000000002"
        id = 2
        parent = "00000000-0000-0000-0000-000000000001"
        kind = "document"
        [[nodes]]
        key = "00000000-0000-0000-0000-000000000003"
        id = 3
        parent = "00000000-0000-0000-0000-000000000009"
        kind = "document"
        [[users]]
        key = "00000000-0000-0000-0000-0000000000a1"
        external_id = "u"
        name = "U"
        groups = ["nope"]
        [[permissions]]
        group = "writer"
        node = "00000000-0000-0000-0000-000000000099"
        verbs = []
        [[api_keys]]
        key_id = "k"
        hash = "abc"
        name = "k"
        owner = "o"
        apis = []
        previous_hash = "abc"
        [[group_mappings]]
        issuer = "dev"
        idp_group = "g"
        groups = ["nope"]
        [[group_mappings]]
        issuer = "dev"
        idp_group = "g"
        groups = []
        "#,
        "t",
    )
    .expect("parses");
    let Err(StoreError::InvalidPolicy(p)) = f.validate() else {
        panic!("must be invalid");
    };
    let joined = p.join("\n");
    for needle in [
        "cycle",
        "unknown parent",
        "unknown group `nope`",
        "unknown node",
        "64 hex",
        "at least one api",
        "previous_hash and previous_expires_at go together",
        "group_mappings[0].groups: unknown group `nope`",
        "group_mappings[1]: duplicate mapping for `g` from `dev`",
        "group_mappings[1]: groups must name at least one group",
    ] {
        assert!(joined.contains(needle), "missing `{needle}` in:\n{joined}");
    }
}

#[test]
fn paths_follow_parents_and_trashed_nodes_sit_in_the_recycle_bin() {
    let text = std::fs::read_to_string(dev_file()).expect("readable");
    let f = PolicyFile::parse(&text, "dev.toml").expect("parses");
    let paths = f.node_paths();
    assert_eq!(paths[&node_key(0x1063)], vec![ROOT_ID, 1051, 1062, 1063]);
    assert_eq!(paths[&node_key(0x1090)], vec![ROOT_ID, -20, 1090]);
    assert_eq!(paths[&node_key(0x2002)], vec![ROOT_ID, 2001, 2002]);
}

#[tokio::test]
async fn the_file_store_reloads_on_change_and_keeps_the_old_policy_when_broken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.toml");
    let original = std::fs::read_to_string(dev_file()).expect("readable");
    std::fs::write(&path, &original).expect("write");
    let store = Arc::new(FileStore::open(&path).expect("opens"));
    let m = metrics();
    let cache = PolicyCache::new(store.clone(), CacheConfig::default(), STALENESS, m.clone());
    let watch = store.clone().spawn_watch(
        &cache,
        Duration::from_millis(20),
        m.policy_reload_failures.clone(),
    );
    let writer = cache
        .user_access("dev-writer")
        .await
        .expect("ok")
        .expect("exists");
    assert_eq!(writer.content_start_nodes.0[0].node(), 1062);

    // Broken file: counted, reported for readiness, previous policy kept.
    std::fs::write(&path, "[[users]]\nkey = 1").expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.policy_reload_failures.get() == 0 {
        assert!(Instant::now() < deadline, "failed reload not counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cache.reload_error().is_some_and(|e| e.contains("p.toml")));
    assert!(cache.user_access("dev-writer").await.expect("ok").is_some());

    let edited = original.replace(
        "content_start = [\"00000000-0000-0000-0000-000000001062\"]",
        "content_start = [\"00000000-0000-0000-0000-000000001080\"]",
    );
    std::fs::write(&path, edited).expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = cache
            .user_access("dev-writer")
            .await
            .expect("ok")
            .expect("exists");
        if a.content_start_nodes.0[0].node() == 1080 {
            break;
        }
        assert!(Instant::now() < deadline, "reload not seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache.reload_error(), None);
    watch.abort();
}

/// The dev policy plus users whose own start nodes Umbraco treats specially: one in the
/// recycle bin (1090), the root, and the root beside a node.
pub(crate) fn start_node_policy() -> PolicyFile {
    use policy_file::{GroupEntry, StartRef, UserEntry};
    let text = std::fs::read_to_string(dev_file()).expect("readable");
    let mut f = PolicyFile::parse(&text, "dev.toml").expect("parses");
    f.groups.push(GroupEntry {
        key: Uuid::from_u128(0xb106),
        alias: "blogWriters".into(),
        name: "Blog writers".into(),
        sections: vec!["content".into(), "media".into()],
        default_verbs: vec!["Umb.Document.Read".into(), "Umb.Document.Create".into()],
        content_start: Some(StartRef::Node(node_key(0x1062))),
        media_start: Some(StartRef::Node(node_key(0x2002))),
        all_languages: true,
        languages: vec![],
        origin: Default::default(),
    });
    let user =
        |n: u128, ext: &str, group: &str, content: Vec<StartRef>, media: Vec<StartRef>| UserEntry {
            key: Uuid::from_u128(0xbb00 + n),
            external_id: ext.into(),
            name: ext.into(),
            email: None,
            state: crate::authz::UserState::Active,
            groups: vec![group.into()],
            content_start: content,
            media_start: media,
            origin: Default::default(),
        };
    f.users.extend([
        user(
            1,
            "own-trashed",
            "writer",
            vec![StartRef::Node(node_key(0x1090))],
            vec![],
        ),
        user(
            2,
            "own-root",
            "blogWriters",
            vec![StartRef::Root],
            vec![StartRef::Root],
        ),
        user(
            3,
            "own-root-and-node",
            "blogWriters",
            vec![StartRef::Root, StartRef::Node(node_key(0x1080))],
            vec![],
        ),
    ]);
    f
}

/// What [`start_node_policy`]'s users resolve to, in any store.
pub(crate) async fn assert_own_start_nodes_resolve_as_umbraco(cache: &PolicyCache) {
    let access = |ext: &'static str| async move {
        cache
            .user_access(ext)
            .await
            .expect("loads")
            .expect("exists")
    };
    // A trashed own start node is skipped: the writer group's root stays.
    let a = access("own-trashed").await;
    assert!(
        a.content_start_nodes.has_root(),
        "{:?}",
        a.content_start_nodes
    );
    // An own root start node widens the group's blog start node to the root.
    let a = access("own-root").await;
    assert_eq!(a.content_start_nodes, crate::authz::StartNodes::root());
    assert_eq!(a.media_start_nodes, crate::authz::StartNodes::root());
    // Root beside a node: the own root collapses into the deeper own node, which joins the
    // group's unrelated blog branch (Umbraco's "3" / "2" → "3,2" case).
    let a = access("own-root-and-node").await;
    let ids: Vec<NodeId> = a.content_start_nodes.0.iter().map(|p| p.node()).collect();
    assert_eq!(ids, vec![1062, 1080]);
}

#[tokio::test]
async fn own_start_nodes_in_the_bin_are_ignored_and_the_root_can_be_an_own_start_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.toml");
    let text = toml::to_string(&start_node_policy()).expect("serialises");
    assert!(text.contains("content_start = [\"root\"]"), "{text}");
    std::fs::write(&path, text).expect("write");
    let store = Arc::new(FileStore::open(&path).expect("opens"));
    let cache = PolicyCache::new(store, CacheConfig::default(), STALENESS, metrics());
    assert_own_start_nodes_resolve_as_umbraco(&cache).await;
}

#[test]
fn a_user_start_node_of_the_wrong_tree_is_reported() {
    let mut f = start_node_policy();
    f.users[0].content_start = vec![policy_file::StartRef::Node(node_key(0x2002))];
    f.users[1].media_start = vec![policy_file::StartRef::Node(Uuid::from_u128(0xdead))];
    let err = f.validate().expect_err("invalid").to_string();
    assert!(
        err.contains("users[0].content_start: `00000000-0000-0000-0000-000000002002` is a media"),
        "{err}"
    );
    assert!(
        err.contains("users[1].media_start: unknown start node"),
        "{err}"
    );
}

#[test]
fn an_empty_policy_file_is_refused_unless_it_says_it_is_empty_on_purpose() {
    for text in ["", "# nothing yet\n"] {
        let f = PolicyFile::parse(text, "p.toml").expect("parses");
        let err = f.validate().expect_err("refused").to_string();
        assert!(err.contains("write `empty = true`"), "{err}");
    }
    let f = PolicyFile::parse("empty = true\n", "p.toml").expect("parses");
    assert_eq!(f.validate().ok(), Some(()));
    assert!(
        file::Snapshot::compile(f).is_ok(),
        "an empty-on-purpose file serves the built-in groups only"
    );
}
