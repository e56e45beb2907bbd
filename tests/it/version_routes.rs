//! Document-version routes end to end: the gateway learns which document owns a version from
//! Umbraco's `GET document-version/{id}` (`ByKeyDocumentVersionController`, the owner in
//! `document` per `Mapping/Document/DocumentVersionMapDefinition.cs`), as its API user, and
//! checks the caller's verbs on that document. Callers hold Umbraco's own tokens (the `umbraco`
//! authenticator, `umbraco_callers.rs`), so nodes come from the tree API too.

use crate::fake_umbraco::versions::version_key;
use crate::fake_umbraco::FakeUmbraco;
use crate::harness::client;
use crate::pipeline::{assert_denied, send};
use crate::umbraco_callers::{gateway, site};
use uuid::Uuid;

fn version(key: Uuid) -> String {
    format!("/umbraco/management/api/v1/document-version/{key}")
}

/// Requests for `path` the fake received with `token`: those the gateway forwarded for the
/// caller (the gateway's own look-ups carry the API user's token).
fn forwarded(fake: &FakeUmbraco, path: &str, token: &str) -> usize {
    let bearer = format!("Bearer {token}");
    fake.requests()
        .iter()
        .filter(|r| r.path == path)
        .filter(|r| r.headers.get("authorization").is_some_and(|v| v == &bearer))
        .count()
}

#[tokio::test]
async fn a_version_is_checked_on_the_document_that_owns_it() {
    let mut s = site();
    let of_post = s.state.add_version(s.post);
    let of_other = s.state.add_version(s.other);
    let tok = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, "").await;
    let get = |path: &str| client().get(gw.url(path)).bearer_auth(&tok);
    // bob may read Post (inside his start node Blog): forwarded, Umbraco answers.
    let got = send(get(&version(of_post))).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["document"]["id"], serde_json::json!(s.post));
    assert_eq!(forwarded(&fake, &version(of_post), &tok), 1);
    // Other lies outside his start nodes: refused, nothing forwarded.
    assert_denied(
        &send(get(&version(of_other))).await,
        403,
        "outside_start_nodes",
    );
    assert_eq!(forwarded(&fake, &version(of_other), &tok), 0);
    // Rollback needs Umb.Document.Rollback on the owner, which bob lacks.
    let rollback = format!("{}/rollback", version(of_post));
    let got = send(client().post(gw.url(&rollback)).bearer_auth(&tok)).await;
    assert_denied(&got, 403, "missing_verb");
    assert_eq!(forwarded(&fake, &rollback, &tok), 0);
    // A version Umbraco does not have: the unknown-node mode (deny by default).
    let unknown = version(version_key(4242));
    assert_denied(&send(get(&unknown)).await, 403, "unknown_node");
    assert_eq!(forwarded(&fake, &unknown, &tok), 0);
    // Owners are cached: asking again forwards without another look-up.
    let calls = fake.calls("document_version");
    assert_eq!(send(get(&version(of_post))).await.0, 200);
    assert_eq!(
        fake.calls("document_version"),
        calls + 1,
        "only the forward"
    );
}

#[tokio::test]
async fn concurrent_requests_for_an_unseen_version_share_one_look_up() {
    let mut s = site();
    let of_post = s.state.add_version(s.post);
    let tok = s.state.issue_token(s.bob);
    // Slow look-ups, so that the requests overlap while the first is in flight.
    s.state
        .delays
        .insert("document_version", std::time::Duration::from_millis(300));
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, "").await;
    let path = version(of_post);
    let sends = (0..6).map(|_| send(client().get(gw.url(&path)).bearer_auth(&tok)));
    for got in futures::future::join_all(sends).await {
        assert_eq!(got.0, 200, "{}", got.2);
    }
    let lookups = fake.calls("document_version") - forwarded(&fake, &path, &tok);
    assert_eq!(lookups, 1);
}

#[tokio::test]
async fn umbraco_failing_the_look_up_is_503_and_nothing_is_forwarded() {
    let mut s = site();
    let of_post = s.state.add_version(s.post);
    let tok = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    // The API user loses the content section: Umbraco answers the look-up 403.
    fake.with(|st| {
        let editor = st.group_key("editor");
        st.group_mut(editor).sections.retain(|x| x != "content");
    });
    let gw = gateway(&fake, "").await;
    let got = send(client().get(gw.url(&version(of_post))).bearer_auth(&tok)).await;
    assert_denied(&got, 503, "store_unavailable");
    assert_eq!(forwarded(&fake, &version(of_post), &tok), 0);
}
