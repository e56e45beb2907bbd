//! `portcullis keys …` run as the real binary: against two gateways sharing one PostgreSQL
//! database (a key created with the CLI works through the proxy on both and stops on both right
//! after `keys revoke`), offline against a policy file, and the documented exit codes.

use crate::admin_keys::{key_status, policy_copy, two_pg_gateways, wait_key_status};
use crate::harness::*;
use crate::pipeline::{AUTHN, TOP};
use serde_json::Value;
use std::process::Output;

/// Runs `portcullis args…` with the harness admin token (unless `token` is `None`); also used
/// by the `overrides`, `audit` and `explain` command tests.
pub async fn keys(args: &[&str], token: Option<&str>) -> Output {
    let mut c = tokio::process::Command::new(binary());
    c.args(args)
        .env("PORTCULLIS_KEY_PEPPER", DEV_PEPPER)
        .env("PORTCULLIS_DEV_HS_SECRET", DEV_HS_SECRET)
        .env_remove("PORTCULLIS_ADMIN_URL")
        .env_remove("PORTCULLIS_ADMIN_TOKEN");
    if let Some(t) = token {
        c.env("PORTCULLIS_ADMIN_TOKEN", t);
    }
    c.output().await.expect("run portcullis")
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub async fn ok_json(args: &[&str]) -> Value {
    let o = keys(args, Some(ADMIN_TOKEN)).await;
    assert_eq!(
        code(&o),
        0,
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&out(&o)).unwrap_or_else(|e| panic!("{e}: {}", out(&o)))
}

#[tokio::test]
async fn a_key_created_with_the_cli_works_on_both_replicas_until_keys_revoke() {
    let (db, _pool) = ScratchDb::with_dev_policy("clikeys").await;
    let up = Upstream::start().await;
    let (a, b) = two_pg_gateways(&up, &db.url()).await;
    let url_a = format!("http://{}", a.admin);
    let url_b = format!("http://{}", b.admin);

    let created = ok_json(&[
        "keys",
        "create",
        "--admin-url",
        &url_a,
        "--name",
        "cli",
        "--owner",
        "ops",
        "--api",
        "delivery",
        "--subtree-root",
        "00000000-0000-0000-0000-000000001062",
        "--json",
    ])
    .await;
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let id = created["key"]["key_id"].as_str().expect("id").to_owned();
    for gw in [&a, &b] {
        wait_key_status(gw, 1063, &secret, 200).await;
    }

    // The table lists it (on the other replica) and never prints a secret.
    let o = keys(&["keys", "list", "--admin-url", &url_b], Some(ADMIN_TOKEN)).await;
    let table = out(&o);
    assert_eq!(code(&o), 0);
    assert!(table.starts_with("KEY_ID"), "{table}");
    let line = table.lines().find(|l| l.starts_with(&id)).expect("listed");
    assert!(line.contains("cli") && line.contains("active"), "{line}");
    assert!(!table.contains(&secret[secret.len() - 44..]));
    let shown = ok_json(&["keys", "show", &id, "--admin-url", &url_b, "--json"]).await;
    assert_eq!(shown["owner"], "ops");

    let revoked = ok_json(&["keys", "revoke", &id, "--admin-url", &url_b, "--json"]).await;
    assert_eq!(revoked["status"], "revoked");
    for gw in [&a, &b] {
        wait_key_status(gw, 1063, &secret, 401).await;
        assert_eq!(key_status(gw, 1063, &secret).await, 401);
    }
}

#[tokio::test]
async fn keys_commands_exit_with_the_documented_codes() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let url = format!("http://{}", gw.admin);
    let o = keys(
        &["keys", "show", "AAAAAAAAAAAAAAAA", "--admin-url", &url],
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(code(&o), 3, "not found");
    assert!(String::from_utf8_lossy(&o.stderr).contains("404 not_found"));
    let o = keys(
        &[
            "keys",
            "create",
            "--admin-url",
            &url,
            "--name",
            "x",
            "--owner",
            "y",
            "--api",
            "delivery",
            "--culture",
            "en us",
        ],
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(code(&o), 3, "invalid field");
    assert!(String::from_utf8_lossy(&o.stderr).contains("(cultures[0])"));
    let o = keys(&["keys", "list", "--admin-url", &url], None).await;
    assert_eq!(code(&o), 4, "no token");
    let o = keys(
        &["keys", "list", "--admin-url", &url],
        Some("wrong-token-0123456789abcdef0123456789"),
    )
    .await;
    assert_eq!(code(&o), 4, "token refused");
    let closed_port = closed_port();
    let closed = format!("http://{}", closed_port.addr);
    let o = keys(&["keys", "list", "--admin-url", &closed], Some(ADMIN_TOKEN)).await;
    assert_eq!(code(&o), 1, "unreachable");
    let o = keys(&["keys", "list", "--bogus"], Some(ADMIN_TOKEN)).await;
    assert_eq!(code(&o), 2, "bad arguments");
}

#[tokio::test]
async fn keys_create_offline_writes_only_the_hash_and_a_gateway_accepts_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = policy_copy(dir.path());
    let config = dir.path().join("portcullis.toml");
    let extra = format!(
        "{AUTHN}\n[store]\nkind = \"file\"\npolicy_file = {:?}\n",
        policy.display().to_string()
    );
    let [proxy, admin, upstream] = free_addrs();
    let text = config_text(TOP, proxy, admin, upstream, &extra);
    std::fs::write(&config, text).expect("config");
    let config = config.display().to_string();
    let o = keys(
        &[
            "keys", "create", "--config", &config, "--name", "offline", "--owner", "ops", "--api",
            "delivery",
        ],
        None,
    )
    .await;
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let printed = out(&o);
    let secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("secret  "))
        .expect("secret line")
        .trim()
        .to_owned();
    assert!(secret.starts_with("pcl_dev_"), "{printed}");
    let file = std::fs::read_to_string(&policy).expect("policy");
    assert!(
        !file.contains(&secret[secret.len() - 44..]),
        "secret written"
    );
    assert!(file.contains("name = \"offline\""));

    let o = keys(
        &[
            "keys", "create", "--config", &config, "--name", "x", "--owner", "y", "--api",
            "graphql",
        ],
        None,
    )
    .await;
    assert_eq!(code(&o), 3, "{}", String::from_utf8_lossy(&o.stderr));

    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, &extra).await;
    wait_key_status(&gw, 1063, &secret, 200).await;
}
