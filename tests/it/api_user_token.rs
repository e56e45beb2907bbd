//! The API user's token client (`portcullis::umbraco::ApiUser`) against the fake Umbraco:
//! client-credentials grant, reuse until shortly before expiry, single flight, replacement of a
//! revoked token, and Umbraco's refusals.

use crate::fake_umbraco::{FakeUmbraco, State};
use portcullis::umbraco::{
    ApiUser, CredentialConfig, CredentialKind, ManagementClient, UmbracoError, UmbracoMetrics,
};
use std::sync::Arc;
use std::time::Duration;

const CLIENT_ID: &str = "umbraco-back-office-portcullis";
const SECRET: &str = "api-user-secret-for-tests";

async fn fake() -> FakeUmbraco {
    let mut state = State::fresh_install();
    state.add_user("admin", &["admin"]);
    state.add_api_user(CLIENT_ID, SECRET, &["editor"]);
    FakeUmbraco::start(state).await
}

fn api_user(fake: &FakeUmbraco, secret: &str, refresh_before: Duration) -> Arc<ApiUser> {
    let cfg = CredentialConfig {
        kind: CredentialKind::UmbracoApiUser,
        client_id: CLIENT_ID.into(),
        refresh_before,
        ..CredentialConfig::default()
    };
    let client = ManagementClient::new(fake.addr, None).expect("client");
    let metrics = UmbracoMetrics::unregistered().expect("metrics");
    Arc::new(ApiUser::with_secret(&cfg, secret.into(), client, metrics))
}

/// The user a token belongs to, asked of the fake (what Umbraco would act as).
fn owner(fake: &FakeUmbraco, header: &http::HeaderValue) -> Option<String> {
    let token = header.to_str().ok()?.strip_prefix("Bearer ")?.to_owned();
    fake.with(|s| {
        let user = s.token_user(&token)?;
        s.users.get(&user).map(|u| u.user_name.clone())
    })
}

#[tokio::test]
async fn the_token_is_fetched_once_and_reused() {
    let fake = fake().await;
    let api = api_user(&fake, SECRET, Duration::from_secs(60));
    let first = api.token().await.expect("token");
    for _ in 0..5 {
        let again = api.token().await.expect("token");
        assert_eq!(again.generation(), first.generation());
    }
    assert_eq!(fake.calls("token"), 1);
    assert_eq!(
        owner(&fake, first.authorization()).as_deref(),
        Some(CLIENT_ID)
    );
    let req = &fake.requests()[0];
    let form = req.form();
    assert!(form.contains(&("grant_type".into(), "client_credentials".into())));
    assert!(form.contains(&("client_id".into(), CLIENT_ID.into())));
}

#[tokio::test]
async fn concurrent_first_callers_share_one_token_request() {
    let fake = fake().await;
    fake.with(|s| s.delays.insert("token", Duration::from_millis(300)));
    let api = api_user(&fake, SECRET, Duration::from_secs(60));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.token().await.map(|t| t.generation()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("token"), 1);
    }
    assert_eq!(fake.calls("token"), 1);
}

#[tokio::test]
async fn a_token_near_its_expiry_is_replaced_by_one_refresh() {
    let fake = fake().await;
    // 2 s tokens with a 60 s margin: the margin is capped at half the lifetime (1 s).
    fake.with(|s| s.token_lifetime = Duration::from_secs(2));
    let api = api_user(&fake, SECRET, Duration::from_secs(60));
    let first = api.token().await.expect("token");
    let refreshed = crate::harness::wait_until(Duration::from_secs(20), || {
        let api = api.clone();
        async move { api.token().await.is_ok_and(|t| t.generation() > 1) }
    })
    .await;
    assert!(refreshed.is_some(), "the token was never refreshed");
    assert_eq!(fake.calls("token"), 2);
    let second = api.token().await.expect("token");
    assert_ne!(second.authorization(), first.authorization());
    assert_eq!(
        owner(&fake, second.authorization()).as_deref(),
        Some(CLIENT_ID)
    );
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_for_all_callers_that_saw_it_rejected() {
    let fake = fake().await;
    let api = api_user(&fake, SECRET, Duration::from_secs(60));
    let rejected = api.token().await.expect("token");
    let user = fake.with(|s| s.clients[CLIENT_ID].user);
    fake.with(|s| s.revoke_tokens(user));
    assert_eq!(owner(&fake, rejected.authorization()), None);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (api, rejected) = (api.clone(), rejected.clone());
            tokio::spawn(async move { api.replace(&rejected).await.map(|t| t.generation()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("replacement"), 2);
    }
    assert_eq!(fake.calls("token"), 2);
    let now = api.token().await.expect("token");
    assert_eq!(
        owner(&fake, now.authorization()).as_deref(),
        Some(CLIENT_ID)
    );
}

#[tokio::test]
async fn a_wrong_secret_is_reported_as_rejected_client_credentials() {
    let fake = fake().await;
    let api = api_user(&fake, "not-the-secret", Duration::from_secs(60));
    match api.token().await {
        Err(UmbracoError::Rejected { status, error, .. }) => {
            assert_eq!(status, 401);
            assert_eq!(error, "invalid_client");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // Nothing is cached after a failure: the next call asks again.
    assert!(api.token().await.is_err());
    assert_eq!(fake.calls("token"), 2);
}

#[tokio::test]
async fn a_disabled_api_user_gets_no_token() {
    let fake = fake().await;
    let user = fake.with(|s| s.clients[CLIENT_ID].user);
    fake.with(|s| s.disable_user(user));
    let api = api_user(&fake, SECRET, Duration::from_secs(60));
    match api.token().await {
        Err(UmbracoError::Rejected { status, .. }) => assert_eq!(status, 400),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_umbraco_is_an_error_and_the_secret_is_never_shown() {
    let closed = crate::harness::closed_port();
    let addr = closed.addr;
    let cfg = CredentialConfig {
        kind: CredentialKind::UmbracoApiUser,
        client_id: CLIENT_ID.into(),
        timeout: Duration::from_secs(2),
        ..CredentialConfig::default()
    };
    let client = ManagementClient::new(addr, None).expect("client");
    let metrics = UmbracoMetrics::unregistered().expect("metrics");
    let api = ApiUser::with_secret(&cfg, SECRET.into(), client, metrics);
    let err = api.token().await.expect_err("nothing listens");
    assert!(matches!(err, UmbracoError::Unreachable { .. }), "{err:?}");
    let shown = format!("{err:?} {} {api:?}", portcullis::config::error_chain(&err));
    assert!(!shown.contains(SECRET), "{shown}");
}
