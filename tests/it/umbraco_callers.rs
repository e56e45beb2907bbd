//! The `umbraco` authenticator end to end: callers holding Umbraco's own opaque tokens (header
//! or the back-office `Bearer [redacted]` + cookie form) through the real gateway in front of
//! the fake Umbraco, which checks them with `user/current` (`GetCurrentUserController`) and
//! resolves nodes the store does not know through `tree/document/ancestors` (the fake's nodes
//! are unknown to the dev policy file). Token extraction modelled on OpenIddict's
//! `OpenIddictValidationAspNetCoreHandlers` and Umbraco's `HideBackOfficeTokensHandler`.

use crate::fake_umbraco::auth::{protect, REDACTED};
use crate::fake_umbraco::model::{Start, Tree};
use crate::fake_umbraco::{FakeUmbraco, State};
use crate::harness::*;
use crate::pipeline::{assert_denied, send, token, AUTHN, TOP};
use crate::upstream_credential::{credential_section, fake_state, SECRET};
use portcullis::store::fault::{Fault, FaultProxy};
use std::time::{Duration, Instant};
use uuid::Uuid;

const CURRENT: &str = "/umbraco/management/api/v1/user/current";

/// Home > Blog > Post and Other; `bob` (bloggers: content, Read by default, Read + Update on
/// Blog) starts at Blog.
pub struct Site {
    pub state: State,
    pub bob: Uuid,
    pub post: Uuid,
    pub other: Uuid,
}

pub fn site() -> Site {
    let mut state = fake_state();
    let home = state.add_node(Tree::Document, "Home", None);
    let blog = state.add_node(Tree::Document, "Blog", Some(home));
    let post = state.add_node(Tree::Document, "Post", Some(blog));
    let other = state.add_node(Tree::Document, "Other", None);
    let g = state.add_group("bloggers", &["content"], &["Umb.Document.Read"]);
    state.group_mut(g).document_start = Some(Start::Node(home));
    state.grant(g, blog, &["Umb.Document.Read", "Umb.Document.Update"]);
    let bob = state.add_user("bob", &["bloggers"]);
    state.user_mut(bob).document_starts = vec![blog];
    Site {
        state,
        bob,
        post,
        other,
    }
}

/// `[authn.umbraco]` with `extra` keys, plus the API user (for tree look-ups).
pub fn umbraco_section(extra: &str) -> String {
    format!(
        "{AUTHN}\n[authn.umbraco]\n{extra}\n{}",
        credential_section()
    )
}

pub async fn gateway(fake: &FakeUmbraco, umbraco: &str) -> Gateway {
    let env = [("TEST_UMBRACO_SECRET", SECRET)];
    spawn_gateway_with_env(TOP, fake.addr, &umbraco_section(umbraco), &env).await
}

pub fn doc(key: Uuid) -> String {
    format!("/umbraco/management/api/v1/document/{key}")
}

/// Whether the fake received a request for `path` (the gateway let it through).
pub fn reached(fake: &FakeUmbraco, method: &str, path: &str) -> bool {
    fake.requests()
        .iter()
        .any(|r| r.method == method && r.path == path)
}

#[tokio::test]
async fn an_opaque_token_is_who_user_current_says_with_umbracos_permissions() {
    let mut s = site();
    let tok = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, "").await;
    let get = |path: String| client().get(gw.url(&path)).bearer_auth(&tok);
    // Inside the start node, with Read: forwarded (the fake has no document endpoint: 404).
    let got = send(get(doc(s.post))).await;
    assert_eq!(got.0, 404, "{}", got.2);
    assert!(reached(&fake, "GET", &doc(s.post)));
    // Outside the calculated start node (Blog): refused by the gateway.
    assert_denied(&send(get(doc(s.other))).await, 403, "outside_start_nodes");
    // Delete is in neither the entry on Blog nor the fallback.
    let del = send(client().delete(gw.url(&doc(s.post))).bearer_auth(&tok)).await;
    assert_denied(&del, 403, "missing_verb");
    // The caller's own token goes upstream: Umbraco answers for bob.
    let me = send(get(CURRENT.to_owned())).await;
    assert_eq!((me.0, me.2["userName"].as_str()), (200, Some("bob")));
    // Unknown to the store, the nodes were resolved through the tree API once each.
    let tree_calls = fake.calls("tree_document_ancestors");
    assert!(tree_calls >= 2, "{tree_calls}");
    send(get(doc(s.post))).await;
    assert_eq!(fake.calls("tree_document_ancestors"), tree_calls);
    // An unknown token is Umbraco's 401, and stays refused without asking again at once.
    let bad = client()
        .get(gw.url(&doc(s.post)))
        .bearer_auth("not-a-token");
    let checks = fake.calls("user_current");
    assert_denied(&send(bad).await, 401, "invalid_token");
    let bad = client()
        .get(gw.url(&doc(s.post)))
        .bearer_auth("not-a-token");
    assert_denied(&send(bad).await, 401, "invalid_token");
    assert_eq!(fake.calls("user_current"), checks + 1);
}

#[tokio::test]
async fn the_back_office_cookie_form_is_checked_with_only_its_parts() {
    let mut s = site();
    s.state.site_name = "Shop".into();
    let tok = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, "site_name = \"Shop\"").await;
    let cookie = format!(
        "theme=dark; umbAccessTokenShop={}; other=zzz",
        protect(&tok)
    );
    let req = |path: String| {
        client()
            .get(gw.url(&path))
            .header("authorization", format!("Bearer {REDACTED}"))
            .header("cookie", &cookie)
            .header("x-caller-secret", "do-not-forward")
    };
    let got = send(req(doc(s.post))).await;
    assert_eq!(got.0, 404, "{}", got.2);
    assert!(reached(&fake, "GET", &doc(s.post)));
    assert_denied(&send(req(doc(s.other))).await, 403, "outside_start_nodes");
    // The session check carried the header and that one cookie, nothing else of the caller's.
    let check = fake
        .requests()
        .into_iter()
        .find(|r| r.endpoint == "user_current")
        .expect("session check");
    assert_eq!(check.headers["authorization"], "Bearer [redacted]");
    let want = format!("umbAccessTokenShop={}", protect(&tok));
    assert_eq!(check.headers["cookie"], want.as_str());
    let names: Vec<&str> = check.headers.keys().map(|k| k.as_str()).collect();
    for name in &names {
        assert!(
            ["authorization", "cookie", "host", "accept"].contains(name),
            "{name} reached the session check: {names:?}"
        );
    }
    // Two candidate cookies: which one Umbraco reads is not the gateway's guess.
    let both = client()
        .get(gw.url(&doc(s.post)))
        .header("authorization", format!("Bearer {REDACTED}"))
        .header(
            "cookie",
            "umbAccessTokenShop=a; __Host-umbAccessTokenShop=b",
        );
    assert_denied(&send(both).await, 400, "ambiguous_credentials");
}

#[tokio::test]
async fn checks_are_cached_and_concurrent_misses_share_one_call() {
    let mut s = site();
    let tok = s.state.issue_token(s.bob);
    s.state
        .delays
        .insert("user_current", Duration::from_millis(300));
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, "").await;
    let url = gw.url(&doc(s.post));
    let requests = (0..16).map(|_| {
        let req = client().get(&url).bearer_auth(&tok);
        async move { send(req).await.0 }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 404), "{statuses:?}");
    for _ in 0..5 {
        assert_eq!(send(client().get(&url).bearer_auth(&tok)).await.0, 404);
    }
    assert_eq!(fake.calls("user_current"), 1);
}

#[tokio::test]
async fn a_user_disabled_upstream_loses_access_after_the_ttl() {
    let mut s = site();
    let tok = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, "session_ttl = \"1s\"\nnegative_ttl = \"1s\"").await;
    let url = gw.url(&doc(s.post));
    assert_eq!(send(client().get(&url).bearer_auth(&tok)).await.0, 404);
    fake.with(|st| st.disable_user(s.bob));
    let disabled_at = Instant::now();
    let refused = wait_until(Duration::from_secs(15), || {
        let req = client().get(&url).bearer_auth(&tok);
        async move { send(req).await.0 == 401 }
    })
    .await;
    assert!(
        refused.is_some(),
        "still allowed 15 s after the user was disabled"
    );
    eprintln!(
        "disabled user refused after {:?} (session_ttl 1s)",
        disabled_at.elapsed()
    );
    assert_denied(
        &send(client().get(&url).bearer_auth(&tok)).await,
        401,
        "invalid_token",
    );
}

#[tokio::test]
async fn umbraco_unreachable_is_503_unless_the_session_is_cached() {
    let mut s = site();
    let cached = s.state.issue_token(s.bob);
    let fresh = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    let proxy = FaultProxy::start(fake.addr).await.expect("fault proxy");
    let env = [("TEST_UMBRACO_SECRET", SECRET)];
    let gw = spawn_gateway_with_env(TOP, proxy.addr, &umbraco_section(""), &env).await;
    let url = gw.url(&doc(s.post));
    assert_eq!(send(client().get(&url).bearer_auth(&cached)).await.0, 404);
    proxy.set(Fault::Cut);
    let got = send(client().get(&url).bearer_auth(&fresh)).await;
    assert_denied(&got, 503, "store_unavailable");
    // The cached session still decides; only forwarding fails.
    let got = send(client().get(&url).bearer_auth(&cached)).await;
    assert_eq!(got.2["error"], "upstream_unavailable", "{}", got.2);
    proxy.set(Fault::Pass);
    let healed = send(client().get(&url).bearer_auth(&fresh)).await;
    assert_eq!(healed.0, 404, "{}", healed.2);
}

#[tokio::test]
async fn tokens_umbraco_would_read_elsewhere_are_refused() {
    let mut s = site();
    let tok = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, "").await;
    // In the query: refused outright, with or without a header, and never logged.
    let q = format!("{}?access_token={tok}", doc(s.post));
    assert_denied(&send(client().get(gw.url(&q))).await, 400, "token_in_query");
    let q2 = format!("{}?Access_Token={tok}", doc(s.post));
    let with_header = client().get(gw.url(&q2)).bearer_auth(&tok);
    assert_denied(&send(with_header).await, 400, "token_in_query");
    // A form body could carry `access_token` next to the header.
    let form = client()
        .put(gw.url(&doc(s.post)))
        .bearer_auth(&tok)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={tok}"));
    assert_denied(&send(form).await, 400, "ambiguous_credentials");
    // A form body alone is a credential-less request: only anonymous routes forward it.
    let form_only = client()
        .put(gw.url(&doc(s.post)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={tok}"));
    assert_denied(&send(form_only).await, 401, "unauthenticated");
    assert_eq!(fake.calls("user_current"), 0);
    assert!(!reached(&fake, "GET", &doc(s.post)));
    assert!(!reached(&fake, "PUT", &doc(s.post)));
    assert!(!gw.log().contains(&tok), "the token reached the log");
    let audit = std::fs::read_to_string(&gw.audit_path).unwrap_or_default();
    assert!(!audit.contains(&tok), "the token reached the audit trail");
}

#[tokio::test]
async fn a_jwt_of_a_configured_issuer_stays_a_jwt_and_lists_limit_each_api() {
    let mut s = site();
    let tok = s.state.issue_token(s.bob);
    let fake = FakeUmbraco::start(s.state).await;
    let gw = gateway(&fake, "").await;
    // The dev issuer's JWT is verified locally: no session check, the JWT principal.
    let jwt = token("dev-editor");
    let me = send(client().get(gw.url(CURRENT)).bearer_auth(&jwt)).await;
    assert_eq!(me.0, 200, "{}", me.2);
    assert_eq!(fake.calls("user_current"), 1, "only the forwarded request");
    // Management accepting only Umbraco's tokens: the JWT is not accepted there.
    let only = umbraco_section("").replace(
        "key_env = \"dev\"",
        "key_env = \"dev\"\nmanagement = [\"umbraco\"]",
    );
    let env = [("TEST_UMBRACO_SECRET", SECRET)];
    let gw2 = spawn_gateway_with_env(TOP, fake.addr, &only, &env).await;
    let got = send(client().get(gw2.url(CURRENT)).bearer_auth(&jwt)).await;
    assert_denied(&got, 401, "invalid_token");
    assert_eq!(got.2["reason"], "not_accepted");
    let mine = send(client().get(gw2.url(&doc(s.post))).bearer_auth(&tok)).await;
    assert_eq!(mine.0, 404, "{}", mine.2);
}

/// `portcullis check-upstream`: the API user's token works and its sections are listed; a
/// rejected secret fails without printing it. (Multi-threaded: the blocking child process must
/// not stop the fake from answering.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_upstream_lists_the_api_users_sections() {
    let fake = FakeUmbraco::start(fake_state()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy/dev.toml");
    let extra = format!(
        "{}\n[store]\nkind = \"file\"\npolicy_file = {:?}\n",
        umbraco_section(""),
        policy.display().to_string()
    );
    let [proxy, admin] = free_addrs();
    let text = config_text(TOP, proxy, admin, fake.addr, &extra);
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, text).expect("write config");
    let run = |secret: &str| {
        std::process::Command::new(binary())
            .args(["check-upstream", "--config"])
            .arg(&path)
            .env("PORTCULLIS_KEY_PEPPER", DEV_PEPPER)
            .env("PORTCULLIS_DEV_HS_SECRET", DEV_HS_SECRET)
            .env("TEST_UMBRACO_SECRET", secret)
            .output()
            .expect("run portcullis")
    };
    let out = run(SECRET);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["client_id"], crate::upstream_credential::CLIENT_ID);
    assert_eq!(
        v["sections"],
        serde_json::json!(["content", "forms", "library", "media"])
    );
    assert_eq!(v["document_root_access"], true);
    let bad = run("wrong-secret");
    assert!(!bad.status.success());
    assert!(!String::from_utf8_lossy(&bad.stderr).contains("wrong-secret"));
}
