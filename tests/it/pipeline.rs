//! End to end through the real gateway process with enforcement on: body inspection, canonical
//! forwarding, authentication and the built-in groups on the dev tree (`config/policy/dev.toml`).

use crate::harness::*;
use serde_json::{json, Value};

/// Enforcement with the dev HS256 issuer, exactly as `config/dev.toml` has it.
pub const TOP: &str = "development = true\nmode = \"enforce\"";
pub const AUTHN: &str = r#"
[authn]
pepper_env = "PORTCULLIS_KEY_PEPPER"
key_env = "dev"

[[authn.issuers]]
name = "dev"
issuer = "https://dev.portcullis.invalid"
hs_secret_env = "PORTCULLIS_DEV_HS_SECRET"
algorithms = ["HS256"]
audiences = ["portcullis-dev"]

[authz]
delivery_default_culture = "en-us"
delivery_public = true
"#;

/// The dev tree's key for int id `n` (`…-000000001063` is node 1063).
pub fn node(n: u32) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

pub fn token(user: &str) -> String {
    portcullis::dev::mint_dev_token(user).expect("mint dev token")
}

pub fn doc(n: u32) -> String {
    format!("/umbraco/management/api/v1/document/{}", node(n))
}

/// Status, headers and JSON body (Null when the body is not JSON).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Asserts a gateway-made deny: status, error id and (optionally) reason detail.
pub fn assert_denied(got: &(u16, reqwest::header::HeaderMap, Value), status: u16, error: &str) {
    assert_eq!(got.0, status, "body: {}", got.2);
    assert_eq!(got.2["error"], error, "body: {}", got.2);
    assert!(got.2["request_id"].is_string(), "body: {}", got.2);
    assert!(
        !got.1.contains_key("x-upstream"),
        "a deny must not come from the upstream"
    );
}

async fn gateway(up: &Upstream) -> Gateway {
    spawn_gateway(TOP, up.addr, AUTHN).await
}

fn create_body(parent: u32) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "parent": {"id": node(parent)},
        "documentType": {"id": "11111111-1111-1111-1111-111111111111"},
        "template": null,
        "values": [],
        "variants": [{"culture": null, "segment": null, "name": "New page"}]
    }))
    .expect("json")
}

const CREATE: &str = "/umbraco/management/api/v1/document";

#[tokio::test]
async fn a_denied_body_inspected_request_never_reaches_the_upstream_and_an_allowed_one_arrives_byte_for_byte(
) {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let c = client();
    // A writer may not sort anything (no Sort verb): denied after reading the body.
    let sort =
        json!({"parent": {"id": node(1062)}, "sorting": [{"id": node(1063), "sortOrder": 1}]});
    let got = send(
        c.put(gw.url("/umbraco/management/api/v1/document/sort"))
            .bearer_auth(token("dev-writer"))
            .json(&sort),
    )
    .await;
    assert_denied(&got, 403, "missing_verb");
    // A writer may not create under About (outside the writer's start node, the blog).
    let got = send(
        c.post(gw.url(CREATE))
            .bearer_auth(token("dev-writer"))
            .header("content-type", "application/json")
            .body(create_body(1080)),
    )
    .await;
    assert_denied(&got, 403, "outside_start_nodes");
    assert!(
        up.requests().is_empty(),
        "denied requests reached the upstream"
    );

    // An editor may create under a blog post (not under About, where editors only read): the
    // upstream receives exactly the inspected bytes.
    let got = send(
        c.post(gw.url(CREATE))
            .bearer_auth(token("dev-editor"))
            .header("content-type", "application/json")
            .body(create_body(1080)),
    )
    .await;
    assert_denied(&got, 403, "missing_verb");
    assert!(
        up.requests().is_empty(),
        "denied requests reached the upstream"
    );
    let body = create_body(1063);
    let got = send(
        c.post(gw.url(CREATE))
            .bearer_auth(token("dev-editor"))
            .header("content-type", "application/json")
            .body(body.clone()),
    )
    .await;
    assert_eq!(got.0, 200, "body: {}", got.2);
    let recs = up.requests();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].method, "POST");
    assert_eq!(recs[0].uri, CREATE);
    assert_eq!(
        recs[0].body.as_ref(),
        body.as_slice(),
        "body changed on the way"
    );
}

#[tokio::test]
async fn an_oversized_or_malformed_body_is_refused_and_nothing_reaches_the_upstream() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(
        TOP,
        up.addr,
        &format!("{AUTHN}\n[routes]\nbody_limit = 1024\n"),
    )
    .await;
    let c = client();
    let mut big = json!({"parent": {"id": node(1062)}, "variants": []});
    big["padding"] = Value::from("x".repeat(4096));
    let got = send(
        c.post(gw.url(CREATE))
            .bearer_auth(token("dev-editor"))
            .json(&big),
    )
    .await;
    assert_denied(&got, 413, "body_too_large");
    let got = send(
        c.post(gw.url(CREATE))
            .bearer_auth(token("dev-editor"))
            .header("content-type", "application/json")
            .body("{\"parent\": {\"id\": "),
    )
    .await;
    assert_denied(&got, 400, "malformed_request");
    assert!(
        up.requests().is_empty(),
        "refused bodies reached the upstream"
    );
}

#[tokio::test]
async fn a_parent_id_under_differently_cased_keys_is_read_as_asp_net_reads_it() {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let c = client();
    // ASP.NET binds `Parent.Id` case-insensitively: a writer creating under a blog post is
    // allowed (if the key were ignored the parent would be the root, outside the writer's start).
    let inside = json!({"Parent": {"Id": node(1063)}, "variants": []});
    let got = send(
        c.post(gw.url(CREATE))
            .bearer_auth(token("dev-writer"))
            .json(&inside),
    )
    .await;
    assert_eq!(got.0, 200, "body: {}", got.2);
    assert_eq!(up.requests().len(), 1);
    // ... and under About it is denied, however the key is cased.
    let outside = json!({"PARENT": {"iD": node(1080)}, "variants": []});
    let got = send(
        c.post(gw.url(CREATE))
            .bearer_auth(token("dev-writer"))
            .json(&outside),
    )
    .await;
    assert_denied(&got, 403, "outside_start_nodes");
    assert_eq!(
        up.requests().len(),
        1,
        "the denied create reached the upstream"
    );
}

#[tokio::test]
async fn dot_segment_traversal_is_refused_or_forwarded_exactly_as_authorised() {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let c = client();
    let editor = token("dev-editor");
    let writer = token("dev-writer");
    for (who, path) in [
        (
            &editor,
            format!(
                "/umbraco/management/api/v1/x/%2e%2e/document/{}",
                node(1063)
            ),
        ),
        (
            &editor,
            format!("/umbraco/management/api/v1/x/../document/{}", node(1063)),
        ),
        (
            &writer,
            format!(
                "/umbraco/management/api/v1/document/{}/%2E%2E/{}",
                node(1063),
                node(1080)
            ),
        ),
        (
            &writer,
            format!(
                "/umbraco/management/api/v1/document/{}/..%2f{}",
                node(1063),
                node(1080)
            ),
        ),
        (
            &writer,
            format!(
                "/umbraco/management/api/v1/document/{}%2f..%2f..%2fdocument%2f{}",
                node(1063),
                node(1080)
            ),
        ),
    ] {
        let before = up.requests().len();
        let got = send(c.get(gw.url(&path)).bearer_auth(who)).await;
        let recs = up.requests();
        match got.0 {
            200 => {
                assert_eq!(recs.len(), before + 1);
                let seen = &recs[before].uri;
                // Only a path that names a node the caller may read was authorised; the
                // upstream sees that canonical form, never the dot segments.
                assert!(
                    !seen.contains("..") && !seen.to_ascii_lowercase().contains("%2e"),
                    "{path} forwarded as {seen}"
                );
                assert!(
                    !seen.contains(&node(1080)),
                    "{path}: writer reached About as {seen}"
                );
                assert_eq!(seen, &doc(1063), "{path} forwarded as {seen}");
            }
            _ => {
                assert!(
                    [400, 403, 404].contains(&got.0),
                    "{path}: unexpected {} {}",
                    got.0,
                    got.2
                );
                assert!(got.2["error"].is_string(), "{path}: {}", got.2);
                assert_eq!(
                    recs.len(),
                    before,
                    "{path} was refused but reached the upstream"
                );
            }
        }
    }
    let before = up.requests().len();
    let got = send(
        c.get(gw.url(&doc(1063)))
            .bearer_auth(&editor)
            .header("X-HTTP-Method-Override", "DELETE"),
    )
    .await;
    assert_denied(&got, 400, "malformed_request");
    assert_eq!(
        up.requests().len(),
        before,
        "a method override reached the upstream"
    );
}

#[tokio::test]
async fn credentials_are_checked_before_anything_is_forwarded_and_never_echoed() {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let c = client();
    let got = send(c.get(gw.url(&doc(1063)))).await;
    assert_denied(&got, 401, "unauthenticated");
    assert_eq!(got.1["www-authenticate"], r#"Bearer realm="portcullis""#);

    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": "https://dev.portcullis.invalid", "aud": "portcullis-dev",
        "sub": "dev-editor", "iat": now - 7200, "exp": now - 3600});
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(DEV_HS_SECRET.as_bytes()),
    )
    .expect("encode");
    let got = send(c.get(gw.url(&doc(1063))).bearer_auth(&expired)).await;
    assert_denied(&got, 401, "invalid_token");
    assert_eq!(got.2["reason"], "expired");
    let www = got.1["www-authenticate"].to_str().expect("ascii");
    assert!(www.contains(r#"error="invalid_token""#), "{www}");

    let editor = token("dev-editor");
    let key = portcullis::dev::DEV_API_KEY;
    let got = send(
        c.get(gw.url(&doc(1063)))
            .bearer_auth(&editor)
            .header("Api-Key", key),
    )
    .await;
    assert_denied(&got, 400, "ambiguous_credentials");
    let got = send(c.get(gw.url(&format!(
        "/umbraco/delivery/api/v2/content/item/{}?api-key={key}",
        node(1063)
    ))))
    .await;
    assert_denied(&got, 400, "api_key_in_query");
    for secret in [expired.as_str(), editor.as_str(), key] {
        let text = got.2.to_string();
        assert!(!text.contains(secret), "response echoed a credential");
    }
    assert!(
        up.requests().is_empty(),
        "a refused credential reached the upstream"
    );
}

/// One row of the built-in group matrix: user, method, path, body, expected status and error.
struct Case {
    user: &'static str,
    put: bool,
    path: String,
    status: u16,
    error: Option<&'static str>,
    group: &'static str,
}

#[tokio::test]
async fn each_built_in_group_gets_exactly_its_umbraco_permissions_on_the_dev_tree() {
    let up = Upstream::start().await;
    let gw = gateway(&up).await;
    let c = client();
    let publish = |n| format!("{}/publish", doc(n));
    let ok = |user, put, path, group| Case {
        user,
        put,
        path,
        status: 200,
        error: None,
        group,
    };
    let no = |user, put, path, status, error| Case {
        user,
        put,
        path,
        status,
        error: Some(error),
        group: "",
    };
    let cases = [
        ok("dev-admin", false, doc(1063), "admin"),
        ok("dev-admin", true, publish(1063), "admin"),
        ok("dev-editor", false, doc(1063), "editor"),
        ok("dev-editor", true, publish(1063), "editor"),
        ok("dev-writer", false, doc(1063), "writer"),
        no("dev-writer", true, publish(1063), 403, "missing_verb"),
        no("dev-translator", false, doc(1063), 403, "no_section"),
        no("dev-translator", true, publish(1063), 403, "no_section"),
        no("dev-sensitive", false, doc(1063), 403, "no_section"),
        no("dev-sensitive", true, publish(1063), 403, "no_section"),
        // The members area lies outside the writer's own start node (the blog); the group's
        // empty explicit entry there would deny every verb as well.
        no("dev-writer", false, doc(1070), 403, "outside_start_nodes"),
        // Editors may only read About.
        ok("dev-editor", false, doc(1080), "editor"),
        no("dev-editor", true, publish(1080), 403, "missing_verb"),
        // Admins publish About.
        ok("dev-admin", true, publish(1080), "admin"),
    ];
    for case in cases {
        let before = up.requests().len();
        let req = if case.put {
            c.put(gw.url(&case.path))
                .json(&json!({"publishSchedules": [{"culture": null}]}))
        } else {
            c.get(gw.url(&case.path))
        }
        .bearer_auth(token(case.user))
        // Forged identity headers must never reach the upstream.
        .header("X-Portcullis-Principal", "dev-admin")
        .header("X-Portcullis-Groups", "admin")
        .header("X-Portcullis-Member", "ann");
        let got = send(req).await;
        let what = format!(
            "{} {} {}",
            case.user,
            if case.put { "PUT" } else { "GET" },
            case.path
        );
        let recs = up.requests();
        match case.error {
            None => {
                assert_eq!(got.0, case.status, "{what}: {}", got.2);
                assert_eq!(recs.len(), before + 1, "{what} did not reach the upstream");
                let h = &recs[before].headers;
                let principal: Vec<_> = h.get_all("x-portcullis-principal").iter().collect();
                assert_eq!(principal.len(), 1, "{what}: {h:?}");
                assert!(
                    principal[0].to_str().expect("ascii").contains(case.user),
                    "{what}: {h:?}"
                );
                let groups: Vec<_> = h.get_all("x-portcullis-groups").iter().collect();
                assert_eq!(groups, [case.group], "{what}: {h:?}");
                assert!(!h.contains_key("x-portcullis-member"), "{what}: {h:?}");
                assert_eq!(recs[before].uri, case.path, "{what}");
            }
            Some(error) => {
                assert_denied(&got, case.status, error);
                assert_eq!(recs.len(), before, "{what} reached the upstream");
            }
        }
    }
}
