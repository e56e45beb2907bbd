//! The ownership contract with the Umbraco mirror (docs/STORE.md "Who owns which rows"), on a
//! real database: local overrides round-trip through `policy apply/export`, the schema refuses
//! a membership or granular entry with another owner than its user or group, and a sync that
//! replaces only `origin = 'umbraco'` rows leaves every local row in place.

use super::policy_file::{GroupEntry, GroupMappingEntry, Origin, PermissionEntry, UserEntry};
use super::tests::{dev_file, node_key};
use super::*;
use sqlx::PgPool;
use uuid::Uuid;

const PARTNERS: Uuid = Uuid::from_u128(0xabd);
const PARTNER_USER: Uuid = Uuid::from_u128(0xaaa);
const EDITOR: &str = "44dc260e-b4d4-4dd9-9081-eec5598f1641";

fn with_local_overrides() -> PolicyFile {
    let text = std::fs::read_to_string(dev_file()).expect("readable");
    let mut file = PolicyFile::parse(&text, "dev.toml").expect("parses");
    file.groups.push(GroupEntry {
        key: PARTNERS,
        alias: "partners".into(),
        name: "Partners".into(),
        sections: vec!["content".into()],
        default_verbs: vec![],
        content_start: None,
        media_start: None,
        all_languages: true,
        languages: vec![],
        origin: Origin::Local,
    });
    file.users.push(UserEntry {
        key: PARTNER_USER,
        external_id: "ext|partner-1".into(),
        name: "Partner One".into(),
        email: None,
        state: crate::authz::UserState::Active,
        groups: vec!["partners".into(), "writer".into()],
        content_start: vec![],
        media_start: vec![],
        origin: Origin::Local,
    });
    file.permissions.push(PermissionEntry {
        group: "partners".into(),
        node: node_key(0x1062),
        verbs: vec!["Umb.Document.Read".into()],
    });
    file.group_mappings.push(GroupMappingEntry {
        issuer: "dev".into(),
        idp_group: "CN=Partners,OU=Groups".into(),
        groups: vec!["partners".into(), "writer".into()],
    });
    let key = &mut file.api_keys[0];
    key.previous_hash = Some("ab".repeat(32));
    key.previous_expires_at = Some("2030-01-01T00:00:00Z".parse().expect("time"));
    file
}

async fn origins(pool: &PgPool, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql)
        .bind(PARTNER_USER)
        .bind(PARTNERS)
        .fetch_all(pool)
        .await
        .expect("query")
}

#[sqlx::test(migrations = "./migrations")]
async fn local_overrides_round_trip_through_apply_and_export(pool: PgPool) {
    let file = with_local_overrides();
    apply_policy(&pool, &file, false).await.expect("applies");
    let exported = export_policy(&pool).await.expect("exports");
    assert_eq!(exported, file.normalized());
    let again = apply_policy(&pool, &exported, true).await.expect("applies");
    assert_eq!(again.total(), 0, "{again:?}");
    let store = PostgresStore::new(pool.clone(), StoreMetrics::unregistered().expect("m"));
    let record = store.api_key("DevBlogKey000001").await.expect("ok");
    let previous = record.and_then(|r| r.previous).expect("previous secret");
    assert_eq!(previous.hash, [0xab; 32]);
}

#[sqlx::test(migrations = "./migrations")]
async fn memberships_and_entries_take_their_owner_from_their_user_and_group(pool: PgPool) {
    apply_policy(&pool, &with_local_overrides(), false)
        .await
        .expect("applies");
    let m = "select origin from memberships where user_key = $1 and $2::uuid is not null";
    assert_eq!(origins(&pool, m).await, ["local", "local"]);
    let e = "select origin from group_permissions where group_key = $2 and $1::uuid is not null";
    assert_eq!(origins(&pool, e).await, ["local"]);
    // Any other owner is refused by the composite foreign keys.
    let wrong_membership = sqlx::query(
        "insert into memberships (user_key, group_key, origin) values ($1, $2::uuid, 'umbraco')",
    )
    .bind(PARTNER_USER)
    .bind(EDITOR)
    .execute(&pool)
    .await;
    assert!(wrong_membership.is_err());
    let wrong_entry = sqlx::query(
        "insert into group_permissions (group_key, node_key, verbs, origin) \
         values ($1, $2, '{}', 'umbraco')",
    )
    .bind(PARTNERS)
    .bind(node_key(0x1063))
    .execute(&pool)
    .await;
    assert!(wrong_entry.is_err());
}

#[sqlx::test(migrations = "./migrations")]
async fn a_sync_that_replaces_umbraco_rows_leaves_local_rows_alone(pool: PgPool) {
    apply_policy(&pool, &with_local_overrides(), false)
        .await
        .expect("applies");
    // What the mirror does on a full sync before writing Umbraco's current rows back.
    for sql in [
        "delete from memberships where origin = 'umbraco'",
        "delete from group_permissions where origin = 'umbraco'",
        "delete from users where origin = 'umbraco'",
        "delete from user_groups where origin = 'umbraco' and not built_in",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    let left = export_policy(&pool).await.expect("exports");
    let users: Vec<&str> = left.users.iter().map(|u| u.external_id.as_str()).collect();
    assert_eq!(users, ["ext|partner-1"]);
    assert_eq!(left.users[0].groups, ["partners", "writer"]);
    assert_eq!(left.permissions.len(), 1);
    assert_eq!(left.permissions[0].group, "partners");
    assert_eq!(left.group_mappings.len(), 1);
    assert_eq!(left.api_keys.len(), 1);
}
