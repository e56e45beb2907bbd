//! End to end on the Delivery API with the dev key, and the audit trail of a gateway: every
//! response names its decision and the file sink holds one line per request, without secrets.

use crate::harness::*;
use crate::pipeline::{assert_denied, node, send, token, AUTHN, TOP};
use std::time::Duration;

const REAL_KEY: &str = "umbraco-real-delivery-key-for-e2e";

fn item(n: u32) -> String {
    format!("/umbraco/delivery/api/v2/content/item/{}", node(n))
}

async fn gateway(up: &Upstream) -> Gateway {
    // The first line continues the harness's `[upstream]` table.
    let extra = format!("delivery_api_key_env = \"E2E_UMBRACO_DELIVERY_KEY\"\n{AUTHN}");
    spawn_gateway_with_env(
        TOP,
        up.addr,
        &extra,
        &[("E2E_UMBRACO_DELIVERY_KEY", REAL_KEY)],
    )
    .await
}

#[tokio::test]
async fn the_dev_key_reads_inside_its_subtree_and_the_upstream_gets_the_real_key_instead() {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let c = client();
    let key = portcullis::dev::DEV_API_KEY;
    let got = send(c.get(gw.url(&item(1063))).header("Api-Key", key)).await;
    assert_eq!(got.0, 200, "body: {}", got.2);
    let recs = up.requests();
    assert_eq!(recs.len(), 1);
    let keys: Vec<_> = recs[0].headers.get_all("api-key").iter().collect();
    assert_eq!(
        keys,
        [REAL_KEY],
        "the client's key must be replaced by Umbraco's"
    );
    assert!(
        recs[0]
            .headers
            .iter()
            .all(|(_, v)| !v.to_str().unwrap_or_default().contains(key)),
        "the client's key reached the upstream"
    );
    assert_eq!(recs[0].uri, item(1063));

    let got = send(c.get(gw.url(&item(1080))).header("Api-Key", key)).await;
    assert_denied(&got, 403, "outside_key_scope");
    let got = send(
        c.get(gw.url(&item(1063)))
            .header("Api-Key", key)
            .header("Preview", "true"),
    )
    .await;
    assert_denied(&got, 403, "preview_not_allowed");
    // The same key id with another secret, and an unknown key id.
    let wrong_secret = format!("{}x", &key[..key.len() - 1]);
    let unknown = key.replace("DevBlogKey000001", "DevBlogKey000002");
    for k in [wrong_secret, unknown] {
        let got = send(c.get(gw.url(&item(1063))).header("Api-Key", &k)).await;
        assert_eq!(got.0, 401, "body: {}", got.2);
        assert!(!got.2.to_string().contains(&k), "the key was echoed");
    }
    assert_eq!(
        up.requests().len(),
        1,
        "a denied Delivery request reached the upstream"
    );
}

/// A non-ASCII `Accept-Language` on a Delivery request is refused (400 `malformed_request`)
/// and never forwarded. The gateway reads header values as visible ASCII only, so it cannot
/// judge such a value against a key's cultures; nor may it take it for "no culture" (judged by
/// the default one): Umbraco's `RequestCultureService.GetRequestedCulture` takes a value that
/// matches `^[\w-]*$` as the requested culture, and .NET's `\w` matches non-ASCII letters.
#[tokio::test]
async fn a_non_ascii_accept_language_is_a_malformed_request_and_never_forwarded() {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let c = client();
    let key = portcullis::dev::DEV_API_KEY;
    let ascii = c.get(gw.url(&item(1063))).header("Api-Key", key);
    let got = send(ascii.header("Accept-Language", "en-US")).await;
    assert_eq!(got.0, 200, "body: {}", got.2);
    // UTF-8 and a raw Latin-1 byte: both are obs-text to HTTP/1.1.
    for value in [&b"d\xc3\xa4-DK"[..], &b"d\xe4-DK"[..]] {
        let value = reqwest::header::HeaderValue::from_bytes(value).expect("obs-text is allowed");
        let req = c.get(gw.url(&item(1063))).header("Api-Key", key);
        let got = send(req.header("Accept-Language", value)).await;
        assert_denied(&got, 400, "malformed_request");
    }
    assert_eq!(
        up.requests().len(),
        1,
        "a request with a non-ASCII Accept-Language reached the upstream"
    );
}

#[tokio::test]
async fn every_response_names_its_audit_event_and_the_file_sink_holds_it_without_secrets() {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let c = client();
    let key = portcullis::dev::DEV_API_KEY;
    let editor = token("dev-editor");
    let writer = token("dev-writer");
    let publish = format!("/umbraco/management/api/v1/document/{}/publish", node(1063));
    let reqs = [
        (
            c.get(gw.url(&item(1063))).header("Api-Key", key),
            "allow",
            None,
        ),
        (
            c.get(gw.url(&item(1080))).header("Api-Key", key),
            "deny",
            Some("outside_key_scope"),
        ),
        (
            c.get(gw.url(&format!(
                "/umbraco/management/api/v1/document/{}",
                node(1063)
            )))
            .bearer_auth(&editor),
            "allow",
            None,
        ),
        (
            c.put(gw.url(&publish))
                .bearer_auth(&writer)
                .json(&serde_json::json!({"publishSchedules": [{"culture": null}]})),
            "deny",
            Some("missing_verb"),
        ),
        (c.get(gw.url(&item(1063))), "allow", None),
    ];
    let mut expected = Vec::new();
    for (req, decision, reason) in reqs {
        let (status, headers, body) = send(req).await;
        let id = headers
            .get("x-portcullis-decision-id")
            .unwrap_or_else(|| panic!("no decision id on a {status}: {body}"))
            .to_str()
            .expect("ascii")
            .to_owned();
        uuid::Uuid::parse_str(&id).expect("the decision id is a uuid");
        expected.push((id, decision, reason));
    }
    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&gw.audit_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let want = expected.len();
    let appeared = wait_until(Duration::from_secs(10), || {
        let n = lines().len();
        async move { n >= want }
    })
    .await;
    assert!(
        appeared.is_some(),
        "audit lines did not appear; log:\n{}",
        gw.log()
    );
    let events = lines();
    assert_eq!(
        events.len(),
        expected.len(),
        "one line per request: {events:?}"
    );
    for (id, decision, reason) in &expected {
        let matching: Vec<_> = events
            .iter()
            .filter(|e| e["event_id"] == *id.as_str())
            .collect();
        assert_eq!(matching.len(), 1, "event {id}: {events:?}");
        assert_eq!(matching[0]["decision"], *decision, "{}", matching[0]);
        match reason {
            Some(r) => assert_eq!(matching[0]["reason"], *r, "{}", matching[0]),
            None => assert!(matching[0]["reason"].is_null(), "{}", matching[0]),
        }
    }
    let text = std::fs::read_to_string(&gw.audit_path).expect("audit file");
    let secret = &key[key.rfind('_').expect("key shape") + 1..];
    for s in [key, secret, editor.as_str(), writer.as_str(), REAL_KEY] {
        assert!(!text.contains(s), "the audit trail holds a secret");
    }
    assert!(!gw.log().contains(secret), "the log holds a key secret");
    assert!(!gw.log().contains(&editor), "the log holds a token");
}
