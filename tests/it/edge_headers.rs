//! Forwarded headers, through the real gateway on raw sockets: `X-Forwarded-For/Proto/Host` say
//! what the gateway received; headers through which a client claims another address, host, path
//! or method are removed unless the peer is in `headers.trusted_proxies`; a Portcullis API key
//! in any header never leaves — on passthrough paths and on the APIs alike.

use crate::harness::*;
use crate::pipeline::{doc, token, AUTHN, TOP};
use crate::raw::*;

/// Client claims a trusted edge would remove (the method-override ones are refused outright).
const CLAIMS: &[&str] = &[
    "Forwarded",
    "X-Real-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-Client-IP",
    "X-Cluster-Client-IP",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Original-Host",
    "X-Forwarded-Prefix",
    "X-Forwarded-Uri",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Envoy-Original-Path",
];

fn key() -> String {
    portcullis::authn::api_key::generate("live", b"pepper")
        .expect("key")
        .full
}

/// A GET for `target` carrying every claim, spoofed `X-Forwarded-*`, and a key in two headers.
fn spoofing(target: &str, extra: &str) -> String {
    let claims: String = CLAIMS.iter().map(|h| format!("{h}: 6.6.6.6\r\n")).collect();
    format!(
        "GET {target} HTTP/1.1\r\nHost: cms.example.com\r\nConnection: close\r\n{claims}\
         X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\
         X-Note: see {k}\r\nCookie: a=1; k={k}\r\n{extra}\r\n",
        k = key()
    )
}

fn no_key_anywhere(headers: &http::HeaderMap) {
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes());
        assert!(!v.contains("pcl_"), "{name} carried a key upstream");
    }
}

#[tokio::test]
async fn an_untrusted_peers_claims_and_keys_never_reach_the_upstream_on_a_passthrough_path() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "[headers]\nidentity = [\"X-Umbraco-User\"]").await;
    let request = spoofing("/site/a", "X-Umbraco-User: admin\r\n");
    let r = exchange(gw.proxy, request.as_bytes())
        .await
        .expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    let h = up.requests().pop().expect("forwarded").headers;
    for claim in CLAIMS.iter().chain(&["x-umbraco-user", "x-note", "cookie"]) {
        assert!(
            !h.contains_key(*claim),
            "{claim} reached the upstream: {h:?}"
        );
    }
    // What the gateway itself received.
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "cms.example.com");
    no_key_anywhere(&h);
}

#[tokio::test]
async fn the_same_holds_on_an_authorised_api_request() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let auth = format!("Authorization: Bearer {}\r\n", token("dev-admin"));
    let request = spoofing(&doc(1063), &auth);
    let r = exchange(gw.proxy, request.as_bytes())
        .await
        .expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    let h = up.requests().pop().expect("forwarded").headers;
    for claim in CLAIMS.iter().chain(&["x-note", "cookie"]) {
        assert!(
            !h.contains_key(*claim),
            "{claim} reached the upstream: {h:?}"
        );
    }
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert!(
        h.contains_key("authorization"),
        "Umbraco acts on its own tokens"
    );
    no_key_anywhere(&h);
}

#[tokio::test]
async fn a_trusted_proxys_claims_are_believed_but_a_key_still_never_leaves() {
    let up = Upstream::start().await;
    let extra = "[headers]\ntrusted_proxies = [\"127.0.0.1/32\"]";
    let gw = spawn_gateway(SITE, up.addr, extra).await;
    let request = spoofing("/site/a", "");
    let r = exchange(gw.proxy, request.as_bytes())
        .await
        .expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    let h = up.requests().pop().expect("forwarded").headers;
    for claim in CLAIMS {
        assert_eq!(h[*claim], "6.6.6.6", "{claim} from a trusted proxy is kept");
    }
    assert_eq!(h["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "evil");
    assert!(!h.contains_key("x-note") && !h.contains_key("cookie"));
    no_key_anywhere(&h);
}
