//! `portcullis overrides …`, `audit list` and `explain --admin-url` run as the real binary
//! against two gateways sharing one PostgreSQL database: a local group and a group mapping
//! made with the CLI let an external IdP principal (not a registered user) through the proxy on
//! both replicas, and deleting the mapping denies it again on both. A mirror sync afterwards
//! leaves every override exactly as it was (same ETags).

use crate::admin_overrides::{local_group, pg_extra, token_with_groups, wait_doc_status};
use crate::cli_keys::{code, keys as portcullis, ok_json, out};
use crate::harness::*;
use crate::pipeline::{doc, node, TOP};
use serde_json::{json, Value};

const MAPPING: &str = r#"{"issuer": "dev", "idp_group": "readers", "groups": ["extReaders"]}"#;

#[tokio::test]
async fn a_mapping_made_with_the_cli_grants_an_idp_group_on_both_replicas_until_deleted() {
    let (db, _pool) = ScratchDb::with_dev_policy("cliover").await;
    let up = Upstream::start().await;
    let extra = format!(
        "{}\n[audit]\nflush_interval = \"50ms\"\n[[audit.sinks]]\nkind = \"postgres\"\n\
         database_url_env = \"E2E_DATABASE_URL\"\n",
        pg_extra()
    );
    let env = [("E2E_DATABASE_URL", db.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = spawn_gateway_with_env(TOP, up.addr, &extra, &env).await;
    let b = spawn_gateway_with_env(TOP, up.addr, &extra, &env).await;
    let (url_a, url_b) = (format!("http://{}", a.admin), format!("http://{}", b.admin));
    let zoe = token_with_groups("ext-zoe", &["readers", "unmapped"]);
    for gw in [&a, &b] {
        wait_doc_status(gw, &zoe, 403).await;
    }
    let forwarded = || {
        up.requests()
            .iter()
            .filter(|r| r.uri.contains(&node(1063)))
            .count()
    };
    assert_eq!(forwarded(), 0);

    let group = local_group().to_string();
    let g = ok_json(&[
        "overrides",
        "create",
        "groups",
        "--admin-url",
        &url_a,
        "--data",
        &group,
        "--json",
    ])
    .await;
    assert_eq!(g["origin"], "local");
    let m = ok_json(&[
        "overrides",
        "create",
        "group-mappings",
        "--admin-url",
        &url_a,
        "--data",
        MAPPING,
        "--json",
    ])
    .await;
    assert_eq!(m["groups"], json!(["extReaders"]));
    for gw in [&a, &b] {
        wait_doc_status(gw, &zoe, 200).await;
    }
    assert!(forwarded() >= 2, "the upstream saw both replicas' requests");

    // Table output, update through the current ETag, explain and the audit trail.
    let o = portcullis(
        &[
            "overrides",
            "list",
            "groups",
            "--origin",
            "local",
            "--admin-url",
            &url_b,
        ],
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(code(&o), 0);
    let text = out(&o);
    assert!(
        text.starts_with("ALIAS") && text.contains("extReaders") && !text.contains("editor"),
        "{text}"
    );
    let mut renamed: Value = serde_json::from_str(&group).expect("json");
    renamed["name"] = json!("Readers outside");
    let u = ok_json(&[
        "overrides",
        "update",
        "groups",
        "extReaders",
        "--admin-url",
        &url_b,
        "--data",
        &renamed.to_string(),
        "--json",
    ])
    .await;
    assert_eq!(u["name"], "Readers outside");
    let bearer = format!("Authorization: Bearer {zoe}");
    let e = ok_json(&[
        "explain",
        "--admin-url",
        &url_b,
        "--header",
        &bearer,
        "GET",
        &doc(1063),
    ])
    .await;
    assert!(e.to_string().contains("extReaders"), "{e}");
    wait_until(std::time::Duration::from_secs(20), || async {
        let o = portcullis(
            &[
                "audit",
                "list",
                "--admin-url",
                &url_a,
                "--principal",
                "jwt:dev#ext-zoe",
                "--limit",
                "1",
                "--all",
                "--json",
            ],
            Some(ADMIN_TOKEN),
        )
        .await;
        code(&o) == 0 && out(&o).lines().count() >= 2
    })
    .await
    .unwrap_or_else(|| panic!("audit list never showed zoe's requests"));

    // Refusals keep their exit codes: 3 for a refused change, 4 without a token.
    let o = portcullis(
        &[
            "overrides",
            "delete",
            "groups",
            "editor",
            "--admin-url",
            &url_a,
        ],
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(code(&o), 3, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("origin"));
    let o = portcullis(&["overrides", "list", "users", "--admin-url", &url_a], None).await;
    assert_eq!(code(&o), 4);
    let o = portcullis(
        &[
            "overrides",
            "show",
            "group-mappings",
            "readers",
            "--admin-url",
            &url_a,
        ],
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(code(&o), 2, "an id without ISSUER/");

    let o = portcullis(
        &[
            "overrides",
            "delete",
            "group-mappings",
            "dev/readers",
            "--admin-url",
            &url_b,
        ],
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    for gw in [&a, &b] {
        wait_doc_status(gw, &zoe, 403).await;
    }
}

#[tokio::test]
async fn a_mirror_sync_leaves_the_overrides_as_they_were() {
    use crate::mirror::{install, mirror};
    let fake = crate::fake_umbraco::FakeUmbraco::start(install()).await;
    let (db, pool) = ScratchDb::with_dev_policy("ovsync").await;
    let up = Upstream::start().await;
    let env = [("E2E_DATABASE_URL", db.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = spawn_gateway_with_env(TOP, up.addr, &pg_extra(), &env).await;
    let url = format!("http://{}", gw.admin);
    // Nothing here names a mirrored node: the sync may replace the whole tree.
    let group = json!({"alias": "partners", "name": "Partners", "sections": ["content"],
                       "default_verbs": ["Umb.Document.Read"], "content_start": "root"});
    let user = json!({"external_id": "ext|partner-1", "name": "Partner One",
                      "groups": ["partners", "writer"], "content_start": ["root"]});
    let mut before = Vec::new();
    for (kind, body) in [
        ("groups", group.to_string()),
        ("group-mappings", MAPPING.replace("extReaders", "partners")),
        ("users", user.to_string()),
    ] {
        ok_json(&[
            "overrides",
            "create",
            kind,
            "--admin-url",
            &url,
            "--data",
            &body,
            "--json",
        ])
        .await;
        before.push(
            ok_json(&[
                "overrides",
                "list",
                kind,
                "--origin",
                "local",
                "--admin-url",
                &url,
                "--json",
            ])
            .await,
        );
    }
    mirror(&fake, &pool).full_sync().await.expect("sync");
    let users: Vec<String> =
        sqlx::query_scalar("select external_id from users where origin = 'umbraco' order by 1")
            .fetch_all(&pool)
            .await
            .expect("users");
    assert!(
        !users.contains(&"dev-editor".to_owned()),
        "the sync replaced Umbraco's users: {users:?}"
    );
    for (i, kind) in ["groups", "group-mappings", "users"].iter().enumerate() {
        let after = ok_json(&[
            "overrides",
            "list",
            kind,
            "--origin",
            "local",
            "--admin-url",
            &url,
            "--json",
        ])
        .await;
        assert_eq!(after, before[i], "{kind}");
        assert_eq!(
            after["items"].as_array().map(Vec::len),
            Some(1),
            "{kind}: {after}"
        );
    }
}
