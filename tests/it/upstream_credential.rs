//! `[upstream.credential] kind = "umbraco_api_user"` end to end: a gateway in front of the fake
//! Umbraco replaces the Authorization of external-IdP callers with the API user's token.

use crate::fake_umbraco::{FakeUmbraco, State};
use crate::harness::*;
use crate::pipeline::{assert_denied, send, token, AUTHN, TOP};

pub const CLIENT_ID: &str = "umbraco-back-office-portcullis";
pub const SECRET: &str = "api-user-secret-for-tests";
const CURRENT: &str = "/umbraco/management/api/v1/user/current";

/// The `[upstream.credential]` section for the fake's API user.
pub fn credential_section() -> String {
    format!(
        "[upstream.credential]\nkind = \"umbraco_api_user\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_env = \"TEST_UMBRACO_SECRET\"\n"
    )
}

/// A fresh-install fake with an admin (the super user) and the gateway's API user (editor).
pub fn fake_state() -> State {
    let mut state = State::fresh_install();
    state.add_user("admin", &["admin"]);
    state.add_api_user(CLIENT_ID, SECRET, &["editor"]);
    state
}

async fn gateway(fake: &FakeUmbraco, secret: &str) -> Gateway {
    // `[upstream]` is written by the harness; the credential is a sub-table of it.
    let extra = format!("{}\n{AUTHN}", credential_section());
    spawn_gateway_with_env(TOP, fake.addr, &extra, &[("TEST_UMBRACO_SECRET", secret)]).await
}

#[tokio::test]
async fn an_external_jwt_caller_reaches_umbraco_as_the_api_user() {
    let fake = FakeUmbraco::start(fake_state()).await;
    let gw = gateway(&fake, SECRET).await;
    let jwt = token("dev-editor");
    let got = send(client().get(gw.url(CURRENT)).bearer_auth(&jwt)).await;
    assert_eq!(got.0, 200, "{}", got.2);
    // Umbraco answered for the API user: the caller's JWT never reached it.
    assert_eq!(got.2["userName"], CLIENT_ID);
    let seen = fake
        .requests()
        .into_iter()
        .find(|r| r.endpoint == "user_current")
        .expect("forwarded");
    let auth = seen.headers["authorization"].to_str().expect("ascii");
    assert!(
        auth.starts_with("Bearer ") && !auth.contains(&jwt),
        "{auth}"
    );
    assert_eq!(seen.headers["x-portcullis-principal"], "jwt:dev#dev-editor");
    // A second request reuses the token.
    let again = send(client().get(gw.url(CURRENT)).bearer_auth(&jwt)).await;
    assert_eq!(again.0, 200);
    assert_eq!(fake.calls("token"), 1);
}

#[tokio::test]
async fn without_an_api_user_token_the_request_fails_with_503() {
    let fake = FakeUmbraco::start(fake_state()).await;
    let gw = gateway(&fake, "wrong-secret").await;
    let got = send(
        client()
            .get(gw.url(CURRENT))
            .bearer_auth(token("dev-editor")),
    )
    .await;
    assert_denied(&got, 503, "upstream_credential_unavailable");
    assert_eq!(fake.calls("user_current"), 0);
    assert!(!gw.log().contains("wrong-secret"));
}
