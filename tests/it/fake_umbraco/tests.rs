//! The fake's own rules, checked over HTTP: what Umbraco answers for tokens, the cookie form,
//! `user/current` and tree ancestors (so tests built on the fake stand on known ground).

use super::auth::{protect, REDACTED};
use super::model::{Start, Tree};
use super::{FakeUmbraco, State};
use serde_json::Value;

const CURRENT: &str = "/umbraco/management/api/v1/user/current";

async fn get(fake: &FakeUmbraco, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = crate::harness::client().get(format!("http://{}{path}", fake.addr));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("fake answers");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn user_current_answers_per_token_header_cookie_and_revocation() {
    let mut state = State::fresh_install();
    state.add_user("admin", &["admin"]); // the super user: the first one
    let user = state.add_user("ed", &["editor"]);
    let token = state.issue_token(user);
    let cookie = format!("{}={}", state.access_cookie_name(), protect(&token));
    let fake = FakeUmbraco::start(state).await;
    let bearer = format!("Bearer {token}");
    let (status, body) = get(&fake, CURRENT, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert_eq!(body["userName"], "ed");
    assert_eq!(body["hasDocumentRootAccess"], true);
    let redacted = format!("Bearer {REDACTED}");
    let both = [("authorization", redacted.as_str()), ("cookie", &cookie)];
    assert_eq!(get(&fake, CURRENT, &both).await.0, 200);
    // The cookie counts only for exactly `Bearer [redacted]`.
    let other = [("authorization", "Bearer [REDACTED]"), ("cookie", &cookie)];
    assert_eq!(get(&fake, CURRENT, &other).await.0, 401);
    assert_eq!(get(&fake, CURRENT, &[]).await.0, 401);
    let query = format!("{CURRENT}?ACCESS_TOKEN={token}");
    assert_eq!(get(&fake, &query, &[]).await.0, 200);
    fake.with(|s| s.disable_user(user));
    assert_eq!(
        get(&fake, CURRENT, &[("authorization", &bearer)]).await.0,
        401
    );
}

#[tokio::test]
async fn a_disabled_super_user_keeps_its_token_but_is_forbidden() {
    let mut state = State::fresh_install();
    let admin = state.add_user("admin", &["admin"]);
    let token = state.issue_token(admin);
    let fake = FakeUmbraco::start(state).await;
    fake.with(|s| s.disable_user(admin));
    let bearer = format!("Bearer {token}");
    assert_eq!(
        get(&fake, CURRENT, &[("authorization", &bearer)]).await.0,
        403
    );
}

#[tokio::test]
async fn user_current_lists_calculated_start_nodes_and_aggregated_permissions() {
    let mut state = State::fresh_install();
    let home = state.add_node(Tree::Document, "Home", None);
    let blog = state.add_node(Tree::Document, "Blog", Some(home));
    let post = state.add_node(Tree::Document, "Post", Some(blog));
    let g = state.add_group("bloggers", &["content"], &["Umb.Document.Read"]);
    state.group_mut(g).document_start = Some(Start::Node(home));
    state.grant(g, blog, &["Umb.Document.Update"]);
    let user = state.add_user("bob", &["bloggers", "writer"]);
    state.user_mut(user).document_starts = vec![blog];
    let token = state.issue_token(user);
    let fake = FakeUmbraco::start(state).await;
    let bearer = format!("Bearer {token}");
    let (status, body) = get(&fake, CURRENT, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    // writer has root, bloggers has Home; the user's own Blog narrows both to Blog.
    assert_eq!(body["hasDocumentRootAccess"], false);
    assert_eq!(
        body["documentStartNodeIds"],
        serde_json::json!([{"id": blog}])
    );
    let perms = body["permissions"].as_array().expect("permissions");
    assert_eq!(perms.len(), 1);
    assert_eq!(perms[0]["document"]["id"], serde_json::json!(blog));
    // bloggers' entry on Blog ∪ writer's fallback there.
    let verbs: Vec<&str> = perms[0]["verbs"]
        .as_array()
        .expect("verbs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(verbs.contains(&"Umb.Document.Update"));
    assert!(verbs.contains(&"Umb.Document.Create"), "{verbs:?}");
    let _ = post;
}

#[tokio::test]
async fn tree_ancestors_list_the_item_and_its_ancestors_root_first() {
    let mut state = State::fresh_install();
    let home = state.add_node(Tree::Document, "Home", None);
    let blog = state.add_node(Tree::Document, "Blog", Some(home));
    let user = state.add_user("admin", &["admin"]);
    let token = state.issue_token(user);
    let fake = FakeUmbraco::start(state).await;
    let bearer = format!("Bearer {token}");
    let path = format!("/umbraco/management/api/v1/tree/document/ancestors?descendantId={blog}");
    let (status, body) = get(&fake, &path, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    let ids: Vec<&Value> = body
        .as_array()
        .expect("array")
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(ids, [&serde_json::json!(home), &serde_json::json!(blog)]);
    assert_eq!(body[1]["parent"]["id"], serde_json::json!(home));
    let unknown = format!(
        "/umbraco/management/api/v1/tree/document/ancestors?descendantId={}",
        uuid::Uuid::new_v4()
    );
    let (status, body) = get(&fake, &unknown, &[("authorization", &bearer)]).await;
    assert_eq!((status, body), (200, serde_json::json!([])));
}

#[tokio::test]
async fn document_versions_name_their_document_by_magic_guid_and_unknown_ones_are_404() {
    let mut state = State::fresh_install();
    let home = state.add_node(Tree::Document, "Home", None);
    let admin = state.add_user("admin", &["admin"]);
    let translator = state.add_user("tina", &["translator"]);
    state.add_version(home);
    let second = state.add_version(home);
    let (admin_token, tina_token) = (state.issue_token(admin), state.issue_token(translator));
    let fake = FakeUmbraco::start(state).await;
    // Version 2 as `IntExtensions.ToGuid` writes it.
    assert_eq!(second.to_string(), "00000002-0000-0000-0000-000000000000");
    let bearer = format!("Bearer {admin_token}");
    let path = |k: uuid::Uuid| format!("/umbraco/management/api/v1/document-version/{k}");
    let (status, body) = get(&fake, &path(second), &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], serde_json::json!(second));
    assert_eq!(body["document"]["id"], serde_json::json!(home));
    for unknown in [
        crate::fake_umbraco::versions::version_key(99),
        uuid::Uuid::new_v4(),
    ] {
        let (status, body) = get(&fake, &path(unknown), &[("authorization", &bearer)]).await;
        assert_eq!(status, 404, "{unknown}");
        assert_eq!(body["title"], "The requested version could not be found");
    }
    // TreeAccessDocuments: the content section.
    let tina = format!("Bearer {tina_token}");
    assert_eq!(
        get(&fake, &path(second), &[("authorization", &tina)])
            .await
            .0,
        403
    );
}
