//! The routes issue #10 found unchecked, through the real gateway in front of the recording
//! upstream: document versions, file renames with an encoded path, `[authz] item_scope`, and
//! which route profile is in use. A deny never reaches the upstream.

use crate::harness::*;
use crate::pipeline::{assert_denied, node, send, token, AUTHN, TOP};

const M: &str = "/umbraco/management/api/v1";
/// A version id: this gateway has no API user to ask Umbraco its owner with
/// (`tests/it/version_routes.rs` has one).
const VERSION: &str = "5d1c0b6e-7a39-4c1e-9d0a-2b8e4f6a7c10";

fn forwarded(got: &(u16, reqwest::header::HeaderMap, serde_json::Value)) {
    assert_eq!(got.0, 200, "body: {}", got.2);
    assert_eq!(got.1["x-upstream"], "recorder");
}

#[tokio::test]
async fn document_versions_are_checked_on_their_document_and_unknown_versions_are_denied() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let c = client();
    // The writer's own start node is the blog (1062): About (1080) is outside it.
    let list = |n| gw.url(&format!("{M}/document-version?documentId={}", node(n)));
    let got = send(c.get(list(1080)).bearer_auth(token("dev-writer"))).await;
    assert_denied(&got, 403, "outside_start_nodes");
    // A version's document is asked of Umbraco with the API user; without one it is unknown:
    // denied by default.
    for (method, path) in [
        (
            reqwest::Method::GET,
            format!("{M}/document-version/{VERSION}"),
        ),
        (
            reqwest::Method::PUT,
            format!("{M}/document-version/{VERSION}/prevent-cleanup"),
        ),
        (
            reqwest::Method::POST,
            format!("{M}/document-version/{VERSION}/rollback"),
        ),
    ] {
        let got = send(
            c.request(method, gw.url(&path))
                .bearer_auth(token("dev-admin")),
        )
        .await;
        assert_denied(&got, 403, "unknown_node");
    }
    assert!(
        up.requests().is_empty(),
        "a denied request reached the upstream"
    );

    let got = send(c.get(list(1063)).bearer_auth(token("dev-writer"))).await;
    forwarded(&got);
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].uri,
        format!("{M}/document-version?documentId={}", node(1063))
    );
}

#[tokio::test]
async fn a_file_rename_with_an_encoded_path_needs_settings_and_arrives_as_sent() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let c = client();
    let rename = |kind: &str, path: &str| gw.url(&format!("{M}/{kind}/{path}/rename"));
    let body = serde_json::json!({"name": "b.cshtml"});
    // The writer holds `content` only.
    let got = send(
        c.put(rename("partial-view", "Views%2Fa.cshtml"))
            .bearer_auth(token("dev-writer"))
            .json(&body),
    )
    .await;
    assert_denied(&got, 403, "no_section");
    // Umbraco decodes the path (DecodePath): a hidden `..` would climb out of the folder.
    let got = send(
        c.put(rename("script", "scripts%2F..%2F..%2Fweb.config"))
            .bearer_auth(token("dev-admin"))
            .json(&body),
    )
    .await;
    assert_denied(&got, 400, "malformed_request");
    assert!(
        up.requests().is_empty(),
        "a denied request reached the upstream"
    );

    for kind in ["partial-view", "script", "stylesheet"] {
        let got = send(
            c.put(rename(kind, "folder%2Fa.x"))
                .bearer_auth(token("dev-admin"))
                .json(&body),
        )
        .await;
        forwarded(&got);
    }
    let uris: Vec<String> = up.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(
        uris,
        ["partial-view", "script", "stylesheet"].map(|k| format!("{M}/{k}/folder%2Fa.x/rename"))
    );
}

#[tokio::test]
async fn item_scope_start_nodes_refuses_item_ids_outside_the_callers_start_nodes() {
    let up = Upstream::start().await;
    let strict_authn = AUTHN.replace("[authz]\n", "[authz]\nitem_scope = \"start_nodes\"\n");
    assert_ne!(strict_authn, AUTHN);
    let strict = spawn_gateway(TOP, up.addr, &strict_authn).await;
    let c = client();
    let items = |gw: &Gateway, ids: &[u32]| {
        let q: Vec<String> = ids.iter().map(|n| format!("id={}", node(*n))).collect();
        gw.url(&format!("{M}/item/document?{}", q.join("&")))
    };
    let got = send(
        c.get(items(&strict, &[1063, 1080]))
            .bearer_auth(token("dev-writer")),
    )
    .await;
    assert_denied(&got, 403, "outside_start_nodes");
    assert!(
        up.requests().is_empty(),
        "a denied request reached the upstream"
    );
    let got = send(
        c.get(items(&strict, &[1062, 1063]))
            .bearer_auth(token("dev-writer")),
    )
    .await;
    forwarded(&got);
    assert_eq!(up.requests().len(), 1);
    drop(strict);

    // The default answers as Umbraco does: summaries for any id.
    let default = spawn_gateway(TOP, up.addr, AUTHN).await;
    let got = send(
        c.get(items(&default, &[1080]))
            .bearer_auth(token("dev-writer")),
    )
    .await;
    forwarded(&got);
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn check_config_and_the_startup_log_name_the_route_profile_in_use() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let log = gw.log();
    assert!(
        log.contains("builtin:umbraco-management (= builtin:umbraco-management-v17, Umbraco 17.4.2, 471 routes)"),
        "startup log: {log}"
    );
    // The same config with the Umbraco 18 profile.
    let text = std::fs::read_to_string(&gw.config_path).expect("config");
    let v18 = gw.config_path.with_file_name("v18.toml");
    std::fs::write(
        &v18,
        format!("{text}\n[routes]\nprofiles = [\"builtin:umbraco-management-v18\", \"builtin:umbraco-delivery\"]\n"),
    )
    .expect("write");
    let stdout = crate::cli::ok(&["check-config", v18.to_str().expect("utf-8 path")]);
    assert!(
        stdout.contains(": ok (routes: builtin:umbraco-management-v18 (Umbraco 18.1.0-rc, 524 routes), builtin:umbraco-delivery (13 routes))"),
        "{stdout}"
    );
}
