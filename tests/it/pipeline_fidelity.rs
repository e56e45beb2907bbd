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

/// The dev policy with extra TOML appended, as a `[store]` section for `spawn_gateway`.
fn policy_with(dir: &tempfile::TempDir, extra: &str) -> String {
    let dev = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy/dev.toml");
    let text = std::fs::read_to_string(dev).expect("dev policy");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, format!("{text}\n{extra}")).expect("write policy");
    format!(
        "{AUTHN}\n[store]\nkind = \"file\"\npolicy_file = {:?}\n",
        path.display().to_string()
    )
}

const START_NODE_USERS: &str = r#"
[[groups]]
key = "00000000-0000-0000-0000-00000000b106"
alias = "blogWriters"
name = "Blog writers"
sections = ["content"]
default_verbs = ["Umb.Document.Read", "Umb.Document.Create"]
content_start = "00000000-0000-0000-0000-000000001062"
all_languages = true

[[users]]
key = "00000000-0000-0000-0000-00000000bb01"
external_id = "own-trashed"
name = "Own start node in the bin"
groups = ["writer"]
content_start = ["00000000-0000-0000-0000-000000001090"]

[[users]]
key = "00000000-0000-0000-0000-00000000bb02"
external_id = "own-root"
name = "Own root start node"
groups = ["blogWriters"]
content_start = ["root"]
"#;

#[tokio::test]
async fn own_start_nodes_in_the_bin_are_ignored_and_an_own_root_start_node_reaches_everything() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = spawn_gateway(TOP, up.addr, &policy_with(&dir, START_NODE_USERS)).await;
    let c = client();
    let about = format!(r#"{{"parent":{{"id":"{}"}},"variants":[]}}"#, node(1080));
    // The writer narrowed to the blog by its own start node may not create under About...
    let got = send(create_as(&c, &gw, "dev-writer", &about)).await;
    assert_denied(&got, 403, "outside_start_nodes");
    assert!(
        up.requests().is_empty(),
        "a denied create reached the upstream"
    );
    // ... a writer whose own start node is in the recycle bin keeps the group's root start
    // node (Umbraco's CombineStartNodes skips bin paths), and a blog writer whose own start
    // node is the root reaches beyond the group's blog start node.
    for user in ["own-trashed", "own-root"] {
        let got = send(create_as(&c, &gw, user, &about)).await;
        assert_eq!(got.0, 200, "{user}: {}", got.2);
    }
    assert_eq!(up.requests().len(), 2);
}

const PUBLISHERS: &str = r#"
[[groups]]
key = "00000000-0000-0000-0000-00000000a001"
alias = "pubA"
name = "Publishes all but the 1070 branch"
sections = ["content"]
default_verbs = ["Umb.Document.Read", "Umb.Document.Publish"]
content_start = "root"
all_languages = true

[[groups]]
key = "00000000-0000-0000-0000-00000000a002"
alias = "pubB"
name = "Publishes only the 1070 branch"
sections = ["content"]
default_verbs = ["Umb.Document.Read"]
content_start = "root"
all_languages = true

[[permissions]]
group = "pubA"
node = "00000000-0000-0000-0000-000000001070"
verbs = ["Umb.Document.Read"]

[[permissions]]
group = "pubB"
node = "00000000-0000-0000-0000-000000001070"
verbs = ["Umb.Document.Read", "Umb.Document.Publish"]

[[users]]
key = "00000000-0000-0000-0000-00000000bb11"
external_id = "mixed-publisher"
name = "Publisher through two groups"
groups = ["pubA", "pubB"]

[[users]]
key = "00000000-0000-0000-0000-00000000bb12"
external_id = "half-publisher"
name = "Publisher lacking the 1070 branch"
groups = ["pubA"]
"#;

#[tokio::test]
async fn publish_with_descendants_is_decided_on_the_union_of_groups_at_every_descendant() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = spawn_gateway(TOP, up.addr, &policy_with(&dir, PUBLISHERS)).await;
    let c = client();
    let url = gw.url(&format!(
        "/umbraco/management/api/v1/document/{}/publish-with-descendants",
        node(1051)
    ));
    let publish = |user: &str| {
        c.put(&url)
            .bearer_auth(token(user))
            .header("content-type", "application/json")
            .body(r#"{"includeUnpublishedDescendants":true,"cultures":[]}"#)
    };
    // pubA lacks Publish on 1070 (a descendant of 1051) and nothing else grants it there.
    let got = send(publish("half-publisher")).await;
    assert_denied(&got, 403, "missing_verb");
    assert!(
        up.requests().is_empty(),
        "a denied publish reached the upstream"
    );
    // pubB grants it on 1070: the union covers every descendant, as in Umbraco.
    let got = send(publish("mixed-publisher")).await;
    assert_eq!(got.0, 200, "body: {}", got.2);
    assert_eq!(up.requests().len(), 1);
}

/// A fresh Delivery key acting as `user`, as a policy-file entry, and the full key to send.
fn acting_key(user: &str) -> (String, String) {
    let k = portcullis::authn::api_key::generate("dev", DEV_PEPPER.as_bytes()).expect("key");
    let entry = format!(
        "[[api_keys]]\nkey_id = \"{}\"\nhash = \"{}\"\nname = \"acts as {user}\"\nowner = \"e2e\"\napis = [\"delivery\"]\nacts_as = \"{user}\"\n",
        k.key_id,
        hex::encode(k.hash)
    );
    (entry, k.full)
}

#[tokio::test]
async fn a_delivery_key_acting_as_a_locked_user_is_refused_and_never_forwarded() {
    let up = Upstream::start().await;
    let (locked_entry, locked_key) = acting_key("locked-editor");
    let (active_entry, active_key) = acting_key("dev-editor");
    let users = format!(
        "[[users]]\nkey = \"00000000-0000-0000-0000-00000000bb21\"\nexternal_id = \"locked-editor\"\nname = \"Locked out\"\nstate = \"locked\"\ngroups = [\"editor\"]\n\n{locked_entry}\n{active_entry}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = spawn_gateway(TOP, up.addr, &policy_with(&dir, &users)).await;
    let c = client();
    let url = gw.url(&format!(
        "/umbraco/delivery/api/v2/content/item/{}",
        node(1063)
    ));
    let got = send(c.get(&url).header("Api-Key", &locked_key)).await;
    assert_denied(&got, 403, "user_disabled");
    assert!(
        up.requests().is_empty(),
        "a denied read reached the upstream"
    );
    let got = send(c.get(&url).header("Api-Key", &active_key)).await;
    assert_eq!(got.0, 200, "body: {}", got.2);
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn a_blog_key_may_not_query_everything_behind_a_start_item_umbraco_ignores() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let c = client();
    let key = portcullis::dev::DEV_API_KEY;
    let content = gw.url("/umbraco/delivery/api/v2/content");
    // The blog (1062) is not a root: Umbraco drops the Start-Item and searches the whole tree.
    let got = send(
        c.get(&content)
            .header("Api-Key", key)
            .header("Start-Item", node(1062)),
    )
    .await;
    assert_denied(&got, 403, "outside_key_scope");
    assert!(
        up.requests().is_empty(),
        "a denied query reached the upstream"
    );
    // Fetching the blog's children names the subtree explicitly.
    let url = format!("{content}?fetch=children:{}", node(1062));
    let got = send(
        c.get(&url)
            .header("Api-Key", key)
            .header("Start-Item", node(1062)),
    )
    .await;
    assert_eq!(got.0, 200, "body: {}", got.2);
    assert_eq!(up.requests().len(), 1);
}

/// A dev-issuer token for `user` with JOSE header `typ`.
fn token_typed(user: &str, typ: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": "https://dev.portcullis.invalid", "aud": "portcullis-dev", "sub": user,
        "iat": now, "exp": now + 600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some(typ.to_owned());
    let key = jsonwebtoken::EncodingKey::from_secret(DEV_HS_SECRET.as_bytes());
    jsonwebtoken::encode(&header, &claims, &key).expect("token")
}

#[tokio::test]
async fn an_issuer_requiring_at_jwt_refuses_other_token_types_before_the_upstream() {
    let up = Upstream::start().await;
    let authn = AUTHN.replace(
        "audiences = [\"portcullis-dev\"]",
        "audiences = [\"portcullis-dev\"]\ntoken_types = [\"at+jwt\"]",
    );
    assert!(authn.contains("token_types"));
    let gw = spawn_gateway(TOP, up.addr, &authn).await;
    let c = client();
    let url = gw.url(&format!(
        "/umbraco/management/api/v1/document/{}",
        node(1063)
    ));
    let got = send(c.get(&url).bearer_auth(token_typed("dev-editor", "JWT"))).await;
    assert_denied(&got, 401, "invalid_token");
    assert_eq!(got.2["reason"], "wrong_type", "body: {}", got.2);
    assert!(
        up.requests().is_empty(),
        "a refused token reached the upstream"
    );
    let got = send(c.get(&url).bearer_auth(token_typed("dev-editor", "at+jwt"))).await;
    assert_eq!(got.0, 200, "body: {}", got.2);
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after_and_nothing_reaches_the_upstream() {
    let up = Upstream::start().await;
    let (entry, key) = acting_key("dev-editor");
    let entry = format!("{entry}rate_limit_rps = 1\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = spawn_gateway(TOP, up.addr, &policy_with(&dir, &entry)).await;
    let c = client();
    let url = gw.url(&format!(
        "/umbraco/delivery/api/v2/content/item/{}",
        node(1063)
    ));
    // One request a second with a burst of one: a quick run of requests meets the limit long
    // before the bound (the bound only matters if each request took over a second).
    let (mut admitted, mut limited) = (0, None);
    for _ in 0..20 {
        let resp = c
            .get(&url)
            .header("Api-Key", &key)
            .send()
            .await
            .expect("send");
        match resp.status().as_u16() {
            200 => admitted += 1,
            429 => {
                limited = Some(resp);
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let resp = limited.expect("the key's limit was never reached");
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "rate_limited", "body: {body}");
    assert_eq!(
        up.requests().len(),
        admitted,
        "a limited request reached the upstream"
    );
    assert!(
        gw.metric("portcullis_rate_limited_total{method=\"api_key\"}")
            .await
            .is_some_and(|n| n >= 1.0),
        "the rate-limited counter did not move"
    );
}

#[test]
fn check_config_refuses_a_policy_file_that_serve_would_refuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |policy: &str| {
        let p = dir.path().join("policy.toml");
        std::fs::write(&p, policy).expect("write policy");
        let c = dir.path().join("portcullis.toml");
        std::fs::write(
            &c,
            "development = true\nmode = \"passthrough\"\n[upstream]\nmanagement = \"127.0.0.1:1\"\n[store]\nkind = \"file\"\npolicy_file = \"policy.toml\"\n",
        )
        .expect("write config");
        check_config(&[&c])
    };
    let dev = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy/dev.toml"),
    )
    .expect("dev policy");
    for fine in [dev.as_str(), "empty = true\n"] {
        let (code, text) = config(fine);
        assert_eq!(code, Some(0), "{text}");
        assert!(!text.contains("warning"), "{text}");
    }
    // An unknown verb is carried (packages add verbs) but reported with the nearest known one.
    let typo = dev.replacen("\"Umb.Document.Read\"", "\"Umb.Document.Raed\"", 1);
    assert_ne!(typo, dev, "the dev policy names Umb.Document.Read");
    let (code, text) = config(&typo);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("warning: ") && text.contains("`Umb.Document.Raed` is not a verb Umbraco knows; did you mean `Umb.Document.Read`?"),
        "{text}"
    );
    for (broken, needle) in [
        (String::new(), "the file has no entries"),
        ("# truncated\n".to_owned(), "write `empty = true`"),
        (
            "[[users]]\nkey = 1\n".to_owned(),
            "cannot parse policy file",
        ),
        (
            dev.replace("groups = [\"writer\"]", "groups = [\"wrtier\"]"),
            "unknown group `wrtier`",
        ),
    ] {
        let (code, text) = config(&broken);
        assert_eq!(code, Some(64), "{text}");
        assert!(text.contains(needle), "`{needle}` not in {text}");
    }
}
