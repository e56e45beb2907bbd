//! Authenticator tests against the test IdP and a loopback JWKS server: acceptance, every
//! rejection path that needs keys, the token cache, metrics and API keys; the key sets
//! (rotation, refetch rate limit, discovery, HMAC) in `key_sets`, log hygiene in `logs`.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::config::{AuthnConfig, IssuerConfig};
use super::testing::{idp, JwksServer};
use super::Authenticator;
use crate::authz::{DenyReason, TokenProblem};

mod key_sets;
mod logs;

const ISS: &str = "https://idp.test";
const PEPPER_ENV: &str = "PORTCULLIS_TEST_AUTHN_PEPPER";
const HS_ENV: &str = "PORTCULLIS_TEST_AUTHN_HS_SECRET";
const HS_SECRET: &str = "an-hmac-secret-for-tests-only-0123456789";

fn set_env() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::env::set_var(PEPPER_ENV, "pepper-for-tests-only-0123456789abcdef");
        std::env::set_var(HS_ENV, HS_SECRET);
    });
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": "api", "sub": "user-1", "exp": now() + 600, "iat": now()})
}

fn with(extra: Value) -> Value {
    let mut c = claims();
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn issuer(url: &str) -> IssuerConfig {
    IssuerConfig {
        name: "idp".into(),
        issuer: ISS.into(),
        jwks_url: Some(url.to_owned()),
        audiences: vec!["api".into()],
        algorithms: vec!["RS256".into(), "ES256".into()],
        jwks_min_refetch_interval: Duration::ZERO,
        ..IssuerConfig::default()
    }
}

fn config(issuers: Vec<IssuerConfig>) -> AuthnConfig {
    set_env();
    AuthnConfig {
        pepper_env: PEPPER_ENV.into(),
        issuers,
        ..AuthnConfig::default()
    }
}

async fn started(server: &JwksServer) -> Authenticator {
    started_with(issuer(&server.jwks_url())).await
}

async fn started_with(ic: IssuerConfig) -> Authenticator {
    let a = Authenticator::new(&config(vec![ic]), &prometheus::Registry::new()).unwrap();
    a.start().await;
    a
}

fn b64_json(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn invalid(p: TokenProblem) -> Result<std::sync::Arc<super::Principal>, DenyReason> {
    Err(DenyReason::InvalidToken(p))
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_are_accepted() {
    let server = JwksServer::start(idp().jwks(&["rsa-a", "ec-a"])).await;
    let a = started(&server).await;
    assert!(a.ready());
    let p = a
        .verify_bearer(&idp().mint("rsa-a", Algorithm::RS256, &claims()))
        .await
        .unwrap();
    assert_eq!(&*p.id, "jwt:idp#user-1");
    let p = a
        .verify_bearer(&idp().mint("ec-a", Algorithm::ES256, &claims()))
        .await
        .unwrap();
    assert_eq!(&*p.id, "jwt:idp#user-1");
}

#[tokio::test]
async fn algorithm_outside_the_issuer_allow_list_is_rejected() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    let t = idp().mint("rsa-a", Algorithm::PS256, &claims());
    assert_eq!(
        a.verify_bearer(&t).await,
        invalid(TokenProblem::AlgNotAllowed)
    );
}

#[tokio::test]
async fn alg_none_token_is_rejected() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    let header = b64_json(&json!({"alg": "none", "kid": "rsa-a"}));
    let t = format!("{header}.{}.", b64_json(&claims()));
    assert_eq!(
        a.verify_bearer(&t).await,
        invalid(TokenProblem::AlgNotAllowed)
    );
}

#[tokio::test]
async fn key_type_must_match_the_alg() {
    let server = JwksServer::start(idp().jwks(&["rsa-a", "ec-a"])).await;
    let a = started(&server).await;
    // ES256 signature presented with the kid of the RSA key.
    let header = json!({"alg": "ES256", "kid": "rsa-a"});
    let t = idp().mint_with(
        &idp().encoding_key("ec-a"),
        Algorithm::ES256,
        &header,
        &claims(),
    );
    assert_eq!(
        a.verify_bearer(&t).await,
        invalid(TokenProblem::AlgNotAllowed)
    );
}

#[tokio::test]
async fn hmac_signed_with_the_public_key_is_rejected() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    let public = idp().rsa_jwk("rsa-a").to_string();
    let header = json!({"alg": "HS256", "kid": "rsa-a"});
    let t = idp().mint_with(
        &EncodingKey::from_secret(public.as_bytes()),
        Algorithm::HS256,
        &header,
        &claims(),
    );
    assert_eq!(
        a.verify_bearer(&t).await,
        invalid(TokenProblem::AlgNotAllowed)
    );
}

#[tokio::test]
async fn embedded_jwk_and_jku_headers_are_never_followed() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let attacker = JwksServer::start(idp().jwks(&["rsa-b"])).await;
    let a = started(&server).await;
    let header = json!({"alg": "RS256", "kid": "rsa-a", "jku": attacker.jwks_url(),
                        "x5u": attacker.jwks_url(), "jwk": idp().rsa_jwk("rsa-b")});
    let t = idp().mint_with(
        &idp().encoding_key("rsa-b"),
        Algorithm::RS256,
        &header,
        &claims(),
    );
    assert_eq!(
        a.verify_bearer(&t).await,
        invalid(TokenProblem::BadSignature)
    );
    assert_eq!(attacker.hits(), 0);
}

#[tokio::test]
async fn signature_by_another_key_is_rejected() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    let header = json!({"alg": "RS256", "kid": "rsa-a"});
    let t = idp().mint_with(
        &idp().encoding_key("rsa-b"),
        Algorithm::RS256,
        &header,
        &claims(),
    );
    assert_eq!(
        a.verify_bearer(&t).await,
        invalid(TokenProblem::BadSignature)
    );
    let mut tampered = idp().mint("rsa-a", Algorithm::RS256, &claims());
    let sig_start = tampered.rfind('.').unwrap() + 1;
    let flipped = if &tampered[sig_start..sig_start + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(sig_start..sig_start + 1, flipped);
    assert_eq!(
        a.verify_bearer(&tampered).await,
        invalid(TokenProblem::BadSignature)
    );
}

#[tokio::test]
async fn unconfigured_issuer_and_issuer_array_are_rejected() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    for iss in [
        json!("https://evil.test"),
        json!([ISS]),
        json!("https://idp.test/"),
    ] {
        let t = idp().mint("rsa-a", Algorithm::RS256, &with(json!({ "iss": iss })));
        assert_eq!(
            a.verify_bearer(&t).await,
            invalid(TokenProblem::WrongIssuer),
            "{iss}"
        );
    }
}

#[tokio::test]
async fn claim_rules_apply_after_the_signature() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    let cases = [
        (json!({"exp": now() - 31}), TokenProblem::Expired),
        (json!({"nbf": now() + 60}), TokenProblem::NotYetValid),
        (json!({"iat": now() + 60}), TokenProblem::IssuedInFuture),
        (json!({"aud": ["other"]}), TokenProblem::WrongAudience),
        (json!({"sub": null}), TokenProblem::MissingClaim),
    ];
    for (extra, problem) in cases {
        let t = idp().mint("rsa-a", Algorithm::RS256, &with(extra.clone()));
        assert_eq!(a.verify_bearer(&t).await, invalid(problem), "{extra}");
    }
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    let t = idp().mint("rsa-a", Algorithm::RS256, &no_exp);
    assert_eq!(
        a.verify_bearer(&t).await,
        invalid(TokenProblem::MissingClaim)
    );
}

#[tokio::test]
async fn second_verification_of_a_token_uses_the_cache() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    let t = idp().mint("rsa-a", Algorithm::RS256, &claims());
    let first = a.verify_bearer(&t).await.unwrap();
    assert_eq!(a.signature_verifications(), 1);
    let second = a.verify_bearer(&t).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(a.signature_verifications(), 1);
}

#[tokio::test]
async fn a_token_that_differs_from_a_cached_one_is_verified_again() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let a = started(&server).await;
    let t = idp().mint("rsa-a", Algorithm::RS256, &claims());
    assert!(a.verify_bearer(&t).await.is_ok());
    assert!(
        a.verified_bearer(&t).is_some(),
        "the verified token is cached"
    );
    // The same signature on other claims, and the same claims with one signature byte
    // changed: neither is the cached token, both are checked and refused.
    let (head, rest) = t.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let other = idp().mint(
        "rsa-a",
        Algorithm::RS256,
        &with(json!({"sub": "someone-else"})),
    );
    let other_claims = other.split('.').nth(1).unwrap();
    let spliced = format!("{head}.{other_claims}.{sig}");
    let mut flipped = t.clone().into_bytes();
    // Not the last character: some of its bits are base64 padding.
    let inner = flipped.len() - 10;
    flipped[inner] = if flipped[inner] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for forged in [&spliced, &flipped] {
        assert!(a.verified_bearer(forged).is_none());
        assert_eq!(
            a.verify_bearer(forged).await,
            invalid(TokenProblem::BadSignature)
        );
    }
    assert_eq!(a.signature_verifications(), 3);
}

#[tokio::test]
async fn cached_token_is_not_accepted_after_its_exp() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let mut ic = issuer(&server.jwks_url());
    ic.leeway = Duration::ZERO;
    let a = started_with(ic).await;
    // Generous margin: a loaded machine (RSA in a debug build) can take over a second here.
    let exp = now() + 4;
    let t = idp().mint("rsa-a", Algorithm::RS256, &with(json!({ "exp": exp })));
    let first = a.verify_bearer(&t).await;
    assert!(first.is_ok(), "{first:?}");
    for _ in 0..100 {
        if now() > exp {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.verify_bearer(&t).await, invalid(TokenProblem::Expired));
}

#[tokio::test]
async fn metrics_count_outcomes_by_configured_issuer_name_and_publish_key_set_age() {
    let server = JwksServer::start(idp().jwks(&["rsa-a"])).await;
    let registry = prometheus::Registry::new();
    let a = Authenticator::new(&config(vec![issuer(&server.jwks_url())]), &registry).unwrap();
    a.start().await;
    let _ = a
        .verify_bearer(&idp().mint("rsa-a", Algorithm::RS256, &claims()))
        .await;
    let _ = a.verify_bearer("not-a-token").await;
    let evil = idp().mint(
        "rsa-a",
        Algorithm::RS256,
        &with(json!({"iss": "https://evil.test"})),
    );
    let _ = a.verify_bearer(&evil).await;
    let mut text = String::new();
    for _ in 0..50 {
        text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        if text.contains("portcullis_jwks_age_seconds{issuer=\"idp\"}") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in [
        r#"portcullis_authn_total{issuer="idp",method="jwt",result="ok"} 1"#,
        r#"portcullis_authn_total{issuer="none",method="jwt",result="malformed"} 1"#,
        r#"portcullis_authn_total{issuer="none",method="jwt",result="wrong_issuer"} 1"#,
        r#"portcullis_jwks_age_seconds{issuer="idp"}"#,
    ] {
        assert!(text.contains(line), "missing {line} in {text}");
    }
    assert!(!text.contains("evil.test"));
}

#[tokio::test]
async fn missing_pepper_env_is_a_build_error() {
    let mut cfg = config(vec![]);
    cfg.pepper_env = "PORTCULLIS_TEST_AUTHN_UNSET_PEPPER".into();
    let err = Authenticator::new(&cfg, &prometheus::Registry::new())
        .err()
        .unwrap();
    assert!(err
        .to_string()
        .contains("PORTCULLIS_TEST_AUTHN_UNSET_PEPPER"));
}

#[tokio::test]
async fn api_keys_verify_through_the_authenticator_and_other_envs_are_unknown() {
    let registry = prometheus::Registry::new();
    let a = Authenticator::new(&config(vec![]), &registry).unwrap();
    let k = a.generate_api_key().unwrap();
    let presented = super::api_key::parse(&k.full).unwrap();
    let record = super::api_key::tests::record_for(&k);
    assert!(a.verify_api_key(&presented, Some(&record)).is_ok());
    let other_env = super::api_key::parse(&k.full.replacen("pcl_live_", "pcl_dev_", 1)).unwrap();
    assert_eq!(
        a.verify_api_key(&other_env, Some(&record)),
        invalid(TokenProblem::UnknownApiKey)
    );
    assert!(a.verify_api_key(&presented, Some(&record)).is_ok());
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    for line in [
        r#"portcullis_authn_total{issuer="none",method="api_key",result="ok"} 2"#,
        r#"portcullis_authn_total{issuer="none",method="api_key",result="unknown_api_key"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in {text}");
    }
}
