//! Authenticator tests of the issuers' key sets: keys unavailable, rotation and the unknown-`kid`
//! refetch, a failed refresh, OIDC discovery and a configured HMAC secret.

use super::*;

#[tokio::test]
async fn issuer_without_keys_is_unavailable_and_not_ready() {
    let server = JwksServer::start(String::new()).await;
    server.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let a = started(&server).await;
    assert!(!a.ready());
    let t = idp().mint("rsa-a", Algorithm::RS256, &claims());
    assert_eq!(a.verify_bearer(&t).await, Err(DenyReason::KeysUnavailable));
}

#[tokio::test]
async fn rotated_key_is_accepted_after_one_refetch() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    let before = server.hits();
    server.set_jwks(idp().jwks(&["rsa-a", "rsa-b"]));
    let t = idp().mint("rsa-b", Algorithm::RS256, &claims());
    assert!(a.verify_bearer(&t).await.is_ok());
    assert_eq!(server.hits(), before + 1);
}

#[tokio::test]
async fn failed_refresh_keeps_the_last_good_keys() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let registry = prometheus::Registry::new();
    let a = Authenticator::new(&config(vec![issuer(&server.jwks_url())]), &registry).unwrap();
    a.start().await;
    server.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    // An unknown kid forces a refetch, which fails.
    let unknown = idp().mint("rsa-b", Algorithm::RS256, &claims());
    assert_eq!(
        a.verify_bearer(&unknown).await,
        invalid(TokenProblem::UnknownKey)
    );
    let good = idp().mint("rsa-a", Algorithm::RS256, &claims());
    assert!(a.verify_bearer(&good).await.is_ok());
    assert!(a.ready());
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        text.contains(r#"portcullis_jwks_refresh_total{issuer="idp",result="error"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"portcullis_jwks_refresh_total{issuer="idp",result="ok"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_kid_refetches_at_most_once_per_interval() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let mut ic = issuer(&server.jwks_url());
    ic.jwks_min_refetch_interval = Duration::from_secs(60);
    let a = started_with(ic).await;
    let before = server.hits();
    for kid in ["rsa-b1", "rsa-b2", "rsa-b3"] {
        let t = idp().mint(kid, Algorithm::RS256, &claims());
        assert_eq!(a.verify_bearer(&t).await, invalid(TokenProblem::UnknownKey));
    }
    // The start-up fetch just happened, so even the first unknown kid is inside the interval.
    assert_eq!(server.hits(), before);
}
#[tokio::test]
async fn discovery_document_leads_to_the_jwks() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    *server.discovery.lock().unwrap() =
        json!({"issuer": ISS, "jwks_uri": server.jwks_url()}).to_string();
    let mut ic = issuer("");
    ic.jwks_url = None;
    ic.discovery_url = Some(format!("{}/.well-known/openid-configuration", server.base));
    let a = started_with(ic).await;
    assert!(a.ready());
    assert!(a
        .verify_bearer(&idp().mint("rsa-a", Algorithm::RS256, &claims()))
        .await
        .is_ok());
}

#[tokio::test]
async fn discovery_for_another_issuer_is_refused() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    *server.discovery.lock().unwrap() =
        json!({"issuer": "https://evil.test", "jwks_uri": server.jwks_url()}).to_string();
    let mut ic = issuer("");
    ic.jwks_url = None;
    ic.discovery_url = Some(format!("{}/.well-known/openid-configuration", server.base));
    let a = started_with(ic).await;
    assert!(!a.ready());
}

#[tokio::test]
async fn hmac_issuer_uses_the_configured_secret_only() {
    let mut ic = issuer("");
    ic.jwks_url = None;
    ic.hs_secret_env = Some(HS_ENV.into());
    ic.algorithms = vec!["HS256".into()];
    let a = started_with(ic).await;
    assert!(a.ready());
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let good = idp().mint_with(
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
        Algorithm::HS256,
        &header,
        &claims(),
    );
    assert!(a.verify_bearer(&good).await.is_ok());
    let bad = idp().mint_with(
        &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
        Algorithm::HS256,
        &header,
        &claims(),
    );
    assert_eq!(
        a.verify_bearer(&bad).await,
        invalid(TokenProblem::BadSignature)
    );
    let rsa = idp().mint("rsa-a", Algorithm::RS256, &claims());
    assert_eq!(
        a.verify_bearer(&rsa).await,
        invalid(TokenProblem::AlgNotAllowed)
    );
}
