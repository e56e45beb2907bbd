//! End to end: Delivery items by path resolved as Umbraco resolves them (relative to the
//! `Start-Item` root, route paths in Umbraco's `/blog/` form, ASCII case-insensitive), on the
//! shipped dev policy and on a two-site tree where a path is ambiguous. Umbraco's side:
//! `ByRouteContentApiController` → `ApiContentPathResolver` → `RequestRoutingService.GetContentRoute`
//! (Umbraco-CMS, see `src/authz/route_path.rs`). A denied request never reaches the upstream.

use crate::harness::*;
use crate::pipeline::{assert_denied, node, send, AUTHN, TOP};
use portcullis::dev::{DEV_API_KEY, DEV_POLICY};

fn by_path(p: &str) -> String {
    format!("/umbraco/delivery/api/v2/content/item/{p}")
}

#[tokio::test]
async fn the_dev_policys_routes_answer_in_umbracos_form_and_denied_paths_never_reach_the_upstream()
{
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let c = client();
    let mut allowed = Vec::new();
    // The dev key is scoped to the blog (1062), whose route is "/blog/".
    // The gateway forwards its canonical form (no trailing slash; Umbraco drops empty segments).
    for p in ["blog", "blog/", "Blog/Post-1/", "blog%2Fpost-2"] {
        let got = send(c.get(gw.url(&by_path(p))).header("Api-Key", DEV_API_KEY)).await;
        assert_eq!(got.0, 200, "{p}: {}", got.2);
        allowed.push(by_path(p.trim_end_matches('/')));
    }
    let got = send(
        c.get(gw.url(&by_path("about")))
            .header("Api-Key", DEV_API_KEY),
    )
    .await;
    assert_denied(&got, 403, "outside_key_scope");
    // Member protection is judged on the node the path names: /members/ protects its lounge.
    let got = send(c.get(gw.url(&by_path("Members/Lounge")))).await;
    assert_denied(&got, 401, "member_required");
    // Relative to a Start-Item that is a root's key; a URL segment or a non-root is refused.
    let root = send(
        c.get(gw.url(&by_path("blog/post-1")))
            .header("Api-Key", DEV_API_KEY)
            .header("Start-Item", node(1051)),
    )
    .await;
    assert_eq!(
        root.0, 403,
        "the root itself is outside the key: {}",
        root.2
    );
    let got = send(
        c.get(gw.url(&by_path("blog/post-1")))
            .header("Start-Item", node(1051)),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    allowed.push(by_path("blog/post-1"));
    for start in ["home".to_owned(), node(1062)] {
        let got = send(
            c.get(gw.url(&by_path("blog/post-1")))
                .header("Start-Item", &start),
        )
        .await;
        assert_denied(&got, 403, "unknown_node");
    }
    let got = send(c.get(gw.url(&by_path("no-such-page")))).await;
    assert_denied(&got, 403, "unknown_node");
    let seen: Vec<String> = up.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(
        seen, allowed,
        "only the allowed requests reach the upstream"
    );
}

/// The dev tree plus a second site (root 3001) that also has a `/blog/` page.
fn two_sites() -> String {
    let second = r#"
[[nodes]]
key = "00000000-0000-0000-0000-000000003001"
id = 3001
kind = "document"
route_path = "/"

[[nodes]]
key = "00000000-0000-0000-0000-000000003002"
id = 3002
parent = "00000000-0000-0000-0000-000000003001"
kind = "document"
route_path = "/Blog"

[[public_access]]
node = "00000000-0000-0000-0000-000000003002"
member_groups = ["vip"]
"#;
    format!("{DEV_POLICY}\n{second}")
}

#[tokio::test]
async fn a_path_two_sites_share_is_refused_unless_a_start_item_picks_the_site() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("two-sites.toml");
    std::fs::write(&policy, two_sites()).expect("write policy");
    let extra = format!(
        "{AUTHN}\n[store]\nkind = \"file\"\npolicy_file = {:?}\n",
        policy.display().to_string()
    );
    let gw = spawn_gateway(TOP, up.addr, &extra).await;
    let c = client();
    for p in ["blog", ""] {
        let got = send(c.get(gw.url(&by_path(p)))).await;
        assert_denied(&got, 403, "unknown_node");
        let why = send(
            gw.admin(reqwest::Method::POST, "/v1/explain")
                .json(&serde_json::json!({"method": "GET", "target": by_path(p)})),
        )
        .await;
        assert!(
            why.2
                .to_string()
                .contains("ambiguous: 2 documents answer to it"),
            "explain names the ambiguity: {}",
            why.2
        );
    }
    assert!(
        up.requests().is_empty(),
        "an ambiguous path reached the upstream"
    );
    let first = send(
        c.get(gw.url(&by_path("blog")))
            .header("Start-Item", node(1051)),
    )
    .await;
    assert_eq!(first.0, 200, "{}", first.2);
    let second = send(
        c.get(gw.url(&by_path("blog")))
            .header("Start-Item", node(3001)),
    )
    .await;
    assert_denied(&second, 401, "member_required");
    assert_eq!(up.requests().len(), 1);
}
