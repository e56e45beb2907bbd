//! End to end through the real gateway: Portcullis decides what Umbraco decides (issue #10) —
//! JSON member names bound as System.Text.Json binds them, and every denial leaves the upstream
//! untouched.

use crate::harness::*;
use crate::pipeline::{assert_denied, node, send, token, AUTHN, TOP};

const CREATE: &str = "/umbraco/management/api/v1/document";

/// `POST document` with a raw JSON body, as `user`.
fn create_as(c: &reqwest::Client, gw: &Gateway, user: &str, body: &str) -> reqwest::RequestBuilder {
    c.post(gw.url(CREATE))
        .bearer_auth(token(user))
        .header("content-type", "application/json")
        .body(body.to_owned())
}

#[tokio::test]
async fn a_body_with_a_dotless_i_twin_of_the_parent_id_is_refused_and_never_forwarded() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let c = client();
    let (forbidden, allowed) = (node(1080), node(1063));
    // Umbraco binds `id` (U+0131 is not `I` in .NET's ordinal casing); the old fold read `ıd`.
    let attacks = [
        format!(r#"{{"parent":{{"id":"{forbidden}","ıd":"{allowed}"}},"variants":[]}}"#),
        format!(r#"{{"parent":{{"id":"{forbidden}","\u0131d":"{allowed}"}},"variants":[]}}"#),
        format!(r#"{{"parent":{{"id":"{forbidden}","İd":"{allowed}"}},"variants":[]}}"#),
        format!(r#"{{"parent":{{"id":"{forbidden}"}},"PARENT":{{"id":"{allowed}"}}}}"#),
        format!(r#"{{"parent":{{"ıd":"{allowed}"}},"variants":[]}}"#),
    ];
    for body in attacks {
        let got = send(create_as(&c, &gw, "dev-writer", &body)).await;
        assert_denied(&got, 400, "malformed_request");
        assert!(up.requests().is_empty(), "{body} reached the upstream");
    }
    // The same writer under its own start node passes, with the bytes unchanged.
    let body = format!(r#"{{"parent":{{"id":"{allowed}"}},"variants":[]}}"#);
    let got = send(create_as(&c, &gw, "dev-writer", &body)).await;
    assert_eq!(got.0, 200, "body: {}", got.2);
    let recs = up.requests();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].body.as_ref(), body.as_bytes());
}
