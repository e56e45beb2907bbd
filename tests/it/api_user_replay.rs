//! The API user's token on proxied requests, end to end in front of the fake Umbraco: the
//! audit event names both the caller and the API user the request reached Umbraco as, and a
//! request Umbraco refuses with 401 because the token was revoked is replayed once with a new
//! token when it can be sent again byte for byte (no body, or a body the gateway buffered for
//! inspection); a streamed body cannot, and its caller gets the 401.
//!
//! Revocation is the fake's `revoke_tokens` (Umbraco revokes a user's tokens in
//! `RevokeUserAuthenticationTokensNotificationHandler`: a user saved locked out or unapproved,
//! a deleted user, a login while `AllowConcurrentLogins` is false).

use crate::fake_umbraco::{FakeUmbraco, Req};
use crate::harness::*;
use crate::pipeline::{send, token};
use crate::umbraco_callers::{gateway, site};
use crate::upstream_credential::{fake_state, CLIENT_ID, SECRET};
use serde_json::Value;
use std::time::Duration;

const CURRENT: &str = "/umbraco/management/api/v1/user/current";
const CREATE: &str = "/umbraco/management/api/v1/document";

/// Revokes every token of the API user, as Umbraco does for a user's tokens.
fn revoke_api_user_tokens(fake: &FakeUmbraco) {
    fake.with(|s| {
        let key = s.clients[CLIENT_ID].user;
        s.revoke_tokens(key);
    });
}

/// The `Authorization` values the fake received at `endpoint`, from request `from` on.
fn authorizations(fake: &FakeUmbraco, endpoint: &str, from: usize) -> Vec<String> {
    fake.requests()[from..]
        .iter()
        .filter(|r| r.endpoint == endpoint)
        .map(|r: &Req| {
            r.headers["authorization"]
                .to_str()
                .expect("ascii")
                .to_owned()
        })
        .collect()
}

/// The audit lines (JSON) of the gateway's file sink once `want` lines are there.
async fn audit_lines(gw: &Gateway, want: usize) -> Vec<Value> {
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&gw.audit_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    wait_until(Duration::from_secs(10), || {
        let n = read().len();
        async move { n >= want }
    })
    .await
    .unwrap_or_else(|| panic!("{want} audit lines did not appear: {:?}", read()));
    read()
}

#[tokio::test]
async fn the_audit_event_names_the_caller_and_the_api_user_umbraco_saw() {
    let mut s = site();
    let own = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, "").await;
    // An external IdP's JWT: Umbraco sees the API user.
    let jwt = send(
        client()
            .get(gw.url(CURRENT))
            .header("x-request-id", "audit-names-1")
            .bearer_auth(token("dev-editor")),
    )
    .await;
    assert_eq!((jwt.0, jwt.2["userName"].as_str()), (200, Some(CLIENT_ID)));
    // Umbraco's own token goes upstream as sent: no other identity.
    let umb = send(client().get(gw.url(CURRENT)).bearer_auth(&own)).await;
    assert_eq!((umb.0, umb.2["userName"].as_str()), (200, Some("bob")));
    let lines = audit_lines(&gw, 2).await;
    let by = |principal: &str| {
        lines
            .iter()
            .find(|l| {
                l["principal_id"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(principal))
            })
            .unwrap_or_else(|| panic!("no audit line of {principal}: {lines:?}"))
    };
    let external = by("jwt:");
    assert_eq!(external["principal_id"], "jwt:dev#dev-editor");
    // The request id, the client's or the one the gateway made, is the response's.
    assert_eq!(external["request_id"], "audit-names-1");
    let made = umb.1["x-request-id"].to_str().expect("request id");
    assert_eq!(by("umbraco:")["request_id"], made);
    assert_eq!(external["upstream_identity"], CLIENT_ID);
    assert_eq!(external["upstream_status"], 200);
    let passthrough = by("umbraco:");
    assert_eq!(passthrough["upstream_identity"], Value::Null);
    assert_eq!(passthrough["upstream_status"], 200);
    // Identities only: neither token nor the secret is in the trail.
    let text = std::fs::read_to_string(&gw.audit_path).expect("audit");
    assert!(!text.contains(&own) && !text.contains(SECRET), "{text}");
    for auth in authorizations(&fake, "user_current", 0) {
        let token = auth.trim_start_matches("Bearer ");
        assert!(
            !text.contains(token),
            "an upstream token in the audit trail"
        );
    }
}

#[tokio::test]
async fn a_request_without_a_body_is_replayed_once_with_a_new_token_after_umbracos_401() {
    let fake = FakeUmbraco::start(fake_state()).await;
    let gw = gateway(&fake, "").await;
    let jwt = token("dev-editor");
    let first = send(client().get(gw.url(CURRENT)).bearer_auth(&jwt)).await;
    assert_eq!(first.0, 200, "{}", first.2);
    let old = authorizations(&fake, "user_current", 0)
        .pop()
        .expect("sent");
    revoke_api_user_tokens(&fake);
    let from = fake.requests().len();
    // The caller never sees Umbraco's 401: the request is sent again with a new token.
    let got = send(client().get(gw.url(CURRENT)).bearer_auth(&jwt)).await;
    assert_eq!((got.0, got.2["userName"].as_str()), (200, Some(CLIENT_ID)));
    let sent = authorizations(&fake, "user_current", from);
    assert_eq!(sent.len(), 2, "the first attempt and one replay: {sent:?}");
    assert_eq!(sent[0], old, "the first attempt carried the revoked token");
    assert_ne!(sent[1], old, "the replay carried a new token");
    assert_eq!(fake.calls("token"), 2);
    // The new token stays in use.
    let again = send(client().get(gw.url(CURRENT)).bearer_auth(&jwt)).await;
    assert_eq!(again.0, 200);
    assert_eq!(authorizations(&fake, "user_current", from)[2], sent[1]);
    assert_eq!(fake.calls("token"), 2);
    assert!(gw.log().contains("replaying the request with a new one"));
}

#[tokio::test]
async fn concurrent_requests_refused_with_one_revoked_token_share_one_new_token() {
    let fake = FakeUmbraco::start(fake_state()).await;
    let gw = gateway(&fake, "").await;
    let jwt = token("dev-editor");
    assert_eq!(
        send(client().get(gw.url(CURRENT)).bearer_auth(&jwt))
            .await
            .0,
        200
    );
    revoke_api_user_tokens(&fake);
    let from = fake.requests().len();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let req = client().get(gw.url(CURRENT)).bearer_auth(&jwt);
            tokio::spawn(async move { send(req).await.0 })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200);
    }
    // One replacement token for all of them.
    assert_eq!(fake.calls("token"), 2);
    let sent = authorizations(&fake, "user_current", from);
    let distinct: std::collections::BTreeSet<&String> = sent.iter().collect();
    assert_eq!(
        distinct.len(),
        2,
        "the revoked token and its one replacement"
    );
}

#[tokio::test]
async fn an_inspected_body_is_replayed_byte_for_byte() {
    let fake = FakeUmbraco::start(fake_state()).await;
    let gw = gateway(&fake, "").await;
    assert_eq!(
        send(
            client()
                .get(gw.url(CURRENT))
                .bearer_auth(token("dev-editor"))
        )
        .await
        .0,
        200
    );
    revoke_api_user_tokens(&fake);
    let from = fake.requests().len();
    let body = r#"{"parent":null,"variants":[{"name":"Replayed","culture":null}]}"#;
    let got = send(
        client()
            .post(gw.url(CREATE))
            .bearer_auth(token("dev-editor"))
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.2);
    let seen: Vec<Req> = fake.requests()[from..]
        .iter()
        .filter(|r| r.endpoint == "document_create")
        .cloned()
        .collect();
    assert_eq!(seen.len(), 2, "the refused attempt and the replay");
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(&seen[1].body[..], body.as_bytes());
    assert_ne!(
        seen[0].headers["authorization"],
        seen[1].headers["authorization"]
    );
    // Umbraco acted once: the refused attempt created nothing.
    let created = fake.with(|s| s.nodes.values().filter(|n| n.name == "Replayed").count());
    assert_eq!(created, 1);
}

#[tokio::test]
async fn a_streamed_body_is_not_replayed_and_its_caller_gets_the_401() {
    let mut state = fake_state();
    let doc = state.add_node(crate::fake_umbraco::model::Tree::Document, "Doc", None);
    let fake = FakeUmbraco::start(state).await;
    let gw = gateway(&fake, "").await;
    let jwt = token("dev-editor");
    // The dev policy does not know the fake's node: the tree API places it (at the root).
    let put = || {
        client()
            .put(gw.url(&format!("/umbraco/management/api/v1/document/{doc}")))
            .bearer_auth(&jwt)
            .header("content-type", "application/json")
            .body(r#"{"values":[],"variants":[{"name":"Doc","culture":null}]}"#)
    };
    let ok = send(put()).await;
    assert_eq!(ok.0, 200, "{}", ok.2);
    revoke_api_user_tokens(&fake);
    let from = fake.requests().len();
    let refused = send(put()).await;
    assert_eq!(refused.0, 401, "{}", refused.2);
    assert_eq!(
        authorizations(&fake, "document_update", from).len(),
        1,
        "not replayed"
    );
    // The token is still replaced at once for the requests after it.
    let later = wait_until(Duration::from_secs(10), || async {
        send(put()).await.0 == 200
    })
    .await;
    assert!(later.is_some());
    assert_eq!(fake.calls("token"), 2);
}
