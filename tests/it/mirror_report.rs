//! What a full sync's report counts (docs/MIRROR.md "Full sync"): `updated` is the number of
//! users (groups) whose row or memberships (granular entries) changed, each counted once, not
//! the membership or entry rows written.

use crate::fake_umbraco::model::Tree;
use crate::fake_umbraco::FakeUmbraco;
use crate::mirror::{database, install, mirror};

#[tokio::test]
async fn updated_counts_users_and_groups_not_membership_or_entry_rows() {
    let mut s = install();
    let home = s.add_node(Tree::Document, "home", None);
    let about = s.add_node(Tree::Document, "about", Some(home));
    let ed = s.add_user("ed", &["editor"]);
    let jo = s.add_user("jo", &["editor"]);
    let fake = FakeUmbraco::start(s).await;
    let (_db, pool) = database("mirror_report").await;
    let m = mirror(&fake, &pool);
    m.full_sync().await.expect("initial sync");
    fake.with(|s| {
        // ed: only memberships change (one removed, two added: three membership rows).
        let (writer, admin) = (s.group_key("writer"), s.group_key("admin"));
        s.user_mut(ed).groups = vec![writer, admin];
        // jo: the row and a membership change: still one user.
        s.disable_user(jo);
        s.user_mut(jo).groups.push(writer);
        // writer: two new granular entries and a changed default: one group.
        s.grant(writer, home, &["Umb.Document.Read"]);
        s.grant(writer, about, &[]);
        s.group_mut(writer).fallback.clear();
        // editor: only a granular entry.
        let editor = s.group_key("editor");
        s.grant(editor, about, &["Umb.Document.Read"]);
    });
    let r = m.full_sync().await.expect("sync");
    let users = &r.kinds["users"];
    assert_eq!(
        (users.inserted, users.updated, users.deleted),
        (0, 2, 0),
        "{users:?}"
    );
    let groups = &r.kinds["user_groups"];
    assert_eq!(
        (groups.inserted, groups.updated, groups.deleted),
        (0, 2, 0),
        "{groups:?}"
    );
    let again = m.full_sync().await.expect("second sync");
    assert_eq!(again.changed(), 0, "{again:?}");
}
