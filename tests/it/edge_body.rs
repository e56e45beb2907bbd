//! Bodies at the edge, through the real gateway on raw sockets: a route whose node ids are in
//! the body authenticates and checks sections before reading a byte of it, answers
//! `Expect: 100-continue` only after that, and reads the body within `listen.body_timeout`.

use crate::harness::*;
use crate::pipeline::{node, token, AUTHN, TOP};
use crate::raw::*;

const CREATE: &str = "/umbraco/management/api/v1/document";

fn create_body(parent: u32) -> String {
    serde_json::json!({
        "parent": {"id": node(parent)},
        "documentType": {"id": "11111111-1111-1111-1111-111111111111"},
        "template": null,
        "values": [],
        "variants": [{"culture": null, "segment": null, "name": "New page"}]
    })
    .to_string()
}

/// The head of a create request announcing `len` body bytes, with `extra` header lines.
fn create_head(len: usize, extra: &str) -> String {
    format!(
        "POST {CREATE} HTTP/1.1\r\nHost: cms\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn an_anonymous_caller_gets_401_before_sending_any_of_its_body_and_no_100_continue() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let mut c = Raw::connect(gw.proxy).await;
    // Only the head: the gateway must answer without the 1000 announced bytes.
    c.send(create_head(1000, "Expect: 100-continue\r\n").as_bytes())
        .await;
    let r = c.response().await.expect("a response without the body");
    assert_eq!(
        r.status, 401,
        "no 100 Continue before authentication: {r:?}"
    );
    assert_eq!(r.error(), "unauthenticated");
    // The unread body is never drained: the connection closes after the reply.
    assert!(c.closed_within(PATIENCE).await);
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn a_caller_without_the_section_gets_403_before_sending_any_of_its_body() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let mut c = Raw::connect(gw.proxy).await;
    // The translator holds only the translation section; creating a document needs content.
    let auth = format!("Authorization: Bearer {}\r\n", token("dev-translator"));
    c.send(create_head(1000, &format!("{auth}Expect: 100-continue\r\n")).as_bytes())
        .await;
    let r = c.response().await.expect("a response without the body");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.error(), "no_section");
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn expect_100_continue_is_answered_after_authentication_and_the_body_is_then_decided() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let body = create_body(1062);
    let mut c = Raw::connect(gw.proxy).await;
    let auth = format!("Authorization: Bearer {}\r\n", token("dev-admin"));
    c.send(create_head(body.len(), &format!("{auth}Expect: 100-continue\r\n")).as_bytes())
        .await;
    let interim = c.response().await.expect("100 Continue");
    assert_eq!(interim.status, 100);
    c.send(body.as_bytes()).await;
    let r = c.response().await.expect("final response");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-upstream"), Some("recorder"));
    let got = up.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, body.as_bytes(), "exactly the inspected bytes");
    assert!(
        !got[0].headers.contains_key("expect"),
        "the upstream gets the whole body at once, so no Expect"
    );
}

#[tokio::test]
async fn a_declared_body_over_the_inspection_limit_is_413_after_authentication_without_reading_it()
{
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let mut c = Raw::connect(gw.proxy).await;
    let auth = format!("Authorization: Bearer {}\r\n", token("dev-admin"));
    c.send(create_head(10_000_000, &format!("{auth}Expect: 100-continue\r\n")).as_bytes())
        .await;
    let r = c.response().await.expect("a response");
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.error(), "body_too_large");
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn an_inspected_body_that_does_not_arrive_within_the_body_timeout_is_408_and_closed() {
    let up = Upstream::start().await;
    // A short deadline keeps the test fast; the bound on waiting for it is generous.
    let gw = spawn_gateway_with_env(
        TOP,
        up.addr,
        AUTHN,
        &[("PORTCULLIS_LISTEN__BODY_TIMEOUT", "1s")],
    )
    .await;
    let body = create_body(1062);
    let mut c = Raw::connect(gw.proxy).await;
    let auth = format!("Authorization: Bearer {}\r\n", token("dev-admin"));
    c.send(create_head(body.len(), &auth).as_bytes()).await;
    // Half the body, then nothing.
    c.send(&body.as_bytes()[..body.len() / 2]).await;
    let r = c.response().await.expect("408");
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.error(), "request_timeout");
    assert!(c.closed_within(PATIENCE).await);
    assert!(up.requests().is_empty());
}
