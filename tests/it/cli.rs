//! The operator commands run as the real binary: `routes`, `explain`, `migrate`, `policy` and
//! `audit` (against a throwaway PostgreSQL database), and the admin `POST /v1/explain`.

use crate::harness::{binary, spawn_gateway, ScratchDb, Upstream, DEV_HS_SECRET, DEV_PEPPER};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use std::path::Path;
use std::process::{Command, Output};

const POST_1: &str = "00000000-0000-0000-0000-000000001063";
const PUBLISH_BODY: &str = r#"{"publishSchedules":[{"culture":null}]}"#;

/// Runs the binary with the dev secrets in its environment.
fn portcullis(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .env("PORTCULLIS_KEY_PEPPER", DEV_PEPPER)
        .env("PORTCULLIS_DEV_HS_SECRET", DEV_HS_SECRET)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .output()
        .expect("run portcullis")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = portcullis(args);
    assert!(
        o.status.success(),
        "`portcullis {}` failed ({:?}): {}",
        args.join(" "),
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not json ({e}): {text}"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn routes_match_prints_the_move_route_with_its_node_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = "00000000-0000-0000-0000-000000001064";
    let body = write(
        dir.path(),
        "body.json",
        &format!(r#"{{"target":{{"id":"{target}"}}}}"#),
    );
    let path = format!("/umbraco/management/api/v1/document/{POST_1}/move");
    let v = json(&ok(&["routes", "match", "PUT", &path, "--body", &body]));
    assert_eq!(v["route"], "document.move", "{v}");
    assert_eq!(v["needs_body"], false, "{v}");
    let checks = v["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 2, "{v}");
    assert_eq!(checks[0]["nodes"][0], POST_1, "{v}");
    assert_eq!(checks[0]["verbs"][0], "Umb.Document.Move", "{v}");
    assert_eq!(checks[1]["nodes"][0], target, "{v}");
    assert_eq!(checks[1]["verbs"][0], "Umb.Document.Create", "{v}");
}

#[test]
fn routes_match_rejects_an_encoded_dot_segment() {
    let v = json(&ok(&[
        "routes",
        "match",
        "GET",
        "/umbraco/management/api/v1/x/%2e%2e/document",
    ]));
    assert!(v["rejected"].is_string(), "{v}");
    assert!(v.get("route").is_none(), "{v}");
}

#[test]
fn routes_list_prints_every_shipped_route() {
    let v = json(&ok(&["routes", "list"]));
    let routes = v["routes"].as_array().expect("routes");
    assert!(routes.len() > 100, "only {} routes", routes.len());
    assert!(routes.iter().any(|r| r["id"] == "document.publish"));
    assert_eq!(v["prefixes"].as_array().map(Vec::len), Some(2), "{v}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_exit_0() {
    // `portcullis routes list | head -1`: the reader is gone before the first write.
    let doc = format!("/umbraco/management/api/v1/document/{POST_1}");
    for args in [&["routes", "list"][..], &["routes", "match", "GET", &doc]] {
        let mut child = Command::new(binary())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let o = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} wrote to stderr: {err}");
    }
}

#[test]
fn routes_list_with_a_bad_config_exits_64() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "bad.toml", "no_such_key = 1\n");
    let o = portcullis(&["routes", "list", "--config", &config]);
    assert_eq!(o.status.code(), Some(64), "{}", stdout(&o));
}

/// `portcullis explain` on the dev config for `user` publishing post 1.
fn explain_publish(user: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = portcullis::dev::materialise(dir.path()).expect("dev config");
    let body = write(dir.path(), "body.json", PUBLISH_BODY);
    let path = format!("/umbraco/management/api/v1/document/{POST_1}/publish");
    json(&ok(&[
        "explain",
        "--config",
        &config.display().to_string(),
        "--principal",
        user,
        "PUT",
        &path,
        "--body",
        &body,
    ]))
}

#[test]
fn explain_denies_a_writer_publishing_with_missing_verb_and_names_the_group() {
    let v = explain_publish("dev-writer");
    assert_eq!(v["deny_reason"], "missing_verb", "{v}");
    assert_eq!(v["route"], "document.publish", "{v}");
    assert_eq!(v["principal"]["id"], "explain:dev-writer", "{v}");
    assert_eq!(v["groups"], serde_json::json!(["writer"]), "{v}");
}

#[test]
fn explain_allows_an_editor_publishing() {
    let v = explain_publish("dev-editor");
    assert!(v["deny_reason"].is_null(), "{v}");
    assert_eq!(v["groups"], serde_json::json!(["editor"]), "{v}");
    assert!(v["decision"].to_string().contains("allow"), "{v}");
}

#[tokio::test]
async fn admin_explain_answers_like_the_proxy_for_a_bearer_token() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(
        "mode = \"enforce\"\ndevelopment = true",
        up.addr,
        "[authn]\npepper_env = \"PORTCULLIS_KEY_PEPPER\"\n[[authn.issuers]]\nname = \"dev\"\n\
         issuer = \"https://dev.portcullis.invalid\"\nhs_secret_env = \"PORTCULLIS_DEV_HS_SECRET\"\n\
         algorithms = [\"HS256\"]\naudiences = [\"portcullis-dev\"]\n",
    )
    .await;
    let target = format!("/umbraco/management/api/v1/document/{POST_1}/publish");
    let ask = |user: &str| {
        let token = portcullis::dev::mint_dev_token(user).expect("token");
        serde_json::json!({
            "method": "PUT",
            "target": target,
            "headers": {"authorization": format!("Bearer {token}")},
            "body": serde_json::from_str::<Value>(PUBLISH_BODY).expect("body"),
        })
    };
    for (user, reason) in [
        ("dev-writer", Value::from("missing_verb")),
        ("dev-editor", Value::Null),
    ] {
        let resp = gw
            .admin(reqwest::Method::POST, "/v1/explain")
            .json(&ask(user))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["deny_reason"], reason, "{user}: {v}\n{}", gw.log());
        assert_eq!(v["route"], "document.publish", "{v}");
    }
    let resp = gw
        .admin(reqwest::Method::POST, "/v1/explain")
        .json(&serde_json::json!({"method": "GET", "target": "/umbraco/management/api/v1/x/%2e%2e/y"}))
        .send()
        .await
        .expect("send");
    let v: Value = resp.json().await.expect("json");
    assert!(v["rejected"].is_string(), "{v}");
    let resp = gw
        .admin(reqwest::Method::POST, "/v1/explain")
        .body("{\"method\": 1}")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(
        (&v["error"], &v["field"]),
        (&Value::from("invalid_request"), &Value::from("method")),
        "{v}"
    );
    let resp = gw
        .admin(reqwest::Method::GET, "/v1/explain")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn policy_apply_export_and_reapply_writes_nothing_the_second_time() {
    let db = ScratchDb::create("cli").await;
    let url = db.url();
    assert!(ok(&["migrate", "--database-url", &url]).contains("migrations applied"));
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy/dev.toml");
    let first = json(&ok(&[
        "policy",
        "apply",
        "--database-url",
        &url,
        &policy.display().to_string(),
    ]));
    assert!(first["total"].as_u64().unwrap_or(0) > 0, "{first}");
    let exported = ok(&["policy", "export", "--database-url", &url]);
    assert!(exported.contains("dev-writer"), "{exported}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "export.toml", &exported);
    let again = json(&ok(&[
        "policy",
        "apply",
        "--database-url",
        &url,
        "--prune",
        &file,
    ]));
    assert_eq!(again["total"], 0, "{again}");
    // The pool sees the same rows the file named.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(users >= 3, "{users} users");
    pool.close().await;
}

#[tokio::test]
async fn audit_query_on_an_empty_trail_prints_only_the_header_and_exits_0() {
    let db = ScratchDb::create("cli").await;
    let url = db.url();
    ok(&["migrate", "--database-url", &url]);
    let table = ok(&[
        "audit",
        "query",
        "--database-url",
        &url,
        "--decision",
        "deny",
    ]);
    assert_eq!(table.lines().count(), 1, "{table}");
    assert!(table.contains("DECISION"), "{table}");
    let json_lines = ok(&[
        "audit",
        "query",
        "--database-url",
        &url,
        "--json",
        "--limit",
        "5",
    ]);
    assert_eq!(json_lines, "", "{json_lines}");
}

#[test]
fn database_commands_without_a_url_are_a_usage_error() {
    let o = portcullis(&["migrate"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
}

#[tokio::test]
async fn policy_apply_prune_refuses_to_delete_every_api_key_without_force() {
    let (db, pool) = ScratchDb::with_dev_policy("cli").await;
    let url = db.url();
    // The dev policy without its one `[[api_keys]]` table: pruning would delete every key.
    let dev = portcullis::dev::DEV_POLICY;
    let start = dev.find("[[api_keys]]").expect("the dev policy has a key");
    let end = dev[start..].find("\n\n").map_or(dev.len(), |i| start + i);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "no-keys.toml",
        &format!("{}{}", &dev[..start], &dev[end..]),
    );
    let keys = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from api_keys")
            .fetch_one(&pool)
            .await
            .expect("count")
    };
    let before = keys().await;
    assert!(before >= 1);
    let refused = portcullis(&["policy", "apply", "--database-url", &url, "--prune", &file]);
    assert_eq!(refused.status.code(), Some(64));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("every one of the api keys") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(keys().await, before, "nothing was applied");
    let forced = json(&ok(&[
        "policy",
        "apply",
        "--database-url",
        &url,
        "--prune",
        "--force",
        &file,
    ]));
    assert_eq!(forced["pruned"]["api_keys"], before, "{forced}");
    assert_eq!(keys().await, 0);
}
